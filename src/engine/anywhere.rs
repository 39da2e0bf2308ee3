//! Events handled the same way whatever the phase: the reminder wake-up, opting out and back in,
//! an edited message, "start over" and "menu", and messages no question can use (a sticker, a
//! voice note without speech to text, a contact card).

use super::phase::{PhaseEvent, State as Phase};
use super::turn::{Next, Turn};
use super::{EngineError, EventKind, steps, tasks};
use crate::flow::graph::StepKind;

/// The scheduler woke the conversation: the visits' reminders and ratings that are due (see
/// [`super::visits`]), and one reminder to a customer who went quiet mid-journey, inside
/// WhatsApp's 24-hour window, unless a person has the conversation or they opted out.
pub fn on_tick(t: &mut Turn<'_>) -> Next {
    let visits_acted = super::visits::on_tick(t);
    let window_open = t.now - t.state.last_customer_at < 24 * 3600 - 60;
    let handed = t.state.handoff().is_some();
    let flow = t.flow().ok();
    let due = match (&flow, t.state.journey.as_ref()) {
        (Some(f), Some(j)) => {
            // A wake-up is the journey's unless the visits had something due; then the journey's
            // reminder goes only if its own time has come too.
            let reached = !visits_acted
                || f.reminder.as_ref().is_some_and(|r| t.now >= t.state.last_customer_at + r.after_seconds);
            window_open && !handed && !j.reminded && reached && !t.state.opted_out
        }
        _ => false,
    };
    let (true, Some(flow)) = (due, flow) else {
        if visits_acted {
            return Next::Stay;
        }
        t.note(
            "ignored",
            "wake-up with nothing to do (no journey, reminded already, handed off, opted out or window closed)".into(),
            None,
        );
        return Next::Stay;
    };
    let question = steps::current_question(t, &flow);
    let text = flow.reminder.as_ref().map(|r| r.text.replace("{question}", &question)).unwrap_or_default();
    if let Some(j) = t.state.journey.as_mut() {
        j.reminded = true;
    }
    t.note("reminder", "the customer went quiet mid-journey; one reminder sent".into(), t.step_source());
    let body = t.render(&flow, &text);
    t.say(body);
    Next::Stay
}

/// Stores the opt-out; the journey in front (if any) carries on.
pub fn opt_out(t: &mut Turn<'_>) -> Next {
    t.state.opted_out = true;
    t.note("opt_out", "the customer opted out of offers and reminders".into(), None);
    t.say(t.msg().opted_out.clone());
    carry_on(t)
}

/// Takes the opt-out back; the menu, or the question under way.
pub fn opt_in(t: &mut Turn<'_>) -> Next {
    t.state.opted_out = false;
    t.note("opt_in", "the customer opted back in to offers and reminders".into(), None);
    t.say(t.msg().opted_in.clone());
    match t.state.journey {
        Some(_) => carry_on(t),
        None => Next::Menu("after opting back in".into()),
    }
}

/// The question under way is asked again, unless the ERP is being waited for.
fn carry_on(t: &Turn<'_>) -> Next {
    match (&t.state.journey, t.state.phase().state()) {
        (Some(_), Phase::AwaitingErp { .. }) | (None, _) => Next::Stay,
        (Some(_), _) => Next::Enter(None),
    }
}

/// An edited message: read again when it answers the question still open (the guards read its
/// text for the current step's empty slots), recorded otherwise. Never answered on its own.
pub fn on_edit(t: &mut Turn<'_>) -> Result<Next, EngineError> {
    let EventKind::Edited { message, .. } = &t.event.kind else { return Ok(Next::Stay) };
    let at_collect = matches!(t.state.phase().state(), Phase::Collecting { .. } | Phase::ConfirmingValue { .. });
    if t.state.journey.is_some() && at_collect {
        let flow = t.flow()?;
        if t.apply_extracted(&flow) > 0 {
            t.note(
                "edited",
                format!("the customer edited a message ({}); it answers the open question", message.name()),
                None,
            );
            t.progressed();
            return Ok(Next::Enter(None));
        }
        t.note("edited", "the customer edited a message; it does not answer the open question (recorded)".into(), None);
    } else {
        t.note("edited", "the customer edited a message; no question is open (recorded)".into(), None);
    }
    Ok(Next::Stay)
}

/// "start over": the journey in front is dropped and the menu shown.
pub fn restart(t: &mut Turn<'_>) -> Next {
    if let Some(j) = t.state.journey.take() {
        t.note("cancel", format!("journey {} left at step {} (customer asked to start over)", j.flow, j.step), None);
    }
    t.phase(PhaseEvent::Left);
    Next::Menu("customer asked to start over".into())
}

/// "menu": the journey in front waits aside (the menu offers it again).
pub fn to_menu(t: &mut Turn<'_>) -> Next {
    tasks::suspend_current(t, "the customer asked for the menu");
    Next::Menu("customer asked for it".into())
}

/// A message no question can use here: a word, then the question under way or the menu. A
/// voice note is told it cannot be listened to.
pub fn unusable(t: &mut Turn<'_>) -> Next {
    match &t.event.kind {
        EventKind::Media { media_type, .. } if media_type == "audio" => {
            t.note("voice_note", "a voice note arrived; it cannot be listened to (no transcript)".into(), None);
            t.say(t.msg().voice_note.clone());
        }
        kind => {
            let what = match kind {
                EventKind::Media { media_type, .. } => media_type.clone(),
                EventKind::Unsupported { kind } => kind.clone(),
                other => other.name().to_string(),
            };
            t.note("unsupported", format!("{what} cannot answer any question here"), None);
            t.say(t.msg().unsupported.clone());
        }
    }
    match (&t.state.journey, t.state.phase().state()) {
        (Some(_), Phase::AwaitingErp { .. }) => Next::Stay,
        (Some(_), _) => Next::Enter(None),
        (None, _) => Next::Menu("after a message no question can use".into()),
    }
}

/// Whether the journey in front is at an ERP step (for states stored before phases were kept).
pub fn at_erp_step(t: &Turn<'_>) -> Option<String> {
    let flow = t.flow().ok()?;
    match &flow.step(&t.state.journey.as_ref()?.step)?.kind {
        StepKind::Erp { action, .. } => Some(action.clone()),
        _ => None,
    }
}
