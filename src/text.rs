//! Text normalisation shared by the deterministic extractors, the flow loader and the grounding
//! check: case folding, accent stripping and whitespace folding, so "Café  Wash" and "cafe wash"
//! compare equal.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Lowercases, strips accents (NFD then drops combining marks), turns punctuation other than
/// `-`, `:`, `/`, `.` and `@` into spaces, and folds runs of whitespace into one space.
///
/// `fold("  Café   WASH! ")` is `"cafe wash"`.
pub fn fold(s: &str) -> String {
    let keep = |c: char| c.is_alphanumeric() || matches!(c, '-' | ':' | '/' | '.' | '@' | '+');
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

/// A text folded once for many whole-word searches ([`contains_words`] folds it every time).
pub struct Folded(String);

impl Folded {
    /// Folds `text` for searching.
    pub fn new(text: &str) -> Folded {
        Folded(format!(" {} ", fold(text).replace(['.', ':', '/'], " ")))
    }

    /// Whether `needle` occurs in the text as whole words, after folding it.
    pub fn has(&self, needle: &str) -> bool {
        let n = fold(needle).replace(['.', ':', '/'], " ");
        let n = n.split_whitespace().collect::<Vec<_>>().join(" ");
        !n.is_empty() && self.0.contains(&format!(" {n} "))
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
        assert_eq!(truncate("Interior deep clean premium", 20).chars().count(), 20);
    }
}
