//! The stuck-state ladder and hand-offs. A turn at a step that fills nothing climbs the flow's
//! ladder (`recovery` in the flow file): the question in other words, then a summary of what is
//! known with Continue / Start over / Talk to a person, then a person. The same text again counts
//! twice; the same question sent again counts too. Continue is offered once per step: stuck again
//! after it, the customer gets a person, so the ladder cannot cycle.

use super::EngineError;
use super::buttons;
use super::event::{Reply, ReplyOption};
use super::phase::{Handoff, PhaseEvent};
use super::turn::{Next, Turn};
use crate::flow::graph::{Flow, StepKind};
use crate::flow::messages::Messages;
use crate::text::fold;

/// How many turns pass before an upset customer is acknowledged again.
const ACKNOWLEDGE_EVERY: u64 = 10;

/// A turn at a step without progress (`body`: the customer's text, if any): climbs the ladder.
pub fn no_progress(t: &mut Turn<'_>, flow: &Flow, body: Option<&str>, reason: String) -> Result<Next, EngineError> {
    let last_question = t.state.last_question.as_ref().map_or(0, |(_, n)| *n);
    let j = t.journey_mut()?;
    j.no_progress += 1;
    if let Some(body) = body {
        let folded = fold(body);
        if j.last_text.as_deref() == Some(folded.as_str()) {
            j.no_progress += 1; // the same text again: a clear sign of being stuck
        }
        j.last_text = Some(folded);
    }
    let (n, step_id, recovered) = (j.no_progress, j.step.clone(), j.recovered);
    let level = n.max(last_question);
    let r = flow.recovery;
    let source = flow.step(&step_id).map(|s| s.source.clone());
    let at = format!("{}/{step_id}", flow.id);
    if level >= r.handoff_after || (level >= r.summary_after && recovered > 0) {
        t.note("stuck", format!("{level} turns without progress at {at}: hand-off"), source);
        return Ok(Next::HandOff(format!("stuck at {at}")));
    }
    if level >= r.summary_after {
        t.note("stuck", format!("{level} turns without progress at {at}: summary and choices"), source);
        summary(t, flow, &reason)?;
        return Ok(Next::Stay);
    }
    if level >= r.rephrase_after {
        t.note("stuck", format!("{level} turns without progress at {at}: rephrased"), source);
        t.rephrase = true;
    }
    Ok(Next::Enter(Some(reason)))
}

/// What is known so far, what is missing, and Continue / Start over / Talk to a person.
pub fn summary(t: &mut Turn<'_>, flow: &Flow, reason: &str) -> Result<(), EngineError> {
    let m = t.msg();
    let j = t.journey()?.clone();
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
        body.push_str(&m.recovery_nothing);
    } else {
        body.push_str(&Messages::fill(&m.recovery_known, &[("known", &known.join("\n"))]));
    }
    if !missing.is_empty() {
        body.push_str("\n\n");
        body.push_str(&Messages::fill(&m.recovery_missing, &[("missing", &m.and_list(&missing))]));
    }
    body.push(' ');
    body.push_str(&m.recovery_question);
    let options = [
        ("recover:continue", m.continue_button.as_str()),
        ("recover:restart", &m.start_over_button),
        ("recover:human", &m.person_button),
    ];
    t.replies.push(buttons::step_choices(&j, &j.step, body, &options, &m.choose_button));
    Ok(())
}

/// A person takes over: the phase holds the hand-off; the customer is told everything is saved.
pub fn hand_off(t: &mut Turn<'_>, reason: String) {
    let handoff = Handoff { since: t.now, reason: reason.clone(), agent: None };
    let source = t.step_source();
    t.phase(PhaseEvent::HandOff(handoff));
    t.note("handoff", format!("handed to a person: {reason}"), source);
    let told = match t.flows.business.team_back_at(t.now) {
        None => t.msg().handed_off.clone(),
        Some(back) => Messages::fill(
            &t.msg().handed_off_after_hours,
            &[
                ("weekday", &back.strftime("%A").to_string()),
                ("time", &back.strftime("%H:%M").to_string()),
                ("date", &back.strftime("%Y-%m-%d").to_string()),
            ],
        ),
    };
    t.say(told);
}

/// An upset customer is acknowledged first and offered a person (once every few turns, and not
/// when the turn already offers or makes a hand-off).
pub fn acknowledge_upset(t: &mut Turn<'_>) {
    let typed = matches!(t.event.kind, super::EventKind::Text { .. } | super::EventKind::Media { .. });
    let recent = t.state.acknowledged_at.is_some_and(|at| t.state.turns.saturating_sub(at) < ACKNOWLEDGE_EVERY);
    let person_offered = t.replies.iter().any(|r| match r {
        Reply::Choices { options, .. } => {
            options.iter().any(|o| o.id.ends_with("recover:human") || o.id == buttons::PERSON)
        }
        Reply::Text { .. } | Reply::Template { .. } => false,
    });
    let handed = t.state.handoff().is_some();
    if !typed || !t.state.mood.is_upset() || recent || person_offered || handed || t.event.throttled {
        return;
    }
    t.state.acknowledged_at = Some(t.state.turns);
    t.note("upset", format!("the customer sounds {:?}; acknowledged and offered a person", t.state.mood), None);
    let m = t.msg();
    t.replies.insert(
        0,
        Reply::Choices {
            body: m.upset.clone(),
            options: vec![ReplyOption {
                id: buttons::PERSON.into(),
                title: m.person_button.clone(),
                description: None,
            }],
            button: m.choose_button.clone(),
        },
    );
}
