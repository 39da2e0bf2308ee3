//! The summary is open (phases `at_summary` and `choosing_change`): typed yes or no, a
//! correction ("make it 11am"), a request for another journey ("book another car"), or a change
//! of one part ("change the address"), which clears that part and asks it again.

use super::buttons;
use super::event::{Reply, ReplyOption};
use super::phase::{PhaseEvent, State as Phase};
use super::turn::{Next, Turn};
use super::words::{CANCEL_WORDS, CHANGE_WORDS, CONFIRM_WORDS, NO_WORDS, is_one_of, wants_another};
use super::{EngineError, collecting, recovery, tasks};
use crate::flow::graph::{Flow, StepKind};
use crate::text::contains_words;

/// Typed text at the summary.
pub fn on_text(t: &mut Turn<'_>, body: &str) -> Result<Next, EngineError> {
    let flow = t.flow()?;
    let step = flow.step(&t.journey()?.step).cloned().ok_or(EngineError::NoJourney)?;
    let StepKind::Confirm { on_confirm, on_cancel, change, .. } = &step.kind else { return Ok(Next::Enter(None)) };
    let source = Some(step.source.clone());
    let named = |c: &String| flow.step(c).is_some_and(|s| contains_words(body, &s.title) || contains_words(body, c));
    if matches!(t.state.phase().state(), Phase::ChoosingChange {}) {
        if let Some(target) = change.iter().find(|c| named(c)) {
            return start_change(t, &flow, target);
        }
    }
    if is_one_of(body, CONFIRM_WORDS) {
        return Ok(Next::Go {
            step: on_confirm.clone(),
            why: "customer typed a confirmation".into(),
            source,
            reprompt: None,
        });
    }
    if is_one_of(body, NO_WORDS) || is_one_of(body, CANCEL_WORDS) {
        return Ok(Next::Go {
            step: on_cancel.clone(),
            why: "customer typed a cancellation".into(),
            source,
            reprompt: None,
        });
    }
    // "Book another car, a Honda Civic" at the summary asks for a second journey; it does not
    // correct this one.
    if wants_another(body) {
        if let Some(other) = collecting::digression(t, &flow, body) {
            return Ok(tasks::digress(t, &other, body));
        }
    }
    if t.apply_extracted(&flow) > 0 {
        let updated = t.msg().updated.clone();
        t.say(updated);
        return Ok(Next::Enter(None));
    }
    if let Some(other) = collecting::digression(t, &flow, body) {
        return Ok(tasks::digress(t, &other, body));
    }
    if CHANGE_WORDS.iter().any(|w| contains_words(body, w)) {
        if let Some(target) = change.iter().find(|c| named(c)) {
            return start_change(t, &flow, target);
        }
        return change_menu(t, &flow);
    }
    let reason = t.msg().use_the_buttons.clone();
    recovery::no_progress(t, &flow, Some(body), reason)
}

/// "What would you like to change?" with the summary's parts as options.
pub fn change_menu(t: &mut Turn<'_>, flow: &Flow) -> Result<Next, EngineError> {
    let j = t.journey()?.clone();
    let Some(step) = flow.step(&j.step).cloned() else { return Ok(Next::Enter(None)) };
    let StepKind::Confirm { change, .. } = &step.kind else { return Ok(Next::Enter(None)) };
    let options = change
        .iter()
        .filter_map(|c| flow.step(c))
        .map(|s| ReplyOption {
            id: buttons::encode(&j, &step.id, &format!("change:{}", s.id)),
            title: s.title.clone(),
            description: None,
        })
        .collect();
    let m = t.msg();
    t.note("ask", "what to change".into(), Some(step.source.clone()));
    t.replies.push(Reply::Choices { body: m.what_to_change.clone(), options, button: m.change_button.clone() });
    t.phase(PhaseEvent::ChangeMenu);
    Ok(Next::Stay)
}

/// Clears the part `target` collects (and the parts its branches lead to, which depend on it)
/// and goes back to it.
pub fn start_change(t: &mut Turn<'_>, flow: &Flow, target: &str) -> Result<Next, EngineError> {
    let mut clear: Vec<String> = Vec::new();
    if let Some(StepKind::Collect { slots, branches, .. }) = flow.step(target).map(|s| &s.kind) {
        clear.extend(slots.iter().cloned());
        for b in branches {
            if let Some(StepKind::Collect { slots, .. }) = flow.step(&b.goto).map(|s| &s.kind) {
                clear.extend(slots.iter().cloned());
            }
        }
    }
    // The customer corrects them: what the profile remembered is asked again too.
    let j = t.journey_mut()?;
    for s in &clear {
        j.slots.remove(s);
    }
    for s in &clear {
        t.state.profile.remove(s);
    }
    Ok(Next::Go {
        step: target.to_string(),
        why: format!("change requested (cleared {})", clear.join(", ")),
        source: flow.step(target).map(|s| s.source.clone()),
        reprompt: None,
    })
}
