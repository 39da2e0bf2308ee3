//! The engine: conversation state and the pure transition function.
//!
//! A turn is `(state, event, guard results) → (new state, replies, ERP requests, trace)`. The
//! function [`decide`] does no I/O and reads no clock: everything it needs from the outside world
//! (what a typed message means, the catalog, the offered visit times) arrives as [`GuardResults`],
//! computed beforehand from the [`GuardPlan`] that [`plan`] makes. Given the stored event and
//! stored guard results, replaying a turn gives the same result, which is what makes crash recovery,
//! `explain` and regression tests from transcripts possible.
//!
//! The engine knows nothing of HTTP, SQL or WhatsApp's wire format.

pub mod event;
pub mod lifecycle;
pub mod state;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use event::{
    ErpRequest, EventKind, Extracted, GuardResults, GuardRun, InboundEvent, Reply, ReplyOption, TraceEntry,
    Understanding,
};
use lifecycle::{Phase, SessionEvent};
pub use state::{Carried, ConversationState, FilledSlot, Journey, SlotSource, SlotValue};

use crate::flow::format::SlotType;
use crate::flow::graph::{
    ChoiceOption, Condition, Emotion, Flow, OFFERS_LOOKUP, OptionSource, SourceRef, Stage, Step, StepKind,
};
use crate::flow::{FlowSet, erp_actions};
use crate::text::{contains_words, fold};

/// Engine errors: a bug in a flow or in the engine, never bad customer input (which becomes a
/// polite reprompt instead).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    /// The stored conversation names a flow that is no longer loaded.
    #[error(
        "engine.unknown_flow: the conversation is in flow {0:?}, which is not loaded; restore the flow file or end the conversation"
    )]
    UnknownFlow(String),
    /// The stored conversation is at a step its flow does not have.
    #[error(
        "engine.unknown_step: flow {flow:?} has no step {step:?}; the flow was edited under a live conversation — bump its version"
    )]
    UnknownStep {
        /// Flow id.
        flow: String,
        /// Step id.
        step: String,
    },
    /// The engine was about to ask for a slot that is already filled.
    #[error(
        "engine.asked_filled_slot: flow {flow:?} step {step:?} would ask for {slot:?}, which the customer already gave ({at})"
    )]
    AskedFilledSlot {
        /// Flow id.
        flow: String,
        /// Step id.
        step: String,
        /// Slot.
        slot: String,
        /// Where the step is declared.
        at: SourceRef,
    },
    /// The transition function panicked (a bug); the worker turned it into this error.
    #[error(
        "engine.panic: the transition function failed unexpectedly ({0}); the turn was recorded and the customer told"
    )]
    Panicked(String),
    /// Transitions went round without stopping at a question.
    #[error(
        "engine.loop: flow {flow:?} passed through {steps} steps in one turn without asking anything; check the branches near step {step:?}"
    )]
    TransitionLoop {
        /// Flow id.
        flow: String,
        /// Last step.
        step: String,
        /// Steps passed.
        steps: usize,
    },
}

impl EngineError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::UnknownFlow(_) => "engine.unknown_flow",
            EngineError::UnknownStep { .. } => "engine.unknown_step",
            EngineError::AskedFilledSlot { .. } => "engine.asked_filled_slot",
            EngineError::TransitionLoop { .. } => "engine.loop",
            EngineError::Panicked(_) => "engine.panic",
        }
    }
}

/// What the guard phase must work out before [`decide`] can run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GuardPlan {
    /// The flow the message is read for (the journey's, or the one it starts).
    pub flow: Option<String>,
    /// That flow's version (a journey keeps the version it started with).
    #[serde(default)]
    pub flow_version: Option<u32>,
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

/// A decided turn.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Decision {
    /// The state after the turn.
    pub state: ConversationState,
    /// Messages to send, in order.
    pub replies: Vec<Reply>,
    /// ERP writes to queue.
    pub erp: Vec<ErpRequest>,
    /// What was decided, with flow lines.
    pub trace: Vec<TraceEntry>,
    /// The step before and after, `flow/step` or `-`.
    pub step_before: String,
    /// See `step_before`.
    pub step_after: String,
    /// Events for other conversations of the same business number (a conversation moved to the
    /// customer's new number), queued through the outbox in this turn's commit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forwards: Vec<Forward>,
}

/// An event for another conversation of the same business number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forward {
    /// The customer (WhatsApp id) whose conversation receives it.
    pub customer: String,
    /// The event.
    pub event: InboundEvent,
}

/// Button ids: `b|flow|version|step|tag|value` for a step's options (the tag names the journey
/// instance, see [`Journey::tag`]), `m|flow` for the main menu, `t|journey id` for an open request.
/// The step, version and tag let a press from an older message be recognised as stale, or as
/// belonging to a journey that was put aside.
mod button {
    use super::Journey;

    pub fn encode(journey: &Journey, step: &str, value: &str) -> String {
        format!("b|{}|{}|{step}|{}|{value}", journey.flow, journey.version, journey.tag())
    }
    pub struct Parsed<'a> {
        pub flow: &'a str,
        pub version: u32,
        pub step: &'a str,
        pub tag: &'a str,
        pub value: &'a str,
    }
    impl Parsed<'_> {
        /// Whether the button was made for `j` at its current step.
        pub fn fits(&self, j: &Journey) -> bool {
            self.flow == j.flow && self.version == j.version && self.step == j.step && self.tag == j.tag()
        }
    }
    pub fn parse(id: &str) -> Option<Parsed<'_>> {
        let mut it = id.splitn(6, '|');
        if it.next()? != "b" {
            return None;
        }
        Some(Parsed {
            flow: it.next()?,
            version: it.next()?.parse().ok()?,
            step: it.next()?,
            tag: it.next()?,
            value: it.next()?,
        })
    }
    pub fn menu(flow: &str) -> String {
        format!("m|{flow}")
    }
    /// "Talk to a person", offered with the acknowledgement of an upset customer.
    pub const PERSON: &str = "h|person";
    pub fn task(journey: &Journey) -> String {
        format!("t|{}", journey.id)
    }
    /// Whether the id is one this engine made (a template's quick reply, set by whoever sent
    /// the template, is not).
    pub fn is_ours(id: &str) -> bool {
        ["b|", "m|", "t|", "h|"].iter().any(|p| id.starts_with(p))
    }
}

const GREETINGS: &[&str] = &[
    "hi",
    "hello",
    "hey",
    "hiya",
    "good morning",
    "good afternoon",
    "good evening",
    "salam",
    "hola",
    "menu",
    "start",
    "help",
];
const CANCEL_WORDS: &[&str] = &["cancel", "stop", "quit", "exit", "never mind", "nevermind"];
/// Asking for no more offers and reminders (anywhere in a message); a bare "stop" outside a
/// journey means the same.
const OPT_OUT_PHRASES: &[&str] = &[
    "stop promotions",
    "stop promotion",
    "stop offers",
    "no more offers",
    "no more promotions",
    "no more messages",
    "stop messaging me",
    "stop sending",
    "stop marketing",
    "unsubscribe",
    "opt out",
    "opt-out",
];
/// Opting back in (the whole message), when the customer had opted out.
const OPT_IN_WORDS: &[&str] = &["start", "unstop", "resume", "subscribe", "opt in", "start promotions"];
const RESTART_WORDS: &[&str] = &["start over", "restart"];
/// Words that leave the current journey for the menu; the journey is kept and offered again.
const MENU_WORDS: &[&str] = &["main menu", "menu", "back to menu"];
/// Asking for the list of open requests.
const OPEN_TASKS_WORDS: &[&str] = &[
    "my requests",
    "open requests",
    "my tasks",
    "open tasks",
    "what's open",
    "whats open",
    "what is open",
    "pending requests",
    "switch",
];
/// Words that, with a flow's keywords, start a second instance of the journey under way
/// ("book another car").
const ANOTHER_WORDS: &[&str] = &["another", "second", "one more", "other car", "new booking"];
/// The least confidence at which the intent guard's reading starts a journey.
pub const MIN_INTENT_CONFIDENCE: f64 = 0.6;
/// How many times a journey asks again for values the ERP's schema refused before it gives up.
const MAX_ERP_REASKS: u32 = 2;
/// How many turns pass before an upset customer is acknowledged again.
const ACKNOWLEDGE_EVERY: u64 = 10;
/// How many journeys may wait aside at once; the oldest beyond this is dropped, with a trace.
pub const MAX_SUSPENDED: usize = 5;
const CONFIRM_WORDS: &[&str] = &[
    "confirm",
    "yes",
    "y",
    "ok",
    "okay",
    "correct",
    "book it",
    "looks good",
    "yes please",
    "sure",
    "go ahead",
    "perfect",
];
const CHANGE_WORDS: &[&str] = &["change", "edit", "modify", "fix", "update", "wrong"];
const NO_WORDS: &[&str] = &["no", "n", "nope", "cancel"];

fn is_one_of(text: &str, words: &[&str]) -> bool {
    let f = fold(text);
    words.iter().any(|w| f == *w)
}

/// Which flow a message asks for (see [`FlowSet::route`]).
fn route(flows: &FlowSet, text: &str) -> Option<Arc<Flow>> {
    flows.route(text)
}

/// Whether the journey's current step asks for a file (a receipt, a photo of damage).
fn asks_for_media(flows: &FlowSet, state: &ConversationState) -> bool {
    let Some(j) = &state.journey else { return false };
    let Some(flow) = flows.flow_at(&j.flow, j.version) else { return false };
    match flow.step(&j.step).map(|s| &s.kind) {
        Some(StepKind::Collect { slots, .. }) => slots
            .iter()
            .any(|s| !j.slots.contains_key(s) && flow.slots.get(s).is_some_and(|d| d.kind == SlotType::Media)),
        _ => false,
    }
}

/// How the engine reads an event, the same way in [`plan`] and [`decide`]:
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
        EventKind::Choice { id, title } if !button::is_ours(id) => text(title),
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
        let command = [CONFIRM_WORDS, NO_WORDS, CANCEL_WORDS, RESTART_WORDS, MENU_WORDS, OPEN_TASKS_WORDS, GREETINGS]
            .iter()
            .any(|w| is_one_of(&text, w));
        plan.understand_with_llm =
            !command && state.journey.is_none() && flows.route(&text).is_none() && text.split_whitespace().count() >= 3;
        plan.understand = Some(text);
    }
    let journey_flow = state.journey.as_ref().and_then(|j| flows.flow_at(&j.flow, j.version).cloned());
    let flow = match (&event.kind, &journey_flow) {
        (_, Some(f)) => Some(f.clone()),
        (EventKind::Text { body }, None) => route(flows, body),
        (EventKind::Choice { id, .. }, None) if id.starts_with("t|") => {
            state.suspended.iter().find(|j| j.id == id[2..]).and_then(|j| flows.flow_at(&j.flow, j.version).cloned())
        }
        (EventKind::Choice { id, .. }, None) => id.strip_prefix("m|").and_then(|f| flows.flow(f).cloned()),
        _ => None,
    };
    let Some(flow) = flow else { return plan };
    plan.flow = Some(flow.id.clone());
    plan.flow_version = Some(flow.version);
    let mut involved: Vec<Arc<Flow>> = vec![flow.clone()];
    if let EventKind::Choice { id, .. } = &event.kind {
        involved.extend(id.strip_prefix("m|").and_then(|f| flows.flow(f).cloned()));
    }
    involved.extend(state.suspended.iter().filter_map(|j| flows.flow_at(&j.flow, j.version).cloned()));
    if let (EventKind::Text { body }, Some(_)) = (&event.kind, &state.journey) {
        if let Some(other) =
            route(flows, body).filter(|o| o.id != flow.id || ANOTHER_WORDS.iter().any(|w| contains_words(body, w)))
        {
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
        let command = [CONFIRM_WORDS, NO_WORDS, CANCEL_WORDS, RESTART_WORDS, MENU_WORDS, OPEN_TASKS_WORDS, GREETINGS]
            .iter()
            .any(|w| is_one_of(body, w));
        if command {
            return plan;
        }
        plan.text = Some(body.clone());
        plan.pending_day = state.journey.as_ref().and_then(|j| j.pending_day.clone());
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
    let Some(flow) = flows.flow_at(&j.flow, j.version) else { return plan };
    let Some(StepKind::Collect { slots, ask, .. }) = flow.step(&j.step).map(|s| &s.kind) else { return plan };
    plan.flow = Some(flow.id.clone());
    plan.flow_version = Some(flow.version);
    plan.focus = slots.iter().filter(|s| !j.slots.contains_key(*s)).cloned().collect();
    plan.question = Some(ask.clone());
    plan.lookups = flow.lookups();
    plan.text = Some(body.clone());
    plan
}

struct Turn<'a> {
    flows: &'a FlowSet,
    guards: &'a GuardResults,
    state: ConversationState,
    replies: Vec<Reply>,
    erp: Vec<ErpRequest>,
    trace: Vec<TraceEntry>,
    /// The event's time (Unix seconds): the engine's only notion of "now".
    now: i64,
    /// Ask the next question another way (the stuck-state ladder's first rung).
    rephrase: bool,
    /// Set while a digression starts its journey: the message is read for that journey.
    digressing: bool,
    /// Set while a file's caption is read: what it says replaces earlier answers ("AED 75"
    /// with a new receipt corrects the amount).
    correcting: bool,
    /// Why a value the guards read was refused (an amount above what is due), for the reprompt.
    rejected: Option<String>,
    /// Events for other conversations.
    forwards: Vec<Forward>,
}

impl Turn<'_> {
    fn note(&mut self, what: &str, detail: String, source: Option<SourceRef>) {
        self.trace.push(TraceEntry { what: what.into(), detail, source });
    }
    fn say(&mut self, body: String) {
        self.replies.push(Reply::Text { body });
    }
}

fn step_label(state: &ConversationState) -> String {
    state.journey.as_ref().map(|j| format!("{}/{}", j.flow, j.step)).unwrap_or_else(|| "-".into())
}

/// Decides one turn. Pure: no I/O, no clock.
///
/// Errors: [`EngineError`] when the stored state or a flow is inconsistent (a bug, not customer
/// input); the caller records the turn as failed and the customer gets an apology.
pub fn decide(
    flows: &FlowSet,
    state: &ConversationState,
    event: &InboundEvent,
    guards: &GuardResults,
) -> Result<Decision, EngineError> {
    let mut t = Turn {
        flows,
        guards,
        state: state.clone(),
        replies: vec![],
        erp: vec![],
        trace: vec![],
        now: event.timestamp,
        rephrase: false,
        digressing: false,
        rejected: None,
        correcting: false,
        forwards: vec![],
    };
    let event = &as_read(flows, state, event, guards.transcript.as_deref());
    t.state.turns += 1;
    if event.kind.from_customer() {
        // The menu's stuck ladder counts messages in a row that matched nothing; anything else
        // starts it again (see `unmatched_at_menu`).
        t.state.unmatched = None;
        t.state.last_customer_at = event.timestamp;
        if let Some(u) = &guards.understanding {
            t.state.mood = u.emotion;
            t.state.upset |= u.emotion.is_upset();
        } else if matches!(event.kind, EventKind::Text { .. }) {
            t.state.mood = Emotion::Neutral;
        }
    }
    let step_before = step_label(state);
    let flow = match &t.state.journey {
        Some(j) => {
            Some(flows.flow_at(&j.flow, j.version).cloned().ok_or_else(|| EngineError::UnknownFlow(j.flow.clone()))?)
        }
        None => None,
    };
    if let (Some(f), Some(j)) = (&flow, &t.state.journey) {
        if f.step(&j.step).is_none() {
            return Err(EngineError::UnknownStep { flow: f.id.clone(), step: j.step.clone() });
        }
    }

    if let Some(done) = before_journeys(&mut t, event, flow.clone())? {
        return Ok(finish(t, event, flow.as_deref(), step_before, done));
    }
    match (&event.kind, flow.clone()) {
        (EventKind::ErpOutcome { journey_id, action, reference, error }, flow) => {
            on_erp_outcome(&mut t, flow, journey_id, action, reference.clone(), error.clone())?;
        }
        (EventKind::Reaction { emoji }, _) => {
            t.note("ignored", format!("reaction {emoji:?} needs no answer"), None);
        }
        (EventKind::Choice { id, .. }, _) if id == button::PERSON => {
            hand_off(&mut t, "the customer asked for a person".into());
        }
        (EventKind::Text { body }, flow) if asks_to_opt_out(body, flow.is_some()) => opt_out(&mut t, flow)?,
        (EventKind::Text { body }, flow) if t.state.opted_out && is_one_of(body, OPT_IN_WORDS) => opt_in(&mut t, flow)?,
        (EventKind::Edited { message, .. }, flow) => on_edit(&mut t, flow, message)?,
        (_, Some(flow)) if t.state.session.phase() == Phase::AwaitingErp => {
            t.note("ignored", "the ERP has not answered yet; the customer was asked to wait".into(), None);
            let what = flow.title.to_lowercase();
            t.say(format!(
                "I'm still confirming this with our system ({what}). I'll message you as soon as it's done."
            ));
        }
        (EventKind::Text { body }, _) if is_one_of(body, OPEN_TASKS_WORDS) => list_open_tasks(&mut t),
        (EventKind::Choice { id, .. }, _) if id.starts_with("t|") => on_task_choice(&mut t, &id[2..])?,
        (EventKind::Choice { id, .. }, Some(current)) if id.starts_with("m|") => {
            match id.strip_prefix("m|").and_then(|f| flows.flow(f).cloned()) {
                // The same journey from the menu carries on (a second one is asked for in words:
                // "book another car"), so a menu press never makes a duplicate booking.
                Some(flow) if flow.id == current.id => {
                    t.note("resume", "the customer chose the journey already under way from the menu".into(), None);
                    advance(&mut t, &current, None)?;
                }
                Some(flow) => {
                    if !back_to_aside(&mut t, &flow.id)? {
                        suspend_current(&mut t, &format!("the customer chose {} from the menu", flow.id));
                        start_journey(&mut t, &flow, "main-menu button")?;
                        advance(&mut t, &flow, None)?;
                    }
                }
                None => {
                    t.say(flows.business.messages.stale_button.clone());
                    advance(&mut t, &current, None)?;
                }
            }
        }
        (EventKind::Text { body }, None) => match route(flows, body) {
            Some(flow) => start_from_text(&mut t, &flow, body, "keywords in the message")?,
            None => match guards
                .understanding
                .as_ref()
                .filter(|u| u.confidence >= MIN_INTENT_CONFIDENCE)
                .and_then(|u| flows.flow(&u.intent).cloned())
            {
                Some(flow) => {
                    let why = "the intent guard read the message as this journey";
                    start_from_text(&mut t, &flow, body, why)?;
                }
                None if is_one_of(body, GREETINGS) => menu(&mut t, "greeting"),
                None => unmatched_at_menu(&mut t, state, body),
            },
        },
        (EventKind::Choice { id, title }, None) => match id.strip_prefix("m|").and_then(|f| flows.flow(f).cloned()) {
            Some(flow) => {
                if !back_to_aside(&mut t, &flow.id)? {
                    start_journey(&mut t, &flow, "main-menu button")?;
                    advance(&mut t, &flow, None)?;
                }
            }
            None => match route(flows, title) {
                Some(flow) => {
                    start_journey(&mut t, &flow, "button title")?;
                    advance(&mut t, &flow, None)?;
                }
                None => {
                    t.say(flows.business.messages.stale_button.clone());
                    menu(&mut t, "button from a journey that has ended");
                }
            },
        },
        (EventKind::Text { body }, Some(flow)) => on_text(&mut t, &flow, body)?,
        (EventKind::Choice { id, title }, Some(flow)) => on_choice(&mut t, &flow, id, title)?,
        (EventKind::Location { latitude, longitude, name, address }, Some(flow)) => {
            let mut parts: Vec<String> = vec![];
            for p in [name, address].into_iter().flatten() {
                if !parts.iter().any(|q| q == p) {
                    parts.push(p.clone());
                }
            }
            let text = parts.join(", ");
            let value = SlotValue::Address { text, latitude: Some(*latitude), longitude: Some(*longitude) };
            let target = address_slot(&t, &flow);
            match target {
                Some(slot) => {
                    fill(&mut t, &flow, &slot, value, SlotSource::Location, "location message".into());
                    advance(&mut t, &flow, None)?;
                }
                None => {
                    t.note("ignored", "a location arrived but no address is being asked".into(), None);
                    t.say("Thanks for the location! I don't need an address right now.".into());
                    advance(&mut t, &flow, None)?;
                }
            }
        }
        (EventKind::Location { .. }, None) => {
            t.say("Thanks for the location! What can we do for you?".into());
            menu(&mut t, "location outside a journey");
        }
        (EventKind::Media { media_type, media_id, mime_type, caption }, Some(flow))
            if media_slot(&t, &flow).is_some() && matches!(media_type.as_str(), "image" | "document") =>
        {
            let slot = media_slot(&t, &flow).unwrap_or_default();
            let value = SlotValue::Media {
                media_id: media_id.clone(),
                mime_type: mime_type.clone().unwrap_or_else(|| "application/octet-stream".into()),
                caption: caption.clone(),
                filename: None,
            };
            fill(&mut t, &flow, &slot, value, SlotSource::Upload, format!("{media_type} message"));
            t.correcting = true;
            apply_extracted(&mut t, &flow);
            t.correcting = false;
            progressed(&mut t);
            advance(&mut t, &flow, None)?;
        }
        (EventKind::Media { media_type, .. }, flow) if media_type == "audio" => {
            t.note("voice_note", "a voice note arrived; it cannot be listened to (no transcript)".into(), None);
            t.say(flows.business.messages.voice_note.clone());
            match flow {
                Some(flow) => advance(&mut t, &flow, None)?,
                None => menu(&mut t, "after a voice note"),
            }
        }
        (EventKind::Media { media_type, .. } | EventKind::Unsupported { kind: media_type }, flow) => {
            t.note("unsupported", format!("{media_type} cannot answer any question here"), None);
            t.say(flows.business.messages.unsupported.clone());
            match flow {
                Some(flow) => advance(&mut t, &flow, None)?,
                None => menu(&mut t, "after an unsupported message"),
            }
        }
        (
            EventKind::AgentMessage { .. }
            | EventKind::AgentTakeover { .. }
            | EventKind::AgentRelease { .. }
            | EventKind::Tick
            | EventKind::ErpDelayed { .. }
            | EventKind::NumberChanged { .. }
            | EventKind::SystemNotice { .. }
            | EventKind::Deleted { .. }
            | EventKind::MarketingPreference { .. }
            | EventKind::Transfer { .. },
            _,
        ) => {
            // Handled by before_journeys; kept here so a new event kind cannot be forgotten.
        }
        (EventKind::Contacts { .. }, flow) => {
            t.note("unsupported", "contact cards cannot answer any question here".into(), None);
            t.say(flows.business.messages.unsupported.clone());
            match flow {
                Some(flow) => advance(&mut t, &flow, None)?,
                None => menu(&mut t, "after contact cards"),
            }
        }
    }
    Ok(finish(t, event, flow.as_deref(), step_before, ()))
}

/// Whether a typed message asks for no more offers and reminders: an opt-out phrase anywhere
/// ("please unsubscribe me"), or a bare "stop" outside a journey (inside one it stops the
/// journey).
fn asks_to_opt_out(body: &str, in_journey: bool) -> bool {
    let folded = crate::text::Folded::new(body);
    OPT_OUT_PHRASES.iter().any(|p| folded.has(p)) || (!in_journey && is_one_of(body, &["stop", "stop all"]))
}

/// Stores the opt-out; the journey under way (if any) carries on.
fn opt_out(t: &mut Turn<'_>, flow: Option<Arc<Flow>>) -> Result<(), EngineError> {
    t.state.opted_out = true;
    t.note("opt_out", "the customer opted out of offers and reminders".into(), None);
    t.say(t.flows.business.messages.opted_out.clone());
    match flow {
        Some(flow) if t.state.session.phase() != Phase::AwaitingErp => advance(t, &flow, None),
        _ => Ok(()),
    }
}

/// Takes the opt-out back and shows the menu (or the question under way).
fn opt_in(t: &mut Turn<'_>, flow: Option<Arc<Flow>>) -> Result<(), EngineError> {
    t.state.opted_out = false;
    t.note("opt_in", "the customer opted back in to offers and reminders".into(), None);
    t.say(t.flows.business.messages.opted_in.clone());
    match flow {
        Some(flow) if t.state.session.phase() != Phase::AwaitingErp => advance(t, &flow, None),
        Some(_) => Ok(()),
        None => {
            menu(t, "after opting back in");
            Ok(())
        }
    }
}

/// An edited message: read again when it answers the question still open (the guards read its
/// text for the current step's empty slots), recorded otherwise. Never answered on its own.
fn on_edit(t: &mut Turn<'_>, flow: Option<Arc<Flow>>, message: &EventKind) -> Result<(), EngineError> {
    let at_collect = |t: &Turn<'_>, f: &Flow| {
        t.state
            .journey
            .as_ref()
            .and_then(|j| f.step(&j.step))
            .is_some_and(|s| matches!(s.kind, StepKind::Collect { .. }))
    };
    match flow {
        Some(flow) if at_collect(t, &flow) && t.state.session.phase() != Phase::AwaitingErp => {
            let filled = apply_extracted(t, &flow);
            if filled > 0 {
                t.note(
                    "edited",
                    format!("the customer edited a message ({}); it answers the open question", message.name()),
                    None,
                );
                progressed(t);
                return advance(t, &flow, None);
            }
            t.note(
                "edited",
                "the customer edited a message; it does not answer the open question (recorded)".into(),
                None,
            );
        }
        _ => t.note("edited", "the customer edited a message; no question is open (recorded)".into(), None),
    }
    Ok(())
}

/// An upset customer is acknowledged first and offered a person (once every few turns, and not
/// when the turn already offers or makes a hand-off).
fn acknowledge_upset(t: &mut Turn<'_>, event: &InboundEvent) {
    let typed = matches!(event.kind, EventKind::Text { .. } | EventKind::Media { .. });
    let recent = t.state.acknowledged_at.is_some_and(|at| t.state.turns.saturating_sub(at) < ACKNOWLEDGE_EVERY);
    let person_offered = t.replies.iter().any(|r| match r {
        Reply::Choices { options, .. } => {
            options.iter().any(|o| o.id.ends_with("recover:human") || o.id == button::PERSON)
        }
        Reply::Text { .. } => false,
    });
    if !typed || !t.state.mood.is_upset() || recent || person_offered || t.state.handoff.is_some() || event.throttled {
        return;
    }
    t.state.acknowledged_at = Some(t.state.turns);
    t.note("upset", format!("the customer sounds {:?}; acknowledged and offered a person", t.state.mood), None);
    t.replies.insert(
        0,
        Reply::Choices {
            body: "I'm sorry — I can hear this has been frustrating. I'll help you put it right here, or a member of our team can take over right away.".into(),
            options: vec![ReplyOption { id: button::PERSON.into(), title: "Talk to a person".into(), description: None }],
            button: "Choose".into(),
        },
    );
}

/// Where the customer now is: the journey's stage (deciding at its summary), after-sale once a
/// journey ends with the ERP's reference, exploring after the first exchange.
fn update_stage(t: &mut Turn<'_>) {
    let ended_with_erp = t.trace.iter().any(|e| e.what == "end")
        && t.trace.iter().any(|e| e.what == "erp_outcome" && e.detail.starts_with("ERP accepted"));
    t.state.stage = match &t.state.journey {
        Some(j) => match t.flows.flow_at(&j.flow, j.version) {
            Some(f) if f.step(&j.step).is_some_and(|s| matches!(s.kind, StepKind::Confirm { .. })) => Stage::Deciding,
            Some(f) => f.stage,
            None => t.state.stage,
        },
        None if ended_with_erp => Stage::AfterSale,
        None if t.state.stage == Stage::Greeting && t.state.turns > 1 => Stage::Exploring,
        None => t.state.stage,
    };
}

/// Follows an `offer: true` closing message with one current offer, unless the customer is or was
/// upset, saw an offer already, or is in a complaint.
fn proactive_offer(t: &mut Turn<'_>, flow: &Flow, step: &Step) {
    let why_not = if t.state.opted_out {
        Some("the customer opted out of offers")
    } else if t.state.upset {
        Some("the customer was upset in this conversation")
    } else if t.state.offer_shown {
        Some("an offer was shown already")
    } else if flow.stage == Stage::Complaint {
        Some("a complaint never shows offers")
    } else {
        None
    };
    if let Some(why) = why_not {
        t.note("no_offer", format!("no offer: {why}"), Some(step.source.clone()));
        return;
    }
    let Some(offer) = t.guards.lookups.get(OFFERS_LOOKUP).and_then(|o| o.first()).cloned() else {
        t.note("no_offer", "no offer: none is current".into(), Some(step.source.clone()));
        return;
    };
    t.state.offer_shown = true;
    t.note("offer", format!("offer {} shown after the journey ended", offer.id), Some(step.source.clone()));
    let details = offer.description.map(|d| format!(" — {d}")).unwrap_or_default();
    t.say(format!("🎁 One more thing: {}{details}. Send \"offers\" to see them all.", offer.title));
}

/// Closes a turn: the reminder wake-up, the repeated-question count, the step labels.
fn finish(mut t: Turn<'_>, event: &InboundEvent, flow: Option<&Flow>, step_before: String, _: ()) -> Decision {
    acknowledge_upset(&mut t, event);
    if event.followed && !t.replies.is_empty() {
        // A later message of the same delivery will ask what is still open: this turn keeps its
        // statements and leaves its questions to that one, so two messages get one answer.
        let before = t.replies.len();
        t.replies.retain(|r| !is_question(r));
        let held = before - t.replies.len();
        if held > 0 {
            t.note("held", format!("{held} question(s) left to the next message of the same delivery"), None);
        }
    }
    update_stage(&mut t);
    let flow = t
        .state
        .journey
        .as_ref()
        .and_then(|j| t.flows.flow_at(&j.flow, j.version).cloned())
        .or_else(|| flow.map(|f| Arc::new(f.clone())));
    let reminder = flow.as_ref().and_then(|f| f.reminder.clone());
    t.state.wake_at = match (&t.state.journey, reminder) {
        (None, _) | (_, None) => None,
        (Some(_), _) if t.state.handoff.is_some() || t.state.session.phase() == Phase::AwaitingErp => None,
        (Some(j), Some(r)) if event.kind.from_customer() && !j.reminded => Some(event.timestamp + r.after_seconds),
        (Some(_), _) if matches!(event.kind, EventKind::Tick) => None,
        (Some(_), _) => t.state.wake_at,
    };
    if let Some(question) = t.replies.iter().rev().find(|r| is_question(r)) {
        let body = question.body().to_string();
        t.state.last_question = match t.state.last_question.take() {
            Some((q, n)) if q == body => Some((q, n + 1)),
            _ => Some((body, 1)),
        };
    }
    let step_after = step_label(&t.state);
    Decision {
        state: t.state,
        replies: t.replies,
        erp: t.erp,
        trace: t.trace,
        step_before,
        step_after,
        forwards: t.forwards,
    }
}

/// Whether a reply asks something (offers options, or ends with a question mark).
fn is_question(r: &Reply) -> bool {
    matches!(r, Reply::Choices { .. }) || r.body().trim_end().ends_with('?')
}

const PERSON_WORDS: &[&str] = &[
    "talk to a person",
    "talk to someone",
    "speak to someone",
    "speak to a person",
    "real person",
    "human",
    "agent",
    "representative",
    "customer service",
    "operator",
    "talk to a human",
    "speak to a human",
];
/// Events handled before any journey logic: throttling, hand-offs and agents, the scheduler,
/// ERP delay notices. Returns `Some(())` when the turn is complete.
fn before_journeys(t: &mut Turn<'_>, event: &InboundEvent, flow: Option<Arc<Flow>>) -> Result<Option<()>, EngineError> {
    if event.kind.is_notification() {
        on_notification(t, event);
        return Ok(Some(()));
    }
    if event.throttled {
        t.note("throttled", "the sender exceeded its rate limit; the message is kept but not answered".into(), None);
        return Ok(Some(()));
    }
    match &event.kind {
        EventKind::AgentTakeover { agent } => {
            t.state.handoff =
                Some(state::Handoff { since: t.now, reason: "agent took over".into(), agent: Some(agent.clone()) });
            t.note("handoff", format!("{agent} took the conversation over"), None);
            t.say(format!("You're now chatting with {agent} from our team."));
            return Ok(Some(()));
        }
        EventKind::AgentMessage { agent, text } => {
            if t.state.handoff.is_none() {
                t.state.handoff =
                    Some(state::Handoff { since: t.now, reason: "agent wrote".into(), agent: Some(agent.clone()) });
            }
            t.note("agent_message", format!("{agent} wrote to the customer"), None);
            t.say(text.clone());
            return Ok(Some(()));
        }
        EventKind::AgentRelease { agent } => {
            let was = t.state.handoff.take();
            t.note(
                "release",
                format!("{agent} gave the conversation back (handed off since {:?})", was.map(|h| h.since)),
                None,
            );
            t.say("Thanks for your patience! You're back with our booking assistant.".into());
            match flow {
                Some(flow) if t.state.session.phase() != Phase::AwaitingErp => {
                    let j = journey_mut(t);
                    j.no_progress = 0;
                    j.last_text = None;
                    advance(t, &flow, None)?;
                }
                Some(_) => {}
                None => menu(t, "after a hand-off"),
            }
            return Ok(Some(()));
        }
        EventKind::Tick => {
            let window_open = t.now - t.state.last_customer_at < 24 * 3600 - 60;
            match (flow, t.state.handoff.is_some()) {
                (Some(flow), false)
                    if window_open && !journey(t).reminded && flow.reminder.is_some() && !t.state.opted_out =>
                {
                    let question = current_question(t, &flow);
                    let text =
                        flow.reminder.as_ref().map(|r| r.text.replace("{question}", &question)).unwrap_or_default();
                    journey_mut(t).reminded = true;
                    let source = flow.step(&journey(t).step).map(|s| s.source.clone());
                    t.note("reminder", "the customer went quiet mid-journey; one reminder sent".into(), source);
                    t.say(render_text(t, &flow, &text));
                }
                _ => t.note(
                    "ignored",
                    "wake-up with nothing to do (no journey, reminded already, handed off, opted out or window closed)"
                        .into(),
                    None,
                ),
            }
            return Ok(Some(()));
        }
        EventKind::ErpDelayed { journey_id, action } => {
            if t.state.journey.as_ref().is_some_and(|j| &j.id == journey_id)
                && t.state.session.phase() == Phase::AwaitingErp
            {
                t.note("erp_delayed", format!("ERP write {action} failed once and is being retried"), None);
                t.say("Our booking system is slow to answer right now. I'll send your confirmation as soon as it's through.".into());
            } else {
                t.note("ignored", format!("delay notice for {action} no longer relevant"), None);
            }
            return Ok(Some(()));
        }
        _ => {}
    }
    if t.state.handoff.is_some() && event.kind.from_customer() {
        t.note("handed_off", "a person has this conversation; the bot stays silent".into(), None);
        return Ok(Some(()));
    }
    if let EventKind::Text { body } = &event.kind {
        if PERSON_WORDS.iter().any(|w| contains_words(body, w)) {
            hand_off(t, "the customer asked for a person".into());
            return Ok(Some(()));
        }
    }
    Ok(None)
}

/// Notifications about the customer: recorded, never answered.
fn on_notification(t: &mut Turn<'_>, event: &InboundEvent) {
    match &event.kind {
        EventKind::NumberChanged { new_customer } => move_to_number(t, event, new_customer),
        EventKind::Transfer { from_customer, carried } => take_transfer(t, from_customer, carried),
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
}

/// The customer moved to a new number: the profile, the journeys and the references go to the
/// new number's conversation (through its inbox, as a [`EventKind::Transfer`]); this one keeps
/// its history and where it went.
fn move_to_number(t: &mut Turn<'_>, event: &InboundEvent, new_customer: &str) {
    if new_customer == t.state.customer || new_customer.is_empty() {
        t.note("notice", "number change to the same number; nothing to move".into(), None);
        return;
    }
    let carried = Carried {
        profile: std::mem::take(&mut t.state.profile),
        journey: t.state.journey.take(),
        suspended: std::mem::take(&mut t.state.suspended),
        references: t.state.references.clone(),
        opted_out: t.state.opted_out,
    };
    if carried.journey.is_some() {
        t.state.session.accept(SessionEvent::JourneyEnded);
    }
    let open = usize::from(carried.journey.is_some()) + carried.suspended.len();
    t.state.moved_to = Some(new_customer.to_string());
    t.state.wake_at = None;
    t.note(
        "moved",
        format!(
            "the customer changed number to {new_customer}: profile ({} slots) and {open} open journey(s) moved there",
            carried.profile.len()
        ),
        None,
    );
    let kind = EventKind::Transfer { from_customer: t.state.customer.clone(), carried: Box::new(carried) };
    t.forwards.push(Forward {
        customer: new_customer.to_string(),
        event: InboundEvent::internal(format!("moved:{}", event.message_id), new_customer, event.timestamp, kind),
    });
}

/// A conversation moved here from the customer's old number: what this one does not know yet is
/// taken (the profile slots it lacks; the journey under way if none is, otherwise put aside).
fn take_transfer(t: &mut Turn<'_>, from: &str, carried: &Carried) {
    let mut taken: Vec<String> = Vec::new();
    for (name, slot) in &carried.profile {
        if !t.state.profile.contains_key(name) {
            t.state.profile.insert(name.clone(), slot.clone());
            taken.push(name.clone());
        }
    }
    let mut journeys = carried.suspended.clone();
    match (&t.state.journey, carried.journey.clone()) {
        (None, Some(j)) => {
            let awaiting_erp = t
                .flows
                .flow_at(&j.flow, j.version)
                .and_then(|f| f.step(&j.step))
                .is_some_and(|s| matches!(s.kind, StepKind::Erp { .. }));
            t.state.journey = Some(j);
            t.state.session.accept(SessionEvent::JourneyStarted);
            if awaiting_erp {
                t.state.session.accept(SessionEvent::ErpRequested);
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
}

/// The question the current step asks, as text (for reminders).
fn current_question(t: &Turn<'_>, flow: &Flow) -> String {
    match flow.step(&journey(t).step).map(|s| &s.kind) {
        Some(StepKind::Collect { ask, .. }) => render_text(t, flow, ask),
        Some(StepKind::Confirm { .. }) => "Shall I confirm your booking?".into(),
        _ => String::new(),
    }
}

fn hand_off(t: &mut Turn<'_>, reason: String) {
    t.state.handoff = Some(state::Handoff { since: t.now, reason: reason.clone(), agent: None });
    let source = t
        .state
        .journey
        .as_ref()
        .and_then(|j| t.flows.flow_at(&j.flow, j.version).and_then(|f| f.step(&j.step)).map(|s| s.source.clone()));
    t.note("handoff", format!("handed to a person: {reason}"), source);
    t.say(
        "I've asked a member of our team to help you. They'll reply here shortly — everything you've told me is saved."
            .into(),
    );
}

/// A turn at a step without progress: climbs the stuck-state ladder of the flow.
fn no_progress(t: &mut Turn<'_>, flow: &Arc<Flow>, body: Option<&str>, reason: String) -> Result<(), EngineError> {
    let j = journey_mut(t);
    j.no_progress += 1;
    if let Some(body) = body {
        let folded = fold(body);
        if j.last_text.as_deref() == Some(folded.as_str()) {
            j.no_progress += 1; // the same text again: a clear sign of being stuck
        }
        j.last_text = Some(folded);
    }
    let (n, step_id) = (j.no_progress, j.step.clone());
    let repeated_question = t.state.last_question.as_ref().map_or(0, |(_, n)| *n);
    let level = n.max(repeated_question);
    let r = flow.recovery;
    let source = flow.step(&step_id).map(|s| s.source.clone());
    if level >= r.handoff_after {
        t.note("stuck", format!("{level} turns without progress at {}/{step_id}: hand-off", flow.id), source);
        hand_off(t, format!("stuck at {}/{step_id}", flow.id));
        Ok(())
    } else if level >= r.summary_after {
        t.note(
            "stuck",
            format!("{level} turns without progress at {}/{step_id}: summary and choices", flow.id),
            source,
        );
        recovery_summary(t, flow, &reason)
    } else if level >= r.rephrase_after {
        t.note("stuck", format!("{level} turns without progress at {}/{step_id}: rephrased", flow.id), source);
        t.rephrase = true;
        advance(t, flow, Some(reason))
    } else {
        advance(t, flow, Some(reason))
    }
}

/// What is known so far, what is missing, and Continue / Start over / Talk to a person.
fn recovery_summary(t: &mut Turn<'_>, flow: &Arc<Flow>, reason: &str) -> Result<(), EngineError> {
    let j = journey(t).clone();
    let known: Vec<String> = flow
        .slots
        .values()
        .filter_map(|s| j.slots.get(&s.name).map(|v| format!("• {}: {}", s.label, v.value.display())))
        .collect();
    let missing: Vec<String> = match flow.step(&j.step).map(|s| &s.kind) {
        Some(StepKind::Collect { slots, .. }) => slots
            .iter()
            .filter(|s| !j.slots.contains_key(*s))
            .filter_map(|s| flow.slots.get(s).map(|d| d.label.to_lowercase()))
            .collect(),
        _ => vec![],
    };
    let mut body = format!("{reason}\n\n");
    if known.is_empty() {
        body.push_str("We haven't got far yet.");
    } else {
        body.push_str(&format!("Here's what I have so far:\n{}", known.join("\n")));
    }
    if !missing.is_empty() {
        body.push_str(&format!("\n\nI still need your {}.", missing.join(" and ")));
    }
    body.push_str(" What would you like to do?");
    let b = |v: &str, title: &str| ReplyOption {
        id: button::encode(&j, &j.step, v),
        title: title.into(),
        description: None,
    };
    t.replies.push(Reply::Choices {
        body,
        options: vec![
            b("recover:continue", "Continue"),
            b("recover:restart", "Start over"),
            b("recover:human", "Talk to a person"),
        ],
        button: "Choose".into(),
    });
    Ok(())
}

/// A message outside any journey that matched nothing: the menu, and the stuck ladder there.
/// The second time the same words come, the bot says in a sentence what it can do and offers a
/// person; the third time, a person takes over.
fn unmatched_at_menu(t: &mut Turn<'_>, before: &ConversationState, body: &str) {
    let folded = fold(body);
    let n = match &before.unmatched {
        Some((previous, n)) if *previous == folded => n + 1,
        _ => 1,
    };
    t.state.unmatched = Some((folded, n));
    match n {
        1 => menu(t, "no journey matched"),
        2 => {
            t.note("stuck", "the same message twice at the menu: what the bot can do, and a person".into(), None);
            menu(t, "the same message again");
            if let Some(Reply::Choices { body, options, .. }) = t.replies.last_mut() {
                *body = t.flows.business.messages.capabilities.replace("{business}", &t.flows.business.name);
                let person =
                    ReplyOption { id: button::PERSON.into(), title: "Talk to a person".into(), description: None };
                if options.len() >= crate::flow::MAX_LIST_ROWS {
                    options.pop();
                }
                options.push(person);
            }
        }
        _ => {
            t.note("stuck", format!("the same message {n} times at the menu: hand-off"), None);
            t.state.unmatched = None;
            hand_off(t, "the same message three times at the menu".into());
        }
    }
}

fn menu(t: &mut Turn<'_>, why: &str) {
    let b = &t.flows.business;
    let greeting = match t.state.profile.get("first_name") {
        Some(name) => b.messages.welcome_back.replace("{first_name}", &name.value.display()),
        None => b.messages.welcome.clone(),
    }
    .replace("{business}", &b.name);
    let mut in_menu: Vec<&Arc<Flow>> = t.flows.flows.values().collect();
    in_menu.sort_by_key(|f| f.menu_position);
    let options: Vec<ReplyOption> = in_menu
        .into_iter()
        .filter_map(|f| {
            f.menu_title.as_ref().map(|title| ReplyOption {
                id: button::menu(&f.id),
                title: title.clone(),
                description: None,
            })
        })
        .collect();
    let mut options = options;
    let mut greeting = greeting;
    if !t.state.suspended.is_empty() {
        greeting.push_str("\n\nYou also have an unfinished request — pick it below to carry on where you left off.");
        let room = crate::flow::MAX_LIST_ROWS.saturating_sub(options.len());
        for j in t.state.suspended.iter().rev().take(room) {
            options.push(ReplyOption {
                id: button::task(j),
                title: crate::text::truncate(&format!("Continue: {}", short_name(t.flows, j)), 24),
                description: Some(crate::text::truncate(&describe(t.flows, j), 72)),
            });
        }
    }
    t.note("menu", format!("main menu ({why})"), None);
    t.replies.push(Reply::Choices { body: greeting, options, button: "Menu".into() });
}

fn start_journey(t: &mut Turn<'_>, flow: &Arc<Flow>, why: &str) -> Result<(), EngineError> {
    let id = journey_id(&t.state, flow);
    let mut journey = Journey {
        id,
        flow: flow.id.clone(),
        version: flow.version,
        step: flow.start_step().to_string(),
        slots: Default::default(),
        no_progress: 0,
        last_text: None,
        step_since: t.now,
        reminded: false,
        pending_day: None,
        choosing_change: false,
        erp: None,
        erp_reasks: 0,
        pending: None,
    };
    for (name, slot) in &flow.slots {
        if slot.profile {
            if let Some(known) = t.state.profile.get(name) {
                journey.slots.insert(name.clone(), FilledSlot { source: SlotSource::Profile, ..known.clone() });
            }
        }
    }
    let prefilled: Vec<String> = journey.slots.keys().cloned().collect();
    t.state.journey = Some(journey);
    t.state.session.accept(SessionEvent::JourneyStarted);
    let source = flow.step(flow.start_step()).map(|s| s.source.clone());
    t.note(
        "start",
        format!(
            "journey {} v{} started ({why}){}",
            flow.id,
            flow.version,
            if prefilled.is_empty() {
                String::new()
            } else {
                format!("; known from the profile: {}", prefilled.join(", "))
            }
        ),
        source,
    );
    Ok(())
}

/// Journey ids are derived from the conversation and its turn counter, so a replayed turn makes
/// the same id (and so the same ERP idempotency key).
fn journey_id(state: &ConversationState, flow: &Flow) -> String {
    format!("{}-{}-{}", flow.id, state.customer, state.turns)
}

fn journey<'a>(t: &'a Turn<'_>) -> &'a Journey {
    // Callers only use this after a journey exists; the engine never reaches here otherwise.
    t.state.journey.as_ref().expect("journey present")
}

fn journey_mut<'a>(t: &'a mut Turn<'_>) -> &'a mut Journey {
    t.state.journey.as_mut().expect("journey present")
}

fn fill(t: &mut Turn<'_>, flow: &Flow, slot: &str, value: SlotValue, source: SlotSource, evidence: String) {
    let turn = t.state.turns;
    let filled = FilledSlot { value: value.clone(), source, turn };
    if flow.slots.get(slot).is_some_and(|s| s.profile) {
        t.state.profile.insert(slot.to_string(), filled.clone());
    }
    let j = journey_mut(t);
    if matches!(value, SlotValue::DateTime { .. }) {
        j.pending_day = None;
    }
    let old = j.slots.insert(slot.to_string(), filled);
    let detail = match old {
        Some(o) if o.value != value => {
            format!("{slot} = {:?} (was {:?}), from {evidence}", value.display(), o.value.display())
        }
        _ => format!("{slot} = {:?}, from {evidence}", value.display()),
    };
    let src = flow.step_collecting(slot).map(|s| s.source.clone());
    t.note("fill", detail, src);
}

/// Fills the slots the guard phase found. Slots of the current question, empty slots, and (at
/// the summary) corrections are taken; a slot filled earlier is not silently overwritten
/// elsewhere. Returns how many slots were filled.
fn apply_extracted(t: &mut Turn<'_>, flow: &Flow) -> usize {
    let alternative = t.guards.alternative.as_deref().filter(|a| a.flow.as_deref() == Some(flow.id.as_str()));
    let read = match alternative {
        // A digression reads the message for the journey it starts (even one of the same flow).
        Some(alt) if t.digressing => alt,
        _ if t.guards.flow.as_deref() == Some(flow.id.as_str()) => t.guards,
        Some(alt) => alt,
        None => return 0,
    };
    let j = journey(t);
    let current = flow.step(&j.step);
    let at_summary = matches!(current.map(|s| &s.kind), Some(StepKind::Confirm { .. })) || t.correcting;
    let focus: Vec<String> = match current.map(|s| &s.kind) {
        Some(StepKind::Collect { slots, .. }) => slots.clone(),
        _ => vec![],
    };
    let take: Vec<(String, Extracted)> = read
        .slots
        .iter()
        .filter(|(name, _)| flow.slots.contains_key(*name))
        .filter(|(name, ex)| {
            let existing = j.slots.get(*name);
            // What the customer says now beats what the profile remembered ("another car, a
            // Honda Civic").
            let remembered = existing.is_some_and(|e| e.source == SlotSource::Profile && e.value != ex.value);
            existing.is_none()
                || focus.contains(name)
                || remembered
                || (at_summary && existing.is_some_and(|e| e.value != ex.value))
        })
        .map(|(n, e)| (n.clone(), e.clone()))
        .collect();
    // An amount may not exceed the amount of the option it pays (an invoice's amount due).
    let mut take = take;
    let mut rejected = None;
    take.retain(|(name, ex)| {
        let (Some(limit_slot), SlotValue::Amount { value }) =
            (flow.slots.get(name).and_then(|d| d.at_most.clone()), &ex.value)
        else {
            return true;
        };
        let limit = match j.slots.get(&limit_slot).map(|s| &s.value) {
            Some(SlotValue::Choice { price: Some(p), .. }) => *p,
            _ => return true,
        };
        if *value > 0.0 && *value <= limit + 0.005 {
            return true;
        }
        let what = j.slots.get(&limit_slot).map(|s| s.value.display()).unwrap_or_default();
        rejected = Some(format!(
            "{value:.2} doesn't match: {limit:.2} is due on {what}. Please type the amount you paid, as on the receipt."
        ));
        false
    });
    if rejected.is_some() {
        t.rejected = rejected;
    }
    let n = take.len();
    for (name, ex) in take {
        fill(t, flow, &name, ex.value, ex.source, format!("{:?} ({})", ex.evidence, source_name(ex.source)));
    }
    n
}

fn source_name(s: SlotSource) -> &'static str {
    match s {
        SlotSource::Button => "button",
        SlotSource::Parser => "deterministic parser",
        SlotSource::Llm => "LLM guard, grounded",
        SlotSource::Location => "location",
        SlotSource::Profile => "profile",
        SlotSource::Erp => "ERP lookup",
        SlotSource::Upload => "file sent",
    }
}

/// The media slot the current step asks for, if any.
fn media_slot(t: &Turn<'_>, flow: &Flow) -> Option<String> {
    let j = t.state.journey.as_ref()?;
    match flow.step(&j.step).map(|s| &s.kind) {
        Some(StepKind::Collect { slots, .. }) => slots
            .iter()
            .find(|s| flow.slots.get(*s).is_some_and(|d| d.kind == SlotType::Media) && !j.slots.contains_key(*s))
            .cloned(),
        _ => None,
    }
}

fn address_slot(t: &Turn<'_>, flow: &Flow) -> Option<String> {
    let j = journey(t);
    if let Some(StepKind::Collect { slots, .. }) = flow.step(&j.step).map(|s| &s.kind) {
        if let Some(s) = slots.iter().find(|s| flow.slots.get(*s).is_some_and(|d| d.kind == SlotType::Address)) {
            return Some(s.clone());
        }
    }
    flow.slots.values().find(|s| s.kind == SlotType::Address && !j.slots.contains_key(&s.name)).map(|s| s.name.clone())
}

/// The current step got an answer: the stuck-state count starts again.
fn progressed(t: &mut Turn<'_>) {
    let j = journey_mut(t);
    j.no_progress = 0;
    j.last_text = None;
}

fn cancel(t: &mut Turn<'_>, why: &str) -> Result<(), EngineError> {
    if let Some(j) = t.state.journey.take() {
        t.note("cancel", format!("journey {} cancelled at step {} ({why})", j.flow, j.step), None);
    }
    t.state.session.accept(SessionEvent::JourneyEnded);
    t.say(t.flows.business.messages.cancelled.clone());
    resume_after_end(t)
}

/// Starts `flow` from a typed message: the slots the guards read, the `opening` slots, then the
/// first question still open.
fn start_from_text(t: &mut Turn<'_>, flow: &Arc<Flow>, body: &str, why: &str) -> Result<(), EngineError> {
    start_journey(t, flow, why)?;
    apply_extracted(t, flow);
    // A journey opened with a real sentence keeps it for its `opening` slot: one that says more
    // than the request itself ("I want to make a complaint" is not what happened).
    if body.split_whitespace().count() >= 6 && says_more_than_the_request(flow, body) {
        let opening: Vec<String> = flow.slots.values().filter(|s| s.opening).map(|s| s.name.clone()).collect();
        for slot in opening {
            if !journey(t).slots.contains_key(&slot) {
                let value = SlotValue::Text { value: body.trim().to_string() };
                fill(t, flow, &slot, value, SlotSource::Parser, "the message that opened the journey".into());
            }
        }
    }
    advance(t, flow, None)
}

/// Words of a request rather than of what it is about.
const REQUEST_FILLER: &[&str] = &[
    "i", "i'd", "id", "i'm", "im", "want", "would", "like", "need", "to", "make", "a", "an", "the", "have", "please",
    "file", "lodge", "register", "raise", "report", "my", "about", "hi", "hello", "hey", "can", "could", "you", "me",
    "help", "with", "some", "do", "this", "is", "it", "for", "of",
];

/// Whether a sentence that starts a journey says something beyond asking for it: at least three
/// words that are neither the flow's keywords nor the words of a request.
fn says_more_than_the_request(flow: &Flow, body: &str) -> bool {
    let folded = fold(body);
    folded
        .split(' ')
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
        .filter(|w| !w.is_empty() && !REQUEST_FILLER.contains(w) && !flow.keywords.iter().any(|k| k == w))
        .count()
        >= 3
}

/// Whether a message that answered nothing in the current journey asks for another one: the
/// keywords of a different flow ("I want to complain" in the middle of a booking), or the
/// current flow's keywords with "another" ("book another car").
fn digression(t: &Turn<'_>, current: &Flow, body: &str) -> Option<Arc<Flow>> {
    let other = route(t.flows, body)?;
    if other.id != current.id || ANOTHER_WORDS.iter().any(|w| contains_words(body, w)) { Some(other) } else { None }
}

/// Puts the current journey aside and starts `other` from the message.
fn digress(t: &mut Turn<'_>, other: &Arc<Flow>, body: &str) -> Result<(), EngineError> {
    let another = ANOTHER_WORDS.iter().any(|w| contains_words(body, w));
    if !another && back_to_aside(t, &other.id)? {
        return Ok(());
    }
    suspend_current(t, &format!("the customer asked for {}", other.id));
    t.digressing = true;
    let started = start_from_text(t, other, body, "keywords in the middle of another journey");
    t.digressing = false;
    started
}

/// Goes back to the newest journey of `flow` put aside, if there is one (asking for a journey
/// that is already open carries it on rather than starting a second one). True when it did.
fn back_to_aside(t: &mut Turn<'_>, flow: &str) -> Result<bool, EngineError> {
    let Some(id) = t.state.suspended.iter().rev().find(|j| j.flow == flow).map(|j| j.id.clone()) else {
        return Ok(false);
    };
    Ok(switch_to(t, &id, "the customer asked for this journey again", true)?.is_some())
}

/// A journey in a few words, for the open-requests list and the "back to" line:
/// `Book a car-care service (Full Wash, Tue 25 Nov, 10:00)`.
fn describe(flows: &FlowSet, j: &Journey) -> String {
    let Some(flow) = flows.flow_at(&j.flow, j.version) else { return j.flow.clone() };
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
fn short_name(flows: &FlowSet, j: &Journey) -> String {
    flows
        .flow_at(&j.flow, j.version)
        .map(|f| f.menu_title.clone().unwrap_or_else(|| f.title.clone()))
        .unwrap_or_else(|| j.flow.clone())
}

/// Puts the current journey (if any) aside, keeping its slots and step.
fn suspend_current(t: &mut Turn<'_>, why: &str) {
    let Some(mut j) = t.state.journey.take() else { return };
    j.choosing_change = false;
    t.note("suspend", format!("journey {} put aside at step {} ({why})", j.flow, j.step), None);
    t.state.session.accept(SessionEvent::JourneyEnded);
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
        t.say(format!(
            "You have several requests open, so I've closed the oldest one: {what}. You can start it again any time."
        ));
    }
}

/// Makes the journey `id` that was put aside current again, putting the current one (if any)
/// aside first; returns its flow. With `announce`, says "Now, back to …" and asks its open
/// question. A journey whose flow or step no longer exists (an edit since) is dropped with a
/// trace and a word to the customer, and `None` is returned. Profile data given since it was put
/// aside (a name, an address) fills its empty slots, so nothing is asked twice.
fn switch_to(t: &mut Turn<'_>, id: &str, why: &str, announce: bool) -> Result<Option<Arc<Flow>>, EngineError> {
    let Some(i) = t.state.suspended.iter().position(|j| j.id == id) else { return Ok(None) };
    // Taken out before the current one goes aside, so the cap on journeys put aside cannot drop it.
    let mut j = t.state.suspended.remove(i);
    suspend_current(t, "the customer went back to another open request");
    let Some(flow) = t.flows.flow_at(&j.flow, j.version).cloned().filter(|f| f.step(&j.step).is_some()) else {
        t.note(
            "dropped",
            format!("journey {} at step {} can no longer carry on: its flow changed", j.flow, j.step),
            None,
        );
        t.say(
            "Sorry, I can't carry on with one of your earlier requests: it has changed since. Please start it again."
                .into(),
        );
        return Ok(None);
    };
    j.no_progress = 0;
    j.last_text = None;
    j.step_since = t.now;
    for (name, slot) in &flow.slots {
        if slot.profile && !j.slots.contains_key(name) {
            if let Some(known) = t.state.profile.get(name) {
                j.slots.insert(name.clone(), FilledSlot { source: SlotSource::Profile, ..known.clone() });
            }
        }
    }
    let what = describe(t.flows, &j);
    t.note(
        "resume",
        format!("journey {} resumed at step {} ({why})", j.flow, j.step),
        flow.step(&j.step).map(|s| s.source.clone()),
    );
    t.state.journey = Some(j);
    t.state.session.accept(SessionEvent::JourneyStarted);
    if announce {
        t.say(format!("Now, back to your request: {what}."));
        advance(t, &flow, None)?;
    }
    Ok(Some(flow))
}

/// After a journey ended or was cancelled: the newest journey put aside carries on (one that can
/// no longer carry on is dropped, and the next is tried).
fn resume_after_end(t: &mut Turn<'_>) -> Result<(), EngineError> {
    while t.state.journey.is_none() {
        let Some(id) = t.state.suspended.last().map(|j| j.id.clone()) else { break };
        switch_to(t, &id, "the journey in front of it ended", true)?;
    }
    Ok(())
}

/// The open requests (the current journey and those put aside), each a row to pick.
fn list_open_tasks(t: &mut Turn<'_>) {
    let mut rows: Vec<ReplyOption> = Vec::new();
    if let Some(j) = &t.state.journey {
        rows.push(ReplyOption {
            id: button::task(j),
            title: crate::text::truncate(&short_name(t.flows, j), 24),
            description: Some(crate::text::truncate(&format!("Now: {}", describe(t.flows, j)), 72)),
        });
    }
    for j in t.state.suspended.iter().rev() {
        rows.push(ReplyOption {
            id: button::task(j),
            title: crate::text::truncate(&short_name(t.flows, j), 24),
            description: Some(crate::text::truncate(&format!("Waiting: {}", describe(t.flows, j)), 72)),
        });
    }
    t.note("open_tasks", format!("{} open request(s) listed", rows.len()), None);
    if rows.is_empty() {
        t.say("You have no open requests right now.".into());
        menu(t, "no open requests");
        return;
    }
    t.replies.push(Reply::Choices {
        body: "Here is what we have open for you. Which one shall we carry on with?".into(),
        options: rows.into_iter().take(crate::flow::MAX_LIST_ROWS).collect(),
        button: "Open requests".into(),
    });
}

/// The customer picked an open request (from the list or the menu).
fn on_task_choice(t: &mut Turn<'_>, id: &str) -> Result<(), EngineError> {
    if t.state.journey.as_ref().is_some_and(|j| j.id == id) {
        let flow = current_flow(t)?;
        t.note("resume", "the customer picked the request already under way".into(), None);
        return advance(t, &flow, None);
    }
    if t.state.suspended.iter().any(|j| j.id == id) {
        if switch_to(t, id, "the customer picked it", true)?.is_none() {
            resume_after_end(t)?;
            if t.state.journey.is_none() {
                menu(t, "the picked request could not carry on");
            }
        }
        return Ok(());
    }
    t.note("stale_button", format!("open request {id} is no longer open"), None);
    t.say(t.flows.business.messages.stale_button.clone());
    match t.state.journey.is_some() {
        true => {
            let flow = current_flow(t)?;
            advance(t, &flow, None)
        }
        false => {
            menu(t, "the picked request has ended");
            Ok(())
        }
    }
}

fn current_flow(t: &Turn<'_>) -> Result<Arc<Flow>, EngineError> {
    let j = journey(t);
    t.flows.flow_at(&j.flow, j.version).cloned().ok_or_else(|| EngineError::UnknownFlow(j.flow.clone()))
}

fn on_text(t: &mut Turn<'_>, flow: &Arc<Flow>, body: &str) -> Result<(), EngineError> {
    let step = flow
        .step(&journey(t).step)
        .cloned()
        .ok_or_else(|| EngineError::UnknownStep { flow: flow.id.clone(), step: journey(t).step.clone() })?;
    if is_one_of(body, RESTART_WORDS) {
        if let Some(j) = t.state.journey.take() {
            t.note(
                "cancel",
                format!("journey {} left at step {} (customer asked to start over)", j.flow, j.step),
                None,
            );
        }
        t.state.session.accept(SessionEvent::JourneyEnded);
        menu(t, "customer asked to start over");
        return Ok(());
    }
    if is_one_of(body, MENU_WORDS) {
        suspend_current(t, "the customer asked for the menu");
        menu(t, "customer asked for it");
        return Ok(());
    }
    match &step.kind {
        StepKind::Confirm { on_confirm, on_cancel, change, .. } => {
            if journey(t).choosing_change {
                if let Some(target) = change
                    .iter()
                    .find(|c| flow.step(c).is_some_and(|s| contains_words(body, &s.title) || contains_words(body, c)))
                {
                    return start_change(t, flow, target);
                }
            }
            if is_one_of(body, CONFIRM_WORDS) {
                return go(t, flow, on_confirm, "customer typed a confirmation", Some(step.source.clone()));
            }
            if is_one_of(body, NO_WORDS) || is_one_of(body, CANCEL_WORDS) {
                return go(t, flow, on_cancel, "customer typed a cancellation", Some(step.source.clone()));
            }
            // "Book another car, a Honda Civic" at the summary asks for a second journey; it
            // does not correct this one.
            if ANOTHER_WORDS.iter().any(|w| contains_words(body, w)) {
                if let Some(other) = digression(t, flow, body) {
                    return digress(t, &other, body);
                }
            }
            let corrected = apply_extracted(t, flow);
            if corrected > 0 {
                journey_mut(t).choosing_change = false;
                t.say("Updated.".into());
                return advance(t, flow, None);
            }
            if let Some(other) = digression(t, flow, body) {
                return digress(t, &other, body);
            }
            if CHANGE_WORDS.iter().any(|w| contains_words(body, w)) {
                if let Some(target) = change
                    .iter()
                    .find(|c| flow.step(c).is_some_and(|s| contains_words(body, &s.title) || contains_words(body, c)))
                {
                    return start_change(t, flow, target);
                }
                return change_menu(t, flow, &step.id, change);
            }
            no_progress(t, flow, Some(body), "Please choose one of the buttons below.".into())
        }
        StepKind::Collect { .. } => {
            if is_one_of(body, CANCEL_WORDS) {
                return cancel(t, "customer typed a cancel word");
            }
            if let Some(done) = on_pending(t, flow, body)? {
                return Ok(done);
            }
            if let Some(free) = free_text_focus(t, flow) {
                // A free-text question takes any words: first make sure they are not about
                // something else.
                if FREE_TEXT_CANCEL.iter().any(|p| contains_words(body, p)) && body.split_whitespace().count() <= 8 {
                    return cancel(t, "customer asked to stop at a free-text question");
                }
                if let Some(other) = free_text_digression(t, flow, &free, body) {
                    t.note(
                        "digression",
                        format!("{body:?} asks for {} rather than answering {}", other.id, free.0),
                        Some(step.source.clone()),
                    );
                    return digress(t, &other, body);
                }
            }
            let filled = apply_extracted(t, flow);
            if filled == 0 {
                if let Some(other) = digression(t, flow, body) {
                    return digress(t, &other, body);
                }
                if let Some((slot, read)) = unsure_answer(t, flow) {
                    return ask_to_confirm(t, flow, &slot, read);
                }
                if t.state.mood.is_upset() {
                    t.note("upset", "the customer sounds upset; offering a person".into(), Some(step.source.clone()));
                    return recovery_summary(t, flow, "I'm sorry this has been frustrating.");
                }
                let reason = t
                    .rejected
                    .take()
                    .or_else(|| t.guards.problem.clone())
                    .unwrap_or_else(|| "Sorry, I didn't catch that.".into());
                if let Some(day) = &t.guards.date_only {
                    // Half an answer: keep the day, ask only for the time.
                    journey_mut(t).pending_day = Some(day.clone());
                    t.note("partial", format!("day {day} noted; the time is still missing"), Some(step.source.clone()));
                    t.say(reason);
                    return Ok(());
                }
                no_progress(t, flow, Some(body), reason)
            } else {
                progressed(t);
                advance(t, flow, None)
            }
        }
        StepKind::Erp { .. } | StepKind::End { .. } => advance(t, flow, None),
    }
}

/// Phrases that stop the journey when typed at a free-text question ("actually, forget it").
const FREE_TEXT_CANCEL: &[&str] = &[
    "cancel it",
    "cancel this",
    "cancel that",
    "cancel the booking",
    "cancel everything",
    "forget it",
    "never mind",
    "nevermind",
    "don't bother",
    "dont bother",
    "stop this",
];
/// Words that make a sentence a request rather than a description ("can I also book…").
const REQUEST_WORDS: &[&str] = &[
    "i want",
    "i'd like",
    "id like",
    "i would like",
    "i need",
    "i also need",
    "can i",
    "can you",
    "could you",
    "could i",
    "please book",
    "also",
    "another",
    "instead",
    "actually",
    "by the way",
    "btw",
    "i have a complaint",
    "i want to complain",
    "i'd like to complain",
    "how do i",
    "how can i",
];

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

/// Whether a message at a free-text question asks for another journey instead of answering:
/// at the address, anything that is not clearly an address and holds another journey's
/// keywords; at a description, a request ("can I also book…", "actually I want to pay") for
/// another journey, since a description naturally mentions the services.
fn free_text_digression(t: &Turn<'_>, flow: &Flow, free: &(String, SlotType), body: &str) -> Option<Arc<Flow>> {
    let other = digression(t, flow, body)?;
    match free.1 {
        // The guards took it as a clear address ("Car Wash Street 12"): an answer.
        SlotType::Address if t.guards.slots.contains_key(&free.0) => None,
        SlotType::Address => Some(other),
        _ => {
            let folded = crate::text::Folded::new(body);
            REQUEST_WORDS.iter().any(|w| folded.has(w)).then_some(other)
        }
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
fn ask_to_confirm(t: &mut Turn<'_>, flow: &Arc<Flow>, slot: &str, read: Extracted) -> Result<(), EngineError> {
    let label = flow.slots.get(slot).map(|d| d.label.to_lowercase()).unwrap_or_else(|| slot.to_string());
    let shown = read.value.display();
    let j = journey_mut(t);
    j.pending = Some(state::PendingValue { slot: slot.to_string(), value: read.value, evidence: read.evidence });
    let j = j.clone();
    let source = flow.step(&j.step).map(|s| s.source.clone());
    t.note("confirm_value", format!("{slot} might be {shown:?}; asking the customer before taking it"), source);
    let b = |v: &str, title: &str| ReplyOption {
        id: button::encode(&j, &j.step, v),
        title: title.into(),
        description: None,
    };
    t.replies.push(Reply::Choices {
        body: format!("Just to be sure: is “{shown}” your {label}?"),
        options: vec![b("pending:yes", "Yes"), b("pending:no", "No")],
        button: "Choose".into(),
    });
    Ok(())
}

/// The answer to "is “…” your address?": yes fills the slot, no asks again; anything else is a
/// new answer and the pending value is dropped. `None` when nothing was pending.
fn on_pending(t: &mut Turn<'_>, flow: &Arc<Flow>, body: &str) -> Result<Option<()>, EngineError> {
    let Some(pending) = t.state.journey.as_mut().and_then(|j| j.pending.take()) else { return Ok(None) };
    if is_one_of(body, CONFIRM_WORDS) {
        confirm_pending(t, flow, pending)?;
        return Ok(Some(()));
    }
    if is_one_of(body, NO_WORDS) {
        t.note(
            "confirm_value",
            format!("the customer said {:?} is not their {}", pending.evidence, pending.slot),
            None,
        );
        advance(t, flow, Some("No problem.".into()))?;
        return Ok(Some(()));
    }
    t.note("confirm_value", "a new answer instead of yes or no; the value waiting is dropped".into(), None);
    Ok(None)
}

fn confirm_pending(t: &mut Turn<'_>, flow: &Arc<Flow>, pending: state::PendingValue) -> Result<(), EngineError> {
    let evidence = format!("{:?}, confirmed by the customer", pending.evidence);
    fill(t, flow, &pending.slot, pending.value, SlotSource::Parser, evidence);
    progressed(t);
    advance(t, flow, None)
}

fn on_choice(t: &mut Turn<'_>, flow: &Arc<Flow>, id: &str, title: &str) -> Result<(), EngineError> {
    let j = journey(t).clone();
    let parsed = button::parse(id);
    let fresh = parsed.as_ref().is_some_and(|p| p.fits(&j));
    if let Some(p) = parsed.as_ref().filter(|_| !fresh) {
        // A button of a journey put aside: the customer went back to it.
        if let Some(i) = t.state.suspended.iter().position(|s| s.flow == p.flow && s.tag() == p.tag) {
            let back = t.state.suspended[i].id.clone();
            return match switch_to(t, &back, "a button of this request was pressed", false)? {
                Some(flow) => on_choice(t, &flow, id, title),
                None => {
                    resume_after_end(t)?;
                    if t.state.journey.is_none() {
                        menu(t, "the request of that button could not carry on");
                    }
                    Ok(())
                }
            };
        }
    }
    let Some(p) = parsed.filter(|_| fresh) else {
        if id.starts_with("b|") || id.starts_with("m|") {
            t.note(
                "stale_button",
                format!("button {id:?} was made for an earlier question; the journey is at {}/{}", j.flow, j.step),
                None,
            );
            t.say(t.flows.business.messages.stale_button.clone());
            return advance(t, flow, None);
        }
        // Not one of our ids (a template quick-reply, say): read its title as typed text.
        return on_text(t, flow, title);
    };
    let step = flow
        .step(&j.step)
        .cloned()
        .ok_or_else(|| EngineError::UnknownStep { flow: flow.id.clone(), step: j.step.clone() })?;
    match p.value {
        "recover:continue" => {
            t.note("recovery", "the customer chose to continue".into(), Some(step.source.clone()));
            progressed(t);
            return advance(t, flow, None);
        }
        "recover:restart" => {
            t.note("recovery", "the customer chose to start over".into(), Some(step.source.clone()));
            t.state.journey = None;
            t.state.session.accept(SessionEvent::JourneyEnded);
            start_journey(t, flow, "start over")?;
            return advance(t, flow, None);
        }
        "recover:human" => {
            hand_off(t, "the customer asked for a person".into());
            return Ok(());
        }
        "pending:yes" | "pending:no" => {
            let pending = journey_mut(t).pending.take();
            return match (pending, p.value == "pending:yes") {
                (Some(pending), true) => confirm_pending(t, flow, pending),
                (Some(_), false) => advance(t, flow, Some("No problem.".into())),
                (None, _) => advance(t, flow, None),
            };
        }
        _ => {}
    }
    match (&step.kind, p.value) {
        (StepKind::Confirm { on_confirm, .. }, "confirm") => {
            go(t, flow, on_confirm, "Confirm pressed", Some(step.source.clone()))
        }
        (StepKind::Confirm { on_cancel, .. }, "cancel") => {
            go(t, flow, on_cancel, "Cancel pressed", Some(step.source.clone()))
        }
        (StepKind::Confirm { change, .. }, "change") => change_menu(t, flow, &step.id, change),
        (StepKind::Confirm { change, .. }, v) if v.starts_with("change:") => {
            let target = &v["change:".len()..];
            if change.iter().any(|c| c == target) {
                start_change(t, flow, target)
            } else {
                advance(t, flow, Some("That option is not available.".into()))
            }
        }
        (StepKind::Collect { slots, .. }, v) => {
            let Some((slot, option)) = v.strip_prefix("set:").and_then(|s| s.split_once('=')) else {
                return advance(t, flow, Some("Sorry, I didn't catch that.".into()));
            };
            if !slots.iter().any(|s| s == slot) {
                return advance(t, flow, Some("Sorry, I didn't catch that.".into()));
            }
            match option_value(t, flow, slot, option, title) {
                Some(value) => {
                    fill(t, flow, slot, value, SlotSource::Button, format!("button {title:?}"));
                    progressed(t);
                    advance(t, flow, None)
                }
                None => {
                    t.note(
                        "stale_button",
                        format!("option {option:?} of {slot} is no longer offered"),
                        Some(step.source.clone()),
                    );
                    advance(t, flow, Some("That option is no longer available; please pick again.".into()))
                }
            }
        }
        _ => {
            t.note("stale_button", format!("button {id:?} does not fit step {}", step.id), Some(step.source.clone()));
            advance(t, flow, None)
        }
    }
}

/// The slot value for a pressed option: a choice with its title and price, or an offered time.
fn option_value(t: &Turn<'_>, flow: &Flow, slot: &str, option: &str, title: &str) -> Option<SlotValue> {
    let decl = flow.slots.get(slot)?;
    let options = options_of(t, flow, slot);
    let found = options.iter().find(|o| o.id == option);
    match decl.kind {
        SlotType::DateTime => {
            let civil: jiff::civil::DateTime = option.parse().ok()?;
            Some(SlotValue::DateTime { civil: civil.to_string(), zone: t.flows.business.time_zone_name.clone() })
        }
        _ => found.map(SlotValue::from_option).or_else(|| {
            // An offered option that a lookup no longer lists: keep the customer's pick only if
            // the option is static (it cannot have disappeared).
            let _ = title;
            None
        }),
    }
}

// A slot's options: static, or from the guard phase's lookups.
fn options_of(t_or_guards: &Turn<'_>, flow: &Flow, slot: &str) -> Vec<ChoiceOption> {
    slot_options(t_or_guards.guards, flow, slot)
}

/// A slot's options given the guard results (static ones need none).
pub fn slot_options(guards: &GuardResults, flow: &Flow, slot: &str) -> Vec<ChoiceOption> {
    match flow.slots.get(slot).map(|s| &s.options) {
        Some(OptionSource::Static(items)) => items.clone(),
        Some(OptionSource::Lookup(name)) => guards.lookups.get(name).cloned().unwrap_or_default(),
        _ => vec![],
    }
}

fn change_menu(t: &mut Turn<'_>, flow: &Flow, step: &str, change: &[String]) -> Result<(), EngineError> {
    let j = journey_mut(t);
    j.choosing_change = true;
    let j = j.clone();
    let options = change
        .iter()
        .filter_map(|c| flow.step(c))
        .map(|s| ReplyOption {
            id: button::encode(&j, step, &format!("change:{}", s.id)),
            title: s.title.clone(),
            description: None,
        })
        .collect();
    t.note("ask", "what to change".into(), flow.step(step).map(|s| s.source.clone()));
    t.replies.push(Reply::Choices { body: "What would you like to change?".into(), options, button: "Change".into() });
    Ok(())
}

fn start_change(t: &mut Turn<'_>, flow: &Arc<Flow>, target: &str) -> Result<(), EngineError> {
    let mut clear: Vec<String> = Vec::new();
    if let Some(StepKind::Collect { slots, branches, .. }) = flow.step(target).map(|s| &s.kind) {
        clear.extend(slots.iter().cloned());
        // Slots of the steps its branches lead to depend on its answer: ask them again too.
        for b in branches {
            if let Some(StepKind::Collect { slots, .. }) = flow.step(&b.goto).map(|s| &s.kind) {
                clear.extend(slots.iter().cloned());
            }
        }
    }
    let j = journey_mut(t);
    j.choosing_change = false;
    for s in &clear {
        j.slots.remove(s);
    }
    j.step = target.to_string();
    let source = flow.step(target).map(|s| s.source.clone());
    t.note("transition", format!("change requested: {target} (cleared {})", clear.join(", ")), source);
    advance(t, flow, None)
}

fn go(
    t: &mut Turn<'_>,
    flow: &Arc<Flow>,
    target: &str,
    why: &str,
    source: Option<SourceRef>,
) -> Result<(), EngineError> {
    let now = t.now;
    let j = journey_mut(t);
    let from = std::mem::replace(&mut j.step, target.to_string());
    j.no_progress = 0;
    j.last_text = None;
    j.step_since = now;
    j.choosing_change = false;
    t.note("transition", format!("{from} → {target} ({why})"), source);
    advance(t, flow, None)
}

fn condition_holds(state: &ConversationState, j: &Journey, c: &Condition) -> bool {
    match c {
        Condition::Emotion(any) => any.contains(&state.mood),
        Condition::Stage(any) => any.contains(&state.stage),
        Condition::Equals { slot, value } => j.slots.get(slot).is_some_and(|s| s.value.id() == *value),
        Condition::NotEquals { slot, value } => j.slots.get(slot).is_none_or(|s| s.value.id() != *value),
    }
}

/// Renders `{placeholders}` of a flow text.
fn render_text(t: &Turn<'_>, flow: &Flow, text: &str) -> String {
    let mut out = text.replace("{business}", &t.flows.business.name);
    if let Some(j) = &t.state.journey {
        if out.contains("{summary}") {
            let lines: Vec<String> = flow
                .slots
                .values()
                .filter_map(|s| j.slots.get(&s.name).map(|v| format!("• {}: {}", s.label, v.value.display())))
                .collect();
            out = out.replace("{summary}", &lines.join("\n"));
        }
        for (name, v) in &j.slots {
            if let SlotValue::Choice { description, price, .. } = &v.value {
                out = out.replace(&format!("{{{name}.description}}"), description.as_deref().unwrap_or(""));
                let amount = price.map(|p| format!("{p:.2}")).unwrap_or_default();
                out = out.replace(&format!("{{{name}.amount}}"), &amount);
            }
            out = out.replace(&format!("{{{name}}}"), &v.value.display());
        }
        if let Some(e) = &j.erp {
            out = out.replace("{erp.reference}", e.reference.as_deref().unwrap_or("-"));
            out = out.replace("{erp.error}", e.error.as_deref().unwrap_or("-"));
        }
    }
    out
}

/// Moves from the current step through every step whose work is done, and stops at the first
/// that needs the customer (asking its question), at an ERP write, or at an end.
fn advance(t: &mut Turn<'_>, flow: &Arc<Flow>, reprompt: Option<String>) -> Result<(), EngineError> {
    let mut reprompt = reprompt;
    for _ in 0..=flow.steps.len() {
        let j = journey(t).clone();
        let step = flow
            .step(&j.step)
            .cloned()
            .ok_or_else(|| EngineError::UnknownStep { flow: flow.id.clone(), step: j.step.clone() })?;
        match &step.kind {
            StepKind::Collect { ask, example, slots, branches, next, if_none, pick_single } => {
                let missing: Vec<&String> = slots.iter().filter(|s| !j.slots.contains_key(*s)).collect();
                if let [slot] = missing.as_slice() {
                    let options = slot_options(t.guards, flow, slot);
                    let failed = match flow.slots.get(*slot).map(|s| &s.options) {
                        Some(OptionSource::Lookup(l)) => t.guards.failed_lookups.contains(l),
                        _ => false,
                    };
                    if options.is_empty() && failed && if_none.is_some() {
                        // Not "none found": the ERP could not be asked. Say so, and keep nothing.
                        t.note(
                            "lookup_failed",
                            format!("step {} could not list {slot}: its lookup failed; the journey ends", step.id),
                            Some(step.source.clone()),
                        );
                        t.say("Sorry, I can't reach our system to look that up right now. Please try again in a few minutes, or write \"talk to a person\".".into());
                        t.state.journey = None;
                        t.state.session.accept(SessionEvent::JourneyEnded);
                        return resume_after_end(t);
                    }
                    if let (true, Some(none)) = (options.is_empty(), if_none) {
                        let now = t.now;
                        let jm = journey_mut(t);
                        jm.step = none.clone();
                        jm.step_since = now;
                        t.note(
                            "transition",
                            format!("{} → {none} (none found for {slot})", step.id),
                            Some(step.source.clone()),
                        );
                        continue;
                    }
                    if options.len() == 1 && *pick_single {
                        let slot = (*slot).clone();
                        fill(
                            t,
                            flow,
                            &slot,
                            SlotValue::from_option(&options[0]),
                            SlotSource::Erp,
                            "the only option the ERP lists".into(),
                        );
                        continue;
                    }
                }
                if missing.is_empty() {
                    let (target, source, why) = match branches.iter().find(|b| condition_holds(&t.state, &j, &b.when)) {
                        Some(b) => (b.goto.clone(), b.source.clone(), "branch condition holds"),
                        None => (next.clone(), step.source.clone(), "slots filled"),
                    };
                    let now = t.now;
                    let jm = journey_mut(t);
                    jm.step = target.clone();
                    jm.no_progress = 0;
                    jm.last_text = None;
                    jm.step_since = now;
                    t.note("transition", format!("{} → {target} ({why})", step.id), Some(source));
                    continue;
                }
                for s in &missing {
                    if j.slots.contains_key(*s) {
                        return Err(EngineError::AskedFilledSlot {
                            flow: flow.id.clone(),
                            step: step.id.clone(),
                            slot: (*s).clone(),
                            at: step.source.clone(),
                        });
                    }
                }
                let question = if missing.len() < slots.len() {
                    let labels: Vec<String> =
                        missing.iter().filter_map(|s| flow.slots.get(*s)).map(|s| s.label.to_lowercase()).collect();
                    let first =
                        j.slots.get("first_name").map(|v| format!(", {}", v.value.display())).unwrap_or_default();
                    format!("Thanks{first}! And your {}?", labels.join(" and "))
                } else {
                    render_text(t, flow, ask)
                };
                let hint = example.as_ref().map(|e| format!(" For example: {e}")).unwrap_or_default();
                let body = match (reprompt.take(), t.rephrase) {
                    // The stuck-state ladder's first rung: the same need, other words.
                    (Some(reason), true) => {
                        let wanted: Vec<String> =
                            missing.iter().filter_map(|s| flow.slots.get(*s)).map(|s| s.label.to_lowercase()).collect();
                        format!("{reason} Let me put it another way: I just need your {}.{hint}", wanted.join(" and "))
                    }
                    (Some(reason), false) => format!("{reason}{hint}\n\n{question}"),
                    (None, _) => question,
                };
                let what = if j.no_progress > 0 { "reprompt" } else { "ask" };
                t.note(
                    what,
                    format!(
                        "step {} asks for {}",
                        step.id,
                        missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                    Some(step.source.clone()),
                );
                let mut options = if missing.len() == 1 { slot_options(t.guards, flow, missing[0]) } else { vec![] };
                // The customer's words fit several options: only those are offered again.
                if let Some(ids) = missing
                    .first()
                    .filter(|_| t.guards.flow.as_deref() == Some(flow.id.as_str()))
                    .and_then(|s| t.guards.candidates.get(*s))
                {
                    let narrowed: Vec<ChoiceOption> = options.iter().filter(|o| ids.contains(&o.id)).cloned().collect();
                    if narrowed.len() >= 2 {
                        options = narrowed;
                    }
                }
                if options.is_empty() {
                    t.say(body);
                } else {
                    let slot = missing[0];
                    let replies = options
                        .iter()
                        .take(crate::flow::MAX_LIST_ROWS)
                        .map(|o| ReplyOption {
                            id: button::encode(&j, &step.id, &format!("set:{slot}={}", o.id)),
                            title: o.title.clone(),
                            description: o.description.clone(),
                        })
                        .collect();
                    t.replies.push(Reply::Choices { body, options: replies, button: "Choose".into() });
                }
                return Ok(());
            }
            StepKind::Confirm { text, .. } => {
                let mut body = render_text(t, flow, text);
                if let Some(reason) = reprompt.take() {
                    body = format!("{reason}\n\n{body}");
                }
                let b = |v: &str, title: &str| ReplyOption {
                    id: button::encode(&j, &step.id, v),
                    title: title.into(),
                    description: None,
                };
                t.note("ask", format!("summary at step {}", step.id), Some(step.source.clone()));
                t.replies.push(Reply::Choices {
                    body,
                    options: vec![b("confirm", "Confirm"), b("change", "Change"), b("cancel", "Cancel")],
                    button: "Choose".into(),
                });
                return Ok(());
            }
            StepKind::Erp { action, say, on_failure, .. } => {
                let Some(decl) = t.flows.actions.get(action) else {
                    return Err(EngineError::UnknownStep {
                        flow: flow.id.clone(),
                        step: format!("{} (action {action})", step.id),
                    });
                };
                let key = format!("{}:{}", j.id, action);
                let mut context = t.state.template_context();
                context.insert("idempotency_key".into(), key.clone().into());
                match erp_actions::render_action(action, decl, &context, &key) {
                    Ok(rendered) => {
                        t.state.session.accept(SessionEvent::ErpRequested);
                        t.note(
                            "erp_request",
                            format!("ERP action {action} queued with idempotency key {key}"),
                            Some(step.source.clone()),
                        );
                        t.erp.push(ErpRequest { journey_id: j.id.clone(), action: rendered });
                        if let Some(say) = say {
                            let body = render_text(t, flow, say);
                            t.say(body);
                        }
                        return Ok(());
                    }
                    Err(problems) => {
                        let reason = problems
                            .iter()
                            .map(|p| format!("{} {}: {}", p.document, p.at, p.message))
                            .collect::<Vec<_>>()
                            .join("; ");
                        // A value the customer gave that the ERP's schema refuses is asked for
                        // again, with the reason; it is never posted.
                        let behind: Vec<String> = problems
                            .iter()
                            .flat_map(|p| erp_actions::names_behind(decl, p))
                            .filter(|n| flow.slots.contains_key(n))
                            .filter(|n| j.slots.get(n).is_some_and(|s| s.source != SlotSource::Erp))
                            .collect();
                        // The earliest step that collects one of them; at most two such re-asks.
                        let target = flow
                            .steps
                            .values()
                            .find(|s| {
                                matches!(&s.kind, StepKind::Collect { slots, .. } if slots.iter().any(|x| behind.contains(x)))
                            })
                            .map(|s| s.id.clone())
                            .filter(|_| j.erp_reasks < MAX_ERP_REASKS);
                        if let Some(target) = target {
                            let labels: Vec<String> = behind
                                .iter()
                                .filter_map(|n| flow.slots.get(n).map(|s| s.label.to_lowercase()))
                                .collect();
                            let why: Vec<String> = problems.iter().map(|p| p.message.clone()).collect();
                            t.note(
                                "erp_invalid",
                                format!(
                                    "ERP body for {action} failed its schema, nothing sent; asking again for {}: {reason}",
                                    behind.join(", ")
                                ),
                                Some(step.source.clone()),
                            );
                            let now = t.now;
                            let jm = journey_mut(t);
                            jm.erp_reasks += 1;
                            for n in &behind {
                                jm.slots.remove(n);
                            }
                            jm.step = target;
                            jm.step_since = now;
                            reprompt = Some(format!(
                                "Our booking system can't take that {} ({}). Could you give it again?",
                                labels.join(" and "),
                                why.join("; ")
                            ));
                            continue;
                        }
                        t.note(
                            "erp_invalid",
                            format!("ERP body for {action} failed its schema, nothing sent: {reason}"),
                            Some(step.source.clone()),
                        );
                        let jm = journey_mut(t);
                        jm.erp =
                            Some(state::ErpStatus { action: action.clone(), reference: None, error: Some(reason) });
                        jm.step = on_failure.clone();
                        continue;
                    }
                }
            }
            StepKind::End { text, offer, offer_person } => {
                let body = render_text(t, flow, text);
                if *offer_person {
                    let person =
                        ReplyOption { id: button::PERSON.into(), title: "Talk to a person".into(), description: None };
                    t.replies.push(Reply::Choices { body, options: vec![person], button: "Choose".into() });
                } else {
                    t.say(body);
                }
                if *offer {
                    proactive_offer(t, flow, &step);
                }
                t.note("end", format!("journey {} ended at step {}", flow.id, step.id), Some(step.source.clone()));
                t.state.journey = None;
                t.state.session.accept(SessionEvent::JourneyEnded);
                t.state.journeys_completed += 1;
                return resume_after_end(t);
            }
        }
    }
    Err(EngineError::TransitionLoop {
        flow: flow.id.clone(),
        step: journey(t).step.clone(),
        steps: flow.steps.len() + 1,
    })
}

fn on_erp_outcome(
    t: &mut Turn<'_>,
    flow: Option<Arc<Flow>>,
    journey_id: &str,
    action: &str,
    reference: Option<String>,
    error: Option<String>,
) -> Result<(), EngineError> {
    if let Some(to) = t.state.moved_to.clone() {
        // The journey went to the customer's new number: so does its ERP answer.
        t.note("forwarded", format!("ERP answer for journey {journey_id} forwarded to the new number {to}"), None);
        let kind = EventKind::ErpOutcome { journey_id: journey_id.into(), action: action.into(), reference, error };
        let id = format!("moved:{}:{journey_id}:{action}", t.state.customer);
        t.forwards.push(Forward { customer: to.clone(), event: InboundEvent::internal(id, to, t.now, kind) });
        return Ok(());
    }
    let Some(flow) = flow.filter(|_| t.state.journey.as_ref().is_some_and(|j| j.id == journey_id)) else {
        t.note("ignored", format!("ERP answer for journey {journey_id} which is no longer under way"), None);
        return Ok(());
    };
    if !t.state.session.accept(SessionEvent::ErpSettled) {
        t.note("ignored", format!("ERP answer for {action} arrived while nothing was awaited (duplicate)"), None);
        return Ok(());
    }
    let step = flow
        .step(&journey(t).step)
        .cloned()
        .ok_or_else(|| EngineError::UnknownStep { flow: flow.id.clone(), step: journey(t).step.clone() })?;
    let StepKind::Erp { on_success, on_failure, .. } = &step.kind else {
        t.note("ignored", format!("ERP answer for {action} but step {} is not an ERP step", step.id), None);
        return Ok(());
    };
    let ok = reference.is_some() && error.is_none();
    if let Some(r) = &reference {
        t.state.references.push(r.clone());
    }
    journey_mut(t).erp =
        Some(state::ErpStatus { action: action.into(), reference: reference.clone(), error: error.clone() });
    t.note(
        "erp_outcome",
        match (&reference, &error) {
            (Some(r), None) => format!("ERP accepted {action}: reference {r}"),
            (_, e) => format!("ERP refused {action}: {}", e.clone().unwrap_or_default()),
        },
        Some(step.source.clone()),
    );
    let target = if ok { on_success.clone() } else { on_failure.clone() };
    go(t, &flow, &target, if ok { "ERP succeeded" } else { "ERP failed" }, Some(step.source.clone()))
}
