//! `tickets:` in `flows/erp.yaml`: the ERP's support tickets (ERPNext `Issue`) that the service
//! drafts replies for. The list is read with a `modified` cursor (`${since}` in the filters); a
//! person approves each draft in the console before the reply is posted on the ticket (through
//! `reply_action`) and sent on WhatsApp (as `template` outside the 24-hour window).

use schemars::JsonSchema;
use serde::Deserialize;

use super::erp_actions::{ActionDecl, LookupSource};
use super::format::TemplateDecl;
use super::graph::Template;
use super::{FlowProblem, Located};
use indexmap::IndexMap;

/// The placeholders a reply template's parameters and the reply action's body may use.
pub const REPLY_PLACEHOLDERS: &[&str] = &["ticket", "subject", "reply", "business"];

/// The shortest poll interval accepted (seconds): the list is one ERP read per poll.
pub const MIN_POLL_SECONDS: u64 = 5;

/// Where support tickets come from and how an approved reply goes out.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketsDecl {
    /// The list read, oldest change first: its filters may use `${since}` (the `modified` value
    /// of the newest ticket already seen; `1970-01-01 00:00:00` at first) and `${today}`. Use
    /// `>=` with `${since}`: tickets changed in the same instant are all read, and one already
    /// drafted is skipped.
    pub source: LookupSource,
    /// The field holding the customer's WhatsApp number (tickets without one are skipped: the
    /// ERP answers those by e-mail).
    #[serde(default = "number_field")]
    pub number_field: String,
    /// The ticket's subject.
    #[serde(default = "subject_field")]
    pub subject_field: String,
    /// What the customer wrote (HTML is reduced to text).
    #[serde(default = "details_field")]
    pub details_field: String,
    /// The field the cursor follows.
    #[serde(default = "modified_field")]
    pub modified_field: String,
    /// Seconds between two reads of the list (at least [`MIN_POLL_SECONDS`]; 60 by default).
    #[serde(default = "poll_seconds")]
    pub poll_seconds: u64,
    /// The ERP action (under `actions:`) that posts an approved reply on the ticket. Its body may
    /// use `${ticket}`, `${subject}`, `${reply}`, `${reviewer}` and `${idempotency_key}`; it must be
    /// safe to repeat (find the comment by its content, which carries the key).
    pub reply_action: String,
    /// The approved WhatsApp template that carries a reply outside the 24-hour window; its
    /// parameters may use `{ticket}`, `{subject}`, `{reply}` and `{business}`.
    pub template: TemplateDecl,
}

fn number_field() -> String {
    "whatsapp_number".into()
}
fn subject_field() -> String {
    "subject".into()
}
fn details_field() -> String {
    "description".into()
}
fn modified_field() -> String {
    "modified".into()
}
fn poll_seconds() -> u64 {
    60
}

/// Checked ticket settings, as the service uses them.
#[derive(Debug, Clone)]
pub struct Tickets {
    /// As declared.
    pub decl: TicketsDecl,
    /// The template, compiled.
    pub template: Template,
}

impl Tickets {
    /// The poll interval.
    pub fn poll_every(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.decl.poll_seconds.max(MIN_POLL_SECONDS))
    }
}

/// Checks `tickets` against the actions declared beside it; problems are pushed with `file` and
/// the section's position. Returns the checked settings when there was none.
pub fn check(
    file: &str,
    tickets: &Located<TicketsDecl>,
    actions: &IndexMap<String, ActionDecl>,
    problems: &mut Vec<FlowProblem>,
) -> Option<Tickets> {
    let before = problems.len();
    let mut problem = |message: String| {
        problems.push(FlowProblem {
            file: file.into(),
            line: tickets.line,
            column: tickets.column,
            code: "flow.tickets",
            message,
        })
    };
    let d = &tickets.value;
    if !actions.contains_key(&d.reply_action) {
        problem(format!(
            "tickets.reply_action {:?} is not an action under `actions:`: declare the write that posts a reply",
            d.reply_action
        ));
    }
    for (what, field) in [
        ("number_field", &d.number_field),
        ("subject_field", &d.subject_field),
        ("details_field", &d.details_field),
        ("modified_field", &d.modified_field),
        ("source.id_field", &d.source.id_field),
    ] {
        if !d.source.fields.contains(field) {
            problem(format!("tickets.{what} {field:?} is not read: add it to tickets.source.fields"));
        }
    }
    if d.poll_seconds < MIN_POLL_SECONDS {
        problem(format!("tickets.poll_seconds is {}: poll at most every {MIN_POLL_SECONDS} seconds", d.poll_seconds));
    }
    if d.template.name.trim().is_empty() || d.template.language.trim().is_empty() {
        problem("tickets.template needs the approved template's name and language".into());
    }
    for p in &d.template.parameters {
        let mut rest = p.as_str();
        while let Some(open) = rest.find('{') {
            let Some(close) = rest[open..].find('}') else { break };
            let name = &rest[open + 1..open + close];
            if !REPLY_PLACEHOLDERS.contains(&name) {
                problem(format!(
                    "tickets.template parameter {p:?} uses {{{name}}}: only {} are known",
                    REPLY_PLACEHOLDERS.iter().map(|n| format!("{{{n}}}")).collect::<Vec<_>>().join(", ")
                ));
            }
            rest = &rest[open + close + 1..];
        }
    }
    (problems.len() == before).then(|| Tickets {
        template: Template {
            name: d.template.name.clone(),
            language: d.template.language.clone(),
            parameters: d.template.parameters.clone(),
        },
        decl: d.clone(),
    })
}

/// Fills a reply template parameter's placeholders.
pub fn fill(text: &str, ticket: &str, subject: &str, reply: &str, business: &str) -> String {
    text.replace("{ticket}", ticket)
        .replace("{subject}", subject)
        .replace("{reply}", reply)
        .replace("{business}", business)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(yaml: &str) -> Located<TicketsDecl> {
        Located::unplaced(serde_saphyr::from_str(yaml).expect("valid yaml"))
    }

    const GOOD: &str = r#"
source:
  doctype: Issue
  filters: [["modified", ">=", "${since}"]]
  fields: [name, subject, description, whatsapp_number, modified]
  title: "${subject}"
reply_action: post_reply
template: { name: ticket_reply, language: en, parameters: ["{ticket}", "{reply}"] }
"#;

    fn actions(names: &[&str]) -> IndexMap<String, ActionDecl> {
        names
            .iter()
            .map(|n| {
                let a: ActionDecl = serde_saphyr::from_str("reference: x\ndocuments: []").expect("valid action");
                (n.to_string(), a)
            })
            .collect()
    }

    #[test]
    fn a_complete_section_is_accepted_with_its_defaults() {
        let mut problems = vec![];
        let t = check("erp.yaml", &decl(GOOD), &actions(&["post_reply"]), &mut problems).expect("accepted");
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(t.decl.number_field, "whatsapp_number");
        assert_eq!(t.poll_every(), std::time::Duration::from_secs(60));
        assert_eq!(t.template.parameters, vec!["{ticket}", "{reply}"]);
    }

    #[test]
    fn an_unknown_action_an_unread_field_and_an_unknown_placeholder_are_each_named() {
        let yaml = GOOD
            .replace("whatsapp_number, ", "")
            .replace("\"{reply}\"", "\"{answer}\"")
            .replace("reply_action: post_reply", "reply_action: nowhere\npoll_seconds: 1");
        let mut problems = vec![];
        assert!(check("erp.yaml", &decl(&yaml), &actions(&["post_reply"]), &mut problems).is_none());
        let text: Vec<String> = problems.iter().map(|p| p.message.clone()).collect();
        assert_eq!(problems.len(), 4, "{text:?}");
        assert!(text.iter().any(|m| m.contains("\"nowhere\"")));
        assert!(text.iter().any(|m| m.contains("number_field \"whatsapp_number\" is not read")));
        assert!(text.iter().any(|m| m.contains("{answer}")));
        assert!(text.iter().any(|m| m.contains("poll_seconds is 1")));
        assert!(problems.iter().all(|p| p.code == "flow.tickets"));
    }

    #[test]
    fn placeholders_are_filled() {
        assert_eq!(fill("{ticket}: {reply} ({business})", "ISS-1", "s", "Hi", "Sparkle"), "ISS-1: Hi (Sparkle)");
    }
}
