//! The ids of the buttons and list rows the engine sends, so a press can be told apart: for
//! the step it was made for, stale, or for a journey put aside.
//!
//! - `b|flow|version|step|tag|value`: an option of a step (`tag` names the journey instance, see
//!   [`Journey::tag`]; `value` is `set:slot=option`, `confirm`, `change:step`, `pending:yes`…);
//! - `m|flow`: a journey in the main menu;
//! - `t|journey id`: an open request;
//! - `h|person`: "talk to a person";
//! - `v|a<n>|reference`, `v|r<n>|reference`: a visit reminder's answer, a rating (see
//!   [`super::visits`]).
//!
//! A reply-button id may have 256 characters, a list row's 200 (reference §7).

use super::event::{Reply, ReplyOption};
use super::state::Journey;

/// The id of a step's option.
pub fn encode(journey: &Journey, step: &str, value: &str) -> String {
    format!("b|{}|{}|{step}|{}|{value}", journey.flow, journey.version, journey.tag())
}

/// A message with reply buttons of the journey's `step`: `options` are `(value, title)` pairs,
/// at most three (WhatsApp's limit on reply buttons, reference §7); `button` titles the list
/// the channel falls back to.
pub fn step_choices(journey: &Journey, step: &str, body: String, options: &[(&str, &str)], button: &str) -> Reply {
    Reply::Choices {
        body,
        options: options
            .iter()
            .map(|(value, title)| ReplyOption {
                id: encode(journey, step, value),
                title: (*title).into(),
                description: None,
            })
            .collect(),
        button: button.into(),
    }
}

/// A step option's id, read back.
pub struct Parsed<'a> {
    /// The flow.
    pub flow: &'a str,
    /// The flow's version.
    pub version: u32,
    /// The step it was made for.
    pub step: &'a str,
    /// The journey instance's tag.
    pub tag: &'a str,
    /// What it does.
    pub value: &'a str,
}

impl Parsed<'_> {
    /// Whether the button was made for `j` at its current step.
    pub fn fits(&self, j: &Journey) -> bool {
        self.flow == j.flow && self.version == j.version && self.step == j.step && self.tag == j.tag()
    }
}

/// Reads a step option's id; `None` for any other id.
pub fn parse(id: &str) -> Option<Parsed<'_>> {
    let mut it = id.splitn(6, '|');
    if it.next()? != "b" {
        return None;
    }
    Some(Parsed {
        flow: it.next()?,
        version: it.next()?.parse().ok()?,
        step: it.next()?,
        tag: it.next()?,
        value: it.next()?,
    })
}

/// The id of a journey in the main menu.
pub fn menu(flow: &str) -> String {
    format!("m|{flow}")
}

/// The flow a menu button starts.
pub fn menu_flow(id: &str) -> Option<&str> {
    id.strip_prefix("m|")
}

/// "Talk to a person", offered with the acknowledgement of an upset customer.
pub const PERSON: &str = "h|person";

/// The id of an open request.
pub fn task(journey: &Journey) -> String {
    format!("t|{}", journey.id)
}

/// The journey an open-request row names.
pub fn task_id(id: &str) -> Option<&str> {
    id.strip_prefix("t|")
}

/// Whether the id is one this engine made (a template's quick reply, set by whoever sent the
/// template, is not).
pub fn is_ours(id: &str) -> bool {
    ["b|", "m|", "t|", "h|", "v|"].iter().any(|p| id.starts_with(p))
}
