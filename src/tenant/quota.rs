//! Per-tenant quotas: how many customers a day may be served with the LLM's help and how many
//! LLM tokens a day it may use. Over either, the LLM is switched off for the tenant's turns
//! until the day ends (in the business's time zone, as the dashboard counts days) and the
//! deterministic path (buttons, lists, parsers) carries on: customers are never refused for a
//! quota.
//!
//! Usage is read from the dashboard's daily counts (`new_customers` + `returning_customers`,
//! `llm_tokens`; see [`crate::stats`]), which every instance adds to in each turn's commit, so
//! several processes share one quota; a process re-reads them at most every
//! [`USAGE_FRESH`] and adds its own turns in between.

use std::sync::Mutex;

use serde::Deserialize;

/// How long a read of the day's usage stands before it is read again.
pub const USAGE_FRESH: std::time::Duration = std::time::Duration::from_secs(30);

/// A tenant's quotas (`quotas:` in `tenant.yaml`); `None` means no limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quotas {
    /// Customers served per day (a customer's first message of the day counts once).
    pub conversations_per_day: Option<u64>,
    /// LLM tokens (prompt and completion) per day.
    pub llm_tokens_per_day: Option<u64>,
}

/// A day's usage: (customers served, LLM tokens).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Customers served.
    pub conversations: u64,
    /// LLM tokens.
    pub llm_tokens: u64,
}

/// Why the LLM is off for a tenant's turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverQuota {
    /// Too many customers today.
    Conversations,
    /// Too many LLM tokens today.
    LlmTokens,
}

impl OverQuota {
    /// Stable code, for the turn record and logs.
    pub fn code(self) -> &'static str {
        match self {
            OverQuota::Conversations => "tenant.over_conversation_quota",
            OverQuota::LlmTokens => "tenant.over_llm_token_quota",
        }
    }
}

impl Quotas {
    /// Whether `usage` is over a quota, and which (conversations first): more customers today
    /// than the quota (the customers within it keep the LLM all day), or the day's tokens used
    /// up.
    pub fn over(&self, usage: Usage) -> Option<OverQuota> {
        if self.conversations_per_day.is_some_and(|q| usage.conversations > q) {
            return Some(OverQuota::Conversations);
        }
        if self.llm_tokens_per_day.is_some_and(|q| usage.llm_tokens >= q) {
            return Some(OverQuota::LlmTokens);
        }
        None
    }

    /// Whether any quota is set (otherwise usage is never read).
    pub fn any(&self) -> bool {
        self.conversations_per_day.is_some() || self.llm_tokens_per_day.is_some()
    }
}

/// One process's view of a tenant's usage today: the last read of the shared counts, plus what
/// this process's turns added since.
#[derive(Debug, Default)]
pub struct Meter {
    inner: Mutex<MeterState>,
}

#[derive(Debug, Default)]
struct MeterState {
    /// `YYYY-MM-DD` (UTC) of the read.
    day: String,
    /// When it was read (Unix ms); 0: never.
    read_at: i64,
    read: Usage,
    since: Usage,
}

impl Meter {
    /// The usage of `day` as this process knows it, or `None` when it should be read again (a
    /// new day, or older than [`USAGE_FRESH`] at `now_ms`).
    pub fn known(&self, day: &str, now_ms: i64) -> Option<Usage> {
        let s = self.inner.lock().ok()?;
        let fresh = now_ms - s.read_at < USAGE_FRESH.as_millis() as i64;
        (s.day == day && s.read_at > 0 && fresh).then(|| Usage {
            conversations: s.read.conversations + s.since.conversations,
            llm_tokens: s.read.llm_tokens + s.since.llm_tokens,
        })
    }

    /// Records a fresh read of `day`'s shared counts.
    pub fn store_read(&self, day: &str, now_ms: i64, read: Usage) {
        if let Ok(mut s) = self.inner.lock() {
            *s = MeterState { day: day.to_string(), read_at: now_ms, read, since: Usage::default() };
        }
    }

    /// Adds what one of this process's turns used on `day`.
    pub fn add(&self, day: &str, used: Usage) {
        if let Ok(mut s) = self.inner.lock() {
            if s.day == day {
                s.since.conversations += used.conversations;
                s.since.llm_tokens += used.llm_tokens;
            }
        }
    }
}

/// The day (`YYYY-MM-DD`) of `now_ms` (Unix ms) in `zone`, as the dashboard's counts name it.
pub fn day_of(zone: &jiff::tz::TimeZone, now_ms: i64) -> String {
    jiff::Timestamp::from_millisecond(now_ms)
        .map(|t| t.to_zoned(zone.clone()).date().to_string())
        .unwrap_or_else(|_| "1970-01-01".into())
}

/// What a turn's dashboard counts add to the usage: customers served (`new_customers`,
/// `returning_customers`) and `llm_tokens`.
pub fn usage_of(counts: &[crate::stats::Count]) -> Usage {
    let mut u = Usage::default();
    for c in counts {
        let n = u64::try_from(c.n).unwrap_or(0);
        match c.metric.as_str() {
            "new_customers" | "returning_customers" => u.conversations += n,
            "llm_tokens" => u.llm_tokens += n,
            _ => {}
        }
    }
    u
}

/// The usage in a day's summed counts `(day, flow, metric, n)`.
pub fn usage_in(rows: &[(String, String, String, i64)]) -> Usage {
    let counts: Vec<crate::stats::Count> = rows
        .iter()
        .map(|(day, flow, metric, n)| crate::stats::Count {
            day: day.clone(),
            flow: flow.clone(),
            metric: metric.clone(),
            n: *n,
        })
        .collect();
    usage_of(&counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_a_quota_means_more_customers_or_tokens_used_up_and_no_quota_never_is() {
        let q = Quotas { conversations_per_day: Some(2), llm_tokens_per_day: Some(100) };
        assert_eq!(q.over(Usage { conversations: 2, llm_tokens: 99 }), None, "the quota's own customers");
        assert_eq!(q.over(Usage { conversations: 3, llm_tokens: 0 }), Some(OverQuota::Conversations));
        assert_eq!(q.over(Usage { conversations: 0, llm_tokens: 100 }), Some(OverQuota::LlmTokens));
        assert_eq!(Quotas::default().over(Usage { conversations: u64::MAX, llm_tokens: u64::MAX }), None);
    }

    #[test]
    fn a_meter_adds_its_turns_to_the_last_read_until_it_goes_stale_or_the_day_ends() {
        let m = Meter::default();
        assert_eq!(m.known("2026-12-04", 1_000), None, "never read");
        m.store_read("2026-12-04", 1_000, Usage { conversations: 5, llm_tokens: 500 });
        m.add("2026-12-04", Usage { conversations: 1, llm_tokens: 20 });
        assert_eq!(m.known("2026-12-04", 2_000), Some(Usage { conversations: 6, llm_tokens: 520 }));
        assert_eq!(m.known("2026-12-04", 1_000 + 30_000), None, "stale");
        assert_eq!(m.known("2026-12-05", 2_000), None, "a new day");
    }
}
