//! Addresses: typed when the address is the question, or an unmistakable street address inside a
//! longer message ("… at 42 Lake View Road, Springfield"), with the town that follows it; and
//! what a typed answer to "Where should we come?" looks like (an address, or a sentence about
//! something else).

use std::sync::LazyLock;

use regex::Regex;

use super::words::{STREET_WORDS, UNIT_WORDS, is_in};
use crate::text::{fold, tokens};

static ADDRESS_LEAD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*(?:(?:my|the)\s+address\s+is|address:|it's|its|it is|at|i live at|i'm at|come to)\s+")
        .unwrap_or_else(|_| unreachable!())
});

static STREET_ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:at|to|in)\s+((?:(?:villa|apt|apartment|flat|house|unit|building|office)\s+)?\d{1,5}[a-z]?,?\s+(?:[a-z][\w'-]*,?\s+){0,4}(?:street|st|road|rd|avenue|ave|lane|ln|boulevard|blvd|drive|dr|way|close|crescent)\b)")
        .unwrap_or_else(|_| unreachable!())
});

/// A street address inside a longer message ("… at 12 Oak Street", "… to villa 7 Al Wasl
/// Road"): a number, up to four words and a street word, after "at", "to" or "in"; with the
/// town or area that follows after a comma when it is written with capitals ("…, Springfield",
/// "…, Jumeirah 1").
pub fn street_address(text: &str) -> Option<String> {
    let m = STREET_ADDRESS.captures(text).and_then(|c| c.get(1))?;
    let mut address = m.as_str().trim().trim_end_matches(',').to_string();
    if let Some(town) = following_town(&text[m.end()..]) {
        address.push_str(", ");
        address.push_str(&town);
    }
    Some(address)
}

/// ", Springfield" or ", Jumeirah 1" after a street: up to three capitalised words (and a
/// number), up to the end of the sentence.
fn following_town(rest: &str) -> Option<String> {
    let rest = rest.trim_start().strip_prefix(',')?.trim_start();
    let end = rest.find(['.', ',', '!', '?', ';', '\n']).unwrap_or(rest.len());
    let capitalised = |w: &str| w.chars().next().is_some_and(|c| c.is_uppercase() || c.is_ascii_digit());
    let day_or_time = |w: &str| {
        let f = fold(w);
        let number_with = |suffix: &str| f.ends_with(suffix) && f.starts_with(|c: char| c.is_ascii_digit());
        super::when::is_day_word(&f) || number_with("am") || number_with("pm") || f.contains(':')
    };
    // Capitalised words (and a number) up to the first that is not one ("Jumeirah 1 on monday").
    let words: Vec<&str> =
        rest[..end].split_whitespace().take_while(|w| capitalised(w) && !day_or_time(w)).take(3).collect();
    let first_is_word = words.first().is_some_and(|w| w.chars().any(char::is_alphabetic));
    first_is_word.then(|| words.join(" "))
}

/// A typed answer to the address question with its lead-in dropped ("my address is …", "it's
/// …", "at …"), and what it looks like: `None` when it has no letter or is over 300 characters.
pub fn address(text: &str) -> Option<(String, AddressShape)> {
    let t = ADDRESS_LEAD.replace(text.trim(), "").trim().trim_end_matches('.').to_string();
    if !t.chars().any(char::is_alphabetic) || t.chars().count() > 300 {
        return None;
    }
    let shape = address_shape(text).min(address_shape(&t));
    Some((t, shape))
}

/// What a typed answer to the address question looks like, from least to most sure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AddressShape {
    /// A sentence about something else (a question, a request, a complaint): not an address.
    Not,
    /// Short words that may be a place ("Springfield", "near the mall"): ask before taking it.
    Unsure,
    /// A number with a street, unit or area word ("Villa 12, Al Wasl Road", "flat 4B, Marina
    /// Heights"), or a street word after a name ("Lake View Road, Springfield").
    Clear,
}

/// Openings of a sentence that is about something else than where to come.
const NOT_AN_ADDRESS: &[&str] = &[
    "actually",
    "wait",
    "hold on",
    "i want",
    "i need",
    "i would",
    "i'd",
    "id like",
    "i have",
    "i've",
    "ive",
    "can you",
    "could you",
    "can i",
    "how",
    "what",
    "why",
    "when",
    "who",
    "which",
    "is it",
    "do you",
    "does",
    "are you",
    "please",
    "sorry",
    "no",
    "yes",
    "ok",
    "okay",
    "thanks",
    "thank you",
    "also",
    "and also",
    "oh",
    "by the way",
    "btw",
    "never mind",
    "forget",
    "cancel",
    "stop",
    "help",
    "hi",
    "hello",
];

/// Words of talk rather than of a place: pronouns, verbs, questions.
const SENTENCE_WORDS: &[&str] = &[
    "i",
    "im",
    "me",
    "you",
    "we",
    "they",
    "he",
    "she",
    "it",
    "want",
    "need",
    "can",
    "could",
    "would",
    "will",
    "should",
    "is",
    "are",
    "was",
    "were",
    "do",
    "does",
    "did",
    "dont",
    "have",
    "has",
    "please",
    "thanks",
    "thank",
    "sure",
    "not",
    "why",
    "what",
    "how",
    "when",
    "who",
    "if",
    "because",
    "but",
    "so",
    "just",
    "call",
    "know",
    "think",
    "like",
    "get",
    "left",
    "came",
    "book",
    "pay",
    "cancel",
    "complaint",
    "wash",
];

/// Classifies a typed answer to "Where should we come?" (see [`AddressShape`]).
pub fn address_shape(text: &str) -> AddressShape {
    let folded = fold(text);
    let words = tokens(text);
    if words.is_empty() || text.contains('?') || words.len() > 18 {
        return AddressShape::Not;
    }
    let opening = |p: &&str| folded == *p || folded.starts_with(&format!("{p} "));
    if NOT_AN_ADDRESS.iter().any(opening) {
        return AddressShape::Not;
    }
    let has_number = words.iter().any(|w| w.text.chars().any(|c| c.is_ascii_digit()));
    let has_street = words.iter().any(|w| is_in(&w.text, STREET_WORDS));
    let has_unit = words.iter().any(|w| is_in(&w.text, UNIT_WORDS));
    let has_area = words.iter().any(|w| is_area_word(&w.text));
    let talk = words.iter().filter(|w| is_in(&w.text, SENTENCE_WORDS)).count();
    let sentence = talk >= 2 || talk * 3 > words.len();
    match (has_number, has_street || has_unit || has_area, sentence) {
        (_, _, true) => AddressShape::Not,
        (true, true, _) => AddressShape::Clear,
        // A street without a number ("Lake View Road, Springfield"); an area alone ("near the
        // mall", "Marina Heights") is not sure, nor a unit word without its number ("they
        // scratched my door" is not an address).
        (false, true, _) if has_street && words.len() >= 2 => AddressShape::Clear,
        _ => AddressShape::Unsure,
    }
}

/// Words of an area or a building's name ("Heights", "Residency", "Towers", "Compound").
fn is_area_word(w: &str) -> bool {
    matches!(
        w,
        "area"
            | "district"
            | "heights"
            | "residency"
            | "residence"
            | "residences"
            | "towers"
            | "compound"
            | "community"
            | "village"
            | "estate"
            | "park"
            | "gardens"
            | "garden"
            | "hills"
            | "springs"
            | "meadows"
            | "lakes"
            | "marina"
            | "downtown"
            | "jumeirah"
            | "jlt"
            | "jbr"
            | "jvc"
            | "mall"
            | "complex"
            | "society"
            | "apartments"
            | "lane"
            | "city"
            | "town"
    )
}

#[cfg(test)]
mod street_tests {
    use super::street_address;

    #[test]
    fn finds_a_street_address_inside_a_sentence_only_when_unmistakable() {
        assert_eq!(street_address("tomorrow at 9 at 12 Oak Street please").as_deref(), Some("12 Oak Street"));
        assert_eq!(
            street_address("come to villa 7 Al Wasl Road, Jumeirah").as_deref(),
            Some("villa 7 Al Wasl Road, Jumeirah")
        );
        assert_eq!(street_address("book a wash at 9"), None);
        assert_eq!(street_address("I live in Dubai"), None);
        assert_eq!(
            street_address("next Tuesday at 11am at 42 Lake View Road, Springfield").as_deref(),
            Some("42 Lake View Road, Springfield")
        );
        assert_eq!(street_address("at 42 Lake View Road, tomorrow 10am").as_deref(), Some("42 Lake View Road"));
    }

    #[test]
    fn what_an_address_answer_looks_like() {
        use super::{AddressShape::*, address_shape};
        assert_eq!(address_shape("Villa 12, Al Wasl Road, Jumeirah"), Clear);
        assert_eq!(address_shape("42 Lake View Road, Springfield"), Clear);
        assert_eq!(address_shape("flat 4B marina heights"), Clear);
        assert_eq!(address_shape("Springfield"), Unsure);
        assert_eq!(address_shape("the washing guy scratched my door last time!"), Unsure);
        assert_eq!(address_shape("door 4, Marina Heights"), Clear);
        assert_eq!(
            address_shape(
                "Actually wait, I have a complaint: last week's exterior wash left streaks all over the windows."
            ),
            Not
        );
        assert_eq!(
            address_shape("Oh, and I also need a full detailing for my second car, a black Honda Civic, plate TB66BBB"),
            Not
        );
        assert_eq!(address_shape("how much is it?"), Not);
        assert_eq!(address_shape("i want to talk to someone"), Not);
    }
}
