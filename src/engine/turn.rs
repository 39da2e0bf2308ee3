//! One turn in the making: what the handlers read (flows, guard results, the event) and what
//! they write (the new state, replies, ERP requests, events for other conversations, the trace);
//! and [`Next`], what a handler says should happen next. Handlers change slots and say things;
//! only the driver's loop moves the conversation.

use std::sync::Arc;

use super::event::{ErpRequest, EventKind, Extracted, GuardResults, InboundEvent, Reply, TraceEntry};
use super::phase::PhaseEvent;
use super::state::{ConversationState, FilledSlot, Journey, SlotSource, SlotValue};
use super::{EngineError, Forward};
use crate::flow::FlowSet;
use crate::flow::format::SlotType;
use crate::flow::graph::{ChoiceOption, Condition, Flow, OptionSource, SourceRef, StepKind};
use crate::flow::messages::Messages;

/// What should happen next, as a handler or a step says it; the driver's loop does it.
#[derive(Debug, Clone)]
pub enum Next {
    /// Nothing more this turn.
    Stay,
    /// Enter the journey's current step: move on if its work is done, ask its question
    /// otherwise (after the reason, when there is one).
    Enter(Option<String>),
    /// A transition: the journey moves to `step`, then enters it.
    Go {
        /// The target step.
        step: String,
        /// Why, for the trace.
        why: String,
        /// The flow line that made it.
        source: Option<SourceRef>,
        /// A reason said before the next question.
        reprompt: Option<String>,
    },
    /// Start a journey of `flow` (the one in front, if any, is put aside first), reading `text`
    /// for it.
    Start {
        /// The flow.
        flow: Arc<Flow>,
        /// The message that started it, read for its slots.
        text: Option<String>,
        /// Why, for the trace.
        why: String,
        /// Read the message with what the guards found for a digression.
        digression: bool,
    },
    /// Make the journey `id` put aside current again: saying so and asking its question when
    /// `announce`, or handling `then` against it (a press of one of its buttons).
    Resume {
        /// The journey.
        id: String,
        /// Why, for the trace.
        why: String,
        /// Say "Now, back to your request…".
        announce: bool,
        /// An event to handle once it is back.
        then: Option<EventKind>,
    },
    /// Handle this event again against the journey now in front (a press of a journey that was
    /// put aside, once it is back).
    Redo(EventKind),
    /// The journey in front ended (done or cancelled): the newest one put aside comes back.
    Ended,
    /// A journey could not be brought back (its flow changed): the next one aside, or the menu.
    Gone,
    /// The main menu.
    Menu(String),
    /// A person takes over.
    HandOff(String),
}

/// The turn under construction.
pub struct Turn<'a> {
    /// The flows.
    pub flows: &'a FlowSet,
    /// What the guards found.
    pub guards: &'a GuardResults,
    /// The event, as the engine reads it ([`super::as_read`]).
    pub event: &'a InboundEvent,
    /// The state before the turn.
    pub before: &'a ConversationState,
    /// The state being made.
    pub state: ConversationState,
    /// Replies, in order.
    pub replies: Vec<Reply>,
    /// ERP writes.
    pub erp: Vec<ErpRequest>,
    /// Events for other conversations.
    pub forwards: Vec<Forward>,
    /// What was decided.
    pub trace: Vec<TraceEntry>,
    /// The event's time (Unix seconds): the engine's only notion of "now".
    pub now: i64,
    /// Ask the next question another way (the stuck ladder's first rung).
    pub rephrase: bool,
    /// A file's caption corrects earlier answers ("AED 75" with a new receipt).
    pub correcting: bool,
    /// Read the message with what the guards found for the flow it may switch to.
    pub digressing: bool,
    /// Why a value the guards read was refused (an amount above what is due, a full time), for
    /// the reprompt.
    pub rejected: Option<String>,
    /// The options to offer again for a refused value (a full time's nearest free ones): slot →
    /// option ids.
    pub offer_instead: Option<(String, Vec<String>)>,
    /// Bookings this turn recorded against holds ([`super::capacity::booked`]).
    pub holds: Vec<super::capacity::HoldChange>,
}

impl<'a> Turn<'a> {
    /// A turn on `state` for `event`.
    pub fn new(
        flows: &'a FlowSet,
        guards: &'a GuardResults,
        state: &'a ConversationState,
        event: &'a InboundEvent,
    ) -> Self {
        Turn {
            flows,
            guards,
            event,
            before: state,
            state: state.clone(),
            replies: vec![],
            erp: vec![],
            forwards: vec![],
            trace: vec![],
            now: event.timestamp,
            rephrase: false,
            correcting: false,
            digressing: false,
            rejected: None,
            offer_instead: None,
            holds: vec![],
        }
    }

    /// Records a decision with the flow line that made it.
    pub fn note(&mut self, what: &str, detail: String, source: Option<SourceRef>) {
        self.trace.push(TraceEntry::new(what, detail, source));
    }

    /// Says a text.
    pub fn say(&mut self, body: String) {
        self.replies.push(Reply::Text { body });
    }

    /// The business's sentences.
    pub fn msg(&self) -> &'a Messages {
        &self.flows.business.messages
    }

    /// Feeds the phase machine; a refusal is recorded in the trace.
    pub fn phase(&mut self, event: PhaseEvent) {
        if let Err(why) = self.state.phase_mut().handle(event) {
            self.note("refused", why, None);
        }
    }

    /// The journey in front. Errors: none is (a bug in a handler, reported as such).
    pub fn journey(&self) -> Result<&Journey, EngineError> {
        self.state.journey.as_ref().ok_or(EngineError::NoJourney)
    }

    /// The journey in front, to change.
    pub fn journey_mut(&mut self) -> Result<&mut Journey, EngineError> {
        self.state.journey.as_mut().ok_or(EngineError::NoJourney)
    }

    /// The flow of the journey in front, at the version it runs on.
    pub fn flow(&self) -> Result<Arc<Flow>, EngineError> {
        let j = self.journey()?;
        self.flows.flow_of(j).cloned().ok_or_else(|| EngineError::UnknownFlow(j.flow.clone()))
    }

    /// The source line of the journey's current step.
    pub fn step_source(&self) -> Option<SourceRef> {
        let j = self.state.journey.as_ref()?;
        self.flows.flow_of(j)?.step(&j.step).map(|s| s.source.clone())
    }

    /// Fills a slot (and the customer's profile, for a profile slot).
    pub fn fill(&mut self, flow: &Flow, slot: &str, value: SlotValue, source: SlotSource, evidence: String) {
        let filled = FilledSlot { value: value.clone(), source, turn: self.state.turns };
        if flow.slots.get(slot).is_some_and(|s| s.profile) {
            self.state.profile.insert(slot.to_string(), filled.clone());
        }
        let Some(j) = self.state.journey.as_mut() else { return };
        let old = j.slots.insert(slot.to_string(), filled);
        let detail = match old {
            Some(o) if o.value != value => {
                format!("{slot} = {:?} (was {:?}), from {evidence}", value.display(), o.value.display())
            }
            _ => format!("{slot} = {:?}, from {evidence}", value.display()),
        };
        let src = flow.step_collecting(slot).map(|s| s.source.clone());
        self.note("fill", detail, src);
    }

    /// The current step got an answer: the stuck-state count starts again.
    pub fn progressed(&mut self) {
        if let Some(j) = self.state.journey.as_mut() {
            j.no_progress = 0;
            j.last_text = None;
        }
    }

    /// Fills the slots the guard phase found for `flow`: the current question's, empty ones, and
    /// (at the summary, or from a file's caption) corrections; a value the profile remembered
    /// gives way to what the customer says now. Returns how many slots were filled.
    pub fn apply_extracted(&mut self, flow: &Flow) -> usize {
        let alternative = self.guards.alternative.as_deref().filter(|a| a.flow.as_deref() == Some(flow.id.as_str()));
        let read = match alternative {
            Some(alt) if self.digressing => alt,
            _ if self.guards.flow.as_deref() == Some(flow.id.as_str()) => self.guards,
            Some(alt) => alt,
            None => return 0,
        };
        let Some(j) = self.state.journey.as_ref() else { return 0 };
        let current = flow.step(&j.step);
        let at_summary = matches!(current.map(|s| &s.kind), Some(StepKind::Confirm { .. })) || self.correcting;
        let focus: Vec<String> = match current.map(|s| &s.kind) {
            Some(StepKind::Collect { slots, .. }) => slots.clone(),
            _ => vec![],
        };
        let mut take: Vec<(String, Extracted)> = read
            .slots
            .iter()
            .filter(|(name, _)| flow.slots.contains_key(*name))
            .filter(|(name, ex)| {
                let existing = j.slots.get(*name);
                let remembered = existing.is_some_and(|e| e.source == SlotSource::Profile && e.value != ex.value);
                existing.is_none()
                    || focus.contains(name)
                    || remembered
                    || (at_summary && existing.is_some_and(|e| e.value != ex.value))
            })
            .map(|(n, e)| (n.clone(), e.clone()))
            .collect();
        // An amount may not exceed the amount of the option it pays (an invoice's amount due).
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
            rejected = Some(Messages::fill(
                &self.msg().amount_mismatch,
                &[("amount", &format!("{value:.2}")), ("due", &format!("{limit:.2}")), ("what", &what)],
            ));
            false
        });
        // A time whose window is full (or was just taken) is refused, with the nearest free ones.
        take.retain(|(name, ex)| {
            let Some(why) = super::capacity::refusal(self, flow, name, &ex.value) else { return true };
            rejected = Some(why);
            false
        });
        if let Some((name, ex)) =
            read.slots.iter().find(|(n, ex)| super::capacity::refusal(self, flow, n, &ex.value).is_some())
        {
            self.note("full", format!("{name} {:?} refused: its window is full", ex.value.display()), None);
            self.offer_instead = Some((name.clone(), super::capacity::nearest(self, flow, name, &ex.value)));
        }
        if rejected.is_some() {
            self.rejected = rejected;
        }
        let n = take.len();
        for (name, ex) in take {
            self.fill(flow, &name, ex.value, ex.source, format!("{:?} ({})", ex.evidence, source_name(ex.source)));
        }
        // A day named before the date and time is asked is kept for when it is.
        if let (Some(day), Some(j)) = (&read.day_mentioned, self.state.journey.as_mut()) {
            let open = flow.slots.values().any(|d| d.kind == SlotType::DateTime && !j.slots.contains_key(&d.name));
            if open {
                j.day_hint = Some(day.clone());
                self.note("day_hint", format!("day {day} kept for the date and time"), None);
            }
        }
        n
    }

    /// Renders the `{placeholders}` of a flow text: `{business}`, `{summary}`, any slot
    /// (`{slot}`, `{slot.description}`, `{slot.amount}`), `{erp.reference}`, `{erp.error}`.
    pub fn render(&self, flow: &Flow, text: &str) -> String {
        let mut out = text.replace("{business}", &self.flows.business.name);
        let Some(j) = &self.state.journey else { return out };
        if out.contains("{summary}") {
            let lines: Vec<String> = flow
                .slots
                .values()
                .filter_map(|s| j.slots.get(&s.name).map(|v| (s, v)))
                // The number a WhatsApp customer writes from is theirs already: not listed.
                .filter(|(_, v)| v.source != SlotSource::Channel)
                .map(|(s, v)| format!("• {}: {}", s.label, v.value.display()))
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
        out
    }

    /// A slot's options: static, or from this turn's lookups.
    pub fn options(&self, flow: &Flow, slot: &str) -> Vec<ChoiceOption> {
        slot_options(self.guards, flow, slot)
    }
}

/// A slot's options given the guard results (static ones need none).
pub fn slot_options(guards: &GuardResults, flow: &Flow, slot: &str) -> Vec<ChoiceOption> {
    match flow.slots.get(slot).map(|s| &s.options) {
        Some(OptionSource::Static(items)) => items.clone(),
        Some(OptionSource::Lookup(name)) => guards.lookups.get(name).cloned().unwrap_or_default(),
        _ => vec![],
    }
}

/// Whether a branch condition holds.
pub fn condition_holds(state: &ConversationState, j: &Journey, c: &Condition) -> bool {
    match c {
        Condition::Emotion(any) => any.contains(&state.mood),
        Condition::Stage(any) => any.contains(&state.stage),
        Condition::Equals { slot, value } => j.slots.get(slot).is_some_and(|s| s.value.id() == *value),
        Condition::NotEquals { slot, value } => j.slots.get(slot).is_none_or(|s| s.value.id() != *value),
        Condition::AtLeast { slot, value } => {
            j.slots.get(slot).and_then(|s| s.value.as_number()).is_some_and(|n| n >= *value)
        }
        Condition::Below { slot, value } => {
            j.slots.get(slot).and_then(|s| s.value.as_number()).is_some_and(|n| n < *value)
        }
    }
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
        SlotSource::Channel => "the number they write from",
    }
}

/// `flow/step` of the journey in front, or `-`.
pub fn step_label(state: &ConversationState) -> String {
    state.journey.as_ref().map(|j| format!("{}/{}", j.flow, j.step)).unwrap_or_else(|| "-".into())
}
