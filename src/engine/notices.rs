//! Notifications about the customer, recorded and never answered: a number change (the
//! conversation's profile and journeys go to the new number), the other side of it (a
//! conversation arriving from an old number), an identity change, a deleted message, a marketing
//! preference.

use super::Forward;
use super::event::{EventKind, InboundEvent};
use super::phase::PhaseEvent;
use super::state::Carried;
use super::tasks::MAX_SUSPENDED;
use super::turn::{Next, Turn};
use crate::flow::graph::StepKind;

/// Notifications about the customer: recorded, never answered.
pub fn on_notification(t: &mut Turn<'_>) -> Next {
    let event = t.event;
    match &event.kind {
        EventKind::NumberChanged { new_customer } => move_to_number(t, event, new_customer),
        EventKind::Transfer { from_customer, carried, joined } => {
            return take_transfer(t, from_customer, carried, *joined);
        }
        EventKind::SystemNotice { kind } => {
            t.note("notice", format!("WhatsApp notice {kind:?} about the customer; nothing to answer"), None)
        }
        EventKind::Deleted { original_id } => {
            t.note("deleted", format!("the customer deleted their message {original_id}; nothing to answer"), None)
        }
        EventKind::MarketingPreference { opted_in, detail } => {
            t.state.opted_out = !opted_in;
            let now = if *opted_in { "opted in to" } else { "opted out of" };
            t.note("opt_out", format!("the customer {now} offers and reminders on WhatsApp ({detail})"), None);
        }
        _ => {}
    }
    Next::Stay
}

/// The customer moved to a new number: the profile, the journeys and the references go to the
/// new number's conversation (through its inbox, as a [`EventKind::Transfer`]); this one keeps
/// its history and where it went.
fn move_to_number(t: &mut Turn<'_>, event: &InboundEvent, new_customer: &str) {
    if new_customer == t.state.customer || new_customer.is_empty() {
        t.note("notice", "number change to the same number; nothing to move".into(), None);
        return;
    }
    let id = format!("moved:{}", event.message_id);
    hand_over(t, Destination { customer: new_customer, phone_number_id: None, joined: false }, id);
}

/// Where [`hand_over`] sends a conversation's contents.
pub struct Destination<'a> {
    /// The customer whose conversation takes them.
    pub customer: &'a str,
    /// Their conversation's business number, when not this one's.
    pub phone_number_id: Option<&'a str>,
    /// A website chat carried over to WhatsApp (the journey goes on at once there).
    pub joined: bool,
}

/// Moves this conversation's profile, journeys and references to `to`'s conversation (a
/// [`EventKind::Transfer`] through its inbox, with the event id `event_id`); this one keeps its
/// history and where they went.
pub fn hand_over(t: &mut Turn<'_>, to: Destination<'_>, event_id: String) {
    let carried = Carried {
        profile: std::mem::take(&mut t.state.profile),
        journey: t.state.journey.take(),
        suspended: std::mem::take(&mut t.state.suspended),
        references: t.state.references.clone(),
        opted_out: t.state.opted_out,
    };
    if carried.journey.is_some() {
        t.phase(PhaseEvent::Left);
    }
    let open = usize::from(carried.journey.is_some()) + carried.suspended.len();
    t.state.moved_to = Some(to.customer.to_string());
    t.state.wake_at = None;
    let why = if to.joined { "the chat continues on WhatsApp with" } else { "the customer changed number to" };
    t.note(
        "moved",
        format!(
            "{why} {}: profile ({} slots) and {open} open journey(s) moved there",
            to.customer,
            carried.profile.len()
        ),
        None,
    );
    let kind =
        EventKind::Transfer { from_customer: t.state.customer.clone(), carried: Box::new(carried), joined: to.joined };
    t.forwards.push(Forward {
        customer: to.customer.to_string(),
        event: InboundEvent::internal(event_id, to.customer, t.event.timestamp, kind),
        phone_number_id: to.phone_number_id.map(String::from),
    });
}

/// A conversation moved here from the customer's old number, or `joined` from a website chat:
/// what this one does not know yet is taken (the profile slots it lacks; the journey under way if
/// none is, otherwise put aside). A journey that was waiting for the ERP waits here; one at a
/// question is asked again at once when `joined`, by the next message after a number change.
fn take_transfer(t: &mut Turn<'_>, from: &str, carried: &Carried, joined: bool) -> Next {
    let mut taken: Vec<String> = Vec::new();
    for (name, slot) in &carried.profile {
        if !t.state.profile.contains_key(name) {
            t.state.profile.insert(name.clone(), slot.clone());
            taken.push(name.clone());
        }
    }
    let mut journeys = carried.suspended.clone();
    match (&t.state.journey, carried.journey.clone()) {
        (None, Some(mut j)) => {
            let step = t.flows.flow_of(&j).and_then(|f| f.step(&j.step)).cloned();
            // What the profile knows fills the journey too: nothing is asked twice.
            for (name, slot) in &t.state.profile {
                if t.flows.flow_of(&j).is_some_and(|f| f.slots.get(name).is_some_and(|d| d.profile)) {
                    j.slots.entry(name.clone()).or_insert_with(|| slot.clone());
                }
            }
            t.state.journey = Some(j);
            match step.map(|s| s.kind) {
                Some(StepKind::Erp { action, .. }) => t.phase(PhaseEvent::ErpRequested(action)),
                Some(StepKind::Confirm { .. }) => t.phase(PhaseEvent::Summary),
                Some(StepKind::Collect { .. }) => {
                    let step = t.state.journey.as_ref().map(|j| j.step.clone()).unwrap_or_default();
                    t.phase(PhaseEvent::Asking(step));
                }
                _ => {}
            }
        }
        (Some(_), Some(j)) => journeys.push(j),
        (_, None) => {}
    }
    let moved = journeys.len() + usize::from(carried.journey.is_some());
    t.state.suspended.extend(journeys);
    while t.state.suspended.len() > MAX_SUSPENDED {
        let dropped = t.state.suspended.remove(0);
        t.note("dropped", format!("journey {} at step {} dropped: too many open", dropped.flow, dropped.step), None);
    }
    for r in &carried.references {
        if !t.state.references.contains(r) {
            t.state.references.push(r.clone());
        }
    }
    t.state.opted_out |= carried.opted_out;
    t.note(
        "moved",
        format!(
            "conversation moved here from the customer's old number {from}: profile slots {} and {moved} journey(s) taken",
            if taken.is_empty() { "none".to_string() } else { taken.join(", ") }
        ),
        None,
    );
    // A chat carried over from the website goes on at once: its question is asked here. (After
    // a number change the customer's next message carries the journey on.)
    match &t.state.journey {
        Some(_) if joined && carried.journey.is_some() => {
            t.say(t.msg().carried_on.clone());
            Next::Enter(None)
        }
        _ => Next::Stay,
    }
}
