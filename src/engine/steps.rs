//! Entering a step, by kind: a collect step moves on when its slots are known and asks its
//! question otherwise; a confirm step shows the summary; an ERP step queues its write; an end step
//! closes the journey. Each returns what should happen next; none moves the journey itself.

use super::EngineError;
use super::buttons;
use super::event::{ErpRequest, Reply, ReplyOption};
use super::phase::PhaseEvent;
use super::state::{ErpStatus, SlotSource, SlotValue};
use super::turn::{Next, Turn, condition_holds};
use crate::flow::erp_actions;
use crate::flow::graph::{ChoiceOption, Flow, OFFERS_LOOKUP, OptionSource, Stage, Step, StepKind};
use crate::flow::messages::Messages;

/// How many times a journey asks again for values the ERP's schema refused before it gives up.
const MAX_ERP_REASKS: u32 = 2;

/// Enters the journey's current step; `reprompt` is said before its question, if it asks one.
pub fn enter(t: &mut Turn<'_>, reprompt: Option<String>) -> Result<Next, EngineError> {
    let flow = t.flow()?;
    let j = t.journey()?.clone();
    let step = flow
        .step(&j.step)
        .cloned()
        .ok_or_else(|| EngineError::UnknownStep { flow: flow.id.clone(), step: j.step.clone() })?;
    match &step.kind {
        StepKind::Collect { slots, branches, next, if_none, pick_single, .. } => {
            let missing: Vec<String> = slots.iter().filter(|s| !j.slots.contains_key(*s)).cloned().collect();
            if let [slot] = missing.as_slice() {
                let options = t.options(&flow, slot);
                let failed = matches!(flow.slots.get(slot).map(|s| &s.options),
                    Some(OptionSource::Lookup(l)) if t.guards.failed_lookups.contains(l));
                if options.is_empty() && failed && if_none.is_some() {
                    // Not "none found": the ERP could not be asked. Say so, and keep nothing.
                    t.note(
                        "lookup_failed",
                        format!("step {} could not list {slot}: its lookup failed; the journey ends", step.id),
                        Some(step.source.clone()),
                    );
                    t.say(t.msg().lookup_failed.clone());
                    t.state.journey = None;
                    t.phase(PhaseEvent::Left);
                    return Ok(Next::Ended);
                }
                if let (true, Some(none)) = (options.is_empty(), if_none) {
                    return Ok(Next::Go {
                        step: none.clone(),
                        why: format!("none found for {slot}"),
                        source: Some(step.source.clone()),
                        reprompt,
                    });
                }
                if options.len() == 1 && *pick_single {
                    let value = SlotValue::from_option(&options[0]);
                    t.fill(&flow, slot, value, SlotSource::Erp, "the only option the ERP lists".into());
                    return Ok(Next::Enter(reprompt));
                }
            }
            if missing.is_empty() {
                let (target, source, why) = match branches.iter().find(|b| condition_holds(&t.state, &j, &b.when)) {
                    Some(b) => (b.goto.clone(), b.source.clone(), "branch condition holds"),
                    None => (next.clone(), step.source.clone(), "slots filled"),
                };
                return Ok(Next::Go { step: target, why: why.into(), source: Some(source), reprompt });
            }
            // A value refused on the way (a full time) says why, though other answers moved on.
            let reprompt = reprompt.or_else(|| t.rejected.take());
            ask(t, &flow, &step, &missing, reprompt)?;
            Ok(Next::Stay)
        }
        StepKind::Confirm { text, .. } => {
            let mut body = t.render(&flow, text);
            if let Some(reason) = reprompt {
                body = format!("{reason}\n\n{body}");
            }
            let m = t.msg();
            t.note("ask", format!("summary at step {}", step.id), Some(step.source.clone()));
            let options =
                [("confirm", m.confirm_button.as_str()), ("change", &m.change_button), ("cancel", &m.cancel_button)];
            t.replies.push(buttons::step_choices(&j, &step.id, body, &options, &m.choose_button));
            t.phase(PhaseEvent::Summary);
            Ok(Next::Stay)
        }
        StepKind::Erp { action, say, on_failure, .. } => {
            request_erp(t, &flow, &step, action, say.as_deref(), on_failure)
        }
        StepKind::End { text, offer, offer_person, handoff } => {
            let body = t.render(&flow, text);
            if *offer_person {
                let m = t.msg();
                let person =
                    ReplyOption { id: buttons::PERSON.into(), title: m.person_button.clone(), description: None };
                t.replies.push(Reply::Choices { body, options: vec![person], button: m.choose_button.clone() });
            } else {
                t.say(body);
            }
            if *offer {
                proactive_offer(t, &flow, &step);
            }
            t.note("end", format!("journey {} ended at step {}", flow.id, step.id), Some(step.source.clone()));
            t.state.journey = None;
            t.phase(PhaseEvent::Left);
            t.state.journeys_completed += 1;
            if *handoff {
                // The queue is the flow's `handoff_queue` (the pipeline reads it from the journey).
                super::recovery::hand_off(
                    t,
                    format!("journey {} ended at {}, which hands over to a person", flow.id, step.id),
                );
            }
            Ok(Next::Ended)
        }
    }
}

/// Asks for the `missing` slots of a collect step: its question, or "And your …?" when part of it
/// is answered; as buttons or a list when one choice slot is asked. Refuses (a bug) to ask for a
/// slot the customer's profile already holds.
fn ask(
    t: &mut Turn<'_>,
    flow: &Flow,
    step: &Step,
    missing: &[String],
    reprompt: Option<String>,
) -> Result<(), EngineError> {
    let StepKind::Collect { ask, example, slots, .. } = &step.kind else { return Ok(()) };
    // What the customer gave once is never asked again: a profile slot the profile holds should
    // have been copied into the journey when it started or came back.
    for s in missing {
        if flow.slots.get(s).is_some_and(|d| d.profile) && t.state.profile.contains_key(s) {
            return Err(EngineError::AskedFilledSlot {
                flow: flow.id.clone(),
                step: step.id.clone(),
                slot: s.clone(),
                at: step.source.clone(),
            });
        }
    }
    let m = t.msg();
    let labels: Vec<String> =
        missing.iter().filter_map(|s| flow.slots.get(s)).map(|s| s.label.to_lowercase()).collect();
    let j = t.journey()?.clone();
    let hinted = hinted_day(t, flow, missing);
    let question = if let Some(day) = hinted {
        Messages::fill(&m.what_time_on, &[("day", &day.strftime("%a %-d %b").to_string())])
    } else if missing.len() < slots.len() {
        match j.slots.get("first_name") {
            Some(name) => Messages::fill(
                &m.ask_rest_named,
                &[("first_name", &name.value.display()), ("missing", &m.and_list(&labels))],
            ),
            None => Messages::fill(&m.ask_rest, &[("missing", &m.and_list(&labels))]),
        }
    } else {
        t.render(flow, ask)
    };
    let hint =
        example.as_ref().map(|e| format!(" {}", Messages::fill(&m.example, &[("example", e)]))).unwrap_or_default();
    let body = match (reprompt, t.rephrase) {
        // The stuck-state ladder's first rung: the same need, other words.
        (Some(reason), true) => {
            format!("{reason} {}{hint}", Messages::fill(&m.rephrase, &[("missing", &m.and_list(&labels))]))
        }
        (Some(reason), false) => format!("{reason}{hint}\n\n{question}"),
        (None, _) => question,
    };
    let what = if j.no_progress > 0 { "reprompt" } else { "ask" };
    t.note(what, format!("step {} asks for {}", step.id, missing.join(", ")), Some(step.source.clone()));
    let mut options = if missing.len() == 1 { t.options(flow, &missing[0]) } else { vec![] };
    if let Some(day) = hinted {
        // A day named earlier without a time: only the time is asked, with that day's times.
        let prefix = day.to_string();
        if options.iter().any(|o| o.id.starts_with(&prefix)) {
            options.retain(|o| o.id.starts_with(&prefix));
        }
    }
    // The customer's words fit several options: only those are offered again.
    let instead = t.offer_instead.take().filter(|(s, ids)| missing.first() == Some(s) && !ids.is_empty());
    if let Some(ids) = instead.as_ref().map(|(_, ids)| ids).or_else(|| {
        missing
            .first()
            .filter(|_| t.guards.flow.as_deref() == Some(flow.id.as_str()))
            .and_then(|s| t.guards.candidates.get(s))
    }) {
        let narrowed: Vec<ChoiceOption> = options.iter().filter(|o| ids.contains(&o.id)).cloned().collect();
        if narrowed.len() >= 2 {
            options = narrowed;
        }
    }
    if options.is_empty() {
        t.say(body);
    } else {
        let slot = &missing[0];
        let rows = options
            .iter()
            .take(crate::flow::MAX_LIST_ROWS)
            .map(|o| ReplyOption {
                id: buttons::encode(&j, &step.id, &format!("set:{slot}={}", o.id)),
                title: o.title.clone(),
                description: o.description.clone(),
            })
            .collect();
        t.replies.push(Reply::Choices { body, options: rows, button: m.choose_button.clone() });
    }
    t.phase(PhaseEvent::Asking(step.id.clone()));
    if let Some(day) = hinted {
        t.phase(PhaseEvent::DayOnly(day.to_string()));
        t.note("partial", format!("day {day} given earlier; asking only the time"), Some(step.source.clone()));
        if let Some(j) = t.state.journey.as_mut() {
            j.day_hint = None;
        }
    }
    Ok(())
}

/// The day the journey kept ([`super::state::Journey::day_hint`]) when the one slot asked is a
/// date and time and that day is not past (in the business's time zone).
fn hinted_day(t: &Turn<'_>, flow: &Flow, missing: &[String]) -> Option<jiff::civil::Date> {
    let [slot] = missing else { return None };
    if flow.slots.get(slot).map(|d| d.kind) != Some(crate::flow::format::SlotType::DateTime) {
        return None;
    }
    let day: jiff::civil::Date = t.state.journey.as_ref()?.day_hint.as_deref()?.parse().ok()?;
    let today = jiff::Timestamp::from_second(t.now).ok()?.to_zoned(t.flows.business.time_zone.clone()).date();
    (day >= today).then_some(day)
}

/// Renders and queues an ERP step's write; a value the ERP's schema refuses is asked for again
/// with the reason (at most twice), never posted.
fn request_erp(
    t: &mut Turn<'_>,
    flow: &Flow,
    step: &Step,
    action: &str,
    say: Option<&str>,
    on_failure: &str,
) -> Result<Next, EngineError> {
    let Some(decl) = t.flows.actions.get(action) else {
        return Err(EngineError::UnknownStep { flow: flow.id.clone(), step: format!("{} (action {action})", step.id) });
    };
    if t.journey()?.write_key.is_none() {
        let minted = t.guards.minted_key.clone();
        t.journey_mut()?.write_key = minted;
    }
    let j = t.journey()?.clone();
    let key = format!("{}:{}", j.write_key.as_deref().unwrap_or(&j.id), action);
    let mut context = t.state.template_context();
    context.insert("idempotency_key".into(), key.clone().into());
    match erp_actions::render_action(action, decl, &context, &key) {
        Ok(rendered) => {
            t.note(
                "erp_request",
                format!("ERP action {action} queued with idempotency key {key}"),
                Some(step.source.clone()),
            );
            t.erp.push(ErpRequest { journey_id: j.id.clone(), action: rendered });
            if let Some(say) = say {
                let body = t.render(flow, say);
                t.say(body);
            }
            t.phase(PhaseEvent::ErpRequested(action.to_string()));
            Ok(Next::Stay)
        }
        Err(problems) => {
            let reason = problems
                .iter()
                .map(|p| format!("{} {}: {}", p.document, p.at, p.message))
                .collect::<Vec<_>>()
                .join("; ");
            let behind: Vec<String> = problems
                .iter()
                .flat_map(|p| erp_actions::names_behind(decl, p))
                .filter(|n| flow.slots.contains_key(n))
                .filter(|n| j.slots.get(n).is_some_and(|s| s.source != SlotSource::Erp))
                .collect();
            // The earliest step that collects one of them; at most two such re-asks.
            let target = flow
                .steps
                .values()
                .find(
                    |s| matches!(&s.kind, StepKind::Collect { slots, .. } if slots.iter().any(|x| behind.contains(x))),
                )
                .map(|s| s.id.clone())
                .filter(|_| j.erp_reasks < MAX_ERP_REASKS);
            if let Some(target) = target {
                let m = t.msg();
                let labels: Vec<String> =
                    behind.iter().filter_map(|n| flow.slots.get(n).map(|s| s.label.to_lowercase())).collect();
                let why: Vec<String> = problems.iter().map(|p| p.message.clone()).collect();
                t.note(
                    "erp_invalid",
                    format!(
                        "ERP body for {action} failed its schema, nothing sent; asking again for {}: {reason}",
                        behind.join(", ")
                    ),
                    Some(step.source.clone()),
                );
                let jm = t.journey_mut()?;
                jm.erp_reasks += 1;
                for n in &behind {
                    jm.slots.remove(n);
                }
                // A value the ERP refuses is not kept for later journeys either.
                for n in &behind {
                    t.state.profile.remove(n);
                }
                let reprompt =
                    Messages::fill(&m.erp_refused_value, &[("labels", &m.and_list(&labels)), ("why", &why.join("; "))]);
                return Ok(Next::Go {
                    step: target,
                    why: "the ERP's schema refused a value".into(),
                    source: Some(step.source.clone()),
                    reprompt: Some(reprompt),
                });
            }
            t.note(
                "erp_invalid",
                format!("ERP body for {action} failed its schema, nothing sent: {reason}"),
                Some(step.source.clone()),
            );
            t.journey_mut()?.erp = Some(ErpStatus { action: action.to_string(), reference: None, error: Some(reason) });
            Ok(Next::Go {
                step: on_failure.to_string(),
                why: "the ERP body failed its schema".into(),
                source: Some(step.source.clone()),
                reprompt: None,
            })
        }
    }
}

/// Follows an `offer: true` closing message with one current offer, unless the customer opted
/// out, is or was upset, saw an offer already, or is in a complaint.
fn proactive_offer(t: &mut Turn<'_>, flow: &Flow, step: &Step) {
    let why_not = if t.state.opted_out {
        Some("the customer opted out of offers")
    } else if t.state.upset {
        Some("the customer was upset in this conversation")
    } else if t.state.offer_shown {
        Some("an offer was shown already")
    } else if flow.stage == Stage::Complaint {
        Some("a complaint never shows offers")
    } else {
        None
    };
    if let Some(why) = why_not {
        t.note("no_offer", format!("no offer: {why}"), Some(step.source.clone()));
        return;
    }
    let Some(offer) = t.guards.lookups.get(OFFERS_LOOKUP).and_then(|o| o.first()).cloned() else {
        t.note("no_offer", "no offer: none is current".into(), Some(step.source.clone()));
        return;
    };
    t.state.offer_shown = true;
    t.note("offer", format!("offer {} shown after the journey ended", offer.id), Some(step.source.clone()));
    let what = match offer.description {
        Some(d) => format!("{} — {d}", offer.title),
        None => offer.title.clone(),
    };
    let body = Messages::fill(&t.msg().offer, &[("offer", &what)]);
    t.say(body);
}

/// The question the current step asks, as text (for reminders): a collect step's question, or a
/// confirm step's summary.
pub fn current_question(t: &Turn<'_>, flow: &Flow) -> String {
    let Some(j) = &t.state.journey else { return String::new() };
    match flow.step(&j.step).map(|s| &s.kind) {
        Some(StepKind::Collect { ask, .. }) => t.render(flow, ask),
        Some(StepKind::Confirm { text, .. }) => t.render(flow, text),
        _ => String::new(),
    }
}
