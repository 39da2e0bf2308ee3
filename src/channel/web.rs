//! The website chat widget's channel: a site's visitors reach the same engine and journeys. A
//! visitor's session is a conversation whose "business number" is `web.<site key>` and whose
//! customer is the session id; what the engine says is stored as outbox rows of kind `web`,
//! which the visitor's browser reads (`GET /widget/sessions/{id}/replies`).
//!
//! WhatsApp's own rules do not apply here: there is no 24-hour window, so a template is shown as
//! the text it stands for, and options are not cut to WhatsApp's three buttons or ten rows
//! (`Reply::Choices` keeps every option the engine offers).

use serde_json::{Value, json};

use crate::engine::Reply;

/// The prefix of a web conversation's business number.
pub const WEB_PREFIX: &str = "web.";

/// The most characters of a visitor's message (a longer one is refused with 413).
pub const MAX_TEXT_CHARS: usize = 2_000;

/// The business number of a site's conversations.
pub fn number_of(site: &str) -> String {
    format!("{WEB_PREFIX}{site}")
}

/// The site whose conversations use `phone_number_id`, when it is a web one.
pub fn site_of(phone_number_id: &str) -> Option<&str> {
    phone_number_id.strip_prefix(WEB_PREFIX)
}

/// A reply as the widget shows it: `{"type": "text", "text"}` or `{"type": "choices", "text",
/// "options": [{"id", "title", "description"?}]}`. A template is its text.
pub fn render(reply: &Reply) -> Value {
    let (body, options) = match reply {
        Reply::Text { body } => (body, &[][..]),
        Reply::Choices { body, options, .. } | Reply::Template { body, options, .. } => (body, options.as_slice()),
    };
    if options.is_empty() {
        return json!({"type": "text", "text": body});
    }
    let options: Vec<Value> = options
        .iter()
        .map(|o| {
            let mut v = json!({"id": o.id, "title": o.title});
            if let Some(d) = &o.description {
                v["description"] = json!(d);
            }
            v
        })
        .collect();
    json!({"type": "choices", "text": body, "options": options})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ReplyOption;

    fn opt(i: usize) -> ReplyOption {
        ReplyOption {
            id: format!("id{i}"),
            title: format!("Option {i}"),
            description: (i == 0).then(|| "first".into()),
        }
    }

    #[test]
    fn every_option_is_kept_and_a_template_is_its_text() {
        let many = Reply::Choices { body: "Pick".into(), options: (0..12).map(opt).collect(), button: "Choose".into() };
        let v = render(&many);
        assert_eq!((v["type"].as_str(), v["options"].as_array().map(Vec::len)), (Some("choices"), Some(12)));
        assert_eq!(v["options"][0]["description"], "first");
        let template = Reply::Template {
            body: "Your visit is tomorrow".into(),
            name: "visit_reminder".into(),
            language: "en".into(),
            parameters: vec!["tomorrow".into()],
            options: vec![],
        };
        assert_eq!(render(&template), json!({"type": "text", "text": "Your visit is tomorrow"}));
        assert_eq!(render(&Reply::Text { body: "Hi".into() }), json!({"type": "text", "text": "Hi"}));
        assert_eq!(site_of(&number_of("main")), Some("main"));
        assert_eq!(site_of("109876543210987"), None);
    }
}
