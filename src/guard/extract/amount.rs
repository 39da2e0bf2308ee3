//! Amounts of money ("AED 150", "150 dirhams", "$75.50", or just "150" when the amount is
//! the question).

use std::sync::LazyLock;

use regex::Regex;

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
