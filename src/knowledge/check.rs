//! Checking an answer the LLM worded against the passages it cites. The LLM may reword, never
//! add a fact: every number (prices, times, dates, durations), phone number, e-mail address, URL,
//! month or weekday, and capitalised name (places, products, people) in the answer must be found
//! in the cited passages or the catalog (not in the customer's question: "Yes, we come to Ajman"
//! is a claim, whoever named Ajman first). What is not found is returned,
//! so the turn records why the answer was refused and the passage is sent as it is.
//!
//! The check errs on the side of refusing: a name at the start of a sentence passes only when it
//! is found or is one of a few everyday sentence openers ([`OPENERS`]); a refused answer still
//! sends a correct passage.

use std::sync::LazyLock;

use regex::Regex;

use crate::text::{Folded, fold, western_digits};

/// Words that may open a sentence capitalised without being a name.
pub const OPENERS: &[&str] = &[
    "a",
    "absolutely",
    "after",
    "all",
    "also",
    "an",
    "and",
    "any",
    "as",
    "ask",
    "at",
    "before",
    "book",
    "both",
    "but",
    "by",
    "call",
    "certainly",
    "choose",
    "contact",
    "currently",
    "each",
    "every",
    "for",
    "from",
    "good",
    "great",
    "hello",
    "here",
    "hi",
    "however",
    "i",
    "if",
    "in",
    "it",
    "just",
    "let",
    "no",
    "not",
    "note",
    "of",
    "on",
    "once",
    "our",
    "pay",
    "pick",
    "please",
    "prices",
    "reply",
    "sadly",
    "see",
    "send",
    "so",
    "sorry",
    "sure",
    "tap",
    "thank",
    "thanks",
    "that",
    "the",
    "there",
    "these",
    "they",
    "this",
    "to",
    "unfortunately",
    "we",
    "what",
    "when",
    "while",
    "with",
    "write",
    "yes",
    "you",
    "your",
];

/// Month names an answer may only give from its sources (folded, in full: "may" is a common
/// verb, and a capitalised "May" or "Sat" is checked as a name anyway).
const MONTH_NAMES: &[&str] = &[
    "january",
    "february",
    "march",
    "april",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// Whether a folded word names a day or month (the seven full weekday names of
/// [`crate::text::WEEKDAYS`], [`MONTH_NAMES`], and a few relative days).
fn is_calendar_word(f: &str) -> bool {
    crate::text::WEEKDAYS[..7].contains(&f)
        || MONTH_NAMES.contains(&f)
        || matches!(f, "weekend" | "weekends" | "today" | "tomorrow")
}

static URL: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?i)\b(?:https?://|www\.)[^\s<>]+").expect("valid regex"));
static EMAIL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)+").expect("valid regex"));
static PHONE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\+?\d[\d\s().-]{6,}\d").expect("valid regex"));
static NUMBER: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\d+(?:[.,:]\d+)*").expect("valid regex"));
static WORD: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"[\p{L}][\p{L}'’-]*").expect("valid regex"));

/// One thing the answer says that its sources do not.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Unsupported {
    /// `number`, `phone`, `email`, `url`, `date` or `name`.
    pub kind: &'static str,
    /// As written in the answer.
    pub text: String,
}

/// What in `answer` is not found in `sources` (the cited passages' titles and texts, the
/// catalog); empty when everything is.
pub fn unsupported(answer: &str, sources: &[&str]) -> Vec<Unsupported> {
    let answer = western_digits(answer);
    let joined = western_digits(&sources.join("\n"));
    let lower = joined.to_lowercase();
    let folded = Folded::new(&joined);
    let digits_of = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
    let source_digit_runs: Vec<String> = PHONE.find_iter(&joined).map(|m| digits_of(m.as_str())).collect();
    let source_numbers: Vec<String> = NUMBER.find_iter(&joined).map(|m| m.as_str().to_string()).collect();
    let mut out = Vec::new();
    let mut rest = answer.clone();

    for m in URL.find_iter(&answer) {
        let url = m.as_str().trim_end_matches(['.', ',', ')', '!', '?', ';', ':']);
        if !lower.contains(&url.to_lowercase()) {
            out.push(Unsupported { kind: "url", text: url.into() });
        }
        rest = rest.replace(url, " ");
    }
    for m in EMAIL.find_iter(&answer) {
        if !lower.contains(&m.as_str().to_lowercase()) {
            out.push(Unsupported { kind: "email", text: m.as_str().into() });
        }
        rest = rest.replace(m.as_str(), " ");
    }
    let phones: Vec<String> = PHONE.find_iter(&rest).map(|m| m.as_str().to_string()).collect();
    for phone in phones {
        let digits = digits_of(&phone);
        // A long run of digits is a phone number only with 8 digits or more; shorter ones are
        // numbers ("8:00 - 18:00") and are checked below.
        if digits.len() < 8 {
            continue;
        }
        if !source_digit_runs.iter().any(|s| s.contains(&digits)) {
            out.push(Unsupported { kind: "phone", text: phone.trim().into() });
        }
        rest = rest.replace(&phone, " ");
    }
    for m in NUMBER.find_iter(&rest) {
        let n = m.as_str();
        if !source_numbers.iter().any(|s| same_number(s, n)) {
            out.push(Unsupported { kind: "number", text: n.into() });
        }
    }
    let mut sentence_start = true;
    for m in WORD.find_iter(&rest) {
        let word = m.as_str();
        let before = rest[..m.start()].trim_end();
        let starts = sentence_start || before.is_empty() || before.ends_with(['.', '!', '?', ':', '\n']);
        sentence_start = false;
        let f = fold(word);
        if is_calendar_word(&f) {
            if !folded.has(&f) {
                out.push(Unsupported { kind: "date", text: word.into() });
            }
            continue;
        }
        let capitalised = word.chars().next().is_some_and(char::is_uppercase);
        // "We're" folds to "we re": its first part is the word.
        let head = f.split(' ').next().unwrap_or_default();
        if !capitalised || folded.has(&f) || (starts && OPENERS.contains(&head)) {
            continue;
        }
        out.push(Unsupported { kind: "name", text: word.into() });
    }
    out.dedup();
    out
}

/// Whether two written numbers are the same: equal text, or equal values with thousands
/// separators dropped ("1,200" and "1200", "75" and "75.00"); times compare as written.
fn same_number(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    if a.contains(':') || b.contains(':') {
        let hour = |s: &str| s.strip_suffix(":00").map(str::to_string);
        return hour(a).as_deref() == Some(b) || hour(b).as_deref() == Some(a);
    }
    let value = |s: &str| s.replace(',', "").parse::<f64>().ok();
    matches!((value(a), value(b)), (Some(x), Some(y)) if (x - y).abs() < 1e-9)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOURS: &str = "We visit Saturday to Thursday, 8:00 to 18:00. We're closed on Fridays.";
    const PRICE: &str = "Full Wash: AED 75 — exterior and interior. Call +971 4 555 0100 or write to hello@carewell.example, www.carewell.example/prices";

    fn kinds(answer: &str, sources: &[&str]) -> Vec<(&'static str, String)> {
        unsupported(answer, sources).into_iter().map(|u| (u.kind, u.text)).collect()
    }

    #[test]
    fn a_rewording_of_the_passage_passes() {
        assert!(
            kinds("We come Saturday to Thursday from 8 to 18:00, and we are closed on Fridays.", &[HOURS]).is_empty()
        );
        assert!(
            kinds("A Full Wash costs AED 75.00. You can call +97145550100 or email hello@carewell.example.", &[PRICE])
                .is_empty()
        );
    }

    #[test]
    fn an_invented_price_time_phone_or_place_is_named() {
        assert_eq!(kinds("A Full Wash costs AED 65.", &[PRICE]), [("number", "65".to_string())]);
        assert_eq!(kinds("We visit until 20:00 on Saturday.", &[HOURS]), [("number", "20:00".to_string())]);
        assert_eq!(kinds("Call us on 050 123 4567.", &[PRICE]), [("phone", "050 123 4567".to_string())]);
        assert_eq!(
            kinds("We also come to Abu Dhabi.", &[HOURS]),
            [("name", "Abu".to_string()), ("name", "Dhabi".to_string())]
        );
        assert_eq!(kinds("Ajman is covered on Saturday.", &[HOURS]), [("name", "Ajman".to_string())]);
        assert_eq!(kinds("We are open on Sunday.", &[HOURS]), [("date", "Sunday".to_string())]);
        assert_eq!(kinds("you may come in march", &[HOURS]), [("date", "march".to_string())], "\"may\" is a verb");
        assert_eq!(
            kinds("See https://other.example/deal.", &[PRICE]),
            [("url", "https://other.example/deal".to_string())]
        );
        assert_eq!(kinds("Write to sales@other.example", &[PRICE]), [("email", "sales@other.example".to_string())]);
    }

    #[test]
    fn a_place_only_the_customer_named_is_not_a_source() {
        assert_eq!(kinds("Yes, we come to Sharjah.", &["We cover Dubai."]), [("name", "Sharjah".to_string())]);
    }
}
