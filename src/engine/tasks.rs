//! Several requests at once: starting a journey (the one in front goes aside), bringing one back
//! from aside, what happens when the one in front ends, and the list of open requests. At most
//! [`MAX_SUSPENDED`] wait aside; the oldest beyond that is closed, with a word to the customer.

use std::sync::Arc;

use super::EngineError;
use super::buttons;
use super::event::{Reply, ReplyOption};
use super::phase::PhaseEvent;
use super::state::{FilledSlot, Journey, SlotSource, SlotValue};
use super::turn::{Next, Turn};
use super::words::{says_more_than, wants_another};
use crate::flow::FlowSet;
use crate::flow::graph::Flow;
use crate::flow::messages::Messages;

/// How many journeys may wait aside at once.
pub const MAX_SUSPENDED: usize = 5;

/// Starts a journey of `flow`: the one in front goes aside; profile data fills its profile
/// slots; `text` (the message that started it) is read for its slots, and fills its `opening`
/// slot when it says more than the request itself.
pub fn start(
    t: &mut Turn<'_>,
    flow: &Arc<Flow>,
    text: Option<&str>,
    why: &str,
    digression: bool,
) -> Result<Next, EngineError> {
    if t.state.journey.is_some() {
        suspend_current(t, &format!("the customer asked for {}", flow.id));
    }
    let mut journey = Journey {
        id: format!("{}-{}-{}", flow.id, t.state.customer, t.state.turns),
        flow: flow.id.clone(),
        version: flow.version,
        flow_hash: Some(flow.hash.clone()),
        step: flow.start_step().to_string(),
        slots: Default::default(),
        no_progress: 0,
        last_text: None,
        step_since: t.now,
        started_at: t.now,
        reminded: false,
        erp: None,
        erp_reasks: 0,
        recovered: 0,
        write_key: None,
        day_hint: None,
    };
    let prefilled = fill_from_profile(t, flow, &mut journey);
    t.state.journey = Some(journey);
    let source = flow.step(flow.start_step()).map(|s| s.source.clone());
    let known = if prefilled.is_empty() {
        String::new()
    } else {
        format!("; known from the profile: {}", prefilled.join(", "))
    };
    t.note("start", format!("journey {} v{} started ({why}){known}", flow.id, flow.version), source);
    if let Some(body) = text {
        t.digressing = digression;
        t.apply_extracted(flow);
        t.digressing = false;
        if body.split_whitespace().count() >= 6 && says_more_than(&flow.keywords, body) {
            let opening: Vec<String> = flow.slots.values().filter(|s| s.opening).map(|s| s.name.clone()).collect();
            for slot in opening {
                if !t.journey()?.slots.contains_key(&slot) {
                    let value = SlotValue::Text { value: body.trim().to_string() };
                    t.fill(flow, &slot, value, SlotSource::Parser, "the message that opened the journey".into());
                }
            }
        }
    }
    Ok(Next::Enter(None))
}

/// What the customer gave once and the journey asks for: copied from the profile.
fn fill_from_profile(t: &Turn<'_>, flow: &Flow, journey: &mut Journey) -> Vec<String> {
    let mut filled = Vec::new();
    for (name, slot) in &flow.slots {
        if slot.profile && !journey.slots.contains_key(name) {
            if let Some(known) = t.state.profile.get(name) {
                journey.slots.insert(name.clone(), FilledSlot { source: SlotSource::Profile, ..known.clone() });
                filled.push(name.clone());
            }
        }
        // A phone slot on WhatsApp is the number the customer writes from: never asked.
        if slot.kind == crate::flow::format::SlotType::Phone && !journey.slots.contains_key(name) {
            if let Some(number) = super::state::phone_of(&t.state.customer) {
                let value = SlotValue::Text { value: number };
                journey
                    .slots
                    .insert(name.clone(), FilledSlot { value, source: SlotSource::Channel, turn: t.state.turns });
                filled.push(name.clone());
            }
        }
    }
    filled
}

/// A message that asks for another journey in the middle of this one: the journey of that flow
/// put aside comes back (asking for an open request carries it on), unless the message asks for
/// "another"; otherwise a new one starts, read from the message.
pub fn digress(t: &Turn<'_>, other: &Arc<Flow>, body: &str) -> Next {
    if !wants_another(body) {
        if let Some(id) = aside_of(t, &other.id) {
            return Next::Resume {
                id,
                why: "the customer asked for this journey again".into(),
                announce: true,
                then: None,
            };
        }
    }
    Next::Start {
        flow: other.clone(),
        text: Some(body.to_string()),
        why: "keywords in the middle of another journey".into(),
        digression: true,
    }
}

/// The newest journey of `flow` waiting aside.
pub fn aside_of(t: &Turn<'_>, flow: &str) -> Option<String> {
    t.state.suspended.iter().rev().find(|j| j.flow == flow).map(|j| j.id.clone())
}

/// Puts the journey in front (if any) aside, keeping its slots and step.
pub fn suspend_current(t: &mut Turn<'_>, why: &str) {
    let Some(j) = t.state.journey.take() else { return };
    t.note("suspend", format!("journey {} put aside at step {} ({why})", j.flow, j.step), None);
    t.phase(PhaseEvent::Left);
    t.state.suspended.push(j);
    while t.state.suspended.len() > MAX_SUSPENDED {
        let dropped = t.state.suspended.remove(0);
        t.note(
            "dropped",
            format!(
                "journey {} at step {} dropped: more than {MAX_SUSPENDED} requests were open",
                dropped.flow, dropped.step
            ),
            None,
        );
        let what = describe(t.flows, &dropped);
        t.say(Messages::fill(&t.msg().too_many_requests, &[("request", &what)]));
    }
}

/// Makes the journey `id` put aside current again (the one in front goes aside). A journey whose
/// flow or step no longer exists is dropped, with a word to the customer.
pub fn resume(
    t: &mut Turn<'_>,
    id: &str,
    why: &str,
    announce: bool,
    then: Option<super::event::EventKind>,
) -> Result<Next, EngineError> {
    let Some(i) = t.state.suspended.iter().position(|j| j.id == id) else { return Ok(Next::Gone) };
    // Taken out before the current one goes aside, so the cap cannot drop it.
    let mut j = t.state.suspended.remove(i);
    suspend_current(t, "the customer went back to another open request");
    let Some(flow) = t.flows.flow_of(&j).cloned().filter(|f| f.step(&j.step).is_some()) else {
        t.note(
            "dropped",
            format!("journey {} at step {} can no longer carry on: its flow changed", j.flow, j.step),
            None,
        );
        t.say(t.msg().request_gone.clone());
        return Ok(Next::Gone);
    };
    j.no_progress = 0;
    j.last_text = None;
    j.step_since = t.now;
    // Profile data given since it was put aside (a name, an address): never asked twice.
    fill_from_profile(t, &flow, &mut j);
    let what = describe(t.flows, &j);
    t.note(
        "resume",
        format!("journey {} resumed at step {} ({why})", j.flow, j.step),
        flow.step(&j.step).map(|s| s.source.clone()),
    );
    t.state.journey = Some(j);
    if announce {
        t.say(Messages::fill(&t.msg().back_to_request, &[("request", &what)]));
        return Ok(Next::Enter(None));
    }
    Ok(then.map_or(Next::Stay, Next::Redo))
}

/// After the journey in front ended or was cancelled: the newest one put aside comes back.
/// `or_menu`: with nothing to bring back and no journey, the menu (after a request that could not
/// carry on) rather than silence (after a journey's closing message).
pub fn after_end(t: &Turn<'_>, or_menu: bool) -> Next {
    match (&t.state.journey, t.state.suspended.last()) {
        (None, Some(j)) => Next::Resume {
            id: j.id.clone(),
            why: "the journey in front of it ended".into(),
            announce: true,
            then: None,
        },
        (None, None) if or_menu => Next::Menu("the request could not carry on".into()),
        _ => Next::Stay,
    }
}

/// A journey in a few words, for the open-requests list and "back to …":
/// `Book a car-care service (Full Wash, Tue 25 Nov, 10:00)`.
pub fn describe(flows: &FlowSet, j: &Journey) -> String {
    let Some(flow) = flows.flow_of(j) else { return j.flow.clone() };
    let details: Vec<String> = flow
        .slots
        .values()
        .filter(|s| !s.profile)
        .filter_map(|s| j.slots.get(&s.name))
        .filter(|v| !matches!(v.value, SlotValue::Text { ref value } if value.len() > 30))
        .take(2)
        .map(|v| v.value.display())
        .collect();
    if details.is_empty() { flow.title.clone() } else { format!("{} ({})", flow.title, details.join(", ")) }
}

/// A journey's name in a few words (its menu title): `Book a service`.
pub fn short_name(flows: &FlowSet, j: &Journey) -> String {
    flows
        .flow_at(&j.flow, j.version)
        .map(|f| f.menu_title.clone().unwrap_or_else(|| f.title.clone()))
        .unwrap_or_else(|| j.flow.clone())
}

/// The open requests (the one in front and those put aside), each a row to pick.
pub fn list_open(t: &mut Turn<'_>) -> Next {
    let m = t.msg();
    let mut rows: Vec<ReplyOption> = Vec::new();
    let row = |j: &Journey, template: &str| ReplyOption {
        id: buttons::task(j),
        title: crate::text::truncate(&short_name(t.flows, j), 24),
        description: Some(crate::text::truncate(&Messages::fill(template, &[("request", &describe(t.flows, j))]), 72)),
    };
    if let Some(j) = &t.state.journey {
        rows.push(row(j, &m.request_now));
    }
    for j in t.state.suspended.iter().rev() {
        rows.push(row(j, &m.request_waiting));
    }
    t.note("open_tasks", format!("{} open request(s) listed", rows.len()), None);
    if rows.is_empty() {
        t.say(m.no_open_requests.clone());
        return Next::Menu("no open requests".into());
    }
    t.replies.push(Reply::Choices {
        body: m.open_requests.clone(),
        options: rows.into_iter().take(crate::flow::MAX_LIST_ROWS).collect(),
        button: m.open_requests_button.clone(),
    });
    Next::Stay
}

/// The customer picked an open request (from the list or the menu).
pub fn on_pick(t: &mut Turn<'_>, id: &str) -> Next {
    if t.state.journey.as_ref().is_some_and(|j| j.id == id) {
        t.note("resume", "the customer picked the request already under way".into(), None);
        return Next::Enter(None);
    }
    if t.state.suspended.iter().any(|j| j.id == id) {
        return Next::Resume { id: id.to_string(), why: "the customer picked it".into(), announce: true, then: None };
    }
    t.note("stale_button", format!("open request {id} is no longer open"), None);
    t.say(t.msg().stale_button.clone());
    match t.state.journey.is_some() {
        true => Next::Enter(None),
        false => Next::Menu("the picked request has ended".into()),
    }
}
