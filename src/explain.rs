//! `explain`: a conversation's turns as a readable timeline, pointing at the flow file, step and
//! line of each decision and at the subsystem of each failure. The same data is served as JSON by
//! the admin API (`GET /admin/conversations/{id}/explain`).

use serde::Serialize;
use serde_json::Value;

use crate::store::{Store, StoreError};

/// A failure found in a turn or in one of its effects.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// `channel`, `flow`, `engine`, `guard`, `llm`, `erp`, `store`, `outbox`.
    pub subsystem: String,
    /// The stable code.
    pub code: String,
    /// Details.
    pub detail: String,
    /// The flow line of the step concerned, `file:line:col`.
    pub at: Option<String>,
}

/// An effect of a turn and what became of it.
#[derive(Debug, Clone, Serialize)]
pub struct Effect {
    /// `whatsapp` or `erp`.
    pub kind: String,
    /// Outbox id.
    pub outbox_id: i64,
    /// `pending`, `sent`, `dead`.
    pub status: String,
    /// Attempts made.
    pub attempts: i32,
    /// The wamid or ERP reference.
    pub result: Option<String>,
    /// The last failure.
    pub last_error: Option<String>,
}

/// One turn of the timeline.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// Turn number.
    pub seq: i64,
    /// Unix ms.
    pub at: i64,
    /// What arrived, in words.
    pub event: String,
    /// `flow/step` before and after.
    pub step_before: String,
    /// See `step_before`.
    pub step_after: String,
    /// `ok` or an error code.
    pub outcome: String,
    /// Guard runs: `name outcome (ms) [filled]`.
    pub guards: Vec<String>,
    /// Decisions with their flow lines.
    pub decisions: Vec<(String, String, Option<String>)>,
    /// Replies' texts.
    pub replies: Vec<String>,
    /// Effects.
    pub effects: Vec<Effect>,
    /// Failures in this turn, attributed.
    pub failures: Vec<Failure>,
}

/// A conversation's timeline.
#[derive(Debug, Clone, Serialize)]
pub struct Timeline {
    /// Conversation id.
    pub conversation_id: String,
    /// Customer.
    pub customer: String,
    /// Current `flow/step`, hand-off, slots, and the journeys put aside (`flow/step` each).
    pub state: Value,
    /// Turns.
    pub entries: Vec<Entry>,
}

fn subsystem(code: &str) -> String {
    code.split('.').next().unwrap_or("unknown").to_string()
}

fn describe(event: &Value) -> String {
    let kind = &event["kind"];
    match kind["type"].as_str().unwrap_or("?") {
        "text" => format!("text {:?}", kind["body"].as_str().unwrap_or_default()),
        "choice" => format!("pressed {:?}", kind["title"].as_str().unwrap_or_default()),
        "location" => format!("location {}, {}", kind["latitude"], kind["longitude"]),
        "erp_outcome" => match kind["reference"].as_str() {
            Some(r) => format!("ERP answered {} with {r}", kind["action"].as_str().unwrap_or_default()),
            None => format!(
                "ERP failed {}: {}",
                kind["action"].as_str().unwrap_or_default(),
                kind["error"].as_str().unwrap_or_default()
            ),
        },
        other => other.replace('_', " "),
    }
}

/// Finds the conversations of `key` (a conversation id, or a customer's number with or without
/// `+`) and builds their timelines.
pub async fn build(store: &Store, key: &str) -> Result<Vec<Timeline>, StoreError> {
    let key = key.trim();
    let mut convs = match store.conversation(key).await? {
        Some(c) => vec![c],
        None => vec![],
    };
    if convs.is_empty() {
        convs = store.conversations_of(key.trim_start_matches('+')).await?;
    }
    let mut out = Vec::new();
    for c in convs {
        let turns = store.turns_of(&c.id).await?;
        let outbox = store.outbox_of(&c.id, None, 0).await?;
        let state: Value = serde_json::from_str(&c.state).unwrap_or(Value::Null);
        let mut entries = Vec::new();
        for t in turns {
            let record: Value = serde_json::from_str(&t.record).unwrap_or(Value::Null);
            let message_id = record["message_id"].as_str().unwrap_or_default().to_string();
            let trace = record["trace"].as_array().cloned().unwrap_or_default();
            let step_at = trace.iter().find_map(|d| {
                let s = &d["source"];
                s["file"].as_str().map(|f| format!("{f}:{}:{}", s["line"], s["column"]))
            });
            let mut failures = Vec::new();
            if t.outcome != "ok" {
                let detail =
                    trace.iter().find(|d| d["what"] == "error").and_then(|d| d["detail"].as_str()).unwrap_or_default();
                failures.push(Failure {
                    subsystem: subsystem(&t.outcome),
                    code: t.outcome.clone(),
                    detail: detail.into(),
                    at: step_at.clone(),
                });
            }
            let mut guards = Vec::new();
            for run in record["guards"]["runs"].as_array().into_iter().flatten() {
                let outcome = run["outcome"].as_str().unwrap_or_default();
                let filled: Vec<&str> =
                    run["filled"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                guards.push(format!(
                    "{} {} ({} ms){}",
                    run["guard"].as_str().unwrap_or_default(),
                    outcome,
                    run["latency_ms"],
                    if filled.is_empty() { String::new() } else { format!(" filled {}", filled.join(", ")) }
                ));
                if outcome != "ok" && outcome != "guard.unsettled" {
                    let detail = run["detail"]["rejected"]
                        .as_array()
                        .and_then(|r| r.first())
                        .and_then(|r| r["why"].as_str())
                        .map(String::from)
                        .unwrap_or_else(|| run["detail"].to_string());
                    failures.push(Failure {
                        subsystem: subsystem(outcome),
                        code: outcome.into(),
                        detail,
                        at: step_at.clone(),
                    });
                }
            }
            let erp_keys: Vec<String> = record["erp"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e["action"]["idempotency_key"].as_str().map(String::from))
                .collect();
            let effects: Vec<Effect> = outbox
                .iter()
                .filter(|o| {
                    (!message_id.is_empty() && o.idempotency_key.starts_with(&format!("{message_id}:")))
                        || erp_keys.contains(&o.idempotency_key)
                })
                .map(|o| Effect {
                    kind: o.kind.clone(),
                    outbox_id: o.id,
                    status: o.status.clone(),
                    attempts: o.attempts,
                    result: o.result.clone(),
                    last_error: o.last_error.clone(),
                })
                .collect();
            for e in &effects {
                if let Some(err) = &e.last_error {
                    let code = err.split(':').next().unwrap_or("outbox.failed").to_string();
                    let detail = if e.status == "dead" {
                        format!("dead after {} attempts: {err}", e.attempts)
                    } else {
                        format!("retried ({} attempts): {err}", e.attempts)
                    };
                    failures.push(Failure { subsystem: subsystem(&code), code, detail, at: step_at.clone() });
                }
            }
            entries.push(Entry {
                seq: t.seq,
                at: t.created_at,
                event: describe(&record["event"]),
                step_before: t.step_before.clone(),
                step_after: t.step_after.clone(),
                outcome: t.outcome.clone(),
                guards,
                decisions: trace
                    .iter()
                    .map(|d| {
                        let s = &d["source"];
                        (
                            d["what"].as_str().unwrap_or_default().to_string(),
                            d["detail"].as_str().unwrap_or_default().to_string(),
                            s["file"].as_str().map(|f| format!("{f}:{}:{}", s["line"], s["column"])),
                        )
                    })
                    .collect(),
                replies: record["replies"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|r| r["body"].as_str().map(String::from))
                    .collect(),
                effects,
                failures,
            });
        }
        let journey = &state["journey"];
        let slots: serde_json::Map<String, Value> = journey["slots"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v["value"].clone())).collect())
            .unwrap_or_default();
        out.push(Timeline {
            conversation_id: c.id.clone(),
            customer: c.customer.clone(),
            state: serde_json::json!({
                "step": journey["flow"].as_str().map(|f| format!("{f}/{}", journey["step"].as_str().unwrap_or_default())),
                "handoff": serde_json::from_value::<crate::engine::ConversationState>(state.clone()).ok().and_then(|s| s.handoff()),
                "stage": state["stage"],
                "mood": state["mood"],
                "slots": slots,
                "profile": state["profile"].as_object().map(|m| m.keys().cloned().collect::<Vec<_>>()),
                "put_aside": state["suspended"].as_array().map(|js| js.iter().map(|j| format!("{}/{}", j["flow"].as_str().unwrap_or_default(), j["step"].as_str().unwrap_or_default())).collect::<Vec<_>>()).unwrap_or_default(),
            }),
            entries,
        });
    }
    Ok(out)
}

/// The timeline as text for a terminal.
pub fn render(t: &Timeline) -> String {
    let mut out = format!("conversation {} (customer +{})\nnow: {}\n", t.conversation_id, t.customer, t.state);
    for e in &t.entries {
        let when =
            jiff::Timestamp::from_millisecond(e.at).map(|ts| ts.strftime("%H:%M:%S").to_string()).unwrap_or_default();
        out.push_str(&format!(
            "\n#{:<3} {when}  {}  [{} → {}]  {}\n",
            e.seq, e.event, e.step_before, e.step_after, e.outcome
        ));
        for g in &e.guards {
            out.push_str(&format!("      guard  {g}\n"));
        }
        for (what, detail, at) in &e.decisions {
            out.push_str(&format!(
                "      {what:<12} {detail}{}\n",
                at.as_ref().map(|a| format!("  ({a})")).unwrap_or_default()
            ));
        }
        for r in &e.replies {
            let first = r.lines().next().unwrap_or_default();
            out.push_str(&format!("      reply  {first:?}\n"));
        }
        for fx in &e.effects {
            out.push_str(&format!(
                "      outbox #{} {} {} after {} attempt(s){}\n",
                fx.outbox_id,
                fx.kind,
                fx.status,
                fx.attempts,
                fx.result.as_ref().map(|r| format!(" → {r}")).unwrap_or_default()
            ));
        }
        for f in &e.failures {
            out.push_str(&format!(
                "   !! FAILURE in {}: {} — {}{}\n",
                f.subsystem,
                f.code,
                f.detail,
                f.at.as_ref().map(|a| format!(" (step at {a})")).unwrap_or_default()
            ));
        }
    }
    out
}
