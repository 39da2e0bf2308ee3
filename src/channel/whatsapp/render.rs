//! Rendering engine replies as Graph API message bodies, within WhatsApp's limits
//! (`../shared/reference/whatsapp-cloud-api.md` §7): at most 3 reply buttons with titles of at
//! most 20 characters and a body of at most 1024; lists of at most 10 rows with titles of at most
//! 24, descriptions of at most 72, a button label of at most 20 and a body of at most 4096; text
//! bodies of at most 4096. Options that fit as buttons become buttons; others become a list.

use serde_json::{Value, json};

use crate::engine::Reply;
use crate::text::truncate;

/// Longest text body (characters).
pub const MAX_TEXT_BODY: usize = 4096;
/// Longest body of a reply-button message.
pub const MAX_BUTTON_BODY: usize = 1024;
/// Longest list-row description.
pub const MAX_ROW_DESCRIPTION: usize = 72;
/// Longest reply-button id.
pub const MAX_BUTTON_ID: usize = 256;
/// Longest list-row id.
pub const MAX_ROW_ID: usize = 200;

/// The Graph API body sending `reply` to `to`: a phone number's digits go in `to` with a `+`
/// (reference §7); anything else is a business-scoped user id and goes in `recipient`.
pub fn render(to: &str, reply: &Reply) -> Value {
    let mut body = json!({"messaging_product": "whatsapp", "recipient_type": "individual"});
    let digits = to.trim_start_matches('+');
    if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) {
        body["to"] = json!(format!("+{digits}"));
    } else {
        // A business-scoped user id (`US.1349…`) of a customer who hides their number: sent as
        // `recipient`, exactly as received (reference §3; BSP guides on BSUIDs, 2026).
        body["recipient"] = json!(to);
    }
    match reply {
        Reply::Text { body: text } => {
            body["type"] = json!("text");
            body["text"] = json!({"preview_url": false, "body": truncate(text, MAX_TEXT_BODY)});
        }
        Reply::Choices { body: text, options, button } => {
            let fits_buttons = !options.is_empty()
                && options.len() <= crate::flow::MAX_BUTTONS
                && options.iter().all(|o| o.title.chars().count() <= crate::flow::MAX_BUTTON_TITLE)
                && text.chars().count() <= MAX_BUTTON_BODY;
            body["type"] = json!("interactive");
            if options.is_empty() {
                body["type"] = json!("text");
                body["text"] = json!({"preview_url": false, "body": truncate(text, MAX_TEXT_BODY)});
            } else if fits_buttons {
                let buttons: Vec<Value> = options
                    .iter()
                    .map(
                        |o| json!({"type": "reply", "reply": {"id": truncate(&o.id, MAX_BUTTON_ID), "title": o.title}}),
                    )
                    .collect();
                body["interactive"] = json!({"type": "button", "body": {"text": text}, "action": {"buttons": buttons}});
            } else {
                let rows: Vec<Value> = options
                    .iter()
                    .take(crate::flow::MAX_LIST_ROWS)
                    .map(|o| {
                        let mut row = json!({"id": truncate(&o.id, MAX_ROW_ID), "title": truncate(&o.title, crate::flow::MAX_ROW_TITLE)});
                        if let Some(d) = &o.description {
                            row["description"] = json!(truncate(d, MAX_ROW_DESCRIPTION));
                        }
                        row
                    })
                    .collect();
                body["interactive"] = json!({
                    "type": "list",
                    "body": {"text": truncate(text, MAX_TEXT_BODY)},
                    "action": {"button": truncate(button, crate::flow::MAX_BUTTON_TITLE), "sections": [{"title": "Options", "rows": rows}]}
                });
            }
        }
        Reply::Template { name, language, parameters, options, .. } => {
            body["type"] = json!("template");
            let mut components = Vec::new();
            if !parameters.is_empty() {
                let params: Vec<Value> =
                    parameters.iter().map(|p| json!({"type": "text", "text": template_parameter(p)})).collect();
                components.push(json!({"type": "body", "parameters": params}));
            }
            // Quick replies: the approved template holds the labels; we give each its payload.
            for (i, o) in options.iter().enumerate() {
                components.push(json!({
                    "type": "button", "sub_type": "quick_reply", "index": i.to_string(),
                    "parameters": [{"type": "payload", "payload": truncate(&o.id, MAX_BUTTON_ID)}]
                }));
            }
            body["template"] = json!({"name": name, "language": {"code": language}, "components": components});
        }
    }
    body
}

/// The most characters of a template's body (Meta's message template guidelines: a body has at
/// most 1,024 characters), so also of one parameter.
pub const MAX_TEMPLATE_BODY: usize = 1_024;

/// A template body parameter as WhatsApp takes it: no new lines, tabs or runs of spaces (Meta's
/// message template guidelines; the Cloud API refuses such a parameter, error 132018), at most
/// [`MAX_TEMPLATE_BODY`] characters.
pub fn template_parameter(text: &str) -> String {
    truncate(&text.split_whitespace().collect::<Vec<_>>().join(" "), MAX_TEMPLATE_BODY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ReplyOption;

    fn opt(i: usize, title: &str) -> ReplyOption {
        ReplyOption { id: format!("id{i}"), title: title.into(), description: None }
    }

    #[test]
    fn template_parameters_lose_line_breaks_and_runs_of_spaces() {
        assert_eq!(template_parameter("Hello,\n\nyour   reply\there"), "Hello, your reply here");
        assert_eq!(template_parameter(&"x".repeat(2_000)).chars().count(), MAX_TEMPLATE_BODY);
    }

    #[test]
    fn three_short_options_are_buttons_more_are_a_capped_list() {
        let r = Reply::Choices {
            body: "Pick".into(),
            options: (0..3).map(|i| opt(i, "Short")).collect(),
            button: "Choose".into(),
        };
        let b = render("971500000001", &r);
        assert_eq!(b["interactive"]["type"], "button");
        assert_eq!(b["to"], "+971500000001");
        let r = Reply::Choices {
            body: "Pick".into(),
            options: (0..12).map(|i| opt(i, "A very long option title indeed")).collect(),
            button: "Choose".into(),
        };
        let b = render("971500000001", &r);
        assert_eq!(b["interactive"]["type"], "list");
        let rows = b["interactive"]["action"]["sections"][0]["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 10);
        assert!(rows.iter().all(|r| r["title"].as_str().unwrap().chars().count() <= 24));
        let r = Reply::Choices {
            body: "Pick".into(),
            options: vec![opt(0, "This title is too long for a button")],
            button: "Choose".into(),
        };
        assert_eq!(render("1", &r)["interactive"]["type"], "list");
    }

    #[test]
    fn a_template_carries_its_parameters_and_quick_reply_payloads() {
        let r = Reply::Template {
            body: "Hi Jane, see you Sat 10:00".into(),
            name: "visit_reminder".into(),
            language: "en".into(),
            parameters: vec!["Jane".into(), "Sat 10:00".into()],
            options: vec![opt(0, "Confirm"), opt(1, "Cancel")],
        };
        let b = render("971500000001", &r);
        assert_eq!(b["type"], "template");
        assert_eq!(b["template"]["name"], "visit_reminder");
        assert_eq!(b["template"]["language"]["code"], "en");
        let c = &b["template"]["components"];
        assert_eq!(c[0]["type"], "body");
        assert_eq!(c[0]["parameters"][1], serde_json::json!({"type": "text", "text": "Sat 10:00"}));
        assert_eq!(c[2]["sub_type"], "quick_reply");
        assert_eq!(c[2]["index"], "1");
        assert_eq!(c[2]["parameters"][0]["payload"], "id1");
        assert!(b.get("text").is_none() && b.get("interactive").is_none());
    }
}

/// One option of an interactive message as sent to the Graph API.
#[derive(Debug, Clone, PartialEq)]
pub struct OfferedOption {
    /// The id echoed back when it is chosen.
    pub id: String,
    /// The title.
    pub title: String,
    /// A list row's description.
    pub description: Option<String>,
    /// `button_reply` or `list_reply`: the `interactive.type` of the customer's answer.
    pub reply_kind: &'static str,
}

/// The options of a rendered interactive message (reply buttons or list rows), in order; empty
/// for any other message. Used by `chat`, `simulate`, `loadgen` and the tests to answer as a
/// customer would.
pub fn offered_options(message: &Value) -> Vec<OfferedOption> {
    let i = &message["interactive"];
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    match i["type"].as_str() {
        Some("button") => i["action"]["buttons"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|b| OfferedOption {
                id: text(&b["reply"]["id"]),
                title: text(&b["reply"]["title"]),
                description: None,
                reply_kind: "button_reply",
            })
            .collect(),
        Some("list") => i["action"]["sections"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|s| s["rows"].as_array().cloned().unwrap_or_default())
            .map(|r| OfferedOption {
                id: text(&r["id"]),
                title: text(&r["title"]),
                description: r["description"].as_str().map(String::from),
                reply_kind: "list_reply",
            })
            .collect(),
        _ => vec![],
    }
}
