//! The guard plan: what must be read or looked up before [`super::decide`] can run, worked out
//! from the state and the event alone, the same way when a turn is replayed.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::buttons;
use super::event::{EventKind, InboundEvent};
use super::phase::State as Phase;
use super::state::ConversationState;
use super::words::{is_command, wants_another};
use crate::flow::FlowSet;
use crate::flow::format::SlotType;
use crate::flow::graph::{Flow, StepKind};

/// What the guard phase must work out before [`super::decide`] can run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GuardPlan {
    /// The flow the message is read for (the journey's, or the one it starts).
    pub flow: Option<String>,
    /// That flow's version (a journey keeps the version it started with).
    #[serde(default)]
    pub flow_version: Option<u32>,
    /// That flow's content hash (the exact flow the guards read for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow_hash: Option<String>,
    /// The typed text to read, if any.
    pub text: Option<String>,
    /// The slots the current question asks for.
    pub focus: Vec<String>,
    /// Other unfilled slots the text may fill too ("… for my Corolla ABC-123 tomorrow at 9").
    pub others: Vec<String>,
    /// The question the customer is answering, for the LLM's prompt.
    pub question: Option<String>,
    /// A day the customer gave earlier without a time (`YYYY-MM-DD`).
    #[serde(default)]
    pub pending_day: Option<String>,
    /// Lookups needed to read the text or to show the next question's options (of the journey's
    /// flow, of a flow the message may switch to, and of the journeys put aside, any of which the
    /// turn may end up asking about).
    pub lookups: Vec<String>,
    /// A customer's typed text (or caption) to read for intent and emotion.
    #[serde(default)]
    pub understand: Option<String>,
    /// Ask the LLM for the intent too: the text is outside any journey and no keyword routes it.
    #[serde(default)]
    pub understand_with_llm: bool,
    /// The customer's WhatsApp id, for lookups of their own documents.
    #[serde(default)]
    pub customer: String,
    /// Another flow the text asks for by its keywords (a digression); its slots are read from the
    /// text too, by the parsers only, so the new journey does not ask what the message said.
    #[serde(default)]
    pub alternative: Option<String>,
}

/// Whether the journey's current step asks for a file (a receipt, a photo of damage).
fn asks_for_media(flows: &FlowSet, state: &ConversationState) -> bool {
    let Some(j) = &state.journey else { return false };
    let Some(flow) = flows.flow_of(j) else { return false };
    match flow.step(&j.step).map(|s| &s.kind) {
        Some(StepKind::Collect { slots, .. }) => slots
            .iter()
            .any(|s| !j.slots.contains_key(s) && flow.slots.get(s).is_some_and(|d| d.kind == SlotType::Media)),
        _ => false,
    }
}

/// How the engine reads an event, the same way in [`plan`] and [`super::decide`]:
/// - a quick reply whose id the engine did not make (a template's button, sent from outside the
///   bot: "Reschedule", "No", "Stop promotions") is the customer typing its title;
/// - a file's caption, where no file is asked for, is typed text ("how much to fix this
///   scratch?" with a photo);
/// - a voice note with a transcript (`transcript`, from the speech-to-text guard) is typed text.
///
/// Everything else is read as it came.
pub fn as_read(
    flows: &FlowSet,
    state: &ConversationState,
    event: &InboundEvent,
    transcript: Option<&str>,
) -> InboundEvent {
    let text = |body: &str| Some(EventKind::Text { body: body.to_string() });
    let kind = match &event.kind {
        EventKind::Choice { id, title } if !buttons::is_ours(id) => text(title),
        EventKind::Media { media_type, .. } if media_type == "audio" => {
            transcript.filter(|t| !t.trim().is_empty()).and_then(text)
        }
        EventKind::Media { caption: Some(c), .. } if !c.trim().is_empty() && !asks_for_media(flows, state) => text(c),
        _ => None,
    };
    match kind {
        Some(kind) => InboundEvent { kind, ..event.clone() },
        None => event.clone(),
    }
}

/// Works out what the guard phase must do for `event` in `state` (`transcript`: what the
/// speech-to-text guard heard in a voice note, when it ran).
pub fn plan(flows: &FlowSet, state: &ConversationState, event: &InboundEvent, transcript: Option<&str>) -> GuardPlan {
    let event = &as_read(flows, state, event, transcript);
    if let EventKind::Edited { message, .. } = &event.kind {
        return plan_edit(flows, state, message);
    }
    let mut plan = GuardPlan { customer: state.customer.clone(), ..Default::default() };
    let typed_by_customer = match &event.kind {
        EventKind::Text { body } => Some(body.clone()),
        EventKind::Media { caption: Some(c), .. } => Some(c.clone()),
        _ => None,
    };
    if let Some(text) = typed_by_customer.filter(|t| !t.trim().is_empty()) {
        let command = is_command(&text);
        plan.understand_with_llm =
            !command && state.journey.is_none() && flows.route(&text).is_none() && text.split_whitespace().count() >= 3;
        plan.understand = Some(text);
    }
    let journey_flow = state.journey.as_ref().and_then(|j| flows.flow_of(j).cloned());
    let flow = match (&event.kind, &journey_flow) {
        (_, Some(f)) => Some(f.clone()),
        (EventKind::Text { body }, None) => flows.route(body),
        (EventKind::Choice { id, .. }, None) if buttons::task_id(id).is_some() => state
            .suspended
            .iter()
            .find(|j| Some(j.id.as_str()) == buttons::task_id(id))
            .and_then(|j| flows.flow_of(j).cloned()),
        (EventKind::Choice { id, .. }, None) => buttons::menu_flow(id)
            .and_then(|f| flows.flow(f).cloned())
            .or_else(|| super::visits::answer_flow(flows, state, id)),
        _ => None,
    };
    let Some(flow) = flow else { return plan };
    plan.flow = Some(flow.id.clone());
    plan.flow_version = Some(flow.version);
    plan.flow_hash = Some(flow.hash.clone());
    let mut involved: Vec<Arc<Flow>> = vec![flow.clone()];
    if let EventKind::Choice { id, .. } = &event.kind {
        involved.extend(buttons::menu_flow(id).and_then(|f| flows.flow(f).cloned()));
        involved.extend(super::visits::answer_flow(flows, state, id));
    }
    involved.extend(state.suspended.iter().filter_map(|j| flows.flow_of(j).cloned()));
    if let (EventKind::Text { body }, Some(_)) = (&event.kind, &state.journey) {
        if let Some(other) = flows.route(body).filter(|o| o.id != flow.id || wants_another(body)) {
            plan.alternative = Some(other.id.clone());
            involved.push(other);
        }
    }
    for f in &involved {
        for l in f.lookups() {
            if !plan.lookups.contains(&l) {
                plan.lookups.push(l);
            }
        }
    }
    // Offers are read only when this turn may end the journey with one.
    let at = state.journey.as_ref().filter(|j| j.flow == flow.id).map(|j| j.step.clone());
    if at.as_deref().is_some_and(|s| flow.offer_within_reach(s)) {
        plan.lookups.push(crate::flow::graph::OFFERS_LOOKUP.to_string());
    }
    let typed = match &event.kind {
        EventKind::Text { body } => Some(body),
        // A receipt's caption ("paid AED 150") is read like typed text.
        EventKind::Media { caption: Some(c), .. } if !c.trim().is_empty() => Some(c),
        _ => None,
    };
    if let Some(body) = typed {
        // Commands ("yes", "cancel", "menu"…) are settled by the engine itself: nothing to read.
        if is_command(body) {
            return plan;
        }
        plan.text = Some(body.clone());
        plan.pending_day = match state.phase.as_ref().map(|p| p.state()) {
            Some(Phase::Collecting { pending_day, .. }) => pending_day.clone(),
            _ => None,
        };
        let filled = |s: &str| {
            state.journey.as_ref().is_some_and(|j| j.slots.contains_key(s))
                || (state.journey.is_none()
                    && flow.slots.get(s).is_some_and(|d| d.profile)
                    && state.profile.contains_key(s))
        };
        if let Some(j) = &state.journey {
            if let Some(step) = flow.step(&j.step) {
                if let StepKind::Collect { slots, ask, .. } = &step.kind {
                    plan.focus = slots.iter().filter(|s| !filled(s)).cloned().collect();
                    plan.question = Some(ask.clone());
                }
            }
        }
        // At the summary every slot may be corrected ("make it 11am"); elsewhere only empty ones
        // are read from a message that answers another question.
        let at_summary = state
            .journey
            .as_ref()
            .and_then(|j| flow.step(&j.step))
            .is_some_and(|s| matches!(s.kind, StepKind::Confirm { .. }));
        // A file's caption may correct an earlier answer too (see `Turn::correcting`).
        let caption = matches!(event.kind, EventKind::Media { .. });
        plan.others = flow
            .slots
            .keys()
            .filter(|s| (at_summary || caption || !filled(s)) && !plan.focus.contains(s))
            .cloned()
            .collect();
    }
    plan
}

/// An edited message is read again only for the question still open: its text, for the
/// current step's empty slots.
fn plan_edit(flows: &FlowSet, state: &ConversationState, message: &EventKind) -> GuardPlan {
    let mut plan = GuardPlan { customer: state.customer.clone(), ..Default::default() };
    let body = match message {
        EventKind::Text { body } => body,
        EventKind::Media { caption: Some(c), .. } => c,
        _ => return plan,
    };
    let Some(j) = &state.journey else { return plan };
    let Some(flow) = flows.flow_of(j) else { return plan };
    let Some(StepKind::Collect { slots, ask, .. }) = flow.step(&j.step).map(|s| &s.kind) else { return plan };
    plan.flow = Some(flow.id.clone());
    plan.flow_version = Some(flow.version);
    plan.flow_hash = Some(flow.hash.clone());
    plan.focus = slots.iter().filter(|s| !j.slots.contains_key(*s)).cloned().collect();
    plan.question = Some(ask.clone());
    plan.lookups = flow.lookups();
    plan.text = Some(body.clone());
    plan
}
