//! Days and times as customers write them ("tomorrow 10am", "Friday at 3", "next Tuesday
//! 11am", "25/12 14:00"), read with `interim` relative to the message's own time in the
//! business's zone, and checked against the business's days, hours and lead time.

use std::sync::LazyLock;

use jiff::Zoned;
use jiff::civil::DateTime;
use regex::Regex;

use crate::engine::capacity::Availability;
use crate::flow::Business;
use crate::flow::graph::ChoiceOption;
use crate::flow::messages::Messages;

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

pub(super) use crate::text::WEEKDAYS;

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
            // "next Tuesday", said on a Wednesday, is the coming Tuesday (6 days on), as
            // customers mean it; interim would read the Tuesday of the week after.
            "next" | "coming" if next.is_some_and(|n| WEEKDAYS.contains(&n)) => {}
            "tmrw" | "tmr" | "tomorow" | "tommorow" | "tommorrow" => words.push("tomorrow".into()),
            "at" | "on" | "for" | "please" | "around" | "about" | "by" | "this" | "the" | "o'clock" | "oclock"
            | "in" | "of" | "morning" | "afternoon" | "evening" | "@" => {}
            _ if w.chars().all(|c| c.is_ascii_digit() || c == ':' || c == '.')
                && w.starts_with(|c: char| c.is_ascii_digit())
                && matches!(next, Some("am") | Some("pm")) =>
            {
                words.push(format!("{w}{}", next.unwrap_or_default()));
                i += 1;
            }
            _ => words.push(w.to_string()),
        }
        i += 1;
    }
    // A bare hour right after a day word.
    for k in 1..words.len() {
        if is_day_word(&words[k - 1]) {
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
    let words: Vec<String> = prepare_time_words(text)
        .into_iter()
        .map(|w| match w.as_str() {
            // interim reads "12pm" as midnight: noon and midnight are written out.
            "12pm" => "12:00".to_string(),
            "12am" => "00:00".to_string(),
            _ => w,
        })
        .collect();
    let is_time = |w: &str| TIME_TOKEN.is_match(w) || w == "12:00" || w == "00:00";
    let is_day = |w: &str| {
        is_day_word(w) || w.contains('/') || w.contains('-') && w.chars().filter(|c| c.is_ascii_digit()).count() >= 4
    };
    // Only words that can belong to a date: a window like "street jumeirah 1 monday" is not one.
    let date_ish = |w: &str| {
        is_time(w)
            || is_day(w)
            || MONTHS.iter().any(|m| w.starts_with(m))
            || w == "week"
            || w.trim_end_matches(|c: char| c.is_ascii_alphabetic()).parse::<u32>().is_ok_and(|n| n <= 31)
    };
    // Windows with a day and a time first, then a time alone, then a day alone; longest first.
    for wanted in [(true, true), (false, true), (true, false)] {
        for len in (1..=words.len().min(4)).rev() {
            for start in 0..=(words.len() - len) {
                let window = &words[start..start + len];
                let has_time = window.iter().any(|w| is_time(w));
                let has_day = window.iter().any(|w| is_day(w));
                if (has_day, has_time) != wanted || !window.iter().all(|w| date_ish(w)) {
                    continue;
                }
                // "10am tomorrow" reads as "tomorrow 10am".
                let mut ordered: Vec<&String> = window.iter().filter(|w| !is_time(w)).collect();
                ordered.extend(window.iter().filter(|w| is_time(w)));
                let candidate = ordered.iter().map(|w| w.as_str()).collect::<Vec<_>>().join(" ");
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
    }
    When::Nothing
}

/// Month names' first three letters.
const MONTHS: &[&str] = &["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];

/// Whether the words `parse_when` read name a day (not just a time).
pub fn names_a_day(evidence: &str) -> bool {
    evidence
        .split(' ')
        .any(|w| is_day_word(w) || w.contains('/') || w.chars().filter(|c| c.is_ascii_digit()).count() >= 4)
}

/// Checks a visit time against the business's days, hours (per weekday, holidays, special
/// days) and lead time; the reason, in the business's words (`messages.yaml`), when it fails.
pub fn check_visit_time(dt: DateTime, now: &Zoned, business: &Business) -> Result<(), String> {
    let m = &business.messages;
    let Ok(zoned) = dt.to_zoned(business.time_zone.clone()) else {
        return Err(m.no_such_time.clone());
    };
    if zoned.timestamp() <= now.timestamp() {
        return Err(m.time_passed.clone());
    }
    if zoned.timestamp() < now.timestamp() + business.lead_time {
        return Err(Messages::fill(&m.lead_time, &[("minutes", &business.lead_time.as_mins().to_string())]));
    }
    let Some(hours) = business.hours_on(dt.date()) else {
        return Err(closed_reason(dt.date(), business));
    };
    if dt.time() < hours.opens || dt.time() >= hours.closes {
        return Err(Messages::fill(
            &m.outside_hours,
            &[
                ("opens", &hours.opens.strftime("%H:%M").to_string()),
                ("closes", &hours.closes.strftime("%H:%M").to_string()),
            ],
        ));
    }
    Ok(())
}

/// Why there are no visits on `date`, in the business's words: its weekday is closed, or the
/// date is a holiday.
pub fn closed_reason(date: jiff::civil::Date, business: &Business) -> String {
    let m = &business.messages;
    let offset = date.weekday().to_monday_zero_offset() as usize;
    if business.weekly[offset].is_none() {
        let name = m.weekdays.get(offset).cloned().unwrap_or_default();
        Messages::fill(&m.closed_day, &[("weekday", &name)])
    } else {
        Messages::fill(&m.closed_date, &[("date", &date.strftime("%A %-d %B").to_string())])
    }
}

/// The most days looked at for free times (a month of full days is reported as none free).
const HORIZON_DAYS: i64 = 60;

/// The visit times offered in a list: the business's times on open days from `now`, respecting
/// the lead time and, when places are counted, only windows with a place left; days closed or
/// full are skipped, so `days_ahead` days with a free time are offered (up to 60 days on). At
/// most 10 (WhatsApp's list limit, reference §7).
pub fn visit_slots(now: &Zoned, business: &Business, availability: Option<&Availability>) -> Vec<ChoiceOption> {
    let mut out = Vec::new();
    let today = now.date();
    let mut days_offered = 0;
    for d in 0..HORIZON_DAYS {
        let Ok(day) = today.checked_add(jiff::Span::new().days(d)) else { break };
        let free: Vec<DateTime> = business
            .times_on(day)
            .into_iter()
            .filter(|dt| check_visit_time(*dt, now, business).is_ok())
            .filter(|dt| availability.is_none_or(|a| a.is_free(&dt.to_string())))
            .collect();
        if free.is_empty() {
            continue;
        }
        for dt in free {
            out.push(ChoiceOption {
                id: dt.to_string(),
                title: dt.strftime("%a %-d %b %H:%M").to_string(),
                description: None,
                synonyms: vec![],
                price: None,
            });
            if out.len() == crate::flow::MAX_LIST_ROWS {
                return out;
            }
        }
        days_offered += 1;
        if days_offered > business.days_ahead {
            break;
        }
    }
    out
}

/// Whether a folded word names a day: a weekday or its short form ("tue", "monday"), "today",
/// "tomorrow", or "next" (as in "next Tuesday").
pub fn is_day_word(w: &str) -> bool {
    matches!(w, "today" | "tomorrow" | "next") || WEEKDAYS.contains(&w)
}
