//! Phone numbers in international form: "+971 50 123 4567", "00971-50-1234567", "(+971) 50 123
//! 4567". A number is 8 to 15 digits with its country code (ITU-T E.164: at most 15 digits); one
//! written the local way ("050 123 4567") cannot be read without knowing the country, so it is
//! refused with the reason.

use regex::Regex;
use std::sync::LazyLock;

static CANDIDATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:\(\s*\+?\d{1,4}\s*\)|\+|\b)[\d][\d\s().\-]{5,22}\d")
        .unwrap_or_else(|_| unreachable!("a valid pattern"))
});

/// What reading a phone number found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhoneRead {
    /// A number: `+` and its digits, and the text it was read from.
    Number(String, String),
    /// Digits that look like a local number (a leading 0, no country code).
    Local(String),
    /// Nothing like a phone number.
    None,
}

/// The first phone number in `text`.
pub fn find_phone(text: &str) -> PhoneRead {
    let mut local = None;
    for m in CANDIDATE.find_iter(text) {
        let written = m.as_str().trim();
        let digits: String = written.chars().filter(char::is_ascii_digit).collect();
        let international = written.starts_with('+') || written.starts_with("(+") || digits.starts_with("00");
        let digits = digits.strip_prefix("00").map(str::to_string).unwrap_or(digits);
        if !(8..=15).contains(&digits.len()) {
            continue;
        }
        if international || (!digits.starts_with('0') && digits.len() >= 11) {
            return PhoneRead::Number(format!("+{digits}"), written.to_string());
        }
        if digits.starts_with('0') && local.is_none() {
            local = Some(written.to_string());
        }
    }
    local.map(PhoneRead::Local).unwrap_or(PhoneRead::None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(text: &str) -> Option<String> {
        match find_phone(text) {
            PhoneRead::Number(n, _) => Some(n),
            _ => None,
        }
    }

    #[test]
    fn international_numbers_are_read_however_they_are_spaced() {
        assert_eq!(number("+971 50 123 4567").as_deref(), Some("+971501234567"));
        assert_eq!(number("my number is 00971-50-1234567 thanks").as_deref(), Some("+971501234567"));
        assert_eq!(number("(+971) 50 123 4567").as_deref(), Some("+971501234567"));
        assert_eq!(number("971501234567").as_deref(), Some("+971501234567"));
        assert_eq!(number("+44 20 7946 0958").as_deref(), Some("+442079460958"));
    }

    #[test]
    fn local_numbers_and_other_figures_are_not_numbers() {
        assert_eq!(find_phone("050 123 4567"), PhoneRead::Local("050 123 4567".into()));
        assert_eq!(find_phone("3 cars at 10:30"), PhoneRead::None);
        assert_eq!(find_phone("+1 234"), PhoneRead::None);
        assert_eq!(find_phone("+1234567890123456"), PhoneRead::None);
        assert_eq!(find_phone("no number here"), PhoneRead::None);
    }
}
