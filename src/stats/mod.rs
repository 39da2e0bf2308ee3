//! What each turn adds to the dashboard's figures, worked out from its record when it is
//! committed, so that the figures are kept up to date by the commits themselves (table
//! `daily_counts`) and never by scanning every turn.
//!
//! A count is named by the day (in the business's time zone), the flow (`""` for the
//! conversation as a whole) and a metric:
//!
//! | metric | counted when a turn… |
//! |---|---|
//! | `turns` | is committed (flow `""`) |
//! | `failed_turns` | failed before or while deciding (flow `""`) |
//! | `conversations` | is the first of its conversation (flow `""`) |
//! | `new_customers` | is a customer's first message ever (flow `""`) |
//! | `returning_customers` | is a known customer's first message of the day (flow `""`) |
//! | `started` | starts a journey of the flow |
//! | `ended` | ends a journey of the flow at an `end` step |
//! | `confirmed` | gets the ERP's acceptance of the flow's write |
//! | `handed_off` | hands the conversation to a person (in the flow of the journey under way, `""` outside one) |
//! | `stuck` | climbs the stuck ladder |
//! | `upset` | acknowledges an upset customer (flow `""`) |
//! | `step:<id>` | enters step `<id>` of the flow (its funnel) |
//! | `llm_calls`, `llm_failures` | runs the LLM guard, and it fails (flow `""`) |
//! | `llm_tokens` | runs the LLM guard: `n` is the tokens its attempts used, as the LLM reported them (flow `""`) |
//! | `time_to_book:<s>` | gets the ERP's acceptance `s` whole seconds after its journey started (a histogram with one-second bins, for an exact median) |
//! | `rating:<n>` | stores a visit's rating `n` (flow `""`) |
//! | `questions`, `answered`, `not_known` | reads a question against the knowledge base, and answers it or not (flow `""`) |
//! | `worded` | sends a knowledge answer the LLM worded and the checks let through (flow `""`) |

pub mod figures;

use std::collections::BTreeMap;

use crate::record::TurnRecord;

/// How many rows one count is spread over (see the `daily_counts` migration).
pub const SHARDS: i32 = 8;

/// The shard of a conversation's counts: the same for all its turns.
pub fn shard_of(conversation_id: &str) -> i32 {
    let sum: u32 = conversation_id.bytes().map(u32::from).sum();
    i32::try_from(sum % SHARDS.unsigned_abs()).unwrap_or(0)
}

/// One count a turn adds.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Count {
    /// `YYYY-MM-DD` in the business's time zone.
    pub day: String,
    /// The flow, or `""`.
    pub flow: String,
    /// The metric (see the module doc).
    pub metric: String,
    /// How many.
    pub n: i64,
}

/// The counts `record` adds, one per (flow, metric), on the day of its event in `zone`.
pub fn counts(record: &TurnRecord, zone: &jiff::tz::TimeZone) -> Vec<Count> {
    let day = jiff::Timestamp::from_second(record.event.timestamp)
        .map(|t| t.to_zoned(zone.clone()).date().to_string())
        .unwrap_or_else(|_| "1970-01-01".into());
    let journey_flow =
        record.journey_flow.as_ref().map(|f| f.id.clone()).or_else(|| record.plan.flow.clone()).unwrap_or_default();
    let mut by: BTreeMap<(String, String), i64> = BTreeMap::new();
    let mut add = |flow: &str, metric: String, n: i64| *by.entry((flow.to_string(), metric)).or_default() += n;
    add("", "turns".into(), 1);
    if record.outcome != "ok" {
        add("", "failed_turns".into(), 1);
    }
    if record.state_before.as_ref().is_some_and(|s| s.turns == 0) {
        add("", "conversations".into(), 1);
    }
    // A customer's first message of the day: a new customer's, or a returning one's.
    if record.event.kind.from_customer() {
        if let Some(before) = &record.state_before {
            let last_day = (before.last_customer_at > 0)
                .then(|| jiff::Timestamp::from_second(before.last_customer_at).ok())
                .flatten()
                .map(|t| t.to_zoned(zone.clone()).date().to_string());
            match last_day {
                None => add("", "new_customers".into(), 1),
                Some(d) if d != day => add("", "returning_customers".into(), 1),
                Some(_) => {}
            }
        }
    }
    // The flow a `journey <flow> …` detail names.
    let named =
        |detail: &str| detail.strip_prefix("journey ").and_then(|r| r.split_whitespace().next()).map(String::from);
    let mut current = journey_flow;
    for e in &record.trace {
        match e.what.as_str() {
            "start" => {
                if let Some(flow) = named(&e.detail) {
                    add(&flow, "started".into(), 1);
                    current = flow;
                }
            }
            "end" => {
                if let Some(flow) = named(&e.detail) {
                    add(&flow, "ended".into(), 1);
                }
            }
            "erp_outcome" if e.detail.starts_with("ERP accepted") => {
                add(&current, "confirmed".into(), 1);
                let started = record.state_before.as_ref().and_then(|s| s.journey.as_ref()).map_or(0, |j| j.started_at);
                if started > 0 {
                    add(&current, format!("time_to_book:{}", (record.event.timestamp - started).max(0)), 1);
                }
            }
            // The bot handing over (an agent taking a conversation over is noted too, in other words).
            "handoff" if e.detail.starts_with("handed to a person") => add(&current, "handed_off".into(), 1),
            "stuck" => add(&current, "stuck".into(), 1),
            "upset" => add("", "upset".into(), 1),
            "rating" => {
                if let Some(n) = e.detail.split(" rated ").nth(1).and_then(|r| r.split_whitespace().next()) {
                    add("", format!("rating:{n}"), 1);
                }
            }
            _ => {}
        }
        // A transition enters its target step (a part of the summary asked again is not a
        // step further down the funnel).
        if let Some((from, to)) = &e.edge {
            if from != "(change)" {
                add(&current, format!("step:{to}"), 1);
            }
        }
    }
    if let Some(k) = &record.guards.knowledge {
        add("", "questions".into(), 1);
        add("", if k.passages.is_empty() { "not_known" } else { "answered" }.into(), 1);
    }
    for run in record.guards.runs.iter().filter(|r| r.guard == "llm") {
        if run.outcome == "ok" && run.detail["output"] == "knowledge_answer" {
            add("", "worded".into(), 1);
        }
        add("", "llm_calls".into(), 1);
        if run.outcome != "ok" {
            add("", "llm_failures".into(), 1);
        }
        let attempts = run.detail["attempts"].as_array().into_iter().flatten();
        let tokens: u64 = attempts.filter_map(|a| a["tokens"].as_u64()).sum();
        if tokens > 0 {
            add("", "llm_tokens".into(), i64::try_from(tokens).unwrap_or(i64::MAX));
        }
    }
    by.into_iter().map(|((flow, metric), n)| Count { day: day.clone(), flow, metric, n }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(last_customer_at: i64, turns: u64, timestamp: i64) -> TurnRecord {
        let state = json_state(last_customer_at, turns);
        let text = serde_json::json!({
            "inbox_id": 1, "message_id": "wamid.1",
            "event": {"message_id": "wamid.1", "customer": "971500000001", "timestamp": timestamp,
                      "kind": {"type": "text", "body": "hi"}},
            "state_before": state, "trace": [], "replies": [], "erp": [],
            "step_before": "-", "step_after": "-", "outcome": "ok",
        });
        TurnRecord::parse(&text.to_string()).expect("a record")
    }

    fn json_state(last_customer_at: i64, turns: u64) -> serde_json::Value {
        let mut s = serde_json::to_value(crate::engine::ConversationState::new("971500000001")).unwrap_or_default();
        s["last_customer_at"] = last_customer_at.into();
        s["turns"] = turns.into();
        s
    }

    fn metrics(r: &TurnRecord) -> Vec<String> {
        counts(r, &jiff::tz::TimeZone::UTC).into_iter().map(|c| c.metric).collect()
    }

    #[test]
    fn a_customer_is_new_once_and_returning_on_a_later_day_only() {
        const DAY: i64 = 86_400;
        let first = metrics(&record(0, 0, 100 * DAY));
        assert!(first.contains(&"new_customers".into()) && first.contains(&"conversations".into()), "{first:?}");
        let same_day = metrics(&record(100 * DAY, 2, 100 * DAY + 60));
        assert!(!same_day.iter().any(|m| m.ends_with("_customers")), "{same_day:?}");
        let next_day = metrics(&record(100 * DAY, 5, 101 * DAY + 60));
        assert!(next_day.contains(&"returning_customers".into()), "{next_day:?}");
        assert!(next_day.contains(&"turns".into()) && !next_day.contains(&"conversations".into()));
    }

    #[test]
    fn a_confirmation_counts_its_time_to_book_and_an_llm_run_its_tokens() {
        let mut r = record(1_000, 4, 1_000_600);
        let mut state = r.state_before.clone().expect("a state");
        let journey = serde_json::json!({"id": "booking-1", "flow": "booking", "version": 1, "step": "summary",
                                          "slots": {}, "started_at": 1_000_000});
        state.journey = Some(serde_json::from_value(journey).expect("a journey"));
        r.state_before = Some(state);
        r.journey_flow = Some(crate::record::FlowRef { id: "booking".into(), version: 1 });
        r.trace.push(
            serde_json::from_value(serde_json::json!({"what": "erp_outcome", "detail": "ERP accepted BK-1"}))
                .expect("an entry"),
        );
        r.guards.runs.push(
            serde_json::from_value(serde_json::json!({"guard": "llm", "outcome": "llm.timeout", "latency_ms": 9,
            "detail": {"attempts": [{"tokens": 120}, {"tokens": null}, {"tokens": 30}]}}))
            .expect("a run"),
        );
        let counts = counts(&r, &jiff::tz::TimeZone::UTC);
        let n = |flow: &str, metric: &str| counts.iter().find(|c| c.flow == flow && c.metric == metric).map(|c| c.n);
        assert_eq!(n("booking", "confirmed"), Some(1), "{counts:?}");
        assert_eq!(n("booking", "time_to_book:600"), Some(1), "ten minutes from start to the ERP's acceptance");
        assert_eq!((n("", "llm_calls"), n("", "llm_failures"), n("", "llm_tokens")), (Some(1), Some(1), Some(150)));
    }
}
