//! Whole numbers of things: "20", "twenty cars", "a fleet of 35 vans", "about 40 vehicles",
//! "two dozen". A number is read from a sentence only next to one of the slot's unit words, so
//! "villa 12" or "call me at 5" never counts cars; a message that is only a number (with filler
//! such as "about" or "we have") is read when the number is what was asked.

use crate::text::{Token, tokens};

/// Words that may stand around a number that is the whole answer ("about 20", "we have 20",
/// "20 or so", "20+").
const FILLER: &[&str] = &[
    "about",
    "around",
    "approx",
    "approximately",
    "roughly",
    "nearly",
    "almost",
    "maybe",
    "perhaps",
    "like",
    "some",
    "over",
    "more",
    "than",
    "at",
    "least",
    "up",
    "to",
    "we",
    "have",
    "got",
    "own",
    "run",
    "i",
    "think",
    "its",
    "it",
    "is",
    "are",
    "there",
    "total",
    "in",
    "of",
    "our",
    "my",
    "so",
    "or",
    "ish",
    "plus",
    "just",
    "exactly",
    "currently",
    "right",
    "now",
    "a",
    "an",
    "the",
    "fleet",
    "units",
    "unit",
    "pcs",
    "only",
];

/// One number written in a message: its value and the tokens it spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Written {
    value: u64,
    /// First token index.
    first: usize,
    /// Last token index (inclusive).
    last: usize,
}

/// The value of a number word below a hundred, or of a multiplier word.
fn word_value(w: &str) -> Option<u64> {
    const SMALL: &[&str] = &[
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
    ];
    const TENS: &[&str] = &["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"];
    if let Some(i) = SMALL.iter().position(|s| *s == w) {
        return Some(i as u64);
    }
    TENS.iter().position(|s| *s == w).map(|i| 20 + 10 * i as u64)
}

/// Reads the numbers of a message, digits or words ("twenty five", "a hundred and ten", "two
/// dozen"), each with the tokens it spans.
fn numbers(toks: &[Token]) -> Vec<Written> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i].text;
        if toks[i].is_number() {
            if let Ok(v) = t.parse::<u64>() {
                // "2 dozen"
                let dozen = toks.get(i + 1).is_some_and(|n| n.text == "dozen");
                let last = if dozen { i + 1 } else { i };
                out.push(Written { value: if dozen { v.saturating_mul(12) } else { v }, first: i, last });
                i = last + 1;
                continue;
            }
        }
        // Words: a run of number words, "a"/"an" only in front of "hundred", "thousand" or "dozen".
        let first = i;
        let mut total: u64 = 0;
        let mut current: u64 = 0;
        let mut any = false;
        let mut j = i;
        while j < toks.len() {
            let w = toks[j].text.as_str();
            let next_is_multiplier =
                toks.get(j + 1).is_some_and(|n| matches!(n.text.as_str(), "hundred" | "thousand" | "dozen"));
            match w {
                "a" | "an" if !any && next_is_multiplier => current = 1,
                "and" if any && toks.get(j + 1).is_some_and(|n| word_value(&n.text).is_some()) => {}
                "dozen" if any || current == 1 => {
                    current = current.max(1) * 12;
                    any = true;
                }
                "hundred" if any || current == 1 => {
                    current = current.max(1) * 100;
                    any = true;
                }
                "thousand" if any || current == 1 => {
                    total += current.max(1) * 1000;
                    current = 0;
                    any = true;
                }
                _ => match word_value(w) {
                    Some(v) => {
                        current += v;
                        any = true;
                    }
                    None => break,
                },
            }
            j += 1;
        }
        if any {
            out.push(Written { value: total + current, first, last: j - 1 });
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

/// Whether a folded word is one of the units (a unit's plural with "s" or "es" counts too).
fn is_unit(word: &str, units: &[String]) -> bool {
    units.iter().any(|u| {
        word == u
            || word.strip_suffix('s').is_some_and(|w| w == u)
            || word.strip_suffix("es").is_some_and(|w| w == u)
            || u.strip_suffix('s').is_some_and(|u| u == word)
    })
}

/// A whole number of things in `text`. `units` are the slot's folded unit words; `focused`:
/// the number is what was asked, so a message that is only a number (with filler words) is read
/// too. Returns the number and the customer's words it came from; `None` when there is no
/// number, or two different ones that both could be it.
///
/// `find_count("we have 20 cars and 3 vans", false, &["cars"])` is `Some((20, "20 cars"))`.
pub fn find_count(text: &str, focused: bool, units: &[String]) -> Option<(u64, String)> {
    let toks = tokens(text);
    let found = numbers(&toks);
    let quote = |first: usize, last: usize| text[toks[first].start..toks[last].end].to_string();
    // Next to a unit: "20 cars", "20 company cars", "cars: 20", "a fleet of 20" when "fleet" is a unit.
    let mut beside: Vec<(u64, String)> = Vec::new();
    for n in &found {
        let after = (n.last + 1..=(n.last + 3).min(toks.len().saturating_sub(1)))
            .find(|&k| k < toks.len() && is_unit(&toks[k].text, units));
        let before =
            n.first.checked_sub(1).filter(|&k| is_unit(&toks[k].text, units)).or_else(|| {
                n.first.checked_sub(2).filter(|&k| toks[k + 1].text == "of" && is_unit(&toks[k].text, units))
            });
        match (after, before) {
            (Some(k), _) => beside.push((n.value, quote(n.first, k))),
            (None, Some(k)) => beside.push((n.value, quote(k, n.last))),
            (None, None) => {}
        }
    }
    beside.dedup_by_key(|b| b.0);
    match beside.as_slice() {
        [one] => return Some(one.clone()),
        [_, _, ..] => return None,
        [] => {}
    }
    if !focused {
        return None;
    }
    // The number is the whole answer: one number, everything else filler or units.
    let [n] = found.as_slice() else { return None };
    let rest_is_filler = toks
        .iter()
        .enumerate()
        .filter(|(k, _)| *k < n.first || *k > n.last)
        .all(|(_, t)| FILLER.contains(&t.text.as_str()) || is_unit(&t.text, units));
    rest_is_filler.then(|| (n.value, quote(n.first, n.last)))
}

#[cfg(test)]
mod tests {
    use super::find_count;

    fn units() -> Vec<String> {
        ["car", "cars", "vehicle", "vehicles", "van", "vans", "fleet"].iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn reads_a_number_next_to_its_unit_anywhere() {
        let u = units();
        assert_eq!(find_count("we have 20 cars for our staff", false, &u), Some((20, "20 cars".into())));
        assert_eq!(find_count("A fleet of 35 delivery vans", false, &u).map(|c| c.0), Some(35));
        assert_eq!(find_count("twenty five company cars", false, &u), Some((25, "twenty five company cars".into())));
        assert_eq!(find_count("about a hundred and ten vehicles", false, &u).map(|c| c.0), Some(110));
        assert_eq!(find_count("two dozen cars", false, &u).map(|c| c.0), Some(24));
        assert_eq!(find_count("cars: 12", false, &u).map(|c| c.0), Some(12));
        assert_eq!(find_count("٤٠ cars", false, &u).map(|c| c.0), Some(40));
    }

    #[test]
    fn a_bare_number_only_when_it_was_asked() {
        let u = units();
        assert_eq!(find_count("20", true, &u).map(|c| c.0), Some(20));
        assert_eq!(find_count("about 40 or so", true, &u).map(|c| c.0), Some(40));
        assert_eq!(find_count("we have twelve", true, &u).map(|c| c.0), Some(12));
        assert_eq!(find_count("20", false, &u), None);
        // A number inside other words is not the answer.
        assert_eq!(find_count("villa 12 on street 4", true, &u), None);
        assert_eq!(find_count("call me at 5", true, &u), None);
        assert_eq!(find_count("Acme Trading", true, &u), None);
    }

    #[test]
    fn two_different_counts_are_not_guessed() {
        let u = units();
        assert_eq!(find_count("10 cars now, maybe 30 cars next year", true, &u), None);
        assert_eq!(find_count("20 cars, yes 20 cars", true, &u).map(|c| c.0), Some(20));
    }
}
