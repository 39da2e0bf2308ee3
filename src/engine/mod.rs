//! The engine: conversation state and the pure transition function.
//!
//! A turn is `(state, event, guard results) → (new state, replies, ERP requests, trace)`.
//! [`decide`] does no I/O and reads no clock: everything it needs from the outside world (what a
//! typed message means, the catalog, the offered visit times) arrives as [`GuardResults`], computed
//! beforehand from the [`GuardPlan`] that [`plan`] makes. Replaying a stored turn gives the same
//! result, which is what makes crash recovery, `explain`, `replay` and regression tests from
//! transcripts possible. The engine knows nothing of HTTP, SQL or WhatsApp's wire format.
//!
//! How a turn is decided (`driver.rs`, one screen):
//!
//! ```text
//! decide ─▶ begin (count, mood, phase, repair)
//!        ─▶ dispatch by phase ([`phase`]: idle, collecting, confirming_value, at_summary,
//!           choosing_change, awaiting_erp, handed_off) ─▶ a handler returns Next
//!        ─▶ run: Enter / Go / Start / Resume / Ended / Menu / HandOff … until Stay
//!        ─▶ finish (upset, held questions, stage, reminder, repeated question)
//! ```
//!
//! Handlers by phase: `idle.rs` (no journey), `collecting.rs` (a question is open),
//! `summary.rs` (the summary), `awaiting.rs` (the ERP), `people.rs` (a person), `press.rs`
//! (a button of the journey), `anywhere.rs` (wake-ups, opting out, edits); `notices.rs` for
//! notifications. What the loop does: `steps.rs` (entering a step), `tasks.rs` (journeys put
//! aside), `recovery.rs` (the stuck ladder, hand-offs). None of them calls the loop: they return
//! [`turn::Next`].

pub mod answers;
pub mod anywhere;
pub mod awaiting;
pub mod buttons;
pub mod capacity;
pub mod collecting;
pub mod driver;
pub mod event;
pub mod idle;
pub mod notices;
pub mod people;
pub mod phase;
pub mod plan;
pub mod press;
pub mod recovery;
pub mod replies;
pub mod state;
pub mod steps;
pub mod summary;
pub mod tasks;
pub mod turn;
pub mod visits;
pub mod web;
pub mod words;

use serde::{Deserialize, Serialize};

pub use driver::decide;
pub use event::{
    ErpRequest, EventKind, Extracted, GuardResults, GuardRun, InboundEvent, Reply, ReplyOption, TraceEntry,
    Understanding,
};
pub use phase::{Handoff, PhaseMachine};
pub use plan::{GuardPlan, as_read, plan};
pub use state::{Carried, ConversationState, FilledSlot, Journey, PendingValue, SlotSource, SlotValue};
pub use tasks::MAX_SUSPENDED;
pub use turn::slot_options;

use crate::flow::graph::SourceRef;

/// The least confidence at which the intent guard's reading starts a journey.
pub const MIN_INTENT_CONFIDENCE: f64 = 0.6;

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
        "engine.unknown_step: flow {flow:?} has no step {step:?}; a transition names a step that does not exist (flows check refuses this in a file: report it)"
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
    /// A handler needed a journey in front and none was (a bug in the engine).
    #[error("engine.no_journey: a step handler ran with no journey in front; report this as a bug")]
    NoJourney,
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
            EngineError::NoJourney => "engine.no_journey",
        }
    }
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
    /// Places this turn holds, books and lets go ([`capacity`]), applied in its commit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holds: Vec<capacity::HoldChange>,
    /// Questions whose answer a person should review ([`answers`]), queued in this turn's commit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<answers::QuestionFlag>,
}

/// An event for another conversation: of the same business number, or of `phone_number_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forward {
    /// The customer (WhatsApp id) whose conversation receives it.
    pub customer: String,
    /// The event.
    pub event: InboundEvent,
    /// Another business number's conversation (a website chat carried over to WhatsApp); the
    /// same number's when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number_id: Option<String>,
}
