//! Text normalisation shared by the deterministic extractors, the flow loader and the grounding
//! check: case folding, accent stripping and whitespace folding, so "Café  Wash" and "cafe wash"
//! compare equal.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Weekday names (the seven full names first) and their short forms, folded.
pub const WEEKDAYS: &[&str] = &[
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
];

/// Lowercases, strips accents (NFD then drops combining marks), turns punctuation other than
/// `-`, `:`, `/`, `.` and `@` into spaces, and folds runs of whitespace into one space.
///
/// `fold("  Café   WASH! ")` is `"cafe wash"`.
pub fn fold(s: &str) -> String {
    let keep = |c: char| c.is_alphanumeric() || matches!(c, '-' | ':' | '/' | '.' | '@' | '+');
    let western;
    let s = if s.is_ascii() {
        s
    } else {
        western = western_digits(s);
        western.as_str()
    };
    let stripped: String = if s.is_ascii() {
        // Nothing to decompose: the common case skips the normalisation tables.
        s.chars().map(|c| if keep(c) { c.to_ascii_lowercase() } else { ' ' }).collect()
    } else {
        s.nfd()
            .filter(|c| !is_combining_mark(*c))
            .map(|c| if keep(c) { c } else { ' ' })
            .collect::<String>()
            .to_lowercase()
    };
    let mut out = String::with_capacity(stripped.len());
    for word in stripped.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// The ASCII digit for an Arabic-Indic (`٠`–`٩`, U+0660–0669) or Eastern Arabic-Indic (`۰`–`۹`,
/// U+06F0–06F9) digit, as customers in the Gulf and South Asia type them; other characters
/// unchanged.
pub fn western_digit(c: char) -> char {
    match c {
        '\u{0660}'..='\u{0669}' => char::from(b'0' + (c as u32 - 0x0660) as u8),
        '\u{06F0}'..='\u{06F9}' => char::from(b'0' + (c as u32 - 0x06F0) as u8),
        _ => c,
    }
}

/// `s` with every Arabic-Indic digit written as an ASCII digit (`"١٢:٣٠"` → `"12:30"`).
pub fn western_digits(s: &str) -> String {
    s.chars().map(western_digit).collect()
}

/// One word of a text: a run of letters and digits (any script), with where it stands in the
/// original text, so an extractor can quote the customer's own words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The word folded: lowercase, accents stripped, Arabic-Indic digits as ASCII.
    pub text: String,
    /// Byte offset of its first character in the original text.
    pub start: usize,
    /// Byte offset just past its last character.
    pub end: usize,
}

impl Token {
    /// Whether it is all digits.
    pub fn is_number(&self) -> bool {
        self.text.chars().all(|c| c.is_ascii_digit())
    }
    /// Whether it has no digit.
    pub fn is_word(&self) -> bool {
        !self.text.chars().any(|c| c.is_ascii_digit())
    }
}

/// The words of `text` (runs of letters and digits; everything else separates them), folded,
/// with their byte offsets: `"CX-5, plate"` → `cx` `5` `plate`.
pub fn tokens(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let flush = |from: usize, to: usize, out: &mut Vec<Token>| {
        let raw = &text[from..to];
        let folded: String = fold(raw).chars().filter(|c| c.is_alphanumeric()).collect();
        if !folded.is_empty() {
            out.push(Token { text: folded, start: from, end: to });
        }
    };
    for (i, c) in text.char_indices() {
        let part = c.is_alphanumeric() || is_combining_mark(c);
        match (part, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                flush(s, i, &mut out);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        flush(s, text.len(), &mut out);
    }
    out
}

/// A text folded once for many whole-word searches ([`contains_words`] folds it every time).
pub struct Folded(String);

impl Folded {
    /// Folds `text` for searching.
    pub fn new(text: &str) -> Folded {
        Folded(format!(" {} ", fold(text).replace(['.', ':', '/'], " ")))
    }

    /// Whether `needle` occurs in the text as whole words, after folding it. Called for every
    /// keyword of every flow on each message, so it folds the needle once and searches without
    /// building a padded copy.
    pub fn has(&self, needle: &str) -> bool {
        let n = fold_needle(needle);
        if n.is_empty() {
            return false;
        }
        // The text starts and ends with a space, and spaces are all that separate its words.
        let text = self.0.as_bytes();
        self.0
            .match_indices(n.as_str())
            .any(|(at, _)| text.get(at.wrapping_sub(1)) == Some(&b' ') && text.get(at + n.len()) == Some(&b' '))
    }

    /// Whether `needle`'s words occur in the text one after another, each as itself or as one of
    /// its regular inflections ([`inflects`]): "wash" in "i want my car washed", "cancel my
    /// booking" in "cancelled my bookings". Looser than [`Folded::has`], so callers use it only
    /// when the exact search found nothing.
    pub fn has_inflected(&self, needle: &str) -> bool {
        let needle = fold_needle(needle);
        let wanted: Vec<&str> = needle.split(' ').filter(|w| !w.is_empty()).collect();
        let words: Vec<&str> = self.0.split(' ').filter(|w| !w.is_empty()).collect();
        !wanted.is_empty()
            && words.windows(wanted.len()).any(|at| at.iter().zip(&wanted).all(|(word, base)| inflects(word, base)))
    }
}

/// A needle folded as [`Folded`] folds its text (`.`, `:` and `/` as spaces).
fn fold_needle(needle: &str) -> String {
    let n = fold(needle);
    if n.contains(['.', ':', '/']) {
        n.replace(['.', ':', '/'], " ").split_whitespace().collect::<Vec<_>>().join(" ")
    } else {
        n
    }
}

/// Whether the folded word `word` is the folded word `base` or one of its regular English
/// inflections: `-s`, `-es`, `-ed`, `-ing` ("washes", "washed", "washing"), `-d` and `-ing`
/// without the final `e` of a base ending in `e` ("scheduled", "scheduling"), `-ies`/`-ied` for
/// a final `y` ("applies"), and `-ed`/`-ing` after a doubled final consonant ("cancelled",
/// "transferring"). Only bases of three or more letters are inflected ("do" is not "does");
/// irregular forms ("paid") are not inflections here: a flow lists them as keywords of their own.
pub fn inflects(word: &str, base: &str) -> bool {
    if word == base {
        return true;
    }
    if base.chars().count() < 3 || !base.chars().all(char::is_alphabetic) {
        return false;
    }
    let last = base.chars().last().unwrap_or(' ');
    if let Some(rest) = word.strip_prefix(base) {
        let doubled = rest.strip_prefix(last).is_some_and(|r| matches!(r, "ed" | "ing")) && !"aeiouy".contains(last);
        return matches!(rest, "s" | "es" | "ed" | "ing") || (rest == "d" && last == 'e') || doubled;
    }
    let stem = &base[..base.len() - last.len_utf8()];
    match (last, word.strip_prefix(stem)) {
        ('e', Some("ing")) => true,
        ('y', Some("ies" | "ied")) => !stem.ends_with(['a', 'e', 'i', 'o', 'u']),
        _ => false,
    }
}

/// Folds and then removes everything but letters and digits: `"ABC-1234"` and `"abc 1234"` both
/// become `"abc1234"`. Used to compare plates and ids.
pub fn compact(s: &str) -> String {
    fold(s).chars().filter(|c| c.is_alphanumeric()).collect()
}

/// Whether `needle` occurs in `haystack` as whole words, after [`fold`]ing both.
pub fn contains_words(haystack: &str, needle: &str) -> bool {
    Folded::new(haystack).has(needle)
}

/// Capitalises the first letter of each word ("jane o'neil" → "Jane O'neil").
pub fn title_case(s: &str) -> String {
    s.split_whitespace()
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_uppercase().chain(c.flat_map(char::to_lowercase)).collect(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Cuts `s` to at most `max` characters, ending with "…" when it was cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_case_accents_and_spacing() {
        assert_eq!(fold("  Café   WASH! "), "cafe wash");
        assert_eq!(compact("ABC-1234"), compact("abc 1234"));
        assert!(contains_words("I'd like a Full Wash please", "full wash"));
        assert!(!contains_words("washing", "wash"));
        let text = Folded::new("Wash at 10:30. Then... the Deluxe/Full wash-and-wax");
        for found in ["wash", "10:30", "10 30", "then", "deluxe", "full", "wash-and-wax", "Full  Wash-And-Wax"] {
            assert!(text.has(found), "{found}");
        }
        for missing in ["was", "0:3", "full deluxe", "and", "", " ", "..."] {
            assert!(!text.has(missing), "{missing:?}");
        }
        assert_eq!(truncate("Interior deep clean premium", 20).chars().count(), 20);
    }

    #[test]
    fn arabic_indic_digits_read_as_digits_and_tokens_keep_their_place() {
        assert_eq!(western_digits("الساعة ١٠:٣٠ و ۵"), "الساعة 10:30 و 5");
        assert_eq!(fold("١٢٣"), "123");
        let t = tokens("CX-5, plate DXB 4521!");
        let words: Vec<&str> = t.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(words, ["cx", "5", "plate", "dxb", "4521"]);
        assert_eq!(&"CX-5, plate DXB 4521!"[t[3].start..t[4].end], "DXB 4521");
        assert_eq!(tokens("Café Škoda")[1].text, "skoda");
    }

    #[test]
    fn regular_inflections_match_and_other_words_do_not() {
        for (word, base) in [
            ("washed", "wash"),
            ("washes", "wash"),
            ("washing", "wash"),
            ("bookings", "booking"),
            ("scheduled", "schedule"),
            ("scheduling", "schedule"),
            ("cancelled", "cancel"),
            ("transferring", "transfer"),
            ("applies", "apply"),
            ("stayed", "stay"),
            ("wash", "wash"),
        ] {
            assert!(inflects(word, base), "{word} of {base}");
        }
        for (word, base) in [
            ("was", "wash"),
            ("washer", "wash"),
            ("later", "late"),
            ("does", "do"),
            ("paid", "pay"),
            ("staied", "stay"),
            ("booked", "booking"),
            ("10s", "10"),
        ] {
            assert!(!inflects(word, base), "{word} is not {base}");
        }
    }

    #[test]
    fn an_inflected_search_matches_each_word_of_a_phrase_in_order() {
        let text = Folded::new("hii i want my car washed tmrw morning, its a kia sportage dxb 12345");
        assert!(text.has_inflected("wash") && !text.has("wash"));
        assert!(!text.has_inflected("wash car"), "the words must follow each other in order");
        let text = Folded::new("I cancelled my bookings yesterday");
        assert!(text.has_inflected("cancel my booking"));
        assert!(!text.has_inflected("cancel booking"));
        assert!(!text.has_inflected("") && !text.has_inflected(" "));
    }
}
