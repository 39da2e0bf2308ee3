//! No journey in front (phase `idle`): a message starts one (by its keywords, by the intent
//! guard, by naming a service), a menu button starts one, or the menu answers; the same
//! unmatched message climbs the menu's stuck ladder.

use std::sync::Arc;

use super::MIN_INTENT_CONFIDENCE;
use super::buttons;
use super::event::{EventKind, Reply, ReplyOption};
use super::state::ConversationState;
use super::tasks::{describe, short_name};
use super::turn::{Next, Turn};
use super::words::{GREETINGS, is_one_of};
use crate::flow::graph::Flow;
use crate::flow::messages::Messages;
use crate::text::fold;

/// Typed text with no journey in front.
pub fn on_text(t: &mut Turn<'_>, body: &str) -> Next {
    if let Some(flow) = t.flows.route(body) {
        return Next::Start { flow, text: Some(body.into()), why: "keywords in the message".into(), digression: false };
    }
    let picked = t
        .guards
        .understanding
        .as_ref()
        .filter(|u| u.confidence >= MIN_INTENT_CONFIDENCE)
        .and_then(|u| t.flows.flow(&u.intent).cloned());
    if let Some(flow) = picked {
        let why = "the intent guard read the message as this journey".into();
        return Next::Start { flow, text: Some(body.into()), why, digression: false };
    }
    if is_one_of(body, GREETINGS) {
        return Next::Menu("greeting".into());
    }
    unmatched(t, t.before, body)
}

/// A button with no journey in front: a menu button, or a title that names a journey; any other
/// is stale.
pub fn on_press(t: &mut Turn<'_>, id: &str, title: &str) -> Next {
    if let Some(flow) = buttons::menu_flow(id).and_then(|f| t.flows.flow(f).cloned()) {
        return start_from_menu(t, flow);
    }
    if let Some(flow) = t.flows.route(title) {
        return Next::Start { flow, text: None, why: "button title".into(), digression: false };
    }
    t.say(t.msg().stale_button.clone());
    Next::Menu("button from a journey that has ended".into())
}

/// A journey chosen from the menu: the one of that flow put aside carries on, or a new one
/// starts. The same journey as the one in front carries on too (a second one is asked for in
/// words: "book another car"), so a menu press never makes a duplicate booking.
pub fn start_from_menu(t: &mut Turn<'_>, flow: Arc<Flow>) -> Next {
    if t.state.journey.as_ref().is_some_and(|j| j.flow == flow.id) {
        t.note("resume", "the customer chose the journey already under way from the menu".into(), None);
        return Next::Enter(None);
    }
    if let Some(id) = super::tasks::aside_of(t, &flow.id) {
        return Next::Resume {
            id,
            why: "the customer asked for this journey again".into(),
            announce: true,
            then: None,
        };
    }
    Next::Start { flow, text: None, why: "main-menu button".into(), digression: false }
}

/// A location with no journey in front.
pub fn on_location(t: &mut Turn<'_>) -> Next {
    t.say(t.msg().location_thanks.clone());
    Next::Menu("location outside a journey".into())
}

/// A message that matched nothing: the menu, and the stuck ladder there. The second time the
/// same words come, the bot says in a sentence what it can do and offers a person; the third
/// time, a person takes over.
fn unmatched(t: &mut Turn<'_>, before: &ConversationState, body: &str) -> Next {
    let folded = fold(body);
    let n = match &before.unmatched {
        Some((previous, n)) if *previous == folded => n + 1,
        _ => 1,
    };
    t.state.unmatched = Some((folded, n));
    match n {
        1 => Next::Menu("no journey matched".into()),
        2 => {
            t.note("stuck", "the same message twice at the menu: what the bot can do, and a person".into(), None);
            menu(t, "the same message again");
            let capabilities = Messages::fill(&t.msg().capabilities, &[("business", &t.flows.business.name)]);
            let person =
                ReplyOption { id: buttons::PERSON.into(), title: t.msg().person_button.clone(), description: None };
            if let Some(Reply::Choices { body, options, .. }) = t.replies.last_mut() {
                *body = capabilities;
                if options.len() >= crate::flow::MAX_LIST_ROWS {
                    options.pop();
                }
                options.push(person);
            }
            Next::Stay
        }
        _ => {
            t.note("stuck", format!("the same message {n} times at the menu: hand-off"), None);
            t.state.unmatched = None;
            Next::HandOff("the same message three times at the menu".into())
        }
    }
}

/// The main menu: a greeting, each journey the flows offer, and the requests put aside.
pub fn menu(t: &mut Turn<'_>, why: &str) {
    let m = t.msg();
    let business = &t.flows.business.name;
    let mut greeting = match t.state.profile.get("first_name") {
        Some(name) => Messages::fill(&m.welcome_back, &[("first_name", &name.value.display()), ("business", business)]),
        None => Messages::fill(&m.welcome, &[("business", business)]),
    };
    let mut in_menu: Vec<&Arc<Flow>> = t.flows.flows.values().collect();
    in_menu.sort_by_key(|f| f.menu_position);
    let mut options: Vec<ReplyOption> = in_menu
        .into_iter()
        .filter_map(|f| {
            f.menu_title.as_ref().map(|title| ReplyOption {
                id: buttons::menu(&f.id),
                title: title.clone(),
                description: None,
            })
        })
        .collect();
    if !t.state.suspended.is_empty() {
        greeting.push_str("\n\n");
        greeting.push_str(&m.unfinished_request);
        let room = crate::flow::MAX_LIST_ROWS.saturating_sub(options.len());
        for j in t.state.suspended.iter().rev().take(room) {
            let title = Messages::fill(&m.continue_row, &[("request", &short_name(t.flows, j))]);
            options.push(ReplyOption {
                id: buttons::task(j),
                title: crate::text::truncate(&title, 24),
                description: Some(crate::text::truncate(&describe(t.flows, j), 72)),
            });
        }
    }
    t.note("menu", format!("main menu ({why})"), None);
    t.replies.push(Reply::Choices { body: greeting, options, button: m.menu_button.clone() });
}

/// Whether an event, with no journey in front, is a message the menu answers after a word
/// (a file, a contact card, a type no journey uses).
pub fn is_unusable(kind: &EventKind) -> bool {
    matches!(kind, EventKind::Media { .. } | EventKind::Unsupported { .. } | EventKind::Contacts { .. })
}
