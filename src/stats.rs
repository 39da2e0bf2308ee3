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
//! | `started` | starts a journey of the flow |
//! | `ended` | ends a journey of the flow at an `end` step |
//! | `confirmed` | gets the ERP's acceptance of the flow's write |
//! | `handed_off` | hands the conversation to a person (in the flow of the journey under way, `""` outside one) |
//! | `stuck` | climbs the stuck ladder |
//! | `upset` | acknowledges an upset customer (flow `""`) |
//! | `step:<id>` | enters step `<id>` of the flow (its funnel) |
//! | `llm_calls`, `llm_failures` | runs the LLM guard, and it fails (flow `""`) |
//! | `rating:<n>` | stores a visit's rating `n` (flow `""`) |

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
    let mut add = |flow: &str, metric: String| *by.entry((flow.to_string(), metric)).or_default() += 1;
    add("", "turns".into());
    if record.outcome != "ok" {
        add("", "failed_turns".into());
    }
    if record.state_before.as_ref().is_some_and(|s| s.turns == 0) {
        add("", "conversations".into());
    }
    // The flow a `journey <flow> …` detail names.
    let named =
        |detail: &str| detail.strip_prefix("journey ").and_then(|r| r.split_whitespace().next()).map(String::from);
    let mut current = journey_flow;
    for e in &record.trace {
        match e.what.as_str() {
            "start" => {
                if let Some(flow) = named(&e.detail) {
                    add(&flow, "started".into());
                    current = flow;
                }
            }
            "end" => {
                if let Some(flow) = named(&e.detail) {
                    add(&flow, "ended".into());
                }
            }
            "erp_outcome" if e.detail.starts_with("ERP accepted") => add(&current, "confirmed".into()),
            // The bot handing over (an agent taking a conversation over is noted too, in other words).
            "handoff" if e.detail.starts_with("handed to a person") => add(&current, "handed_off".into()),
            "stuck" => add(&current, "stuck".into()),
            "upset" => add("", "upset".into()),
            "rating" => {
                if let Some(n) = e.detail.split(" rated ").nth(1).and_then(|r| r.split_whitespace().next()) {
                    add("", format!("rating:{n}"));
                }
            }
            _ => {}
        }
        // A transition enters its target step (a part of the summary asked again is not a
        // step further down the funnel).
        if let Some((from, to)) = &e.edge {
            if from != "(change)" {
                add(&current, format!("step:{to}"));
            }
        }
    }
    for run in record.guards.runs.iter().filter(|r| r.guard == "llm") {
        add("", "llm_calls".into());
        if run.outcome != "ok" {
            add("", "llm_failures".into());
        }
    }
    by.into_iter().map(|((flow, metric), n)| Count { day: day.clone(), flow, metric, n }).collect()
}
