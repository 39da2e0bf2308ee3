//! The transition function: one loop. [`decide`] reads the event, asks the handler of the
//! conversation's phase what should happen, and does it, asking again what follows, until
//! something needs the customer. Only this loop moves the conversation between steps, journeys
//! and the menu; handlers and steps say what should happen ([`Next`]).

use super::event::{EventKind, InboundEvent};
use super::phase::{PhaseEvent, State as Phase};
use super::state::ConversationState;
use super::turn::{Next, Turn, step_label};
use super::visits;
use super::words::{
    CANCEL_WORDS, MENU_WORDS, OPEN_TASKS_WORDS, OPT_IN_WORDS, PERSON_WORDS, RESTART_WORDS, asks_to_opt_out, has_any,
    is_one_of,
};
use super::{
    Decision, EngineError, GuardResults, Reply, anywhere, as_read, awaiting, buttons, collecting, idle, notices,
    people, press, recovery, steps, summary, tasks,
};
use crate::flow::FlowSet;
use crate::flow::graph::{Emotion, Stage, StepKind};

/// Moves in one turn before the engine gives up on a flow that goes round in circles.
const MAX_MOVES: usize = 64;

/// Decides one turn. Pure: no I/O, no clock; replaying a stored event with its stored guard
/// results gives the same decision.
///
/// Errors: [`EngineError`] when the stored state or a flow is inconsistent (a bug, not customer
/// input); the caller records the turn as failed and the customer gets an apology.
pub fn decide(
    flows: &FlowSet,
    state: &ConversationState,
    event: &InboundEvent,
    guards: &GuardResults,
) -> Result<Decision, EngineError> {
    let event = &as_read(flows, state, event, guards.transcript.as_deref());
    let mut t = Turn::new(flows, guards, state, event);
    begin(&mut t);
    let first = match super::capacity::lapsed(&mut t) {
        Some(next) => next,
        None => dispatch(&mut t)?,
    };
    run(&mut t, first)?;
    Ok(finish(t))
}

/// Who handles the event, in this phase; returns what they say should happen.
fn dispatch(t: &mut Turn<'_>) -> Result<Next, EngineError> {
    let kind = t.event.kind.clone();
    if kind.is_notification() {
        return Ok(notices::on_notification(t));
    }
    if t.event.throttled {
        t.note("throttled", "the sender exceeded its rate limit; the message is kept but not answered".into(), None);
        return Ok(Next::Stay);
    }
    match &kind {
        EventKind::AgentTakeover { .. } | EventKind::AgentMessage { .. } | EventKind::AgentRelease { .. } => {
            return Ok(people::on_agent(t));
        }
        EventKind::Tick => return Ok(anywhere::on_tick(t)),
        EventKind::ErpDelayed { .. } => return Ok(awaiting::on_delay(t)),
        EventKind::ErpOutcome { .. } => return awaiting::on_outcome(t),
        EventKind::SetAside { .. } => return Ok(people::on_set_aside(t)),
        EventKind::TicketReply { .. } => return Ok(super::replies::on_ticket_reply(t)),
        EventKind::JoinedFromWeb { .. } => return Ok(super::web::on_joined(t)),
        EventKind::ContinuedOnWhatsApp { .. } => return Ok(super::web::on_continued(t)),
        _ => {}
    }
    // The customer's own messages.
    if t.state.handoff().is_some() {
        return Ok(people::while_handed_off(t));
    }
    let in_journey = t.state.journey.is_some();
    let phase = t.state.phase().state().clone();
    if let EventKind::Choice { id, .. } = &kind {
        if let Some(pressed) = visits::parse(id) {
            return Ok(visits::on_press(t, pressed));
        }
    }
    if let (EventKind::Text { body }, false) = (&kind, in_journey) {
        if let Some(next) = visits::typed_rating(t, body) {
            return Ok(next);
        }
    }
    Ok(match (&kind, &phase) {
        (EventKind::Choice { id, .. }, _) if id == buttons::PERSON => {
            Next::HandOff("the customer asked for a person".into())
        }
        (EventKind::Text { body }, _) if has_any(body, PERSON_WORDS) => {
            Next::HandOff("the customer asked for a person".into())
        }
        (EventKind::Text { body }, _) if asks_to_opt_out(body, in_journey) => anywhere::opt_out(t),
        (EventKind::Text { body }, _) if t.state.opted_out && is_one_of(body, OPT_IN_WORDS) => anywhere::opt_in(t),
        (EventKind::Reaction { emoji }, _) => {
            t.note("ignored", format!("reaction {emoji:?} needs no answer"), None);
            Next::Stay
        }
        (EventKind::Edited { .. }, _) => anywhere::on_edit(t)?,
        (_, Phase::AwaitingErp { .. }) => awaiting::while_waiting(t)?,
        (EventKind::Text { body }, _) if is_one_of(body, OPEN_TASKS_WORDS) => tasks::list_open(t),
        (EventKind::Choice { id, .. }, _) if buttons::task_id(id).is_some() => {
            tasks::on_pick(t, buttons::task_id(id).unwrap_or_default())
        }
        (EventKind::Choice { id, .. }, _) if buttons::menu_flow(id).is_some() => {
            match buttons::menu_flow(id).and_then(|f| t.flows.flow(f).cloned()) {
                Some(flow) => idle::start_from_menu(t, flow),
                None => {
                    t.say(t.msg().stale_button.clone());
                    if in_journey { Next::Enter(None) } else { Next::Menu("a menu button of a journey removed".into()) }
                }
            }
        }
        (EventKind::Text { body }, _) if in_journey && is_one_of(body, RESTART_WORDS) => anywhere::restart(t),
        (EventKind::Text { body }, _) if in_journey && is_one_of(body, MENU_WORDS) => anywhere::to_menu(t),
        // No journey in front.
        (EventKind::Text { body }, _) if !in_journey => idle::on_text(t, body),
        (EventKind::Choice { id, title }, _) if !in_journey => idle::on_press(t, id, title),
        (EventKind::Location { .. }, _) if !in_journey => idle::on_location(t),
        // A journey in front.
        (EventKind::Choice { id, title }, _) => press::on_press(t, id, title)?,
        (EventKind::Location { .. }, _) => collecting::on_location(t)?,
        (EventKind::Media { media_type, .. }, _) if matches!(media_type.as_str(), "image" | "document") => {
            match t.flow().ok().and_then(|f| collecting::media_slot(t, &f)) {
                Some(slot) => collecting::on_file(t, &slot)?,
                None => anywhere::unusable(t),
            }
        }
        (EventKind::Text { body }, Phase::AtSummary {} | Phase::ChoosingChange {}) => summary::on_text(t, body)?,
        (EventKind::Text { body }, _) if is_one_of(body, CANCEL_WORDS) => {
            collecting::cancel(t, "customer typed a cancel word")
        }
        (EventKind::Text { body }, _) => collecting::on_text(t, body)?,
        _ => anywhere::unusable(t),
    })
}

/// Does what `next` says, and what follows, until something needs the customer.
fn run(t: &mut Turn<'_>, mut next: Next) -> Result<(), EngineError> {
    for _ in 0..MAX_MOVES {
        next = match next {
            Next::Stay => return Ok(()),
            Next::Enter(reprompt) => steps::enter(t, reprompt)?,
            Next::Go { step, why, source, reprompt } => {
                move_to(t, &step, &why, source)?;
                Next::Enter(reprompt)
            }
            Next::Start { flow, text, why, digression } => tasks::start(t, &flow, text.as_deref(), &why, digression)?,
            Next::Resume { id, why, announce, then } => tasks::resume(t, &id, &why, announce, then)?,
            Next::Redo(EventKind::Choice { id, title }) => press::on_press(t, &id, &title)?,
            Next::Redo(_) => Next::Stay,
            Next::Ended => tasks::after_end(t, false),
            Next::Gone => tasks::after_end(t, true),
            Next::Menu(why) => {
                idle::menu(t, &why);
                Next::Stay
            }
            Next::HandOff(reason) => {
                recovery::hand_off(t, reason);
                Next::Stay
            }
        };
    }
    let j = t.state.journey.as_ref();
    Err(EngineError::TransitionLoop {
        flow: j.map(|j| j.flow.clone()).unwrap_or_default(),
        step: j.map(|j| j.step.clone()).unwrap_or_default(),
        steps: MAX_MOVES,
    })
}

/// A transition: the journey moves to `target`; the stuck count starts again there.
fn move_to(
    t: &mut Turn<'_>,
    target: &str,
    why: &str,
    source: Option<crate::flow::graph::SourceRef>,
) -> Result<(), EngineError> {
    let flow = t.flow()?;
    if flow.step(target).is_none() {
        return Err(EngineError::UnknownStep { flow: flow.id.clone(), step: target.to_string() });
    }
    let now = t.now;
    let j = t.journey_mut()?;
    let from = std::mem::replace(&mut j.step, target.to_string());
    j.no_progress = 0;
    j.last_text = None;
    j.step_since = now;
    j.recovered = 0;
    let edge_from = if why.starts_with("change requested") { "(change)".to_string() } else { from.clone() };
    t.note("transition", format!("{from} → {target} ({why})"), source);
    if let Some(last) = t.trace.last_mut() {
        last.edge = Some((edge_from, target.to_string()));
    }
    Ok(())
}

/// Before any handler: the turn is counted, the customer's mood read, the phase derived for a
/// state stored before phases were kept, and a journey whose flow or step an edit removed is
/// moved somewhere sensible (told politely) instead of failing forever.
fn begin(t: &mut Turn<'_>) {
    t.state.turns += 1;
    if t.event.kind.from_customer() {
        // The menu's stuck ladder counts unmatched messages in a row; anything else resets it.
        t.state.unmatched = None;
        t.state.last_customer_at = t.event.timestamp;
        match &t.guards.understanding {
            Some(u) => {
                t.state.mood = u.emotion;
                t.state.upset |= u.emotion.is_upset();
            }
            None if matches!(t.event.kind, EventKind::Text { .. }) => t.state.mood = Emotion::Neutral,
            None => {}
        }
    }
    repair_journeys(t);
    let derived = t.state.phase.is_none();
    t.state.phase_mut();
    if derived || matches!(t.state.phase().state(), Phase::Idle {}) {
        // A journey in front with an idle phase: a state from before phases were kept, or one
        // just repaired. Its step says where it is.
        if let Some(j) = t.state.journey.clone() {
            let kind = t.flow().ok().and_then(|f| f.step(&j.step).map(|s| s.kind.clone()));
            match kind {
                Some(StepKind::Collect { .. }) => t.phase(PhaseEvent::Asking(j.step.clone())),
                Some(StepKind::Confirm { .. }) => t.phase(PhaseEvent::Summary),
                Some(StepKind::Erp { action, .. }) => t.phase(PhaseEvent::ErpRequested(action)),
                _ => {}
            }
        }
    }
}

/// Journeys whose flow is gone are dropped; journeys whose step is gone are moved to the first
/// question still open (or the summary, or the start). The customer is told once.
fn repair_journeys(t: &mut Turn<'_>) {
    let flows = t.flows;
    let state_before = t.before;
    let mut told = None;
    let mut fix = |j: &mut super::Journey, trace: &mut Vec<super::TraceEntry>| -> bool {
        let Some(flow) = flows.flow_of(j) else {
            trace.push(super::TraceEntry::new(
                "dropped",
                format!("journey {} v{} can no longer carry on: its flow is not loaded", j.flow, j.version),
                None,
            ));
            told = Some(false);
            return false;
        };
        if flow.step(&j.step).is_none() {
            let target = nearest_question(flow, j, state_before);
            trace.push(super::TraceEntry::new(
                "moved",
                format!("step {} of {} v{} no longer exists; moved to {target}", j.step, j.flow, j.version),
                flow.step(&target).map(|s| s.source.clone()),
            ));
            j.step = target;
            j.no_progress = 0;
            told = told.or(Some(true));
        }
        true
    };
    if let Some(mut j) = t.state.journey.take() {
        if fix(&mut j, &mut t.trace) {
            t.state.journey = Some(j);
        } else {
            let _ = t.state.phase_mut().handle(PhaseEvent::Left);
        }
    }
    let mut kept = Vec::new();
    for mut j in std::mem::take(&mut t.state.suspended) {
        if fix(&mut j, &mut t.trace) {
            kept.push(j);
        }
    }
    t.state.suspended = kept;
    match told {
        Some(true) => {
            if t.state.journey.is_some() && !matches!(t.state.phase().state(), Phase::HandedOff { .. }) {
                let _ = t.state.phase_mut().handle(PhaseEvent::Left);
            }
            t.say(t.msg().step_gone.clone());
        }
        Some(false) => t.say(t.msg().journey_gone.clone()),
        None => {}
    }
}

/// Where a journey whose step no longer exists carries on: the step the flow reaches from its
/// start with the slots the journey holds (a collect step with one missing, or the first step
/// that is not a collect step).
fn nearest_question(flow: &crate::flow::graph::Flow, j: &super::Journey, state: &ConversationState) -> String {
    let mut at = flow.start_step().to_string();
    for _ in 0..=flow.steps.len() {
        let Some(step) = flow.step(&at) else { break };
        let StepKind::Collect { slots, branches, next, .. } = &step.kind else { break };
        if slots.iter().any(|s| !j.slots.contains_key(s)) {
            break;
        }
        at = branches
            .iter()
            .find(|b| super::turn::condition_holds(state, j, &b.when))
            .map(|b| b.goto.clone())
            .unwrap_or_else(|| next.clone());
    }
    at
}

/// After the loop: an upset customer acknowledged, the questions of a message followed by
/// another in the same delivery held back, the stage, the reminder wake-up and the
/// repeated-question count.
fn finish(mut t: Turn<'_>) -> Decision {
    recovery::acknowledge_upset(&mut t);
    if t.event.followed && !t.replies.is_empty() {
        let before = t.replies.len();
        t.replies.retain(|r| !is_question(r));
        let held = before - t.replies.len();
        if held > 0 {
            t.note("held", format!("{held} question(s) left to the next message of the same delivery"), None);
        }
    }
    update_stage(&mut t);
    let reminder = t.flow().ok().and_then(|f| f.reminder.clone());
    let awaiting = matches!(t.state.phase().state(), Phase::AwaitingErp { .. } | Phase::HandedOff { .. });
    // The journey's reminder falls due a while after the customer's last message; a wake-up
    // settles it (sent, or not wanted), so it is not armed again by the wake-up itself.
    let journey_wake = match (&t.state.journey, reminder) {
        (None, _) | (_, None) => None,
        (Some(_), _) if awaiting => None,
        (Some(j), Some(r)) if !j.reminded && t.state.last_customer_at > 0 => {
            let due = t.state.last_customer_at + r.after_seconds;
            // A wake-up at or after that moment settled it; an earlier one (a visit's) did not.
            (!matches!(t.event.kind, EventKind::Tick) || due > t.now).then_some(due)
        }
        (Some(_), _) => None,
    };
    let visit_wake = visits::next_due(t.flows, &t.state, t.now);
    t.state.wake_at = [journey_wake, visit_wake].into_iter().flatten().min();
    if let Some(question) = t.replies.iter().rev().find(|r| is_question(r)) {
        let body = question.body().to_string();
        t.state.last_question = match t.state.last_question.take() {
            Some((q, n)) if q == body => Some((q, n + 1)),
            _ => Some((body, 1)),
        };
    }
    let holds = super::capacity::hold_changes(&mut t);
    let flags = super::answers::review(&mut t);
    Decision {
        holds,
        flags,
        step_before: step_label(t.before),
        step_after: step_label(&t.state),
        state: t.state,
        replies: t.replies,
        erp: t.erp,
        trace: t.trace,
        forwards: t.forwards,
    }
}

/// Whether a reply asks something (offers options, or ends with a question mark).
fn is_question(r: &Reply) -> bool {
    matches!(r, Reply::Choices { .. }) || r.body().trim_end().ends_with('?')
}

/// Where the customer now is: the journey's stage (deciding at its summary), after-sale once a
/// journey ends with the ERP's reference, exploring after the first exchange.
fn update_stage(t: &mut Turn<'_>) {
    let ended_with_erp = t.trace.iter().any(|e| e.what == "end")
        && t.trace.iter().any(|e| e.what == "erp_outcome" && e.detail.starts_with("ERP accepted"));
    t.state.stage = match &t.state.journey {
        Some(j) => match t.flows.flow_of(j) {
            Some(f) if f.step(&j.step).is_some_and(|s| matches!(s.kind, StepKind::Confirm { .. })) => Stage::Deciding,
            Some(f) => f.stage,
            None => t.state.stage,
        },
        None if ended_with_erp => Stage::AfterSale,
        None if t.state.stage == Stage::Greeting && t.state.turns > 1 => Stage::Exploring,
        None => t.state.stage,
    };
}
