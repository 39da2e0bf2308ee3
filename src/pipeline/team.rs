//! Telling the team: when a turn hands its conversation to a person (the customer asked, was
//! upset, got stuck, or something of theirs was set aside), the same commit queues a hand-off
//! record, an alert to each staff number and a POST to the team's webhook, all as outbox rows:
//! durable with the turn, done once (their keys come from the turn's inbox row), retried and
//! dead-lettered like any other.

use crate::engine::{ConversationState, Reply};
use crate::flow::FlowSet;
use crate::flow::messages::Messages;
use crate::pipeline::App;
use crate::pipeline::queue::{HandoffNotice, Payload, Send};
use crate::store::{HandoffStatus, NewHandoff, NewOutbox};

/// The queue hand-offs wait in unless a flow names another.
pub const DEFAULT_QUEUE: &str = "support";

/// The queue a hand-off from `before` to `after` waits in: the `handoff_queue` of the journey
/// under way (its flow file), or [`DEFAULT_QUEUE`].
pub fn queue_of(flows: &FlowSet, before: &ConversationState, after: &ConversationState) -> String {
    after
        .journey
        .as_ref()
        .or(before.journey.as_ref())
        .and_then(|j| flows.flow(&j.flow))
        .and_then(|f| f.handoff_queue.clone())
        .unwrap_or_else(|| DEFAULT_QUEUE.to_string())
}

/// The outbox rows that tell the team of a hand-off this turn made, if it made one: it did when
/// `before` had no hand-off and `after` has one that no agent started (an agent taking over
/// needs nobody told). `dedup_key`: the turn's inbox row's key; `sender`: the business number
/// alerts go from.
#[allow(clippy::too_many_arguments)]
pub fn handoff_rows(
    app: &App,
    tenant: &crate::pipeline::Tenant,
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
    let flows = tenant.flows();
    let queue = queue_of(&flows, before, after);
    let record = NewHandoff {
        tenant: tenant.id.to_string(),
        idempotency_key: key.clone(),
        conversation_id: conversation_id.to_string(),
        customer: customer.clone(),
        reason: h.reason.clone(),
        queue: queue.clone(),
        status: HandoffStatus::Waiting.as_str().to_string(),
        created_at: since_ms,
    };
    let mut rows = vec![Payload::Handoff(record).row(conversation_id, key.clone(), now)];
    let alert = Messages::fill(
        &flows.business.messages.handoff_staff_alert,
        &[("customer", &format!("+{customer}")), ("reason", &h.reason), ("queue", &queue)],
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
            queue,
            since: since_ms,
        };
        rows.push(Payload::Webhook(notice).row(conversation_id, format!("{key}:webhook"), now));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hand_off_waits_in_its_journeys_queue_or_the_default_one() {
        let flows = FlowSet::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("flows")).unwrap();
        let idle = ConversationState::new("971500000001");
        assert_eq!(queue_of(&flows, &idle, &idle), DEFAULT_QUEUE, "no journey: the default queue");
        let in_journey = |flow: &str| {
            let mut s = idle.clone();
            s.journey = Some(crate::engine::Journey {
                id: format!("{flow}-1"),
                flow: flow.to_string(),
                version: 1,
                flow_hash: None,
                step: "start".into(),
                slots: Default::default(),
                no_progress: 0,
                last_text: None,
                step_since: 0,
                started_at: 0,
                reminded: false,
                erp: None,
                erp_reasks: 0,
                recovered: 0,
                write_key: None,
                day_hint: None,
            });
            s
        };
        assert_eq!(queue_of(&flows, &idle, &in_journey("complaint")), "complaints", "complaint.flow.yaml names it");
        assert_eq!(queue_of(&flows, &in_journey("booking"), &idle), DEFAULT_QUEUE, "booking names none");
    }
}
