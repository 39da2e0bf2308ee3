//! People in the conversation: an agent takes over, writes, and gives it back; while a person
//! has it, the bot stays silent.

use super::EventKind;
use super::phase::{Handoff, PhaseEvent};
use super::turn::{Next, Turn};
use crate::flow::messages::Messages;

/// Something of this conversation was set aside unread (see [`EventKind::SetAside`]): the
/// customer is told a person will look at it, and the conversation is handed to one (unless a
/// person has it already).
pub fn on_set_aside(t: &mut Turn<'_>) -> Next {
    let EventKind::SetAside { what, quarantine_id, error } = &t.event.kind else { return Next::Stay };
    let reason = format!("{what} set aside unread (quarantine {quarantine_id}): {error}");
    t.note("set_aside", reason.clone(), None);
    if t.state.handoff().is_none() {
        let handoff = Handoff { since: t.now, reason, agent: None };
        t.phase(PhaseEvent::HandOff(handoff));
    }
    t.say(t.msg().message_set_aside.clone());
    Next::Stay
}

/// An agent's action (from the admin API).
pub fn on_agent(t: &mut Turn<'_>) -> Next {
    match &t.event.kind {
        EventKind::AgentTakeover { agent } => {
            let handoff = Handoff { since: t.now, reason: "agent took over".into(), agent: Some(agent.clone()) };
            t.phase(PhaseEvent::HandOff(handoff));
            t.note("handoff", format!("{agent} took the conversation over"), None);
            t.say(Messages::fill(&t.msg().agent_joined, &[("agent", agent)]));
            Next::Stay
        }
        EventKind::AgentMessage { agent, text } => {
            if t.state.handoff().is_none() {
                let handoff = Handoff { since: t.now, reason: "agent wrote".into(), agent: Some(agent.clone()) };
                t.phase(PhaseEvent::HandOff(handoff));
            }
            t.note("agent_message", format!("{agent} wrote to the customer"), None);
            t.say(text.clone());
            Next::Stay
        }
        EventKind::AgentRelease { agent } => {
            let since = t.state.handoff().map(|h| h.since);
            t.phase(PhaseEvent::Released);
            t.note("release", format!("{agent} gave the conversation back (handed off since {since:?})"), None);
            t.say(t.msg().agent_left.clone());
            // A journey whose ERP write is still under way goes back to waiting for it (entering
            // its step again would write twice).
            let waiting = t.flow().ok().and_then(|f| {
                let step = t.state.journey.as_ref().and_then(|j| f.step(&j.step)).cloned()?;
                match step.kind {
                    crate::flow::graph::StepKind::Erp { action, .. } => Some(action),
                    _ => None,
                }
            });
            match (t.state.journey.as_mut(), waiting) {
                (Some(_), Some(action)) => {
                    t.phase(PhaseEvent::ErpRequested(action));
                    Next::Stay
                }
                (Some(j), None) => {
                    j.no_progress = 0;
                    j.last_text = None;
                    j.recovered = 0;
                    Next::Enter(None)
                }
                (None, _) => Next::Menu("after a hand-off".into()),
            }
        }
        _ => Next::Stay,
    }
}

/// A customer's message while a person has the conversation: recorded, not answered.
pub fn while_handed_off(t: &mut Turn<'_>) -> Next {
    t.note("handed_off", "a person has this conversation; the bot stays silent".into(), None);
    Next::Stay
}
