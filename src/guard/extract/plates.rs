//! Registration plates as the world writes them: groups of letters (Latin or Arabic) and digits,
//! 4–10 of them in all with at least one digit, separated by spaces or dashes as typed ("KA 01 AB
//! 1234", "KA01AB1234", "AB-123-CD", "12-ABC-3", "7ABC123", "DXB 4521", "أ ب ج ١٢٣٤").
//!
//! Where a plate is read:
//! - after a plate word ("plate", "reg", "registration", "number plate", "لوحة"): the groups
//!   that follow;
//! - when the plate is the question: the one group run of plate shape in the message;
//! - anywhere else: only a run that holds both letters and digits, at least five characters,
//!   and is nothing else (a time, an amount, a car model, a house number before a street).
//!
//! Two candidates and no plate word is a question, not a guess: nothing is read.

use std::ops::Range;

use super::words::{COLOURS, COMMON, CURRENCIES, STREET_WORDS, UNIT_WORDS, is_in};
use crate::text::{Token, tokens, western_digits};

/// Words after which a plate follows.
const PLATE_WORDS: &[&str] =
    &["plate", "plates", "reg", "rego", "registration", "licence", "license", "numberplate", "لوحة", "رقم"];
/// Words between the plate word and the plate ("plate number is", "reg no.").
const BETWEEN: &[&str] = &[
    "number", "no", "num", "nr", "is", "its", "it", "s", "of", "plate", "the", "car", "my", "dubai", "sharjah",
    "ajman", "abu", "dhabi", "fujairah", "rak",
];
/// Short words that end a run of plate groups (besides everyday words and colours).
const NOT_GROUPS: &[&str] =
    &["st", "nd", "rd", "th", "km", "hr", "hrs", "min", "mins", "x", "pls", "plz", "thx", "ref", "tel"];

/// Longest plate, letters and digits only.
const MAX_PLATE: usize = 10;
/// Shortest plate, letters and digits only.
const MIN_PLATE: usize = 4;

/// A plate read from a message.
#[derive(Debug, Clone, PartialEq)]
pub struct PlateRead {
    /// The plate, letters upper-cased, groups separated as typed ("KA 01 AB 1234").
    pub value: String,
    /// The customer's words for it.
    pub evidence: String,
}

/// Whether a word can be one group of a plate: digits, up to three letters that are not an
/// everyday word ("A" and "I" only in capitals: "A 12345", not "a 7ABC123"), or both.
fn group_like(text: &str, t: &Token) -> bool {
    let len = t.text.chars().count();
    let letters = t.text.chars().filter(|c| c.is_alphabetic()).count();
    let digits = len - letters;
    if is_in(&t.text, NOT_GROUPS) || is_time(&t.text) || is_ordinal(&t.text) {
        return false;
    }
    match (letters, digits) {
        (0, d) => d <= 7,
        (1, 0) if t.text == "a" || t.text == "i" => text[t.start..t.end] != t.text,
        (l, 0) => l <= 3 && !is_in(&t.text, COMMON) && !is_in(&t.text, COLOURS),
        _ => len <= MAX_PLATE,
    }
}

fn is_time(w: &str) -> bool {
    let (num, rest) = w.split_at(w.find(|c: char| !c.is_ascii_digit()).unwrap_or(w.len()));
    !num.is_empty() && num.len() <= 2 && matches!(rest, "am" | "pm" | "h" | "hrs" | "hr" | "min" | "mins")
}

fn is_ordinal(w: &str) -> bool {
    let (num, rest) = w.split_at(w.find(|c: char| !c.is_ascii_digit()).unwrap_or(w.len()));
    !num.is_empty() && matches!(rest, "st" | "nd" | "rd" | "th")
}

/// Whether the gap between two words joins them into one plate: spaces, a dash or a dot only.
fn joined(text: &str, a: &Token, b: &Token) -> bool {
    let gap = &text[a.end..b.start];
    gap.chars().count() <= 3 && gap.chars().all(|c| c == ' ' || c == '-' || c == '.' || c == '\u{a0}')
}

/// The runs of plate groups in `words` from `from`, skipping the byte ranges in `skip` (a car's
/// make and model): each run as the token range it covers.
fn runs(text: &str, words: &[Token], skip: &[Range<usize>]) -> Vec<Range<usize>> {
    let skipped = |t: &Token| skip.iter().any(|r| r.start <= t.start && t.end <= r.end);
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        if !group_like(text, &words[i]) || skipped(&words[i]) {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        let mut len = words[i].text.chars().count();
        while j < words.len()
            && group_like(text, &words[j])
            && !skipped(&words[j])
            && joined(text, &words[j - 1], &words[j])
            && len + words[j].text.chars().count() <= MAX_PLATE
        {
            len += words[j].text.chars().count();
            j += 1;
        }
        out.push(i..j);
        i = j;
    }
    out
}

fn compact(words: &[Token], r: &Range<usize>) -> String {
    words[r.clone()].iter().map(|t| t.text.as_str()).collect()
}

fn shaped(c: &str) -> bool {
    let len = c.chars().count();
    (MIN_PLATE..=MAX_PLATE).contains(&len) && c.chars().any(|c| c.is_ascii_digit())
}

/// Whether the run is something else: an amount (a currency beside it), a house number (a unit
/// word before it or a street word after it), a year or a phone number.
fn something_else(words: &[Token], r: &Range<usize>) -> bool {
    let before = r.start.checked_sub(1).map(|i| words[i].text.as_str());
    let after = words.get(r.end).map(|t| t.text.as_str());
    let inside_currency = words[r.clone()].iter().any(|t| is_in(&t.text, CURRENCIES));
    inside_currency
        || before.is_some_and(|w| is_in(w, CURRENCIES) || is_in(w, UNIT_WORDS))
        || after.is_some_and(|w| is_in(w, CURRENCIES) || is_in(w, STREET_WORDS))
        || words.get(r.end + 1).is_some_and(|t| is_in(&t.text, STREET_WORDS) && !is_in(after.unwrap_or(""), COMMON))
}

fn read(text: &str, words: &[Token], r: &Range<usize>) -> PlateRead {
    let evidence = text[words[r.start].start..words[r.end - 1].end].to_string();
    let mut value = String::new();
    for (k, t) in words[r.clone()].iter().enumerate() {
        if k > 0 {
            let gap = &text[words[r.start + k - 1].end..t.start];
            value.push(if gap.contains('-') { '-' } else { ' ' });
        }
        value.push_str(&western_digits(&text[t.start..t.end]).to_uppercase());
    }
    PlateRead { value, evidence }
}

/// Reads a plate from `text` (see the module doc). `asked`: the plate is the open question;
/// `car`: byte ranges of the car's make and model in `text`, never part of a plate.
pub fn find_plate(text: &str, asked: bool, car: &[Range<usize>]) -> Option<PlateRead> {
    let words = tokens(text);
    // After a plate word.
    for (i, w) in words.iter().enumerate() {
        if !is_in(&w.text, PLATE_WORDS) {
            continue;
        }
        let mut k = i + 1;
        while k < words.len() && is_in(&words[k].text, BETWEEN) && !shaped(&words[k].text) {
            k += 1;
        }
        if let Some(r) = runs(text, &words[..], car).into_iter().find(|r| r.start == k) {
            if shaped(&compact(&words, &r)) {
                return Some(read(text, &words, &r));
            }
        }
    }
    let candidates: Vec<Range<usize>> = runs(text, &words, car)
        .into_iter()
        .filter(|r| shaped(&compact(&words, r)))
        .filter(|r| !something_else(&words, r))
        .collect();
    if asked {
        // Digits alone are a plate only when they are all the message says ("123456", "it's
        // 123456"): "Land Cruiser 2022" is a year.
        let rest_is_lead_in = |r: &Range<usize>| {
            words
                .iter()
                .enumerate()
                .all(|(i, w)| r.contains(&i) || is_in(&w.text, BETWEEN) || is_in(&w.text, PLATE_WORDS))
        };
        let plausible: Vec<&Range<usize>> = candidates
            .iter()
            .filter(|r| compact(&words, r).chars().any(char::is_alphabetic) || rest_is_lead_in(r))
            .collect();
        return match plausible.as_slice() {
            [one] => Some(read(text, &words, one)),
            _ => None,
        };
    }
    let strong: Vec<&Range<usize>> = candidates
        .iter()
        .filter(|r| {
            let c = compact(&words, r);
            c.chars().count() >= 5 && c.chars().any(char::is_alphabetic)
        })
        .collect();
    match strong.as_slice() {
        [one] => Some(read(text, &words, one)),
        _ => None,
    }
}

/// Whether `text` (a value another reader gave) has the shape of a plate.
pub fn plate_shaped(text: &str) -> bool {
    let words = tokens(text);
    let c: String = words.iter().map(|t| t.text.as_str()).collect();
    !words.is_empty() && words.iter().all(|w| group_like(text, w)) && shaped(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plate(text: &str, asked: bool) -> Option<String> {
        let car = super::super::vehicles::find_car(text, asked);
        find_plate(text, asked, &car.spans).map(|p| p.value)
    }

    /// Plate formats of at least fifteen countries, alone (asked) and in a sentence.
    #[test]
    fn plates_of_many_countries() {
        let table: &[(&str, &str, &str)] = &[
            ("India", "KA01AB1234", "KA01AB1234"),
            ("India, spaced", "KA 01 AB 1234", "KA 01 AB 1234"),
            ("India, dashed", "MH-12-DE-1433", "MH-12-DE-1433"),
            ("UAE", "DXB 4521", "DXB 4521"),
            ("UAE, code letter", "Dubai A 12345", "A 12345"),
            ("Saudi Arabia, Arabic", "أ ب ج ١٢٣٤", "أ ب ج 1234"),
            ("Saudi Arabia, Latin", "1234 ABJ", "1234 ABJ"),
            ("United Kingdom", "AB12 CDE", "AB12 CDE"),
            ("United States, California", "7ABC123", "7ABC123"),
            ("United States, New York", "ABC-1234", "ABC-1234"),
            ("France", "AB-123-CD", "AB-123-CD"),
            ("Germany", "M-AB 1234", "M-AB 1234"),
            ("Netherlands", "12-ABC-3", "12-ABC-3"),
            ("Italy", "AB 123 CD", "AB 123 CD"),
            ("Spain", "1234 BCD", "1234 BCD"),
            ("Brazil", "ABC1D23", "ABC1D23"),
            ("Turkey", "34 ABC 123", "34 ABC 123"),
            ("Indonesia", "B 1234 XYZ", "B 1234 XYZ"),
            ("Kenya", "KCA 123A", "KCA 123A"),
            ("Nigeria", "ABC-123DE", "ABC-123DE"),
            ("Malaysia", "WXY 1234", "WXY 1234"),
            ("Singapore", "SGX1234A", "SGX1234A"),
            ("Pakistan", "LEA-1234", "LEA-1234"),
            ("Qatar", "123456", "123456"),
            ("Egypt", "ط ه ر ١٢٣", "ط ه ر 123"),
        ];
        for (country, typed, expected) in table {
            assert_eq!(plate(typed, true).as_deref(), Some(*expected), "{country}: {typed} asked");
            let said = format!("my plate is {typed}, thanks");
            assert_eq!(plate(&said, false).as_deref(), Some(*expected), "{country}: {said}");
        }
    }

    #[test]
    fn inside_sentences_the_whole_plate_and_only_a_plate() {
        assert_eq!(plate("grey Honda Civic, plate KA 01 AB 1234", false).as_deref(), Some("KA 01 AB 1234"));
        assert_eq!(
            plate("my grey Honda Civic KA 01 AB 1234 next Tuesday at 11am at 42 Lake View Road", false).as_deref(),
            Some("KA 01 AB 1234")
        );
        assert_eq!(plate("a black Honda Civic, plate TB66BBB", false).as_deref(), Some("TB66BBB"));
        assert_eq!(plate("It's a blue Mazda 3, plate DXB 4521", false).as_deref(), Some("DXB 4521"));
        assert_eq!(plate("Mazda 3 DXB 4521", false).as_deref(), Some("DXB 4521"));
        assert_eq!(plate("CX-5, plate DXB 4521", false).as_deref(), Some("DXB 4521"));
        assert_eq!(plate("book a 7ABC123 wash at 221B Baker Street", false).as_deref(), Some("7ABC123"));
        assert_eq!(plate("French car AB-123-CD please", false).as_deref(), Some("AB-123-CD"));
        assert_eq!(plate("Dutch one 12-ABC-3", false).as_deref(), Some("12-ABC-3"));
        assert_eq!(plate("plate: KA01AB1234", true).as_deref(), Some("KA01AB1234"));
        assert_eq!(plate("reg no. AB12 CDE", false).as_deref(), Some("AB12 CDE"));
    }

    #[test]
    fn not_plates() {
        for text in [
            "tomorrow at 10 am",
            "10am",
            "Tuesday 11:30",
            "at 221B Baker Street",
            "villa 12B Al Wasl Road",
            "AED 150",
            "150 dirhams",
            "BMW X5",
            "Mercedes C200",
            "the 2nd of May",
            "2 cars please",
            "Toyota",
            "I want a full wash",
        ] {
            assert_eq!(plate(text, false), None, "{text}");
        }
        // Two candidates without a plate word: a question, not a guess.
        assert_eq!(plate("ABC 1234 or maybe XYZ 9876", true), None);
        assert!(plate_shaped("KA-01"), "the shape alone");
        assert!(!plate_shaped("OTA"));
        assert!(!plate_shaped("Toyota"));
    }
}
