//! Visits after they are booked: the reminder before one (Confirm / Reschedule / Cancel), the
//! rating after it, and keeping both right when a booking is moved or cancelled.
//!
//! A journey whose flow declares `visit:` changes the customer's visits once the ERP accepted its
//! write ([`on_erp_success`]): a booking adds one (with the booking's slots, for the texts), a
//! reschedule moves one, a cancellation removes one. [`next_due`] tells the driver when the
//! conversation must be woken; the scheduler's wake-up then sends what is due ([`on_tick`]),
//! as text with buttons inside WhatsApp's 24-hour window and as the flow's approved template
//! outside it (`../shared/reference/whatsapp-cloud-api.md` §8). Customers who opted out get
//! nothing. Answers come back as presses of `v|…` ids ([`on_press`]) or, for a rating, as a
//! typed number ([`typed_rating`]).

use std::sync::Arc;

use super::buttons;
use super::event::{Reply, ReplyOption};
use super::state::{ConversationState, SlotSource, SlotValue, Visit};
use super::turn::{Next, Turn};
use crate::flow::FlowSet;
use crate::flow::graph::{Flow, Template, VisitEffect, VisitRule};

/// Visits kept per conversation (the oldest go first).
pub const KEPT: usize = 20;
/// How long after it is asked a typed number still answers the rating.
const RATING_OPEN_SECONDS: i64 = 7 * 24 * 3600;
/// While a person has the conversation, what falls due waits this long at a time.
const POSTPONE_SECONDS: i64 = 1800;
/// WhatsApp's customer-service window, less a minute's margin (reference §8).
pub(crate) const WINDOW_SECONDS: i64 = 24 * 3600 - 60;

/// A press of a visit's button, read back from its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pressed<'a> {
    /// The reminder's answer number `0..`, for the visit with this reference.
    Answer(usize, &'a str),
    /// A rating from 1 to 5, for the visit with this reference.
    Rating(u8, &'a str),
}

/// The id of a reminder's answer button: `v|a<index>|<reference>`.
pub fn answer_id(index: usize, reference: &str) -> String {
    format!("v|a{index}|{reference}")
}

/// The id of a rating row: `v|r<n>|<reference>`.
pub fn rating_id(n: u8, reference: &str) -> String {
    format!("v|r{n}|{reference}")
}

/// Reads a visit button's id; `None` for any other id.
pub fn parse(id: &str) -> Option<Pressed<'_>> {
    let rest = id.strip_prefix("v|")?;
    let (what, reference) = rest.split_once('|')?;
    if let Some(i) = what.strip_prefix('a') {
        return i.parse().ok().map(|i| Pressed::Answer(i, reference));
    }
    let n: u8 = what.strip_prefix('r')?.parse().ok()?;
    (1..=5).contains(&n).then_some(Pressed::Rating(n, reference))
}

fn rule_of<'f>(flows: &'f FlowSet, visit: &Visit) -> Option<&'f VisitRule> {
    flows.flow(&visit.flow).and_then(|f| f.visit.as_ref())
}

/// The flow a reminder answer starts, for the guard plan (its lookups are read for the press).
pub fn answer_flow(flows: &FlowSet, state: &ConversationState, id: &str) -> Option<Arc<Flow>> {
    let Pressed::Answer(i, reference) = parse(id)? else { return None };
    let visit = state.visits.iter().find(|v| v.reference == reference)?;
    let answer = rule_of(flows, visit)?.reminder.as_ref()?.answers.get(i)?;
    let (flow, _) = answer.start.as_ref()?;
    flows.flow(flow).cloned()
}

/// Unix seconds of a civil date-time in the business's zone.
fn unix_of(t: &Turn<'_>, civil: &str) -> Option<i64> {
    let dt: jiff::civil::DateTime = civil.parse().ok()?;
    dt.to_zoned(t.flows.business.time_zone.clone()).ok().map(|z| z.timestamp().as_second())
}

/// Sets what is still wanted for `visit` from now on: its reminder (none when the moment for it
/// has passed) and its rating.
fn schedule(visit: &mut Visit, rule: &VisitRule, now: i64, opted_out: bool) {
    visit.reminded = opted_out || rule.reminder.as_ref().is_none_or(|r| now >= visit.at_unix - r.before_seconds);
    visit.rating_asked_at = None;
    visit.rating = None;
    visit.confirmed = false;
}

/// The ERP accepted the write of the journey under way, of `flow`: its visit rule, if any, is
/// applied (a visit added, moved or removed) and noted in the turn's trace.
pub fn on_erp_success(t: &mut Turn<'_>, flow: &Flow, reference: &str) {
    let Some(rule) = flow.visit.clone() else { return };
    let Some(j) = t.state.journey.as_ref() else { return };
    let slot_id = |name: &str| j.slots.get(name).map(|s| s.value.id());
    match &rule.effect {
        VisitEffect::Books { time } => {
            let Some(at) = slot_id(time) else { return };
            let Some(at_unix) = unix_of(t, &at) else { return };
            let mut visit = Visit {
                reference: reference.to_string(),
                flow: flow.id.clone(),
                at: at.clone(),
                at_unix,
                slots: j.slots.clone(),
                reminded: false,
                confirmed: false,
                rating_asked_at: None,
                rating: None,
            };
            schedule(&mut visit, &rule, t.now, t.state.opted_out);
            let reminder = if visit.reminded {
                "no reminder (booked too late for one, or opted out)"
            } else {
                "a reminder before it"
            };
            t.state.visits.retain(|v| v.reference != reference);
            t.state.visits.push(visit);
            t.state.visits.sort_by_key(|v| v.at_unix);
            if t.state.visits.len() > KEPT {
                let extra = t.state.visits.len() - KEPT;
                t.state.visits.drain(..extra);
            }
            t.note("visit", format!("visit {reference} booked for {at}: {reminder}"), None);
        }
        VisitEffect::Moves { visit, to } => {
            let (Some(which), Some(at)) = (slot_id(visit), slot_id(to)) else { return };
            let Some(at_unix) = unix_of(t, &at) else { return };
            let (now, opted_out) = (t.now, t.state.opted_out);
            let flows = t.flows;
            let Some(v) = t.state.visits.iter_mut().find(|v| v.reference == which) else {
                t.note(
                    "visit",
                    format!("visit {which} moved to {at}; it was not booked here, so nothing follows it"),
                    None,
                );
                return;
            };
            v.at = at.clone();
            v.at_unix = at_unix;
            if let Some(booking_rule) = flows.flow(&v.flow).and_then(|f| f.visit.as_ref()) {
                schedule(v, booking_rule, now, opted_out);
            }
            t.note("visit", format!("visit {which} moved to {at}: its reminder and rating follow it"), None);
        }
        VisitEffect::Cancels { visit } => {
            let Some(which) = slot_id(visit) else { return };
            let before = t.state.visits.len();
            t.state.visits.retain(|v| v.reference != which);
            let known =
                if t.state.visits.len() < before { "no reminder or rating follows" } else { "it was not booked here" };
            t.note("visit", format!("visit {which} cancelled: {known}"), None);
        }
    }
}

/// Unix seconds at which something about the visits falls due (a reminder or a rating), for the
/// scheduler; `None` when nothing is wanted (or the customer opted out). While a person has the
/// conversation, what is due waits [`POSTPONE_SECONDS`] at a time.
pub fn next_due(flows: &FlowSet, state: &ConversationState, now: i64) -> Option<i64> {
    if state.opted_out {
        return None;
    }
    let handed = state.handoff().is_some();
    state
        .visits
        .iter()
        .flat_map(|v| {
            let rule = rule_of(flows, v);
            let remind =
                rule.and_then(|r| r.reminder.as_ref()).filter(|_| !v.reminded).map(|r| v.at_unix - r.before_seconds);
            let rate = rule
                .and_then(|r| r.rating.as_ref())
                .filter(|_| v.rating_asked_at.is_none())
                .map(|r| v.at_unix + r.after_seconds);
            [remind, rate]
        })
        .flatten()
        .map(|due| if handed { due.max(now + POSTPONE_SECONDS) } else { due })
        .min()
}

/// Fills a visit text's placeholders from the booking's slots (`{first_name}`, `{visit_time}`,
/// `{service.description}`), `{erp.reference}`, `{business}` and `extra` pairs.
fn render(t: &Turn<'_>, visit: &Visit, text: &str, extra: &[(&str, String)]) -> String {
    let mut out = text.replace("{business}", &t.flows.business.name).replace("{erp.reference}", &visit.reference);
    for (name, value) in extra {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    for (name, s) in &visit.slots {
        if let SlotValue::Choice { description, .. } = &s.value {
            out = out.replace(&format!("{{{name}.description}}"), description.as_deref().unwrap_or(""));
        }
        out = out.replace(&format!("{{{name}}}"), &s.value.display());
    }
    out
}

/// Text with buttons inside the 24-hour window; the template, with the same ids as its quick
/// replies, outside it.
fn message(t: &Turn<'_>, visit: &Visit, text: &str, template: &Template, options: Vec<ReplyOption>) -> Reply {
    let body = render(t, visit, text, &[]);
    if t.now - t.state.last_customer_at < WINDOW_SECONDS {
        if options.is_empty() {
            return Reply::Text { body };
        }
        return Reply::Choices { body, options, button: t.msg().choose_button.clone() };
    }
    Reply::Template {
        body,
        name: template.name.clone(),
        language: template.language.clone(),
        parameters: template.parameters.iter().map(|p| render(t, visit, p, &[])).collect(),
        // A template's quick replies are few; a rating outside the window is typed instead.
        options: options.into_iter().filter(|o| !o.id.starts_with("v|r")).collect(),
    }
}

/// The scheduler woke the conversation: sends each reminder and rating that is due. Returns
/// whether anything was due (sent, or given up because the visit is past or the customer
/// opted out).
pub fn on_tick(t: &mut Turn<'_>) -> bool {
    let now = t.now;
    let handed = t.state.handoff().is_some();
    let mut acted = false;
    let visits = t.state.visits.clone();
    for (i, visit) in visits.iter().enumerate() {
        let Some(rule) = rule_of(t.flows, visit).cloned() else { continue };
        if let Some(r) = rule.reminder.as_ref().filter(|r| !visit.reminded && now >= visit.at_unix - r.before_seconds) {
            if t.state.opted_out || now >= visit.at_unix {
                t.state.visits[i].reminded = true;
                acted = true;
                t.note(
                    "visit",
                    format!("reminder for visit {} not sent: opted out or the visit is past", visit.reference),
                    None,
                );
            } else if handed {
                t.note(
                    "visit",
                    format!("reminder for visit {} waits: a person has the conversation", visit.reference),
                    None,
                );
            } else {
                let options = r
                    .answers
                    .iter()
                    .enumerate()
                    .map(|(n, a)| ReplyOption {
                        id: answer_id(n, &visit.reference),
                        title: a.title.clone(),
                        description: None,
                    })
                    .collect();
                let reply = message(t, visit, &r.text, &r.template, options);
                let how = if matches!(reply, Reply::Template { .. }) {
                    "as a template: the 24-hour window is closed"
                } else {
                    "with buttons"
                };
                t.replies.push(reply);
                t.state.visits[i].reminded = true;
                acted = true;
                t.note("visit", format!("reminder for visit {} at {} sent {how}", visit.reference, visit.at), None);
            }
        }
        if let Some(r) =
            rule.rating.as_ref().filter(|r| visit.rating_asked_at.is_none() && now >= visit.at_unix + r.after_seconds)
        {
            if t.state.opted_out {
                t.state.visits[i].rating_asked_at = Some(now);
                acted = true;
                t.note("visit", format!("rating of visit {} not asked: opted out", visit.reference), None);
            } else if handed {
                t.note(
                    "visit",
                    format!("rating of visit {} waits: a person has the conversation", visit.reference),
                    None,
                );
            } else {
                let options = (1..=5u8)
                    .map(|n| ReplyOption {
                        id: rating_id(n, &visit.reference),
                        title: format!("{} {n}", "⭐".repeat(usize::from(n))),
                        description: None,
                    })
                    .collect();
                let reply = message(t, visit, &r.text, &r.template, options);
                t.replies.push(reply);
                t.state.visits[i].rating_asked_at = Some(now);
                acted = true;
                t.note("visit", format!("rating of visit {} asked", visit.reference), None);
            }
        }
    }
    acted
}

/// A press of a reminder's answer or a rating.
pub fn on_press(t: &mut Turn<'_>, pressed: Pressed<'_>) -> Next {
    let reference = match pressed {
        Pressed::Answer(_, r) | Pressed::Rating(_, r) => r,
    };
    let Some(i) = t.state.visits.iter().position(|v| v.reference == reference) else {
        t.note("stale_button", format!("a button of visit {reference}, which is no longer booked here"), None);
        return Next::Menu("a button of a visit no longer booked".into());
    };
    match pressed {
        Pressed::Rating(n, _) => rate(t, i, n),
        Pressed::Answer(a, _) => answer(t, i, a),
    }
}

/// The reminder's answer `a` for visit `i`: its reply (the visit confirmed), or its journey
/// started with the visit already chosen.
fn answer(t: &mut Turn<'_>, i: usize, a: usize) -> Next {
    let visit = t.state.visits[i].clone();
    let Some(answer) =
        rule_of(t.flows, &visit).and_then(|r| r.reminder.as_ref()).and_then(|r| r.answers.get(a)).cloned()
    else {
        return Next::Menu("an answer the reminder no longer has".into());
    };
    if let Some(say) = &answer.say {
        t.state.visits[i].confirmed = true;
        t.note(
            "visit",
            format!("the customer answered {:?} to the reminder of visit {}", answer.title, visit.reference),
            None,
        );
        let body = render(t, &visit, say, &[]);
        t.say(body);
        return Next::Stay;
    }
    let Some((flow_id, slot)) = answer.start.clone() else { return Next::Stay };
    let Some(flow) = t.flows.flow(&flow_id).cloned() else { return Next::Menu("a journey no longer loaded".into()) };
    let why = format!("the customer answered {:?} to the reminder of visit {}", answer.title, visit.reference);
    let next = match super::tasks::start(t, &flow, None, &why, false) {
        Ok(n) => n,
        Err(_) => return Next::Stay,
    };
    // The visit is chosen already when the customer's bookings (the slot's lookup) still hold it.
    if let Some(o) = t.options(&flow, &slot).into_iter().find(|o| o.id == visit.reference) {
        t.fill(
            &flow,
            &slot,
            SlotValue::from_option(&o),
            SlotSource::Button,
            format!("the reminder of {}", visit.reference),
        );
    }
    next
}

/// Stores rating `n` of visit `i` and answers it; a low one offers a person.
fn rate(t: &mut Turn<'_>, i: usize, n: u8) -> Next {
    let visit = t.state.visits[i].clone();
    let Some(rating) = rule_of(t.flows, &visit).and_then(|r| r.rating.as_ref()).cloned() else { return Next::Stay };
    t.state.visits[i].rating = Some(n);
    t.state.visits[i].rating_asked_at.get_or_insert(t.now);
    t.note("rating", format!("visit {} rated {n} of 5", visit.reference), None);
    let extra = [("rating", n.to_string())];
    if n < rating.low_below {
        let m = t.msg();
        let person = ReplyOption { id: buttons::PERSON.into(), title: m.person_button.clone(), description: None };
        let body = render(t, &visit, &rating.sorry, &extra);
        let button = m.choose_button.clone();
        t.replies.push(Reply::Choices { body, options: vec![person], button });
    } else {
        let body = render(t, &visit, &rating.thanks, &extra);
        t.say(body);
    }
    Next::Stay
}

/// A typed message while a rating is open ("5", "4 stars", "⭐⭐⭐⭐"): the rating of the visit
/// asked about most recently; `None` when no rating is open or the text is not one.
pub fn typed_rating(t: &mut Turn<'_>, body: &str) -> Option<Next> {
    let now = t.now;
    let i = t
        .state
        .visits
        .iter()
        .enumerate()
        .filter(|(_, v)| v.rating.is_none() && v.rating_asked_at.is_some_and(|at| now - at < RATING_OPEN_SECONDS))
        .max_by_key(|(_, v)| v.rating_asked_at)
        .map(|(i, _)| i)?;
    let n = read_rating(body)?;
    Some(rate(t, i, n))
}

/// A rating from 1 to 5 typed on its own: "4", "4/5", "4 stars", "⭐⭐⭐⭐", "five".
pub fn read_rating(body: &str) -> Option<u8> {
    let stars = body.chars().filter(|c| *c == '⭐' || *c == '★').count();
    let rest: String = body.chars().filter(|c| *c != '⭐' && *c != '★' && *c != '\u{fe0f}').collect();
    if stars > 0 && rest.trim().is_empty() {
        return u8::try_from(stars).ok().filter(|n| (1..=5).contains(n));
    }
    let folded = crate::text::fold(body);
    let words: Vec<&str> = folded.split_whitespace().collect();
    let number = |w: &str| match w {
        "1" | "one" => Some(1),
        "2" | "two" => Some(2),
        "3" | "three" => Some(3),
        "4" | "four" => Some(4),
        "5" | "five" => Some(5),
        _ => None,
    };
    match words.as_slice() {
        [n] => number(n.trim_end_matches("/5")),
        [n, "stars" | "star" | "/5" | "out"] => number(n),
        [n, "of" | "out", .., "5" | "five"] => number(n),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{Pressed, answer_id, parse, rating_id, read_rating};

    #[test]
    fn visit_button_ids_read_back() {
        assert_eq!(parse(&answer_id(2, "SAL-ORD-2026-00047")), Some(Pressed::Answer(2, "SAL-ORD-2026-00047")));
        assert_eq!(parse(&rating_id(4, "SO|odd")), Some(Pressed::Rating(4, "SO|odd")));
        assert_eq!(parse("v|r9|SO-1"), None);
        assert_eq!(parse("b|booking|1|name|x|set"), None);
    }

    #[test]
    fn ratings_as_customers_type_them() {
        assert_eq!(read_rating("4"), Some(4));
        assert_eq!(read_rating("5 stars"), Some(5));
        assert_eq!(read_rating("⭐⭐⭐"), Some(3));
        assert_eq!(read_rating("4/5"), Some(4));
        assert_eq!(read_rating("two out of five"), Some(2));
        assert_eq!(read_rating("6"), None);
        assert_eq!(read_rating("book for 5pm"), None);
    }
}
