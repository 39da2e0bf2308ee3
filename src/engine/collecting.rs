//! A collect step's question is open (phases `collecting` and `confirming_value`): typed text,
//! a location, a file. Typed text fills what the guards read; a message that asks for something
//! else (another journey, a person, to stop) is not taken for an answer; a value that is not sure
//! is asked about; a day without a time is kept while the time is asked; nothing read climbs the
//! stuck ladder.

use std::sync::Arc;

use super::buttons;
use super::event::{EventKind, Extracted};
use super::phase::{PhaseEvent, State as Phase};
use super::state::{PendingValue, SlotSource, SlotValue};
use super::turn::{Next, Turn};
use super::words::{FREE_TEXT_CANCEL, REQUEST_WORDS, has_any, wants_another};
use super::{EngineError, recovery, tasks};
use crate::flow::format::SlotType;
use crate::flow::graph::{Flow, StepKind};
use crate::flow::messages::Messages;
use crate::text::contains_words;

/// Typed text at an open question.
pub fn on_text(t: &mut Turn<'_>, body: &str) -> Result<Next, EngineError> {
    let flow = t.flow()?;
    if let Phase::ConfirmingValue { pending, .. } = t.state.phase().state().clone() {
        if let Some(next) = answer_pending(t, &flow, pending, body)? {
            return Ok(next);
        }
    }
    if let Some(free) = free_text_focus(t, &flow) {
        // A free-text question takes any words: first make sure they are not about something else.
        if FREE_TEXT_CANCEL.iter().any(|p| contains_words(body, p)) && body.split_whitespace().count() <= 8 {
            return Ok(cancel(t, "customer asked to stop at a free-text question"));
        }
        if let Some(other) = free_text_digression(t, &flow, &free, body) {
            t.note(
                "digression",
                format!("{body:?} asks for {} rather than answering {}", other.id, free.0),
                t.step_source(),
            );
            return Ok(tasks::digress(t, &other, body));
        }
    }
    let filled = t.apply_extracted(&flow);
    if filled > 0 {
        t.progressed();
        return Ok(Next::Enter(None));
    }
    if let Some(other) = digression(t, &flow, body) {
        return Ok(tasks::digress(t, &other, body));
    }
    if let Some((slot, read)) = unsure_answer(t, &flow) {
        return ask_to_confirm(t, &flow, &slot, read);
    }
    if t.state.mood.is_upset() {
        t.note("upset", "the customer sounds upset; offering a person".into(), t.step_source());
        let short = t.msg().upset_short.clone();
        recovery::summary(t, &flow, &short)?;
        return Ok(Next::Stay);
    }
    let reason =
        t.rejected.take().or_else(|| t.guards.problem.clone()).unwrap_or_else(|| t.msg().not_understood.clone());
    if let Some(next) = full_day(t, &flow) {
        return Ok(next);
    }
    if let Some(day) = &t.guards.date_only {
        // Half an answer: keep the day, ask only for the time.
        t.phase(PhaseEvent::DayOnly(day.clone()));
        t.note("partial", format!("day {day} noted; the time is still missing"), t.step_source());
        t.say(reason);
        return Ok(Next::Stay);
    }
    recovery::no_progress(t, &flow, Some(body), reason)
}

/// Stops the journey in front (the customer said so); the newest one aside comes back.
pub fn cancel(t: &mut Turn<'_>, why: &str) -> Next {
    if let Some(j) = t.state.journey.take() {
        t.note("cancel", format!("journey {} cancelled at step {} ({why})", j.flow, j.step), None);
    }
    t.phase(PhaseEvent::Left);
    t.say(t.msg().cancelled.clone());
    Next::Ended
}

/// Whether a message that answered nothing asks for another journey: another flow's keywords
/// ("I want to complain" in the middle of a booking), or this flow's with "another" ("book
/// another car").
pub fn digression(t: &Turn<'_>, current: &Flow, body: &str) -> Option<Arc<Flow>> {
    let other = t.flows.route(body)?;
    (other.id != current.id || wants_another(body)).then_some(other)
}

/// The free-text slot (an address or a text) the current step asks for, with its kind.
fn free_text_focus(t: &Turn<'_>, flow: &Flow) -> Option<(String, SlotType)> {
    let j = t.state.journey.as_ref()?;
    match flow.step(&j.step).map(|s| &s.kind) {
        Some(StepKind::Collect { slots, .. }) => slots.iter().filter(|s| !j.slots.contains_key(*s)).find_map(|s| {
            flow.slots
                .get(s)
                .filter(|d| matches!(d.kind, SlotType::Address | SlotType::Text))
                .map(|d| (s.clone(), d.kind))
        }),
        _ => None,
    }
}

/// Whether a message at a free-text question asks for another journey instead of answering: at
/// the address, anything that is not clearly an address and holds another journey's keywords; at
/// a description, a request ("can I also book…", "actually I want to pay") for another journey,
/// since a description naturally mentions the services.
fn free_text_digression(t: &Turn<'_>, flow: &Flow, free: &(String, SlotType), body: &str) -> Option<Arc<Flow>> {
    let other = digression(t, flow, body)?;
    match free.1 {
        // The guards took it as a clear address ("Car Wash Street 12"): an answer.
        SlotType::Address if t.guards.slots.contains_key(&free.0) => None,
        SlotType::Address => Some(other),
        _ => has_any(body, REQUEST_WORDS).then_some(other),
    }
}

/// A value the guards read but are not sure of, for one of the current question's slots.
fn unsure_answer(t: &Turn<'_>, flow: &Flow) -> Option<(String, Extracted)> {
    if t.guards.flow.as_deref() != Some(flow.id.as_str()) {
        return None;
    }
    let j = t.state.journey.as_ref()?;
    let StepKind::Collect { slots, .. } = &flow.step(&j.step)?.kind else { return None };
    slots
        .iter()
        .filter(|s| !j.slots.contains_key(*s))
        .find_map(|s| t.guards.unsure.get(s).map(|e| (s.clone(), e.clone())))
}

/// Asks whether an unsure reading is right ("Is “near the mall” your address?"), with Yes / No.
fn ask_to_confirm(t: &mut Turn<'_>, flow: &Flow, slot: &str, read: Extracted) -> Result<Next, EngineError> {
    let m = t.msg();
    let label = flow.slots.get(slot).map(|d| d.label.to_lowercase()).unwrap_or_else(|| slot.to_string());
    let shown = read.value.display();
    let j = t.journey()?.clone();
    t.note(
        "confirm_value",
        format!("{slot} might be {shown:?}; asking the customer before taking it"),
        t.step_source(),
    );
    t.phase(PhaseEvent::AskValue(PendingValue { slot: slot.to_string(), value: read.value, evidence: read.evidence }));
    let body = Messages::fill(&m.confirm_value, &[("value", &shown), ("label", &label)]);
    let options = [("pending:yes", m.yes_button.as_str()), ("pending:no", &m.no_button)];
    t.replies.push(buttons::step_choices(&j, &j.step, body, &options, &m.choose_button));
    Ok(Next::Stay)
}

/// The typed answer to "is “…” your address?": yes takes it, no asks again; anything else is a
/// new answer (the value waiting is dropped and the message read as one). `None` then.
fn answer_pending(
    t: &mut Turn<'_>,
    flow: &Flow,
    pending: PendingValue,
    body: &str,
) -> Result<Option<Next>, EngineError> {
    use super::words::{CONFIRM_WORDS, NO_WORDS, is_one_of};
    t.phase(PhaseEvent::ValueAnswered);
    if is_one_of(body, CONFIRM_WORDS) {
        return take_pending(t, flow, pending).map(Some);
    }
    if is_one_of(body, NO_WORDS) {
        t.note(
            "confirm_value",
            format!("the customer said {:?} is not their {}", pending.evidence, pending.slot),
            None,
        );
        return Ok(Some(Next::Enter(Some(t.msg().no_problem.clone()))));
    }
    t.note("confirm_value", "a new answer instead of yes or no; the value waiting is dropped".into(), None);
    Ok(None)
}

/// The customer said yes to a value waiting: it fills its slot.
pub fn take_pending(t: &mut Turn<'_>, flow: &Flow, pending: PendingValue) -> Result<Next, EngineError> {
    let evidence = format!("{:?}, confirmed by the customer", pending.evidence);
    t.fill(flow, &pending.slot, pending.value, SlotSource::Parser, evidence);
    t.progressed();
    Ok(Next::Enter(None))
}

/// A shared location: the address the step asks for (or the journey's empty one).
pub fn on_location(t: &mut Turn<'_>) -> Result<Next, EngineError> {
    let EventKind::Location { latitude, longitude, name, address } = &t.event.kind else { return Ok(Next::Stay) };
    let flow = t.flow()?;
    let mut parts: Vec<String> = vec![];
    for p in [name, address].into_iter().flatten() {
        if !parts.iter().any(|q| q == p) {
            parts.push(p.clone());
        }
    }
    let value = SlotValue::Address { text: parts.join(", "), latitude: Some(*latitude), longitude: Some(*longitude) };
    match address_slot(t, &flow) {
        Some(slot) => {
            t.phase(PhaseEvent::ValueAnswered);
            t.fill(&flow, &slot, value, SlotSource::Location, "location message".into());
            t.progressed();
            Ok(Next::Enter(None))
        }
        None => {
            t.note("ignored", "a location arrived but no address is being asked".into(), None);
            t.say(t.msg().location_not_needed.clone());
            Ok(Next::Enter(None))
        }
    }
}

/// The address slot a location fills: the current question's, or the journey's empty one.
fn address_slot(t: &Turn<'_>, flow: &Flow) -> Option<String> {
    let j = t.state.journey.as_ref()?;
    if let Some(StepKind::Collect { slots, .. }) = flow.step(&j.step).map(|s| &s.kind) {
        if let Some(s) = slots.iter().find(|s| flow.slots.get(*s).is_some_and(|d| d.kind == SlotType::Address)) {
            return Some(s.clone());
        }
    }
    flow.slots.values().find(|s| s.kind == SlotType::Address && !j.slots.contains_key(&s.name)).map(|s| s.name.clone())
}

/// The file slot the current step asks for, if any.
pub fn media_slot(t: &Turn<'_>, flow: &Flow) -> Option<String> {
    let j = t.state.journey.as_ref()?;
    match flow.step(&j.step).map(|s| &s.kind) {
        Some(StepKind::Collect { slots, .. }) => slots
            .iter()
            .find(|s| flow.slots.get(*s).is_some_and(|d| d.kind == SlotType::Media) && !j.slots.contains_key(*s))
            .cloned(),
        _ => None,
    }
}

/// A photo or document where one is asked (a receipt): it fills the slot, and its caption is
/// read as corrections ("AED 75").
pub fn on_file(t: &mut Turn<'_>, slot: &str) -> Result<Next, EngineError> {
    let EventKind::Media { media_type, media_id, mime_type, caption } = &t.event.kind else { return Ok(Next::Stay) };
    let flow = t.flow()?;
    let value = SlotValue::Media {
        media_id: media_id.clone(),
        mime_type: mime_type.clone().unwrap_or_else(|| "application/octet-stream".into()),
        caption: caption.clone(),
        filename: None,
    };
    t.fill(&flow, slot, value, SlotSource::Upload, format!("{media_type} message"));
    t.correcting = true;
    t.apply_extracted(&flow);
    t.correcting = false;
    t.progressed();
    Ok(Next::Enter(None))
}

/// A day named without a time whose windows are all full: said so, and the first free times
/// after it offered instead of asking the time.
fn full_day(t: &mut Turn<'_>, flow: &Flow) -> Option<Next> {
    let day: jiff::civil::Date = t.guards.date_only.as_deref()?.parse().ok()?;
    if !super::capacity::day_full(t, flow, day) {
        return None;
    }
    let slot = super::capacity::capacity_slot(&t.flows.business, flow)?.to_string();
    let after = day.to_string();
    let next: Vec<String> =
        t.options(flow, &slot).into_iter().map(|o| o.id).filter(|id| id.as_str() > after.as_str()).take(3).collect();
    t.note("full", format!("{day} has no free window; offering the next free times"), t.step_source());
    t.offer_instead = Some((slot, next));
    let shown = day.strftime("%A %-d %B").to_string();
    Some(Next::Enter(Some(Messages::fill(&t.msg().day_full, &[("day", &shown)]))))
}
