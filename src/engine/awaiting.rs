//! Waiting for the ERP: its answer moves the journey to the step the flow names for success or
//! failure; a delay notice is passed on; a customer who writes meanwhile is told to wait, and the
//! stuck ladder climbs if they keep writing (a person is offered, then takes over).

use super::buttons;
use super::event::{EventKind, InboundEvent, Reply, ReplyOption};
use super::phase::{PhaseEvent, State as Phase};
use super::state::ErpStatus;
use super::turn::{Next, Turn};
use super::{EngineError, Forward};
use crate::flow::graph::StepKind;
use crate::flow::messages::Messages;

/// The ERP's answer to a write of this conversation.
pub fn on_outcome(t: &mut Turn<'_>) -> Result<Next, EngineError> {
    let EventKind::ErpOutcome { journey_id, action, reference, error } = &t.event.kind else { return Ok(Next::Stay) };
    if let Some(to) = t.state.moved_to.clone() {
        // The journey went to the customer's new number: so does its ERP answer.
        t.note("forwarded", format!("ERP answer for journey {journey_id} forwarded to the new number {to}"), None);
        let id = format!("moved:{}", t.event.message_id);
        let event = InboundEvent::internal(id, to.clone(), t.now, t.event.kind.clone());
        t.forwards.push(Forward { customer: to, event, phone_number_id: None });
        return Ok(Next::Stay);
    }
    if journey_id.starts_with(super::replies::JOURNEY_PREFIX) {
        super::replies::on_outcome(t, journey_id, action, reference.as_deref(), error.as_deref());
        return Ok(Next::Stay);
    }
    if t.state.journey.as_ref().is_none_or(|j| &j.id != journey_id) {
        if let (Some(r), None) = (reference, error) {
            // A write given up on went through later (sent again by an operator): the customer
            // is told, whatever they are doing now.
            if !t.state.references.contains(r) {
                t.state.references.push(r.clone());
                t.note(
                    "erp_outcome",
                    format!("ERP accepted {action} late, for journey {journey_id} which has ended: reference {r}"),
                    None,
                );
                let body = Messages::fill(&t.msg().erp_late_success, &[("reference", r)]);
                t.say(body);
                return Ok(Next::Stay);
            }
        }
        t.note("ignored", format!("ERP answer for journey {journey_id} which is no longer under way"), None);
        return Ok(Next::Stay);
    }
    let flow = t.flow()?;
    let step = flow.step(&t.journey()?.step).cloned();
    let Some((step, on_success, on_failure)) = step.and_then(|s| match &s.kind {
        StepKind::Erp { on_success, on_failure, .. } => Some((s.clone(), on_success.clone(), on_failure.clone())),
        _ => None,
    }) else {
        t.note("ignored", format!("ERP answer for {action} arrived while nothing was awaited (duplicate)"), None);
        return Ok(Next::Stay);
    };
    // While a person has the conversation the answer is still taken (the customer is told the
    // outcome); otherwise the phase must be awaiting it.
    if t.state.handoff().is_none() {
        t.phase(PhaseEvent::ErpSettled);
    }
    let ok = reference.is_some() && error.is_none();
    if let Some(r) = reference {
        t.state.references.push(r.clone());
        if ok {
            super::capacity::booked(t, journey_id, r);
            if let Ok(flow) = t.flow() {
                super::visits::on_erp_success(t, &flow, r);
            }
        }
    }
    t.journey_mut()?.erp =
        Some(ErpStatus { action: action.clone(), reference: reference.clone(), error: error.clone() });
    t.note(
        "erp_outcome",
        match (reference, error) {
            (Some(r), None) => format!("ERP accepted {action}: reference {r}"),
            (_, e) => format!("ERP refused {action}: {}", e.clone().unwrap_or_default()),
        },
        Some(step.source.clone()),
    );
    Ok(Next::Go {
        step: if ok { on_success } else { on_failure },
        why: if ok { "ERP succeeded".into() } else { "ERP failed".into() },
        source: Some(step.source.clone()),
        reprompt: None,
    })
}

/// The outbox says an ERP write failed once and is being retried.
pub fn on_delay(t: &mut Turn<'_>) -> Next {
    let EventKind::ErpDelayed { journey_id, action } = &t.event.kind else { return Next::Stay };
    if journey_id.starts_with(super::replies::JOURNEY_PREFIX) {
        t.note("erp_delayed", format!("ERP write {action} for a ticket reply failed once and is being retried"), None);
        return Next::Stay;
    }
    let awaited = t.state.journey.as_ref().is_some_and(|j| &j.id == journey_id)
        && matches!(t.state.phase().state(), Phase::AwaitingErp { .. });
    if awaited {
        t.note("erp_delayed", format!("ERP write {action} failed once and is being retried"), None);
        t.say(t.msg().erp_slow.clone());
    } else {
        t.note("ignored", format!("delay notice for {action} no longer relevant"), None);
    }
    Next::Stay
}

/// The customer writes while the ERP write is under way: asked to wait; writing again and again
/// climbs the ladder (a person offered, then a hand-off).
pub fn while_waiting(t: &mut Turn<'_>) -> Result<Next, EngineError> {
    let flow = t.flow()?;
    let request = flow.title.to_lowercase();
    let j = t.journey_mut()?;
    j.no_progress += 1;
    let n = j.no_progress;
    let r = flow.recovery;
    t.note(
        "waiting",
        format!("the ERP has not answered yet; the customer was asked to wait ({n} message(s))"),
        t.step_source(),
    );
    if n >= r.handoff_after {
        return Ok(Next::HandOff(format!("kept writing while {} waited for the ERP", flow.id)));
    }
    let m = t.msg();
    let body = Messages::fill(&m.erp_waiting, &[("request", &request)]);
    if n >= r.summary_after {
        let person = ReplyOption { id: buttons::PERSON.into(), title: m.person_button.clone(), description: None };
        t.replies.push(Reply::Choices { body, options: vec![person], button: m.choose_button.clone() });
    } else {
        t.say(body);
    }
    Ok(Next::Stay)
}
