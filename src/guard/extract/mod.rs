//! Deterministic extractors: names, choices (typed titles, a word of one title, a typo, a row
//! number), dates and times, plates, car make and model, addresses, amounts. They need no
//! network, so every journey can be completed while the LLM is absent, slow or wrong.
//!
//! One file per kind of value; this file reads a message for a flow's slots. Each extractor is
//! conservative outside the current question: a plate, a date with a time, a car or a catalog
//! title may be picked up from any message, but a name only after an introduction or as a
//! capitalised sentence of its own, an address only as an unmistakable street address, free
//! text only when it is what was asked. A value that is not sure is not read: the bot asks.

pub mod address;
pub mod amount;
pub mod choice;
pub mod count;
pub mod names;
pub mod phone;
pub mod plates;
pub mod vehicles;
pub mod when;
pub mod words;

use std::collections::BTreeMap;

use jiff::Zoned;

pub use address::{AddressShape, address, address_shape, street_address};
pub use amount::find_amount;
pub use choice::{ChoiceRead, match_option, read_choice};
pub use count::find_count;
pub use names::{NameRead, find_name, name_shaped};
pub use phone::{PhoneRead, find_phone};
pub use plates::{PlateRead, find_plate, plate_shaped};
pub use vehicles::{CarRead, find_car};
pub use when::{When, check_visit_time, parse_when, visit_slots};

use crate::engine::{Extracted, SlotSource, SlotValue};
use crate::flow::Business;
use crate::flow::format::SlotType;
use crate::flow::graph::{ChoiceOption, Flow};
use crate::flow::messages::Messages;
use crate::text::western_digits;

/// What the extractors found, and what made the asked slots unreadable.
#[derive(Debug, Default)]
pub struct Found {
    /// Values by slot.
    pub slots: BTreeMap<String, Extracted>,
    /// A reason to show the customer when an asked slot was present but invalid ("We don't
    /// visit on Fridays.").
    pub problem: Option<String>,
    /// A day given without a time for the asked date-time slot, to remember for the next message.
    pub date_only: Option<jiff::civil::Date>,
    /// A day given without a time while the date-time slot was not asked (an open day, today or
    /// later), for the journey to keep until it asks.
    pub day_mentioned: Option<jiff::civil::Date>,
    /// For an asked choice the words fit several options of ("wash" with two washes on offer):
    /// their ids, to ask which.
    pub candidates: BTreeMap<String, Vec<String>>,
    /// Values that may be the answer but are not sure ("near the mall" for an address): the
    /// customer is asked to confirm before one fills its slot.
    pub unsure: BTreeMap<String, Extracted>,
}

/// Reads `text` for the `focus` slots (the current question) and, conservatively, for `others`.
/// `pending_day` is a day the customer gave earlier without a time: a time alone ("3pm") is then
/// read on that day.
#[allow(clippy::too_many_arguments)]
pub fn extract(
    text: &str,
    flow: &Flow,
    focus: &[String],
    others: &[String],
    options: &dyn Fn(&str) -> Vec<ChoiceOption>,
    business: &Business,
    now: &Zoned,
    pending_day: Option<jiff::civil::Date>,
) -> Found {
    let text = &western_digits(text);
    let mut found = Found::default();
    let put = |found: &mut Found, slot: &str, value: SlotValue, evidence: &str| {
        found
            .slots
            .insert(slot.to_string(), Extracted { value, source: SlotSource::Parser, evidence: evidence.to_string() });
    };
    let in_focus = |s: &str| focus.iter().any(|f| f == s);
    let asked = |kind: SlotType| focus.iter().any(|s| flow.slots.get(s).is_some_and(|d| d.kind == kind));
    let wanted: Vec<&String> = focus.iter().chain(others.iter()).collect();

    // The car first, so that its model is not taken for a plate; then plates and dates, whose
    // words are then not mistaken for names.
    let car = find_car(text, asked(SlotType::CarMake) || asked(SlotType::CarModel));
    let plate = find_plate(text, asked(SlotType::Plate), &car.spans);
    let when = match (parse_when(text, now, business), pending_day) {
        (When::At(dt, evidence), Some(day)) if !when::names_a_day(&evidence) => {
            When::At(day.to_datetime(dt.time()), evidence)
        }
        (w, _) => w,
    };
    let name_asked = asked(SlotType::GivenName) || asked(SlotType::FamilyName);
    // While a free-text question is open its answer ("Acme Logistics") is not read as a name
    // unless introduced as one.
    let name = if asked(SlotType::Text) && !name_asked {
        names::introduced_name(text, false)
    } else {
        find_name(text, name_asked)
    };

    for slot in &wanted {
        let Some(decl) = flow.slots.get(slot.as_str()) else { continue };
        let focused = in_focus(slot);
        match decl.kind {
            SlotType::Plate => {
                if let Some(p) = &plate {
                    put(&mut found, slot, SlotValue::Text { value: p.value.clone() }, &p.evidence);
                }
            }
            SlotType::DateTime => match &when {
                When::At(dt, ev) => match check_visit_time(*dt, now, business) {
                    Ok(()) => put(
                        &mut found,
                        slot,
                        SlotValue::DateTime { civil: dt.to_string(), zone: business.time_zone_name.clone() },
                        ev,
                    ),
                    Err(problem) if focused => found.problem = Some(problem),
                    Err(_) => {}
                },
                When::DateOnly(d) if focused => match business.hours_on(*d) {
                    None => found.problem = Some(when::closed_reason(*d, business)),
                    _ => {
                        found.date_only = Some(*d);
                        let day = d.strftime("%a %-d %b").to_string();
                        found.problem = Some(Messages::fill(&business.messages.what_time_on, &[("day", &day)]));
                    }
                },
                When::DateOnly(d) if *d >= now.date() && business.hours_on(*d).is_some() => {
                    found.day_mentioned = Some(*d);
                }
                _ => {}
            },
            SlotType::Choice => match read_choice(text, &options(slot), focused) {
                ChoiceRead::One(o, ev) => put(&mut found, slot, SlotValue::from_option(&o), &ev),
                ChoiceRead::Several(several) if focused => {
                    let titles: Vec<String> = several.iter().map(|o| o.title.clone()).collect();
                    found.problem = Some(format!("Did you mean {}?", or_list(&titles)));
                    found.candidates.insert(slot.to_string(), several.into_iter().map(|o| o.id).collect());
                }
                _ => {}
            },
            SlotType::CarMake => {
                if let Some((make, ev)) = &car.make {
                    put(&mut found, slot, SlotValue::Text { value: make.clone() }, ev);
                }
            }
            SlotType::CarModel => {
                if let Some((model, ev)) = &car.model {
                    put(&mut found, slot, SlotValue::Text { value: model.clone() }, ev);
                }
            }
            SlotType::GivenName => {
                if let Some(n) = &name {
                    put(&mut found, slot, SlotValue::Text { value: n.given.clone() }, &n.evidence);
                }
            }
            SlotType::FamilyName => {
                // Asked alone ("And your last name?"), the whole name given is the family name.
                let alone = focused && !asked(SlotType::GivenName);
                let family = name.as_ref().and_then(|n| match (&n.family, alone) {
                    (Some(f), true) => Some(format!("{} {f}", n.given)),
                    (None, true) => Some(n.given.clone()),
                    (family, false) => family.clone(),
                });
                if let (Some(family), Some(n)) = (family, &name) {
                    put(&mut found, slot, SlotValue::Text { value: family }, &n.evidence);
                }
            }
            SlotType::Address if focused => match address(text) {
                Some((addr, AddressShape::Clear)) => put(
                    &mut found,
                    slot,
                    SlotValue::Address { text: addr.clone(), latitude: None, longitude: None },
                    &addr,
                ),
                // "near the mall": maybe a place; the customer is asked whether it is.
                Some((addr, AddressShape::Unsure)) => {
                    let value = SlotValue::Address { text: addr.clone(), latitude: None, longitude: None };
                    found
                        .unsure
                        .insert(slot.to_string(), Extracted { value, source: SlotSource::Parser, evidence: addr });
                }
                _ => {}
            },
            SlotType::Address => {
                // Not asked: only an unmistakable street address inside the sentence.
                if let Some(addr) = street_address(text) {
                    put(
                        &mut found,
                        slot,
                        SlotValue::Address { text: addr.clone(), latitude: None, longitude: None },
                        &addr,
                    );
                }
            }
            SlotType::Amount => {
                if let Some((value, ev)) = find_amount(text, focused) {
                    put(&mut found, slot, SlotValue::Amount { value }, &ev);
                } else if focused {
                    found.problem = Some("How much did you pay? Please type the amount, for example 150.".into());
                }
            }
            SlotType::Number => {
                let (lo, hi) = decl.range.unwrap_or((0, u64::MAX));
                match find_count(text, focused, &decl.units) {
                    Some((value, ev)) if (lo..=hi).contains(&value) => {
                        put(&mut found, slot, SlotValue::Number { value }, &ev)
                    }
                    Some(_) if focused => {
                        found.problem = Some(format!("Please type a number from {lo} to {hi}."));
                    }
                    _ => {}
                }
            }
            SlotType::Phone => match find_phone(text) {
                PhoneRead::Number(number, written) => {
                    put(&mut found, slot, SlotValue::Text { value: number }, &written)
                }
                PhoneRead::Local(_) if focused => {
                    found.problem = Some("Please include the country code.".into());
                }
                _ if focused => {
                    found.problem = Some("Please type your mobile number with its country code.".into());
                }
                _ => {}
            },
            SlotType::Text if focused => {
                let t = text.trim();
                if !t.is_empty() {
                    put(&mut found, slot, SlotValue::Text { value: t.to_string() }, t);
                }
            }
            SlotType::Text | SlotType::Media => {}
        }
    }
    if found.problem.is_none() && focus.iter().any(|f| !found.slots.contains_key(f)) {
        found.problem = Some(default_problem(flow, focus));
    }
    found
}

/// "A, B or C".
fn or_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

fn default_problem(flow: &Flow, focus: &[String]) -> String {
    let kinds: Vec<SlotType> = focus.iter().filter_map(|s| flow.slots.get(s).map(|d| d.kind)).collect();
    if kinds.contains(&SlotType::DateTime) {
        "Sorry, I couldn't read a day and time from that.".into()
    } else if kinds.contains(&SlotType::Choice) {
        "Sorry, that isn't one of the options.".into()
    } else if kinds.contains(&SlotType::GivenName) || kinds.contains(&SlotType::FamilyName) {
        "Sorry, I couldn't read a name from that.".into()
    } else if kinds.contains(&SlotType::Plate) {
        "Sorry, I couldn't read all the car details from that.".into()
    } else {
        "Sorry, I didn't catch that.".into()
    }
}
