//! Telling the team: when a turn hands its conversation to a person (the customer asked, was
//! upset, got stuck, or something of theirs was set aside), the same commit queues a hand-off
//! record, an alert to each staff number and a POST to the team's webhook, all as outbox rows:
//! durable with the turn, done once (their keys come from the turn's inbox row), retried and
//! dead-lettered like any other.

use crate::engine::{ConversationState, Reply};
use crate::flow::messages::Messages;
use crate::pipeline::App;
use crate::pipeline::queue::{HandoffNotice, Payload, Send};
use crate::store::{HandoffStatus, NewHandoff, NewOutbox};

/// The queue hand-offs wait in unless a flow names another.
pub const DEFAULT_QUEUE: &str = "support";

/// The outbox rows that tell the team of a hand-off this turn made, if it made one: it did when
/// `before` had no hand-off and `after` has one that no agent started (an agent taking over
/// needs nobody told). `dedup_key`: the turn's inbox row's key; `sender`: the business number
/// alerts go from.
pub fn handoff_rows(
    app: &App,
    conversation_id: &str,
    dedup_key: &str,
    sender: &str,
    before: &ConversationState,
    after: &ConversationState,
    now: i64,
) -> Vec<NewOutbox> {
    let Some(h) = after.handoff().filter(|h| h.agent.is_none() && before.handoff().is_none()) else { return vec![] };
    let key = format!("{dedup_key}:handoff");
    // The phase keeps Unix seconds; the store and the webhook speak milliseconds.
    let since_ms = h.since * 1000;
    let customer = after.customer.clone();
    let record = NewHandoff {
        idempotency_key: key.clone(),
        conversation_id: conversation_id.to_string(),
        customer: customer.clone(),
        reason: h.reason.clone(),
        queue: DEFAULT_QUEUE.to_string(),
        status: HandoffStatus::Waiting.as_str().to_string(),
        created_at: since_ms,
    };
    let mut rows = vec![Payload::Handoff(record).row(conversation_id, key.clone(), now)];
    let flows = app.flows();
    let alert = Messages::fill(
        &flows.business.messages.handoff_staff_alert,
        &[("customer", &format!("+{customer}")), ("reason", &h.reason), ("queue", DEFAULT_QUEUE)],
    );
    for (i, staff) in app.settings.staff_numbers.iter().enumerate() {
        let send = Send {
            phone_number_id: sender.to_string(),
            to: staff.clone(),
            body: crate::channel::whatsapp::render::render(staff, &Reply::Text { body: alert.clone() }),
            received_at: None,
        };
        rows.push(Payload::Send(send).row(conversation_id, format!("{key}:staff:{i}"), now));
    }
    if app.settings.team_webhook.is_some() {
        let notice = HandoffNotice {
            event: "handoff.waiting".into(),
            key: key.clone(),
            conversation_id: conversation_id.to_string(),
            customer,
            reason: h.reason.clone(),
            queue: DEFAULT_QUEUE.into(),
            since: since_ms,
        };
        rows.push(Payload::Webhook(notice).row(conversation_id, format!("{key}:webhook"), now));
    }
    rows
}
