//! The conversation's phase: a statig machine whose states carry the data valid in them.
//!
//! ```text
//!                 ┌──────────────────────────── in a journey ───────────────────────────────┐
//!   idle ─Asking─▶│ collecting{step, day} ─AskValue─▶ confirming_value{step, value}          │
//!    ▲            │      │  ▲ ValueAnswered ◀──────────────┘                                 │
//!    │            │   Summary ──▶ at_summary ─ChangeMenu─▶ choosing_change                   │
//!    │            │   ErpRequested ──▶ awaiting_erp{action} ─ErpSettled─▶ moving ─▶ …        │
//!    └────Left────┴──────────────────────────────────────────────────────────────────────────┘
//!   any ─HandOff─▶ handed_off{since, reason, agent} ─Released─▶ idle
//! ```
//!
//! The driver loop feeds the machine as it moves the journey (a question asked, a summary shown,
//! an ERP write queued) and dispatches each inbound event by the phase: a person has the
//! conversation (silence), the ERP answer is awaited (a word to wait), a value waits for a yes,
//! the summary is open, a question is open, or nothing is. An event a phase does not accept (an
//! ERP answer nobody awaits, a second summary while a change is being chosen) is refused by the
//! machine and recorded in the turn's trace.
//!
//! Handlers are synchronous and free of I/O (statig's async futures are not `Send`, and a machine
//! restored from storage would run entry actions again), so there are no entry or exit actions.

// statig generates the `State` and `Superstate` enums (one variant per handler) without docs.
#![allow(missing_docs)]

use serde::{Deserialize, Serialize};
use statig::prelude::*;

use super::state::PendingValue;

/// A hand-off to a person: the data of the `handed_off` phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Handoff {
    /// Unix seconds.
    pub since: i64,
    /// Why: "the customer asked for a person", "stuck at booking/name", "agent took over"…
    pub reason: String,
    /// The agent who took it, when one did.
    #[serde(default)]
    pub agent: Option<String>,
}

/// What the driver did or is about to do, for the phase machine.
#[derive(Debug, Clone, PartialEq)]
pub enum PhaseEvent {
    /// The journey in front asks the question of a collect step (its id).
    Asking(String),
    /// The customer gave a day without a time (`YYYY-MM-DD`): the time is asked next.
    DayOnly(String),
    /// A value read but not sure waits for the customer's yes.
    AskValue(PendingValue),
    /// The customer answered the value waiting (yes or no).
    ValueAnswered,
    /// The journey shows its summary.
    Summary,
    /// The summary's "what to change?" list opened.
    ChangeMenu,
    /// An ERP write was queued (the action's name).
    ErpRequested(String),
    /// The ERP answered.
    ErpSettled,
    /// No journey is in front any more (it ended, was cancelled, put aside or moved away).
    Left,
    /// A person takes over.
    HandOff(Handoff),
    /// The person gives the conversation back.
    Released,
}

impl PhaseEvent {
    fn name(&self) -> &'static str {
        match self {
            PhaseEvent::Asking(_) => "asking",
            PhaseEvent::DayOnly(_) => "day_only",
            PhaseEvent::AskValue(_) => "ask_value",
            PhaseEvent::ValueAnswered => "value_answered",
            PhaseEvent::Summary => "summary",
            PhaseEvent::ChangeMenu => "change_menu",
            PhaseEvent::ErpRequested(_) => "erp_requested",
            PhaseEvent::ErpSettled => "erp_settled",
            PhaseEvent::Left => "left",
            PhaseEvent::HandOff(_) => "hand_off",
            PhaseEvent::Released => "released",
        }
    }
}

/// The machine (its phases hold all its data; it has no shared storage). Refusals go to the
/// context of each call: the words the trace records.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Phases;

fn refuse(context: &mut Vec<String>, phase: &str, event: &PhaseEvent) -> Outcome<State> {
    context.push(format!("{} refused while {phase}", event.name()));
    Handled
}

#[state_machine(
    initial = "State::idle()",
    state(derive(Debug, Clone, PartialEq, Serialize, Deserialize)),
    superstate(derive(Debug))
)]
impl Phases {
    /// No journey in front.
    #[state]
    fn idle(context: &mut Vec<String>, event: &PhaseEvent) -> Outcome<State> {
        match event {
            PhaseEvent::Asking(step) => Transition(State::collecting(step.clone(), None)),
            PhaseEvent::Summary => Transition(State::at_summary()),
            PhaseEvent::ErpRequested(action) => Transition(State::awaiting_erp(action.clone())),
            PhaseEvent::HandOff(h) => Transition(State::handed_off(h.clone())),
            PhaseEvent::Left => Handled,
            e => refuse(context, "idle", e),
        }
    }

    /// A journey is in front.
    #[superstate]
    fn in_journey(context: &mut Vec<String>, event: &PhaseEvent) -> Outcome<State> {
        match event {
            PhaseEvent::Asking(step) => Transition(State::collecting(step.clone(), None)),
            PhaseEvent::Summary => Transition(State::at_summary()),
            PhaseEvent::ErpRequested(action) => Transition(State::awaiting_erp(action.clone())),
            PhaseEvent::Left => Transition(State::idle()),
            PhaseEvent::HandOff(h) => Transition(State::handed_off(h.clone())),
            e => refuse(context, "in a journey", e),
        }
    }

    /// Passing from step to step within this turn (after the ERP answered).
    #[state(superstate = "in_journey")]
    fn moving(event: &PhaseEvent) -> Outcome<State> {
        let _ = event;
        Super
    }

    /// A collect step's question is open; `pending_day` is a day given without a time.
    #[state(superstate = "in_journey")]
    fn collecting(step: &mut String, pending_day: &mut Option<String>, event: &PhaseEvent) -> Outcome<State> {
        match event {
            // The same question asked again keeps the day given; another question starts afresh.
            PhaseEvent::Asking(s) if s == step => Handled,
            PhaseEvent::DayOnly(day) => {
                *pending_day = Some(day.clone());
                Handled
            }
            PhaseEvent::AskValue(p) => Transition(State::confirming_value(step.clone(), p.clone())),
            _ => Super,
        }
    }

    /// A value read but not sure waits for the customer's yes ("is “near the mall” your
    /// address?").
    #[allow(clippy::ptr_arg)] // statig hands state-local storage over as `&mut` of its type
    #[state(superstate = "in_journey")]
    fn confirming_value(
        context: &mut Vec<String>,
        step: &mut String,
        pending: &mut PendingValue,
        event: &PhaseEvent,
    ) -> Outcome<State> {
        let _ = pending;
        match event {
            PhaseEvent::ValueAnswered => Transition(State::collecting(step.clone(), None)),
            PhaseEvent::DayOnly(_) | PhaseEvent::AskValue(_) => refuse(context, "a value waits for yes or no", event),
            _ => Super,
        }
    }

    /// The summary with Confirm / Change / Cancel is open.
    #[state(superstate = "in_journey")]
    fn at_summary(context: &mut Vec<String>, event: &PhaseEvent) -> Outcome<State> {
        match event {
            PhaseEvent::Summary => Handled,
            PhaseEvent::ChangeMenu => Transition(State::choosing_change()),
            PhaseEvent::DayOnly(_) | PhaseEvent::AskValue(_) => refuse(context, "at the summary", event),
            _ => Super,
        }
    }

    /// The summary's "what would you like to change?" list is open.
    #[state(superstate = "in_journey")]
    fn choosing_change(context: &mut Vec<String>, event: &PhaseEvent) -> Outcome<State> {
        match event {
            PhaseEvent::ChangeMenu => Handled,
            PhaseEvent::DayOnly(_) | PhaseEvent::AskValue(_) => refuse(context, "choosing what to change", event),
            _ => Super,
        }
    }

    /// An ERP write is under way; the journey waits for its answer.
    #[state(superstate = "in_journey")]
    fn awaiting_erp(context: &mut Vec<String>, action: &mut String, event: &PhaseEvent) -> Outcome<State> {
        let _ = action;
        match event {
            PhaseEvent::ErpSettled => Transition(State::moving()),
            PhaseEvent::Left | PhaseEvent::HandOff(_) => Super,
            e => refuse(context, "awaiting the ERP", e),
        }
    }

    /// A person has the conversation; the bot stays silent.
    #[state]
    fn handed_off(context: &mut Vec<String>, handoff: &mut Handoff, event: &PhaseEvent) -> Outcome<State> {
        match event {
            PhaseEvent::Released => Transition(State::idle()),
            // An agent taking over a hand-off the bot made: who has it now.
            PhaseEvent::HandOff(h) => {
                *handoff = h.clone();
                Handled
            }
            PhaseEvent::Left => Handled,
            e => refuse(context, "handed to a person", e),
        }
    }
}

/// The stored phase machine (serialised with the conversation state).
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PhaseMachine(StateMachine<Phases>);

impl Default for PhaseMachine {
    fn default() -> Self {
        PhaseMachine(Phases.state_machine())
    }
}

impl std::fmt::Debug for PhaseMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PhaseMachine({:?})", self.0.state())
    }
}

impl PartialEq for PhaseMachine {
    fn eq(&self, other: &Self) -> bool {
        self.0.state() == other.0.state()
    }
}

impl PhaseMachine {
    /// Feeds an event. Errors: why the current phase refused it ("erp_settled refused while
    /// idle"), for the trace; the phase is then unchanged.
    pub fn handle(&mut self, event: PhaseEvent) -> Result<(), String> {
        let mut refused = Vec::new();
        self.0.handle_with_context(&event, &mut refused);
        match refused.pop() {
            Some(why) => Err(why),
            None => Ok(()),
        }
    }

    /// The current phase, with its data.
    pub fn state(&self) -> &State {
        self.0.state()
    }

    /// The hand-off, while a person has the conversation.
    pub fn handoff(&self) -> Option<&Handoff> {
        match self.0.state() {
            State::HandedOff { handoff } => Some(handoff),
            _ => None,
        }
    }

    /// A short name of the phase, for records ("collecting", "awaiting_erp"…).
    pub fn name(&self) -> &'static str {
        match self.0.state() {
            State::Idle {} => "idle",
            State::Moving {} => "moving",
            State::Collecting { .. } => "collecting",
            State::ConfirmingValue { .. } => "confirming_value",
            State::AtSummary {} => "at_summary",
            State::ChoosingChange {} => "choosing_change",
            State::AwaitingErp { .. } => "awaiting_erp",
            State::HandedOff { .. } => "handed_off",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handoff() -> Handoff {
        Handoff { since: 1, reason: "asked".into(), agent: None }
    }

    #[test]
    fn a_booking_walks_through_its_phases() {
        let mut m = PhaseMachine::default();
        assert!(m.handle(PhaseEvent::Asking("name".into())).is_ok());
        assert_eq!(m.name(), "collecting");
        assert!(m.handle(PhaseEvent::DayOnly("2026-12-08".into())).is_ok());
        assert!(matches!(m.state(), State::Collecting { pending_day: Some(d), .. } if d == "2026-12-08"));
        assert!(m.handle(PhaseEvent::Asking("name".into())).is_ok(), "the same question keeps the day");
        assert!(matches!(m.state(), State::Collecting { pending_day: Some(_), .. }));
        assert!(m.handle(PhaseEvent::Asking("car".into())).is_ok());
        assert!(matches!(m.state(), State::Collecting { pending_day: None, .. }), "another question starts afresh");
        assert!(m.handle(PhaseEvent::Summary).is_ok());
        assert!(m.handle(PhaseEvent::ChangeMenu).is_ok());
        assert_eq!(m.name(), "choosing_change");
        assert!(m.handle(PhaseEvent::Summary).is_ok());
        assert!(m.handle(PhaseEvent::ErpRequested("create_booking".into())).is_ok());
        assert_eq!(m.name(), "awaiting_erp");
        assert!(m.handle(PhaseEvent::ErpSettled).is_ok());
        assert!(m.handle(PhaseEvent::ErpSettled).is_err(), "a second answer is refused");
        assert!(m.handle(PhaseEvent::Left).is_ok());
        assert_eq!(m.name(), "idle");
    }

    #[test]
    fn what_a_phase_does_not_accept_is_refused_and_told() {
        let mut m = PhaseMachine::default();
        assert!(m.handle(PhaseEvent::ErpSettled).is_err(), "nobody awaits the ERP");
        let _ = m.handle(PhaseEvent::ErpRequested("create_booking".into()));
        assert!(m.handle(PhaseEvent::Asking("name".into())).is_err(), "no question while the ERP works");
        assert!(m.handle(PhaseEvent::Summary).is_err());
        assert_eq!(m.handle(PhaseEvent::ErpSettled), Ok(()));
        assert_eq!(m.handle(PhaseEvent::ErpSettled), Err("erp_settled refused while in a journey".into()));
    }

    #[test]
    fn a_person_holds_the_conversation_until_released_and_it_survives_storage() {
        let mut m = PhaseMachine::default();
        let _ = m.handle(PhaseEvent::Asking("name".into()));
        let _ = m.handle(PhaseEvent::HandOff(handoff()));
        assert!(m.handoff().is_some());
        assert!(m.handle(PhaseEvent::Summary).is_err(), "the bot does not move while a person has it");
        let stored = serde_json::to_string(&m).unwrap();
        let mut back: PhaseMachine = serde_json::from_str(&stored).unwrap();
        assert_eq!(back.handoff().map(|h| h.reason.as_str()), Some("asked"));
        assert!(back.handle(PhaseEvent::Released).is_ok());
        assert_eq!(back.name(), "idle");
    }

    #[test]
    fn a_value_waits_for_its_answer() {
        let mut m = PhaseMachine::default();
        let _ = m.handle(PhaseEvent::Asking("address".into()));
        let pending = PendingValue {
            slot: "address".into(),
            value: crate::engine::SlotValue::Text { value: "near the mall".into() },
            evidence: "near the mall".into(),
        };
        assert!(m.handle(PhaseEvent::AskValue(pending)).is_ok());
        assert_eq!(m.name(), "confirming_value");
        assert!(m.handle(PhaseEvent::DayOnly("2026-12-08".into())).is_err());
        assert!(m.handle(PhaseEvent::ValueAnswered).is_ok());
        assert!(matches!(m.state(), State::Collecting { step, .. } if step == "address"));
    }
}
