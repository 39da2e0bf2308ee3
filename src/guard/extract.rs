//! Deterministic extractors: names, choices (typed titles, synonyms or a row number), dates and
//! times, plates, car make and model, addresses. They need no network, so every journey can be
//! completed while the LLM is absent, slow or wrong.
//!
//! Each extractor is conservative outside the current question: a plate, a date with a time, a
//! car make or a catalog title may be picked up from any message, but names, addresses and free
//! text only when they are what was asked.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use jiff::Zoned;
use jiff::civil::{DateTime, Weekday};
use regex::Regex;

use crate::engine::{Extracted, SlotSource, SlotValue};
use crate::flow::Business;
use crate::flow::format::SlotType;
use crate::flow::graph::{ChoiceOption, Flow};
use crate::text::{compact, fold, title_case};

/// Car makes recognised in free text (a make followed by a word gives the model).
pub const CAR_MAKES: &[&str] = &[
    "toyota",
    "honda",
    "nissan",
    "mitsubishi",
    "mazda",
    "subaru",
    "suzuki",
    "lexus",
    "infiniti",
    "hyundai",
    "kia",
    "ford",
    "chevrolet",
    "chevy",
    "gmc",
    "cadillac",
    "jeep",
    "dodge",
    "chrysler",
    "tesla",
    "bmw",
    "mercedes",
    "mercedes-benz",
    "audi",
    "volkswagen",
    "vw",
    "porsche",
    "volvo",
    "peugeot",
    "renault",
    "citroen",
    "fiat",
    "skoda",
    "seat",
    "mini",
    "land rover",
    "range rover",
    "jaguar",
    "bentley",
    "rolls-royce",
    "ferrari",
    "lamborghini",
    "maserati",
    "genesis",
    "mg",
    "geely",
    "chery",
    "byd",
    "haval",
    "lincoln",
    "buick",
    "ram",
];

const COLOURS: &[&str] = &[
    "white", "black", "silver", "grey", "gray", "red", "blue", "green", "yellow", "orange", "brown", "beige", "gold",
    "maroon", "purple",
];

const NOT_NAMES: &[&str] = &[
    "yes",
    "no",
    "ok",
    "okay",
    "hi",
    "hello",
    "hey",
    "thanks",
    "thank",
    "you",
    "please",
    "book",
    "booking",
    "wash",
    "car",
    "service",
    "want",
    "need",
    "like",
    "the",
    "a",
    "an",
    "and",
    "my",
    "is",
    "it",
    "what",
    "why",
    "how",
    "cancel",
    "stop",
    "menu",
    "help",
    "tomorrow",
    "today",
    "sure",
    "no thanks",
    "to",
    "say",
    "nothing",
    "not",
    "telling",
    "bye",
    "idea",
    "really",
    "still",
    "weather",
    "like",
    "are",
    "do",
    "does",
    "can",
    "will",
    "would",
    "should",
    "have",
    "has",
    "know",
    "dont",
    "don't",
    "maybe",
    "later",
    "now",
    "here",
    "there",
    "this",
    "that",
    "when",
    "where",
    "which",
    "who",
    "blah",
    "nope",
    "hmm",
    "lol",
    "ok",
    "of",
    "for",
    "in",
    "on",
    "at",
    "me",
    "i",
    "we",
    "they",
    "she",
    "he",
    "your",
    "our",
    "their",
    "was",
    "be",
    "been",
    "but",
    "or",
    "if",
    "so",
];

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
}

/// Reads `text` for the `focus` slots (the current question) and, conservatively, for `others`.
pub fn extract(
    text: &str,
    flow: &Flow,
    focus: &[String],
    others: &[String],
    options: &dyn Fn(&str) -> Vec<ChoiceOption>,
    business: &Business,
    now: &Zoned,
) -> Found {
    extract_with_day(text, flow, focus, others, options, business, now, None)
}

/// Like [`extract`], with a day the customer gave earlier without a time: a time alone ("3pm")
/// is then read on that day.
#[allow(clippy::too_many_arguments)]
pub fn extract_with_day(
    text: &str,
    flow: &Flow,
    focus: &[String],
    others: &[String],
    options: &dyn Fn(&str) -> Vec<ChoiceOption>,
    business: &Business,
    now: &Zoned,
    pending_day: Option<jiff::civil::Date>,
) -> Found {
    let mut found = Found::default();
    let put = |found: &mut Found, slot: &str, value: SlotValue, evidence: &str| {
        found
            .slots
            .insert(slot.to_string(), Extracted { value, source: SlotSource::Parser, evidence: evidence.to_string() });
    };
    let in_focus = |s: &str| focus.iter().any(|f| f == s);
    let wanted: Vec<&String> = focus.iter().chain(others.iter()).collect();

    // Plates and dates first: their words are then not mistaken for names or models.
    let plate = find_plate(text);
    let when = match (parse_when(text, now, business), pending_day) {
        (When::At(dt, evidence), Some(day)) if !names_a_day(&evidence) => {
            When::At(day.to_datetime(dt.time()), evidence)
        }
        (w, _) => w,
    };

    for slot in &wanted {
        let Some(decl) = flow.slots.get(slot.as_str()) else { continue };
        let focused = in_focus(slot);
        match decl.kind {
            SlotType::Plate => {
                if let Some((p, ev)) = &plate {
                    put(&mut found, slot, SlotValue::Text { value: p.clone() }, ev);
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
                When::DateOnly(d) if focused => match check_visit_time(d.to_datetime(business.opens), now, business) {
                    Err(problem) if problem.contains("don't visit") => found.problem = Some(problem),
                    _ => {
                        found.date_only = Some(*d);
                        found.problem = Some(format!("What time on {}?", d.strftime("%a %-d %b")));
                    }
                },
                _ => {}
            },
            SlotType::Choice => {
                let opts = options(slot);
                if let Some((o, ev)) = match_option(text, &opts, focused) {
                    put(&mut found, slot, SlotValue::from_option(&o), &ev);
                }
            }
            SlotType::CarMake => {
                if let Some((make, _, ev)) = find_make_model(text) {
                    put(&mut found, slot, SlotValue::Text { value: make }, &ev);
                }
            }
            SlotType::CarModel => {
                if let Some((_, Some(model), ev)) = find_make_model(text) {
                    put(&mut found, slot, SlotValue::Text { value: model }, &ev);
                } else if focused && find_make_model(text).is_none() {
                    if let Some(model) = leftover_words(text, plate.as_ref().map(|p| p.1.as_str()), 3) {
                        put(&mut found, slot, SlotValue::Text { value: title_case(&model) }, &model);
                    }
                }
            }
            SlotType::GivenName | SlotType::FamilyName if focused => {}
            SlotType::Address if focused => {
                if let Some(addr) = address(text) {
                    put(
                        &mut found,
                        slot,
                        SlotValue::Address { text: addr.clone(), latitude: None, longitude: None },
                        &addr,
                    );
                }
            }
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
            SlotType::Text if focused => {
                let t = text.trim();
                if !t.is_empty() {
                    put(&mut found, slot, SlotValue::Text { value: t.to_string() }, t);
                }
            }
            _ => {}
        }
    }

    // Names: when asked, or after an unmistakable "my name is"; read together so "Jane Doe"
    // fills both.
    let named = NAME_INTRO.captures(text).and_then(|c| c.get(1)).map(|m| m.as_str().to_string());
    let name_slot = |kind: SlotType| {
        focus
            .iter()
            .find(|s| flow.slots.get(*s).is_some_and(|d| d.kind == kind))
            .or_else(|| named.as_ref().and(others.iter().find(|s| flow.slots.get(*s).is_some_and(|d| d.kind == kind))))
    };
    let given = name_slot(SlotType::GivenName);
    let family = name_slot(SlotType::FamilyName);
    let name_text = match (
        &named,
        focus
            .iter()
            .any(|s| flow.slots.get(s).is_some_and(|d| matches!(d.kind, SlotType::GivenName | SlotType::FamilyName))),
    ) {
        (_, true) => text.to_string(),
        (Some(n), false) => n.clone(),
        (None, false) => String::new(),
    };
    let text = name_text.as_str();
    if given.is_some() || family.is_some() {
        if let Some(words) = name_words(text) {
            match (given, family) {
                (Some(g), Some(f)) => {
                    put(&mut found, g, SlotValue::Text { value: words[0].clone() }, &words[0]);
                    if words.len() > 1 {
                        let last = words[1..].join(" ");
                        put(&mut found, f, SlotValue::Text { value: last.clone() }, &last);
                    }
                }
                (Some(g), None) => put(&mut found, g, SlotValue::Text { value: words[0].clone() }, &words[0]),
                (None, Some(f)) => {
                    let last = words.join(" ");
                    put(&mut found, f, SlotValue::Text { value: last.clone() }, &last);
                }
                (None, None) => {}
            }
        }
    }
    if found.problem.is_none() && focus.iter().any(|f| !found.slots.contains_key(f)) {
        found.problem = Some(default_problem(flow, focus));
    }
    found
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

static NAME_INTRO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:my name is|my name's|name's|name is)\s+([a-z'-]+(?:\s+[a-z'-]+)?)")
        .unwrap_or_else(|_| unreachable!())
});

static LEAD_IN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*(?:(?:hi|hello|hey)[,!. ]+)?(?:i am|i'm|im|my name is|my name's|name is|this is|it's|its|it is|call me|name:|me:)?\s*").unwrap_or_else(|_| unreachable!())
});

/// The words of a name: letters (with `'` and `-`), one to four words, none a common word.
pub fn name_words(text: &str) -> Option<Vec<String>> {
    let rest = LEAD_IN.replace(text.trim(), "");
    let rest = rest.trim().trim_end_matches(['.', '!', ',']).trim();
    let words: Vec<&str> = rest.split_whitespace().collect();
    if words.is_empty() || words.len() > 4 {
        return None;
    }
    for w in &words {
        if !w.chars().all(|c| c.is_alphabetic() || c == '\'' || c == '-') || NOT_NAMES.contains(&fold(w).as_str()) {
            return None;
        }
    }
    Some(words.iter().map(|w| title_case(w)).collect())
}

static PLATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b([a-z]{1,3})[\s-]?(\d{2,5})\b|\b(\d{1,5})[\s-]?([a-z]{1,3})\b|\b([a-z]{2}\d{2}[\s-]?[a-z]{3})\b")
        .unwrap_or_else(|_| unreachable!())
});
const NOT_PLATE_LETTERS: &[&str] = &[
    "am", "pm", "st", "nd", "rd", "th", "h", "hr", "hrs", "min", "km", "x", "at", "on", "in", "by", "to", "and", "or",
    "no",
];

static AMOUNT_MARKED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?:\b(?:aed|dhs?|dirhams?|usd)\s*|\$\s*)(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?\b|\b(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?\s*(?:aed|dhs?|dirhams?|usd)\b")
        .unwrap_or_else(|_| unreachable!())
});
static AMOUNT_BARE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*(?:i\s+paid\s+|paid\s+)?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?\s*\.?\s*$")
        .unwrap_or_else(|_| unreachable!())
});

/// An amount of money: a number with a currency word or sign ("AED 150", "150 dirhams",
/// "$75.50") anywhere, or, when the amount is what was asked, a message that is just a number
/// ("150", "paid 75.5"). Returns the amount and the words it came from.
pub fn find_amount(text: &str, focused: bool) -> Option<(f64, String)> {
    let number = |int: &str, frac: Option<regex::Match<'_>>| -> Option<f64> {
        let digits = int.replace(',', "");
        format!("{digits}.{}", frac.map_or("0", |f| f.as_str())).parse().ok()
    };
    if let Some(c) = AMOUNT_MARKED.captures(text) {
        let (int, frac) = match c.get(1) {
            Some(i) => (i, c.get(2)),
            None => (c.get(3)?, c.get(4)),
        };
        return number(int.as_str(), frac).map(|v| (v, c.get(0).map_or("", |m| m.as_str()).trim().to_string()));
    }
    if focused {
        if let Some(c) = AMOUNT_BARE.captures(text) {
            return number(c.get(1)?.as_str(), c.get(2)).map(|v| (v, text.trim().to_string()));
        }
    }
    None
}

/// A plate: 1–3 letters and 2–5 digits (either order, a space or dash between), or the UK form
/// `AB12 CDE`. Returns the plate as `ABC-123` and the words it came from.
pub fn find_plate(text: &str) -> Option<(String, String)> {
    for cap in PLATE.captures_iter(text) {
        let whole = cap.get(0)?.as_str().to_string();
        if let (Some(l), Some(d)) = (cap.get(1), cap.get(2)) {
            if NOT_PLATE_LETTERS.contains(&l.as_str().to_lowercase().as_str()) {
                continue;
            }
            return Some((format!("{}-{}", l.as_str().to_uppercase(), d.as_str()), whole));
        }
        if let (Some(d), Some(l)) = (cap.get(3), cap.get(4)) {
            if NOT_PLATE_LETTERS.contains(&l.as_str().to_lowercase().as_str()) || d.as_str().len() < 2 {
                continue;
            }
            return Some((format!("{}-{}", d.as_str(), l.as_str().to_uppercase()), whole));
        }
        if let Some(uk) = cap.get(5) {
            return Some((compact(uk.as_str()).to_uppercase(), whole));
        }
    }
    None
}

/// A car make and the model word after it: "white Toyota Corolla ABC-123" → (Toyota, Corolla).
pub fn find_make_model(text: &str) -> Option<(String, Option<String>, String)> {
    let folded = fold(text);
    let words: Vec<&str> = folded.split(' ').collect();
    for (i, _) in words.iter().enumerate() {
        for make in CAR_MAKES {
            let mw: Vec<&str> = make.split(' ').collect();
            if words.len() >= i + mw.len() && words[i..i + mw.len()] == mw[..] {
                let display = match *make {
                    "bmw" | "vw" | "gmc" | "mg" | "byd" => make.to_uppercase(),
                    "chevy" => "Chevrolet".into(),
                    _ => title_case(make),
                };
                let after = words.get(i + mw.len()).copied().filter(|w| {
                    !w.is_empty()
                        && find_plate(w).is_none()
                        && !COLOURS.contains(w)
                        && !NOT_NAMES.contains(w)
                        && w.chars().any(|c| c.is_alphabetic())
                });
                let model =
                    after.map(|w| if w.chars().any(|c| c.is_ascii_digit()) { w.to_uppercase() } else { title_case(w) });
                let evidence = match &after {
                    Some(a) => format!("{make} {a}"),
                    None => make.to_string(),
                };
                return Some((display, model, evidence));
            }
        }
    }
    None
}

fn leftover_words(text: &str, plate_evidence: Option<&str>, max: usize) -> Option<String> {
    let mut t = text.to_string();
    if let Some(p) = plate_evidence {
        t = t.replace(p, " ");
    }
    let words: Vec<String> = fold(&t)
        .split(' ')
        .filter(|w| {
            !w.is_empty() && !COLOURS.contains(w) && !NOT_NAMES.contains(w) && w.chars().any(|c| c.is_alphabetic())
        })
        .map(String::from)
        .collect();
    (!words.is_empty() && words.len() <= max).then(|| words.join(" "))
}

static ADDRESS_LEAD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*(?:(?:my|the)\s+address\s+is|address:|it's|its|it is|at|i live at|i'm at|come to)\s+")
        .unwrap_or_else(|_| unreachable!())
});

static STREET_ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:at|to|in)\s+((?:(?:villa|apt|apartment|flat|house|unit|building|office)\s+)?\d{1,5}[a-z]?,?\s+(?:[a-z][\w'-]*,?\s+){0,4}(?:street|st|road|rd|avenue|ave|lane|ln|boulevard|blvd|drive|dr|way|close|crescent)\b)")
        .unwrap_or_else(|_| unreachable!())
});

/// A street address inside a longer message ("… at 12 Oak Street", "… to villa 7 Al Wasl
/// Road"): a number, up to four words and a street word, after "at", "to" or "in".
pub fn street_address(text: &str) -> Option<String> {
    STREET_ADDRESS.captures(text).and_then(|c| c.get(1)).map(|m| m.as_str().trim().trim_end_matches(',').to_string())
}

/// An address: at least two words, one of them with a letter; lead-ins are dropped.
pub fn address(text: &str) -> Option<String> {
    let t = ADDRESS_LEAD.replace(text.trim(), "").trim().trim_end_matches('.').to_string();
    let words = t.split_whitespace().count();
    (words >= 2 && t.chars().any(char::is_alphabetic) && t.chars().count() <= 300).then_some(t)
}

/// Matches typed text to one option: its number in the list (only for the current question), its
/// title, id or a synonym (whole words, case and accents ignored); the longest match wins.
pub fn match_option(text: &str, options: &[ChoiceOption], focused: bool) -> Option<(ChoiceOption, String)> {
    let f = fold(text);
    if focused {
        if let Ok(n) = f.trim_end_matches('.').parse::<usize>() {
            return options.get(n.checked_sub(1)?).map(|o| (o.clone(), text.trim().to_string()));
        }
        if let Some(o) = options.iter().find(|o| fold(&o.title) == f || fold(&o.id) == f) {
            return Some((o.clone(), text.trim().to_string()));
        }
    }
    let mut best: Option<(usize, &ChoiceOption, String)> = None;
    let folded = crate::text::Folded::new(text);
    for o in options {
        let mut names = vec![o.title.clone()];
        names.extend(o.synonyms.iter().cloned());
        for name in names {
            let n = fold(&name);
            if n.len() < 3 || (!focused && n.len() < 4) {
                continue;
            }
            if folded.has(&n) && best.as_ref().is_none_or(|(len, _, _)| n.len() > *len) {
                best = Some((n.len(), o, name.clone()));
            }
        }
    }
    best.map(|(_, o, ev)| (o.clone(), ev))
}

/// What a message says about a day and time.
#[derive(Debug, Clone, PartialEq)]
pub enum When {
    /// A day and a time.
    At(DateTime, String),
    /// A day without a time.
    DateOnly(jiff::civil::Date),
    /// Nothing.
    Nothing,
}

static TIME_TOKEN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(\d{1,2})([:.]\d{2})?(am|pm)$|^(\d{1,2})[:.](\d{2})$").unwrap_or_else(|_| unreachable!())
});
const DAY_WORDS: &[&str] = &[
    "today",
    "tomorrow",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "mon",
    "tue",
    "tues",
    "wed",
    "thu",
    "thur",
    "thurs",
    "fri",
    "sat",
    "sun",
    "next",
];

/// Prepares text for `interim`: joins "10 am" into "10am", reads "noon", drops filler words
/// ("at", "on", "please"…) and turns a bare hour after a day word into a time ("tomorrow at 9" →
/// "tomorrow 9am"; 7–11 read as morning, 12–6 as afternoon, as visits happen in the day).
fn prepare_time_words(text: &str) -> Vec<String> {
    let lowered = text.to_lowercase().replace(['?', '!', ','], " ");
    let mut words: Vec<String> = Vec::new();
    let raw: Vec<&str> = lowered.split_whitespace().collect();
    let mut i = 0;
    while i < raw.len() {
        let w = raw[i].trim_end_matches('.');
        let next = raw.get(i + 1).map(|n| n.trim_end_matches('.'));
        match w {
            "noon" | "midday" => words.push("12pm".into()),
            "tmrw" | "tmr" | "tomorow" | "tommorow" | "tommorrow" => words.push("tomorrow".into()),
            "at" | "on" | "for" | "please" | "around" | "about" | "by" | "this" | "the" | "o'clock" | "oclock"
            | "in" | "of" => {}
            _ if w.chars().all(|c| c.is_ascii_digit()) && matches!(next, Some("am") | Some("pm")) => {
                words.push(format!("{w}{}", next.unwrap_or_default()));
                i += 1;
            }
            _ => words.push(w.to_string()),
        }
        i += 1;
    }
    // A bare hour right after a day word.
    for k in 1..words.len() {
        if DAY_WORDS.contains(&words[k - 1].as_str()) {
            if let Ok(h) = words[k].parse::<u32>() {
                if (1..=12).contains(&h) {
                    words[k] = if (7..=11).contains(&h) { format!("{h}am") } else { format!("{h}pm") };
                }
            }
        }
    }
    words
}

/// Finds a day and time in free text, relative to `now` (in the business's zone): the longest run
/// of words that `interim` reads as a date. A time alone means today, or tomorrow when that time has
/// passed today.
pub fn parse_when(text: &str, now: &Zoned, _business: &Business) -> When {
    let words = prepare_time_words(text);
    let is_time = |w: &str| TIME_TOKEN.is_match(w);
    let is_day = |w: &str| {
        DAY_WORDS.contains(&w)
            || w.contains('/')
            || w.contains('-') && w.chars().filter(|c| c.is_ascii_digit()).count() >= 4
    };
    for len in (1..=words.len().min(4)).rev() {
        for start in 0..=(words.len() - len) {
            let window = &words[start..start + len];
            let has_time = window.iter().any(|w| is_time(w));
            let has_day = window.iter().any(|w| is_day(w));
            if !has_time && !has_day {
                continue;
            }
            let candidate = window.join(" ");
            let Ok(parsed) = interim::parse_date_string(&candidate, now.clone(), interim::Dialect::Uk) else {
                continue;
            };
            let dt = parsed.datetime();
            if has_time {
                let dt = if !has_day && parsed.timestamp() <= now.timestamp() {
                    match dt.checked_add(jiff::Span::new().days(1)) {
                        Ok(d) => d,
                        Err(_) => continue,
                    }
                } else {
                    dt
                };
                return When::At(dt, candidate);
            }
            return When::DateOnly(dt.date());
        }
    }
    When::Nothing
}

/// Whether the words `parse_when` read name a day (not just a time).
fn names_a_day(evidence: &str) -> bool {
    evidence
        .split(' ')
        .any(|w| DAY_WORDS.contains(&w) || w.contains('/') || w.chars().filter(|c| c.is_ascii_digit()).count() >= 4)
}

/// Checks a visit time against the business's days, hours and lead time.
pub fn check_visit_time(dt: DateTime, now: &Zoned, business: &Business) -> Result<(), String> {
    let Ok(zoned) = dt.to_zoned(business.time_zone.clone()) else {
        return Err("Sorry, that time does not exist here.".into());
    };
    if zoned.timestamp() <= now.timestamp() {
        return Err("That time has already passed.".into());
    }
    if zoned.timestamp() < now.timestamp() + business.lead_time {
        return Err(format!("We need at least {} minutes' notice.", business.lead_time.as_mins()));
    }
    if business.closed_weekdays.contains(&dt.weekday()) {
        return Err(format!("Sorry, we don't visit on {}s.", weekday_name(dt.weekday())));
    }
    if dt.time() < business.opens || dt.time() >= business.closes {
        return Err(format!(
            "We visit between {} and {}.",
            business.opens.strftime("%H:%M"),
            business.closes.strftime("%H:%M")
        ));
    }
    Ok(())
}

fn weekday_name(w: Weekday) -> &'static str {
    match w {
        Weekday::Monday => "Monday",
        Weekday::Tuesday => "Tuesday",
        Weekday::Wednesday => "Wednesday",
        Weekday::Thursday => "Thursday",
        Weekday::Friday => "Friday",
        Weekday::Saturday => "Saturday",
        Weekday::Sunday => "Sunday",
    }
}

/// The visit times offered in a list: the business's times on open days from `now`, respecting
/// the lead time, at most 10 (WhatsApp's list limit, reference §7).
pub fn visit_slots(now: &Zoned, business: &Business) -> Vec<ChoiceOption> {
    let mut out = Vec::new();
    let today = now.date();
    for d in 0..=i64::from(business.days_ahead) {
        let Ok(day) = today.checked_add(jiff::Span::new().days(d)) else { break };
        if business.closed_weekdays.contains(&day.weekday()) {
            continue;
        }
        for t in &business.visit_times {
            let dt = day.to_datetime(*t);
            if check_visit_time(dt, now, business).is_ok() {
                out.push(ChoiceOption {
                    id: dt.to_string(),
                    title: dt.strftime("%a %-d %b %H:%M").to_string(),
                    description: None,
                    synonyms: vec![],
                    price: None,
                });
            }
            if out.len() == crate::flow::MAX_LIST_ROWS {
                return out;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_one_or_two_messages() {
        assert_eq!(name_words("I'm Jane Doe").unwrap(), vec!["Jane", "Doe"]);
        assert_eq!(name_words("my name is jane doe.").unwrap(), vec!["Jane", "Doe"]);
        assert_eq!(name_words("Jane").unwrap(), vec!["Jane"]);
        assert!(name_words("I want a car wash tomorrow").is_none());
        assert!(name_words("yes").is_none());
        assert!(name_words("R2D2").is_none());
    }

    #[test]
    fn plates_but_not_times() {
        assert_eq!(find_plate("white Corolla ABC-123").unwrap().0, "ABC-123");
        assert_eq!(find_plate("plate dxb 4521").unwrap().0, "DXB-4521");
        assert!(find_plate("tomorrow at 10 am").is_none());
        assert!(find_plate("10am").is_none());
    }

    #[test]
    fn make_and_model() {
        let (make, model, _) = find_make_model("my white Toyota Corolla ABC-123").unwrap();
        assert_eq!((make.as_str(), model.as_deref()), ("Toyota", Some("Corolla")));
        assert_eq!(find_make_model("a bmw x5").unwrap().1.as_deref(), Some("X5"));
        assert!(find_make_model("just a car").is_none());
    }

    #[test]
    fn typed_titles_numbers_and_synonyms() {
        let opts = vec![
            ChoiceOption {
                id: "one_time".into(),
                title: "One-time".into(),
                description: None,
                synonyms: vec!["once".into(), "single".into()],
                price: None,
            },
            ChoiceOption {
                id: "subscription".into(),
                title: "Subscription".into(),
                description: None,
                synonyms: vec!["monthly plan".into()],
                price: None,
            },
        ];
        assert_eq!(match_option("SUBSCRIPTION", &opts, true).unwrap().0.id, "subscription");
        assert_eq!(match_option("2", &opts, true).unwrap().0.id, "subscription");
        assert_eq!(match_option("just once please", &opts, true).unwrap().0.id, "one_time");
        assert!(match_option("2", &opts, false).is_none());
        assert!(match_option("banana", &opts, true).is_none());
    }
}

#[cfg(test)]
mod amount_tests {
    use super::find_amount;

    #[test]
    fn reads_amounts_with_and_without_currency() {
        assert_eq!(find_amount("I paid AED 150 yesterday", false).map(|a| a.0), Some(150.0));
        assert_eq!(find_amount("sent 1,250.50 dirhams", false).map(|a| a.0), Some(1250.5));
        assert_eq!(find_amount("$75.5", false).map(|a| a.0), Some(75.5));
        assert_eq!(find_amount("75", true).map(|a| a.0), Some(75.0));
        assert_eq!(find_amount("paid 75.50", true).map(|a| a.0), Some(75.5));
        // A bare number is an amount only when the amount was asked, and never inside a sentence.
        assert_eq!(find_amount("75", false), None);
        assert_eq!(find_amount("villa 12 on street 4", true), None);
    }
}

#[cfg(test)]
mod street_tests {
    use super::street_address;

    #[test]
    fn finds_a_street_address_inside_a_sentence_only_when_unmistakable() {
        assert_eq!(street_address("tomorrow at 9 at 12 Oak Street please").as_deref(), Some("12 Oak Street"));
        assert_eq!(street_address("come to villa 7 Al Wasl Road, Jumeirah").as_deref(), Some("villa 7 Al Wasl Road"));
        assert_eq!(street_address("book a wash at 9"), None);
        assert_eq!(street_address("I live in Dubai"), None);
    }
}
