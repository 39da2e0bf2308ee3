//! The session life cycle as a statig state machine.
//!
//! Flows decide *what* to ask; this machine decides which life-cycle events are legal at all, so a
//! duplicated ERP answer or an ERP answer for a journey that was cancelled meanwhile is recognised
//! and ignored rather than applied. Handlers are synchronous and free of I/O (statig's async
//! futures are not `Send`, and a machine restored from storage would run entry actions again), so
//! this machine has no entry or exit actions at all.
//!
//! ```text
//!  idle ──JourneyStarted──▶ in_journey ──ErpRequested──▶ awaiting_erp
//!   ▲                          │  ▲                          │
//!   └──────JourneyEnded────────┘  └────────ErpSettled────────┘
//! ```

// statig generates the `State` enum (one variant per handler below) without doc comments.
#![allow(missing_docs)]

use serde::{Deserialize, Serialize};
use statig::prelude::*;

/// Life-cycle events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEvent {
    /// A journey began.
    JourneyStarted,
    /// A journey posted to the ERP and waits for its answer.
    ErpRequested,
    /// The ERP answered.
    ErpSettled,
    /// The journey ended (completed, failed or cancelled).
    JourneyEnded,
}

/// The machine's shared storage: it counts refused events, which the engine turns into trace
/// entries.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Events the current state did not accept since the last reset of this counter.
    #[serde(default)]
    pub refused: u32,
}

#[state_machine(initial = "State::idle()", state(derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)))]
impl Session {
    #[state]
    fn idle(&mut self, event: &SessionEvent) -> Outcome<State> {
        match event {
            SessionEvent::JourneyStarted => Transition(State::in_journey()),
            _ => {
                self.refused += 1;
                Handled
            }
        }
    }

    #[state]
    fn in_journey(&mut self, event: &SessionEvent) -> Outcome<State> {
        match event {
            SessionEvent::ErpRequested => Transition(State::awaiting_erp()),
            SessionEvent::JourneyEnded => Transition(State::idle()),
            SessionEvent::JourneyStarted => Handled,
            SessionEvent::ErpSettled => {
                self.refused += 1;
                Handled
            }
        }
    }

    #[state]
    fn awaiting_erp(&mut self, event: &SessionEvent) -> Outcome<State> {
        match event {
            SessionEvent::ErpSettled => Transition(State::in_journey()),
            SessionEvent::JourneyEnded => Transition(State::idle()),
            _ => {
                self.refused += 1;
                Handled
            }
        }
    }
}

/// The stored life-cycle machine.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionMachine(pub StateMachine<Session>);

impl Default for SessionMachine {
    fn default() -> Self {
        SessionMachine(Session::default().state_machine())
    }
}

/// The life-cycle phase, as plain data for records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// No journey.
    Idle,
    /// In a journey.
    InJourney,
    /// Waiting for the ERP.
    AwaitingErp,
}

impl std::fmt::Debug for SessionMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SessionMachine({:?})", self.phase())
    }
}

impl SessionMachine {
    /// Feeds an event; returns whether the current state accepted it.
    pub fn accept(&mut self, event: SessionEvent) -> bool {
        let before = self.0.inner().refused;
        self.0.handle(&event);
        self.0.inner().refused == before
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        match self.0.state() {
            State::Idle {} => Phase::Idle,
            State::InJourney {} => Phase::InJourney,
            State::AwaitingErp {} => Phase::AwaitingErp,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_an_erp_answer_nobody_waits_for() {
        let mut m = SessionMachine::default();
        assert!(!m.accept(SessionEvent::ErpSettled));
        assert!(m.accept(SessionEvent::JourneyStarted));
        assert!(m.accept(SessionEvent::ErpRequested));
        assert_eq!(m.phase(), Phase::AwaitingErp);
        assert!(m.accept(SessionEvent::ErpSettled));
        assert!(!m.accept(SessionEvent::ErpSettled), "a duplicate answer is refused");
        let stored = serde_json::to_string(&m).unwrap();
        let mut back: SessionMachine = serde_json::from_str(&stored).unwrap();
        assert_eq!(back.phase(), Phase::InJourney);
        assert!(back.accept(SessionEvent::JourneyEnded));
        assert_eq!(back.phase(), Phase::Idle);
    }
}
