//! Grounding: whether a value the LLM extracted is really in the customer's words. A schema-valid
//! answer can still be wrong (quoting the customer's real words for the wrong slot: "First name:
//! Like", a plan picked because the quote "Jane" occurs somewhere), so words occurring is
//! necessary, not sufficient. A value is taken only when:
//! - its quote is in the message and the value is in its quote;
//! - the quote names it the way the slot's own extractor would: a choice's title, id or synonym
//!   (or, asked, a word of one title or a typo); a plate's shape; a day and a time; a make or
//!   model of the dataset (or, asked, the word after a known make); a street address; a name
//!   that looks like a name (no everyday word);
//! - the slot is the open question's, or the quote names the slot outright (an introduction
//!   before a name, a plate, a day and time, a street address, a dataset car, an option's title);
//!   free text is only ever taken for the open question.
//!
//! Each refusal says why, for the turn record; the engine never sees the value.

use jiff::Zoned;

use super::SlotAnswer;
use super::extract::{self, AddressShape, ChoiceRead, When};
use crate::engine::SlotValue;
use crate::flow::Business;
use crate::flow::format::SlotType;
use crate::flow::graph::{ChoiceOption, Flow};
use crate::text::{Folded, compact, contains_words, fold, title_case, tokens};

/// Introductions that name a name outright when the name follows them ("it's for jane doe").
const NAME_INTRODUCTIONS: &[&str] = &[
    "my name is",
    "my name s",
    "name is",
    "name s",
    "i m",
    "im",
    "i am",
    "this is",
    "call me",
    "name",
    "it s for",
    "it is for",
    "for",
    "booking for",
    "in the name of",
    "under the name",
    "under",
    "it s",
    "its",
];

/// Checks an LLM value (see the module doc) and turns it into a typed slot value. `focus`: the
/// open question's slots.
///
/// Errors: why the value is not grounded, for the turn record (`guard.ungrounded`).
pub fn ground(
    a: &SlotAnswer,
    utterance: &str,
    flow: &Flow,
    focus: &[String],
    options: &(dyn Fn(&str) -> Vec<ChoiceOption> + Sync),
    business: &Business,
    now: &Zoned,
) -> Result<SlotValue, String> {
    let decl = flow.slots.get(&a.slot).ok_or_else(|| format!("{} is not a slot of this flow", a.slot))?;
    let asked = focus.iter().any(|f| f == &a.slot);
    let quote = a.quote.trim();
    if quote.is_empty() || !fold(utterance).contains(&fold(quote)) {
        return Err(format!("quote {quote:?} is not in the message"));
    }
    let value_in_quote = || !a.value.trim().is_empty() && contains_words(quote, &a.value);
    match decl.kind {
        SlotType::Choice => {
            let opts = options(&a.slot);
            let o = opts
                .iter()
                .find(|o| o.id == a.value)
                .ok_or_else(|| format!("{:?} is not one of the offered options", a.value))?;
            // The quote must name this option, as the customer would type it.
            match extract::read_choice(quote, &opts, asked) {
                ChoiceRead::One(named, _) if named.id == o.id => Ok(SlotValue::from_option(o)),
                _ if Folded::new(quote).has(&o.id) => Ok(SlotValue::from_option(o)),
                _ => Err(format!("quote {quote:?} does not name the option {:?}", o.title)),
            }
        }
        SlotType::DateTime => match extract::parse_when(quote, now, business) {
            When::At(dt, _) => {
                extract::check_visit_time(dt, now, business)?;
                Ok(SlotValue::DateTime { civil: dt.to_string(), zone: business.time_zone_name.clone() })
            }
            _ => Err(format!("{quote:?} does not read as a day and time")),
        },
        SlotType::Plate => {
            let plate = extract::find_plate(quote, true, &[])
                .filter(|p| compact(&p.value) == compact(&a.value))
                .ok_or_else(|| format!("quote {quote:?} does not hold the plate {:?}", a.value))?;
            Ok(SlotValue::Text { value: plate.value })
        }
        SlotType::Media => Err("a file cannot be read from text".into()),
        SlotType::Phone => match extract::find_phone(quote) {
            extract::PhoneRead::Number(n, _) if a.value.chars().filter(char::is_ascii_digit).eq(n.chars().skip(1)) => {
                Ok(SlotValue::Text { value: n })
            }
            _ => Err(format!("phone number {:?} is not in the quote", a.value)),
        },
        SlotType::Amount => {
            let value: f64 =
                a.value.trim().replace(',', "").parse().map_err(|_| format!("{:?} is not an amount", a.value))?;
            match extract::find_amount(quote, true) {
                Some((found, _)) if (found - value).abs() < 0.005 => Ok(SlotValue::Amount { value }),
                _ => Err(format!("amount {:?} is not in the quote", a.value)),
            }
        }
        SlotType::Number => {
            let value: u64 = a.value.trim().parse().map_err(|_| format!("{:?} is not a whole number", a.value))?;
            let (lo, hi) = decl.range.unwrap_or((0, u64::MAX));
            match extract::find_count(quote, true, &decl.units) {
                Some((found, _)) if found == value && (lo..=hi).contains(&value) => Ok(SlotValue::Number { value }),
                _ => Err(format!("number {:?} is not in the quote", a.value)),
            }
        }
        SlotType::Address => {
            if !value_in_quote() {
                return Err(format!("address {:?} is not in its quote", a.value));
            }
            match extract::address_shape(&a.value) {
                AddressShape::Clear => {}
                AddressShape::Unsure if asked => {}
                _ => return Err(format!("{:?} does not look like an address", a.value)),
            }
            Ok(SlotValue::Address { text: a.value.trim().to_string(), latitude: None, longitude: None })
        }
        SlotType::CarMake | SlotType::CarModel => {
            if !value_in_quote() {
                return Err(format!("{:?} is not in its quote", a.value));
            }
            let car = extract::find_car(quote, asked);
            let read = if decl.kind == SlotType::CarMake { car.make } else { car.model };
            match read {
                Some((v, _)) if compact(&v) == compact(&a.value) || compact(&a.value).contains(&compact(&v)) => {
                    Ok(SlotValue::Text { value: v })
                }
                Some((v, _)) => Err(format!("the quote {quote:?} names {v:?}, not {:?}", a.value)),
                // A make is one of the dataset's; a model not in it is read only right after a
                // known make (what the car extractor does when the car is asked).
                None => Err(format!("{:?} is not a car this message names", a.value)),
            }
        }
        SlotType::GivenName | SlotType::FamilyName => {
            if !value_in_quote() {
                return Err(format!("{:?} is not in its quote", a.value));
            }
            if !extract::name_shaped(&a.value) {
                return Err(format!("{:?} does not look like a name", a.value));
            }
            let introduced = follows_introduction(utterance, &a.value);
            if !asked && !introduced {
                return Err(format!("{} was not asked and the message does not introduce a name", a.slot));
            }
            Ok(SlotValue::Text { value: title_case(a.value.trim()) })
        }
        SlotType::Text => {
            if !asked {
                return Err(format!("{} is free text and was not asked", a.slot));
            }
            if !value_in_quote() {
                return Err(format!("{:?} is not in its quote", a.value));
            }
            Ok(SlotValue::Text { value: a.value.trim().to_string() })
        }
    }
}

/// Whether `value` follows an introduction in `utterance`, directly ("my name is Jane") or
/// after one more word (the family name in "it's for jane doe").
fn follows_introduction(utterance: &str, value: &str) -> bool {
    let words: Vec<String> = tokens(utterance).into_iter().map(|t| t.text).collect();
    let wanted: Vec<String> = tokens(value).into_iter().map(|t| t.text).collect();
    if wanted.is_empty() || wanted.len() > words.len() {
        return false;
    }
    let ends_with_intro = |before: &[String]| {
        NAME_INTRODUCTIONS.iter().any(|i| {
            let intro: Vec<String> = tokens(i).into_iter().map(|t| t.text).collect();
            before.len() >= intro.len() && before[before.len() - intro.len()..] == intro[..]
        })
    };
    (0..=words.len() - wanted.len()).filter(|&p| words[p..p + wanted.len()] == wanted[..]).any(|p| {
        ends_with_intro(&words[..p])
            || (p >= 1 && ends_with_intro(&words[..p - 1]) && extract::name_shaped(&words[p - 1]))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (crate::flow::FlowSet, Zoned) {
        let flows =
            crate::flow::FlowSet::load(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/flows"))).unwrap();
        let now = jiff::Timestamp::from_second(1_796_191_200).unwrap().to_zoned(flows.business.time_zone.clone());
        (flows, now)
    }

    fn check(slot: &str, value: &str, quote: &str, utterance: &str, focus: &[&str]) -> Result<String, String> {
        let (flows, now) = setup();
        let flow = flows.flow("booking").unwrap();
        let catalog = vec![ChoiceOption {
            id: "SVC-FULL-WASH".into(),
            title: "Full Wash".into(),
            description: None,
            synonyms: vec![],
            price: Some(75.0),
        }];
        let options = |s: &str| match &flow.slots[s].options {
            crate::flow::graph::OptionSource::Static(items) => items.clone(),
            _ => catalog.clone(),
        };
        let a = SlotAnswer { slot: slot.into(), value: value.into(), quote: quote.into() };
        let focus: Vec<String> = focus.iter().map(|s| s.to_string()).collect();
        ground(&a, utterance, flow, &focus, &options, &flows.business, &now).map(|v| v.display())
    }

    #[test]
    fn names_quoted_from_the_wrong_words_are_refused() {
        let said = "Like, I'd want a wash. I'm Priya Raman";
        assert!(check("first_name", "Like", "Like", said, &["first_name", "last_name"]).is_err());
        assert!(check("last_name", "I'd", "I'd", said, &["first_name", "last_name"]).is_err());
        assert!(check("first_name", "A", "A", "A Priya Raman", &["first_name", "last_name"]).is_err());
        assert_eq!(check("first_name", "Priya", "Priya Raman", said, &["first_name", "last_name"]).unwrap(), "Priya");
        // Not asked, and no introduction: a name is not taken from any capitalised word.
        assert!(check("first_name", "Jane", "Jane", "Jane said to book a wash", &[]).is_err());
        assert!(check("first_name", "Jane", "Jane", "book it for Jane please", &[]).is_ok());
    }

    #[test]
    fn a_choice_needs_a_quote_that_names_it() {
        let said = "I'm Jane Doe";
        assert!(check("plan", "subscription", "Jane", said, &[]).is_err(), "the quote must name the option");
        assert!(check("plan", "subscription", "monthly plan", "a monthly plan please", &[]).is_ok());
        assert!(check("service", "SVC-FULL-WASH", "full wash", "I'd like a full wash", &[]).is_ok());
        assert!(check("service", "SVC-FULL-WASH", "wash", "I'd like a wash", &[]).is_err());
    }

    #[test]
    fn a_plate_needs_the_shape_of_a_plate() {
        let said = "my Toyota, plate ABC 123";
        assert!(check("car_plate", "OTA", "Toyota", said, &["car_plate"]).is_err(), "three letters of a word");
        assert_eq!(check("car_plate", "ABC123", "ABC 123", said, &["car_plate"]).unwrap(), "ABC 123");
    }

    #[test]
    fn free_text_only_for_the_open_question() {
        let flows = setup().0;
        let flow = flows.flow("complaint").unwrap();
        let now = setup().1;
        let a = SlotAnswer { slot: "details".into(), value: "scratched".into(), quote: "scratched".into() };
        let none = |_: &str| vec![];
        assert!(ground(&a, "you scratched my car", flow, &[], &none, &flows.business, &now).is_err());
        assert!(ground(&a, "you scratched my car", flow, &["details".into()], &none, &flows.business, &now).is_ok());
    }
}
