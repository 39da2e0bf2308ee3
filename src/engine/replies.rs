//! Replies to support tickets, approved by a person in the console: the reply goes to the
//! customer (as text inside WhatsApp's 24-hour window, as the approved template outside it) and
//! is posted on the ticket through the ERP action `flows/erp.yaml` names (`tickets.reply_action`).
//! The write belongs to no journey: its outcome is recorded, never told to the customer.

use serde_json::{Map, Value};

use super::event::{ErpRequest, EventKind, Reply};
use super::turn::{Next, Turn};
use super::visits::WINDOW_SECONDS;
use crate::flow::erp_actions;
use crate::flow::tickets;

/// The journey id of a ticket reply's ERP write (`ticket:<draft id>`), so that its outcome is
/// recognised as belonging to no journey.
pub const JOURNEY_PREFIX: &str = "ticket:";

/// The idempotency key of the ERP write that posts draft `draft`'s reply (the comment carries
/// it, so a repeated write finds the first comment).
pub fn write_key(draft: i64) -> String {
    format!("ticket-reply-{draft}")
}

/// A person approved a reply to the customer's ticket: send it and post it on the ticket.
pub fn on_ticket_reply(t: &mut Turn<'_>) -> Next {
    let EventKind::TicketReply { draft, ticket, subject, text, reviewer } = &t.event.kind else { return Next::Stay };
    let in_window = t.now - t.state.last_customer_at < WINDOW_SECONDS;
    let settings = t.flows.tickets.as_ref();
    let business = &t.flows.business.name;
    let reply = match settings {
        Some(s) if !in_window => Reply::Template {
            body: text.clone(),
            name: s.template.name.clone(),
            language: s.template.language.clone(),
            parameters: s
                .template
                .parameters
                .iter()
                .map(|p| tickets::fill(p, ticket, subject, text, business))
                .collect(),
            options: vec![],
        },
        _ => Reply::Text { body: text.clone() },
    };
    let how = match &reply {
        Reply::Template { name, .. } => format!("as template {name}: the 24-hour window is closed"),
        _ if in_window => "as text, inside the 24-hour window".to_string(),
        _ => "as text: no ticket template is declared (flows/erp.yaml, tickets.template)".to_string(),
    };
    t.note(
        "ticket_reply",
        format!("{reviewer} approved the reply to ticket {ticket} (draft {draft}); sent {how}"),
        None,
    );
    t.replies.push(reply);
    let Some(action) = settings.map(|s| s.decl.reply_action.clone()) else {
        t.note("ticket_reply", format!("not posted on ticket {ticket}: flows/erp.yaml declares no tickets"), None);
        return Next::Stay;
    };
    let Some(decl) = t.flows.actions.get(&action) else {
        t.note("ticket_reply", format!("not posted on ticket {ticket}: no ERP action {action}"), None);
        return Next::Stay;
    };
    let key = write_key(*draft);
    let mut context = Map::new();
    for (name, value) in [
        ("ticket", ticket),
        ("subject", subject),
        ("reply", text),
        ("reviewer", reviewer),
        ("idempotency_key", &key),
        ("wa_id", &t.state.customer),
    ] {
        context.insert(name.into(), Value::String(value.clone()));
    }
    context.insert("customer_phone".into(), Value::String(format!("+{}", t.state.customer.trim_start_matches('+'))));
    match erp_actions::render_action(&action, decl, &context, &key) {
        Ok(rendered) => {
            t.note("erp_request", format!("ERP action {action} queued with idempotency key {key}"), None);
            t.erp.push(ErpRequest { journey_id: format!("{JOURNEY_PREFIX}{draft}"), action: rendered });
        }
        Err(problems) => {
            let why: Vec<String> = problems.iter().map(|p| format!("{} {}: {}", p.document, p.at, p.message)).collect();
            t.note(
                "erp_invalid",
                format!(
                    "the reply to ticket {ticket} was sent but not posted: {action} failed its schema: {}",
                    why.join("; ")
                ),
                None,
            );
        }
    }
    Next::Stay
}

/// The ERP's answer to a ticket reply's write: recorded (a failure stays in the outbox's dead
/// letters for an operator to send again).
pub fn on_outcome(t: &mut Turn<'_>, journey_id: &str, action: &str, reference: Option<&str>, error: Option<&str>) {
    let draft = journey_id.trim_start_matches(JOURNEY_PREFIX);
    let detail = match (reference, error) {
        (Some(r), None) => format!("ERP accepted {action} for draft {draft}: reference {r}"),
        (_, e) => format!(
            "ERP refused {action} for draft {draft}: {} (the customer has the reply; re-drive the dead outbox row to post it)",
            e.unwrap_or_default()
        ),
    };
    t.note("erp_outcome", detail, None);
}
