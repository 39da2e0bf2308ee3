//! A customer's name: read when it is the question, after an introduction ("my name is",
//! "this is", "I'm", "call me", "name:") anywhere in a message, or from a sentence of its own made
//! of capitalised name words ("book full wash. Omar Haddad").
//!
//! A name is one to five words of letters (with `'` and `-`), none an everyday word; particles
//! ("van der", "Al", "bin", "de la") start the family name, and "Abdul Rahman" is one given
//! name. What is not sure to be a name is not read: the bot asks.

use std::sync::LazyLock;

use regex::Regex;

use super::words::{COMMON, COMPOUND_GIVEN, LOWERCASE_PARTICLES, NAME_PARTICLES, is_in};
use crate::text::{fold, title_case};

/// A name read from a message.
#[derive(Debug, Clone, PartialEq)]
pub struct NameRead {
    /// The given name ("Abdul Rahman").
    pub given: String,
    /// The family name, when there was one ("Al Hashimi").
    pub family: Option<String>,
    /// The customer's words for it.
    pub evidence: String,
}

/// Introductions that are a name whatever the case of what follows.
static INTRO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:my\s+name\s+is|my\s+name's|name\s+is|name's|this\s+is|call\s+me|name\s*[:\-]|full\s+name\s*[:\-]?|i\s+am\s+called|you\s+can\s+call\s+me|it's|it\s+is)\s+")
        .unwrap_or_else(|_| unreachable!())
});

/// "I'm", "I am", "im": a name only when it is capitalised, or asked.
static IM: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\b(?:i'm|i’m|i\s+am|im)\s+").unwrap_or_else(|_| unreachable!()));

/// Greetings before a name given alone ("Hi, Omar Haddad here").
static LEAD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*(?:(?:hi|hello|hey|salam|salaam|good\s+(?:morning|afternoon|evening))[\s,!.]+)*")
        .unwrap_or_else(|_| unreachable!())
});

/// Whether a word (as typed) can be part of a name: two letters or more, letters with `'` and
/// `-` only, and not an everyday word ("I'd" is "id", "It's" is "its").
fn name_word(w: &str) -> bool {
    let letters = w.chars().filter(|c| c.is_alphabetic()).count();
    let key: String = fold(w).chars().filter(|c| c.is_alphanumeric()).collect();
    // A lower-case "-ing" word is a verb ("taking", "waiting"), not a name.
    let gerund = key.len() >= 6 && key.ends_with("ing") && !w.chars().any(char::is_uppercase);
    letters >= 2
        && w.chars().all(|c| c.is_alphabetic() || matches!(c, '\'' | '-' | '’'))
        && w.chars().next().is_some_and(char::is_alphabetic)
        && !is_in(&key, COMMON)
        && !gerund
}

fn capitalised(w: &str) -> bool {
    w.chars().next().is_some_and(char::is_uppercase)
}

/// The name words at the start of `rest` (up to punctuation or the first word that is not a
/// name word), with how much of `rest` they take.
fn leading_name(rest: &str) -> Option<(Vec<&str>, usize)> {
    let mut words = Vec::new();
    let mut end = 0;
    for (start, w) in word_spans(rest) {
        let gap = &rest[end..start];
        if !words.is_empty() && gap.chars().any(|c| !c.is_whitespace()) {
            break; // punctuation ends the name
        }
        let bare = w.trim_end_matches(['.', ',', '!', '?', ';', ':']);
        let particle = is_in(&fold(bare), NAME_PARTICLES);
        if !(name_word(bare) || (particle && !words.is_empty())) {
            break;
        }
        words.push(bare);
        end = start + bare.len();
        if bare.len() < w.len() || words.len() == 5 {
            break; // the word ended in punctuation, or the name is long enough
        }
    }
    // A particle cannot end a name ("Jane van").
    while words.last().is_some_and(|w| is_in(&fold(w), NAME_PARTICLES)) && words.len() > 1 {
        words.pop();
    }
    (!words.is_empty()).then_some((words, end))
}

fn word_spans(s: &str) -> impl Iterator<Item = (usize, &str)> {
    s.split_whitespace().map(move |w| (w.as_ptr() as usize - s.as_ptr() as usize, w))
}

/// Splits name words into given and family names, and writes each word as a name: a word typed
/// all lower case is capitalised (particles like "van" stay lower case), one with a capital
/// keeps the customer's spelling ("McDonald", "O'Neil").
fn split(words: &[&str]) -> (String, Option<String>) {
    let typed_capitals = words.iter().any(|w| w.chars().any(char::is_uppercase));
    let shown: Vec<String> = words
        .iter()
        .map(|w| {
            let f = fold(w);
            let particle = is_in(&f, NAME_PARTICLES);
            if w.chars().any(char::is_uppercase) || (particle && typed_capitals) {
                w.to_string() // as typed: "McDonald", "bin" in "Mohammed bin Rashid"
            } else if is_in(&f, LOWERCASE_PARTICLES) {
                f
            } else {
                title_case(w)
            }
        })
        .collect();
    let particle = words.iter().skip(1).position(|w| is_in(&fold(w), NAME_PARTICLES)).map(|p| p + 1);
    let given_len = match particle {
        Some(p) if p < words.len() - 1 => p,
        _ if words.len() >= 3 && is_in(&fold(words[0]), COMPOUND_GIVEN) => 2,
        _ => 1,
    };
    let given = shown[..given_len].join(" ");
    let family = (shown.len() > given_len).then(|| shown[given_len..].join(" "));
    (given, family)
}

fn read(words: &[&str]) -> NameRead {
    let (given, family) = split(words);
    NameRead { given, family, evidence: words.join(" ") }
}

/// Reads a name from `text`. `asked`: the name is the open question, so the message itself may
/// be the name ("omar haddad"), and lower case is fine after "I'm".
pub fn find_name(text: &str, asked: bool) -> Option<NameRead> {
    introduced_name(text, asked).or_else(|| bare_name(text, asked))
}

/// A name after an introduction only ("I'm Jane Doe", "this is Omar"): what is read while another
/// free-text question is open, whose answer ("Acme Logistics") may look like a name.
pub fn introduced_name(text: &str, asked: bool) -> Option<NameRead> {
    // After an introduction, anywhere.
    for m in INTRO.find_iter(text) {
        let lead = fold(m.as_str());
        if (lead.starts_with("it") || lead.starts_with("this")) && !asked && m.start() > 0 {
            // "it's" / "this is" in the middle of a sentence is rarely a name.
            let before = text[..m.start()].trim_end();
            let only_greeting = LEAD.replace(&format!("{before} "), "").trim().is_empty();
            if !before.is_empty() && !before.ends_with([',', '.', '!', '?']) && !only_greeting {
                continue;
            }
        }
        if let Some((words, _)) = leading_name(&text[m.end()..]) {
            if lead.starts_with("it") && !asked {
                continue; // "it's a Corolla", "it's Omar" — only when the name was asked
            }
            // "this is ridiculous": after "this is", a name is capitalised or has two words.
            let sure = asked || !lead.starts_with("this") || capitalised(words[0]) || words.len() >= 2;
            if sure {
                return Some(read(&words));
            }
        }
    }
    for m in IM.find_iter(text) {
        if let Some((words, _)) = leading_name(&text[m.end()..]) {
            if asked || words.iter().all(|w| capitalised(w) || is_in(&fold(w), NAME_PARTICLES)) {
                return Some(read(&words));
            }
        }
    }
    None
}

/// A message that is a name by itself: when asked, the whole message; otherwise a sentence of its
/// own of two to four capitalised name words.
fn bare_name(text: &str, asked: bool) -> Option<NameRead> {
    if asked {
        // The message is the name, after a greeting ("Hi, Omar Haddad", "omar haddad here").
        let rest = LEAD.replace(text.trim(), "");
        let rest = rest.trim().trim_end_matches(|c: char| !c.is_alphanumeric() && c != '\'').trim_end();
        let rest = rest.strip_suffix(" here").unwrap_or(rest);
        if let Some((words, end)) = leading_name(rest) {
            if rest[end..].trim().is_empty() {
                return Some(read(&words));
            }
        }
    }
    // A sentence of its own made of two to four capitalised name words.
    for sentence in text.split(['.', ',', '!', '?', ';', '\n']) {
        let s = LEAD.replace(sentence.trim(), "");
        let s = s.trim().trim_end_matches(|c: char| !c.is_alphanumeric()).trim_end();
        let s = s.strip_suffix(" here").unwrap_or(s);
        if let Some((words, end)) = leading_name(s) {
            let whole = s[end..].trim().is_empty();
            let capitals = words.iter().all(|w| capitalised(w) || is_in(&fold(w), NAME_PARTICLES));
            let car = super::vehicles::find_car(&words.join(" "), false);
            let known = words.iter().any(|w| known_word(w)) || car.make.is_some() || car.model.is_some();
            if whole && capitals && (2..=4).contains(&words.len()) && !known {
                return Some(read(&words));
            }
        }
    }
    None
}

/// Words that are capitalised in a sentence but are not names: makes, models, places the
/// business serves, day and month names.
fn known_word(w: &str) -> bool {
    let f = fold(w);
    super::vehicles::find_car(w, false).make.is_some()
        || super::vehicles::find_car(w, false).model.is_some()
        || matches!(
            f.as_str(),
            "january"
                | "february"
                | "march"
                | "april"
                | "june"
                | "july"
                | "august"
                | "september"
                | "october"
                | "november"
                | "december"
                | "dubai"
                | "sharjah"
                | "ajman"
                | "jumeirah"
                | "marina"
                | "downtown"
                | "road"
                | "street"
                | "villa"
                | "wash"
                | "detailing"
                | "polish"
                | "cleaning"
        )
}

/// Whether `value` (a name another reader gave) could be a name: name words only, no everyday
/// word ("Like", "I'd", "A" are not names).
pub fn name_shaped(value: &str) -> bool {
    let words: Vec<&str> = value.split_whitespace().collect();
    !words.is_empty()
        && words.len() <= 5
        && words.iter().enumerate().all(|(i, w)| name_word(w) || (i > 0 && is_in(&fold(w), NAME_PARTICLES)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str, asked: bool) -> Option<(String, Option<String>)> {
        find_name(text, asked).map(|n| (n.given, n.family))
    }
    fn full(g: &str, f: &str) -> Option<(String, Option<String>)> {
        Some((g.into(), Some(f.into())))
    }

    #[test]
    fn names_given_outside_the_question() {
        assert_eq!(name("Hi, I'm Omar Haddad and I want to book a full wash", false), full("Omar", "Haddad"));
        assert_eq!(name("book full wash. Omar Haddad", false), full("Omar", "Haddad"));
        assert_eq!(name("Hi, this is Priya Raman. I need an interior detailing", false), full("Priya", "Raman"));
        assert_eq!(name("My name is Omar Haddad, I'd like to book", false), full("Omar", "Haddad"));
        assert_eq!(name("hi this is priya raman i need a wash", false), full("Priya", "Raman"));
        assert_eq!(name("i'm looking for a wash", false), None);
        assert_eq!(name("I'm interested in a subscription", false), None);
        assert_eq!(name("im omar and i need a wash", false), None, "lower case after I'm is not sure");
        assert_eq!(name("It's a Corolla", false), None);
        assert_eq!(name("This is ridiculous, I've waited all week!!! Just book me a full wash", false), None);
        assert_eq!(name("this is taking forever", false), None);
        assert_eq!(name("book a Full Wash", false), None);
        assert_eq!(name("Tomorrow 10am. Toyota Corolla", false), None);
    }

    #[test]
    fn names_as_the_answer() {
        assert_eq!(name("omar haddad", true), full("Omar", "Haddad"));
        assert_eq!(name("Jane", true), Some(("Jane".into(), None)));
        assert_eq!(name("I'm Jane Doe", true), full("Jane", "Doe"));
        assert_eq!(name("Abdul Rahman Al Hashimi", true), full("Abdul Rahman", "Al Hashimi"));
        assert_eq!(name("Mary-Jane van der Berg", true), full("Mary-Jane", "van der Berg"));
        assert_eq!(name("juan carlos de la cruz", true), full("Juan Carlos", "de la Cruz"));
        assert_eq!(name("Sean O'Neil", true), full("Sean", "O'Neil"));
        assert_eq!(name("Hi, Omar Haddad here", true), full("Omar", "Haddad"));
        assert_eq!(name("yes", true), None);
        assert_eq!(name("I want a car wash tomorrow", true), None);
        assert_eq!(name("R2D2", true), None);
        assert_eq!(name("Like Priya", true), None);
    }

    #[test]
    fn what_an_llm_may_call_a_name() {
        assert!(name_shaped("Priya Raman"));
        assert!(name_shaped("Mary-Jane van der Berg"));
        assert!(!name_shaped("Like"));
        assert!(!name_shaped("I'd"));
        assert!(!name_shaped("A"));
        assert!(!name_shaped("the car"));
    }
}
