//! A button or list row pressed while a journey is in front. The id says which journey and step
//! it was made for ([`super::buttons`]): a press for the step in front does what it says; a
//! press for a journey put aside brings that journey back and is handled there; any other press
//! is stale: the customer is told politely, and it counts on the stuck ladder like any answer
//! that moves nothing.

use super::buttons;
use super::event::EventKind;
use super::phase::{PhaseEvent, State as Phase};
use super::state::{SlotSource, SlotValue};
use super::turn::{Next, Turn};
use super::{EngineError, collecting, recovery};
use crate::flow::format::SlotType;
use crate::flow::graph::{Flow, StepKind};

/// Handles a press of `id` (titled `title`) against the journey in front.
pub fn on_press(t: &mut Turn<'_>, id: &str, title: &str) -> Result<Next, EngineError> {
    let flow = t.flow()?;
    let j = t.journey()?.clone();
    let parsed = buttons::parse(id);
    let fresh = parsed.as_ref().is_some_and(|p| p.fits(&j));
    if let Some(p) = parsed.as_ref().filter(|_| !fresh) {
        // A button of a journey put aside: the customer went back to it.
        if let Some(back) =
            t.state.suspended.iter().find(|s| s.flow == p.flow && s.tag() == p.tag).map(|s| s.id.clone())
        {
            return Ok(Next::Resume {
                id: back,
                why: "a button of this request was pressed".into(),
                announce: false,
                then: Some(EventKind::Choice { id: id.to_string(), title: title.to_string() }),
            });
        }
    }
    let Some(p) = parsed.filter(|_| fresh) else {
        t.note(
            "stale_button",
            format!("button {id:?} was made for an earlier question; the journey is at {}/{}", j.flow, j.step),
            None,
        );
        return stale(t, &flow);
    };
    let step = flow
        .step(&j.step)
        .cloned()
        .ok_or_else(|| EngineError::UnknownStep { flow: flow.id.clone(), step: j.step.clone() })?;
    let source = Some(step.source.clone());
    match p.value {
        "recover:continue" => {
            t.note("recovery", "the customer chose to continue".into(), source);
            t.progressed();
            t.journey_mut()?.recovered += 1;
            return Ok(Next::Enter(None));
        }
        "recover:restart" => {
            t.note("recovery", "the customer chose to start over".into(), source);
            t.state.journey = None;
            t.phase(PhaseEvent::Left);
            return Ok(Next::Start { flow, text: None, why: "start over".into(), digression: false });
        }
        "recover:human" => return Ok(Next::HandOff("the customer asked for a person".into())),
        "pending:yes" | "pending:no" => {
            let waiting = match t.state.phase().state() {
                Phase::ConfirmingValue { pending, .. } => Some(pending.clone()),
                _ => None,
            };
            t.phase(PhaseEvent::ValueAnswered);
            return match (waiting, p.value == "pending:yes") {
                (Some(pending), true) => collecting::take_pending(t, &flow, pending),
                (Some(_), false) => Ok(Next::Enter(Some(t.msg().no_problem.clone()))),
                (None, _) => Ok(Next::Enter(None)),
            };
        }
        _ => {}
    }
    match (&step.kind, p.value) {
        (StepKind::Confirm { on_confirm, .. }, "confirm") => {
            Ok(Next::Go { step: on_confirm.clone(), why: "Confirm pressed".into(), source, reprompt: None })
        }
        (StepKind::Confirm { on_cancel, .. }, "cancel") => {
            Ok(Next::Go { step: on_cancel.clone(), why: "Cancel pressed".into(), source, reprompt: None })
        }
        (StepKind::Confirm { .. }, "change") => super::summary::change_menu(t, &flow),
        (StepKind::Confirm { change, .. }, v) if v.starts_with("change:") => {
            let target = &v["change:".len()..];
            if change.iter().any(|c| c == target) {
                super::summary::start_change(t, &flow, target)
            } else {
                Ok(Next::Enter(Some(t.msg().option_gone.clone())))
            }
        }
        (StepKind::Collect { slots, .. }, v) => {
            let Some((slot, option)) = v.strip_prefix("set:").and_then(|s| s.split_once('=')) else {
                return Ok(Next::Enter(Some(t.msg().not_understood.clone())));
            };
            if !slots.iter().any(|s| s == slot) {
                return Ok(Next::Enter(Some(t.msg().not_understood.clone())));
            }
            match option_value(t, &flow, slot, option) {
                Some(value) if super::capacity::refusal(t, &flow, slot, &value).is_some() => {
                    let why = super::capacity::refusal(t, &flow, slot, &value).unwrap_or_default();
                    t.note("full", format!("{slot} {:?} refused: its window is full", value.display()), source);
                    t.offer_instead = Some((slot.to_string(), super::capacity::nearest(t, &flow, slot, &value)));
                    Ok(Next::Enter(Some(why)))
                }
                Some(value) => {
                    t.fill(&flow, slot, value, SlotSource::Button, format!("button {title:?}"));
                    t.progressed();
                    Ok(Next::Enter(None))
                }
                None => {
                    t.note("stale_button", format!("option {option:?} of {slot} is no longer offered"), source);
                    Ok(Next::Enter(Some(t.msg().option_gone.clone())))
                }
            }
        }
        _ => {
            t.note("stale_button", format!("button {id:?} does not fit step {}", step.id), source);
            stale(t, &flow)
        }
    }
}

/// A stale press: said so politely; it counts as a turn without progress.
fn stale(t: &mut Turn<'_>, flow: &Flow) -> Result<Next, EngineError> {
    let reason = t.msg().stale_button.clone();
    if matches!(t.state.phase().state(), Phase::AwaitingErp { .. }) {
        t.say(reason);
        return Ok(Next::Stay);
    }
    recovery::no_progress(t, flow, None, reason)
}

/// The slot value for a pressed option: a choice with its title and price, or an offered time.
/// `None` when a looked-up option is no longer listed.
fn option_value(t: &Turn<'_>, flow: &Flow, slot: &str, option: &str) -> Option<SlotValue> {
    let decl = flow.slots.get(slot)?;
    match decl.kind {
        SlotType::DateTime => {
            let civil: jiff::civil::DateTime = option.parse().ok()?;
            Some(SlotValue::DateTime { civil: civil.to_string(), zone: t.flows.business.time_zone_name.clone() })
        }
        _ => t.options(flow, slot).iter().find(|o| o.id == option).map(SlotValue::from_option),
    }
}
