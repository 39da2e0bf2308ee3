//! Replaying stored turns: each turn's record holds the state before it, the event, the guard
//! results and the hash of the lookups they used, so the transition function can be run again
//! and its decision compared with what was stored (the replies, the ERP writes, the events for
//! other conversations, the step reached, the trace, and the state the next turn started from).
//! A difference means the engine is not the pure function it must be, or the flows changed since.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::engine::{self, ConversationState};
use crate::flow::FlowSet;
use crate::flow::graph::ChoiceOption;
use crate::record::TurnRecord;
use crate::store::{Store, StoreError, TurnRow};

/// What replaying one turn found.
#[derive(Debug, Clone, Serialize)]
pub struct Replayed {
    /// The conversation.
    pub conversation_id: String,
    /// The turn number.
    pub seq: i64,
    /// Why it could not be replayed, when it could not (a record from before states were kept,
    /// a turn that failed before deciding).
    pub skipped: Option<String>,
    /// The differences found (empty: the same decision).
    pub differences: Vec<String>,
}

/// Why replaying could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Nothing matches the key.
    #[error("replay.not_found: no conversation or turn for {0:?}")]
    NotFound(String),
}

/// Replays `tenant`'s turns named by `key`: a conversation id, a customer's number, or
/// `<conversation id>#<turn>` for one turn; `flows` are the tenant's.
///
/// Errors: [`ReplayError`] when the store cannot be read or nothing matches.
pub async fn replay(
    store: &Store,
    tenant: &crate::tenant::TenantId,
    flows: &FlowSet,
    key: &str,
) -> Result<Vec<Replayed>, ReplayError> {
    let (conversation, only) = match key.rsplit_once('#') {
        Some((c, n)) if n.parse::<i64>().is_ok() => (c, n.parse::<i64>().ok()),
        _ => (key, None),
    };
    let mut convs = match store.conversation(tenant, conversation).await? {
        Some(c) => vec![c],
        None => store.conversations_of(tenant, conversation.trim_start_matches('+')).await?,
    };
    if convs.is_empty() {
        return Err(ReplayError::NotFound(key.to_string()));
    }
    let mut flows = flows.clone();
    let mut out = Vec::new();
    for c in convs.drain(..) {
        let turns = store.turns_of(tenant, &c.id).await?;
        let final_state: Option<ConversationState> = serde_json::from_str(&c.state).ok();
        for (i, t) in turns.iter().enumerate() {
            if only.is_some_and(|n| n != t.seq) {
                continue;
            }
            // The state this turn left: the next turn's starting state, or the stored one.
            let after = match turns.get(i + 1) {
                Some(next) => TurnRecord::parse(&next.record).ok().and_then(|r| r.state_before),
                None => final_state.clone(),
            };
            out.push(replay_turn(store, tenant, &mut flows, &c.id, t, after).await?);
        }
    }
    Ok(out)
}

async fn replay_turn(
    store: &Store,
    tenant: &crate::tenant::TenantId,
    flows: &mut FlowSet,
    conversation_id: &str,
    t: &TurnRow,
    after: Option<ConversationState>,
) -> Result<Replayed, ReplayError> {
    let mut result =
        Replayed { conversation_id: conversation_id.to_string(), seq: t.seq, skipped: None, differences: vec![] };
    let record = match TurnRecord::parse(&t.record) {
        Ok(r) => r,
        Err(e) => {
            result.skipped = Some(e.to_string());
            return Ok(result);
        }
    };
    if let Some(at) = record.erased_at {
        result.skipped = Some(format!("the customer's words were erased from it (at {at} ms)"));
        return Ok(result);
    }
    let Some(before) = record.state_before.clone() else {
        result.skipped = Some("the record was written before states were kept".into());
        return Ok(result);
    };
    if record.outcome != "ok" && !record.outcome.starts_with("engine.") {
        result.skipped = Some(format!("the turn failed before deciding ({})", record.outcome));
        return Ok(result);
    }
    // The flows the turn's journeys ran on, read back by hash when the files changed since.
    for hash in flows.missing_hashes(&before) {
        if let Some(body) = store.flow_version(tenant, &hash).await? {
            if let Ok(flow) = serde_json::from_str(&body) {
                flows.adopt(flow);
            }
        }
    }
    let mut guards = record.guards.clone();
    if let Some(hash) = &record.lookup_snapshot {
        let body = store.lookup_snapshot(tenant, hash).await?;
        guards.lookups =
            body.and_then(|b| serde_json::from_str::<BTreeMap<String, Vec<ChoiceOption>>>(&b).ok()).unwrap_or_default();
    }
    let flows_now: &FlowSet = flows;
    let decided = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        engine::decide(flows_now, &before, &record.event, &guards)
    }));
    let mut d = Vec::new();
    match decided {
        Err(_) => d.push("the transition function panicked".to_string()),
        Ok(Err(e)) if record.outcome == e.code() => {}
        Ok(Err(e)) => d.push(format!("decided {} now, {} then", e.code(), record.outcome)),
        Ok(Ok(_)) if record.outcome != "ok" => d.push(format!("decided now, {} then", record.outcome)),
        Ok(Ok(now)) => {
            compare(&mut d, "replies", &now.replies, &record.replies);
            compare(&mut d, "erp", &now.erp, &record.erp);
            compare(&mut d, "forwards", &now.forwards, &record.forwards);
            compare(&mut d, "step_after", &now.step_after, &record.step_after);
            let trace_now: Vec<(&str, &str)> = now.trace.iter().map(|e| (e.what.as_str(), e.detail.as_str())).collect();
            let trace_then: Vec<(&str, &str)> =
                record.trace.iter().map(|e| (e.what.as_str(), e.detail.as_str())).collect();
            compare(&mut d, "trace", &trace_now, &trace_then);
            if let Some(after) = &after {
                compare(&mut d, "state", &now.state, after);
            }
        }
    }
    result.differences = d;
    Ok(result)
}

fn compare<T: Serialize>(out: &mut Vec<String>, what: &str, now: &T, then: &T) {
    let (now, then) =
        (serde_json::to_value(now).unwrap_or(Value::Null), serde_json::to_value(then).unwrap_or(Value::Null));
    if now != then {
        out.push(format!("{what} differs:\n    then: {then}\n    now:  {now}"));
    }
}

/// The turns of every conversation of `tenant` in the store, replayed (for tests and audits).
///
/// Errors: [`ReplayError::Store`].
pub async fn replay_all(
    store: &Store,
    tenant: &crate::tenant::TenantId,
    flows: &FlowSet,
) -> Result<Vec<Replayed>, ReplayError> {
    let mut out = Vec::new();
    for c in store.recent_conversations(tenant, i64::MAX).await? {
        out.extend(replay(store, tenant, flows, &c.id).await?);
    }
    Ok(out)
}

/// The replay results as text: one line per turn, the differences indented.
pub fn render(results: &[Replayed]) -> String {
    let mut out = String::new();
    for r in results {
        match (&r.skipped, r.differences.is_empty()) {
            (Some(why), _) => out.push_str(&format!("skip {}#{}  {why}\n", r.conversation_id, r.seq)),
            (None, true) => out.push_str(&format!("same {}#{}\n", r.conversation_id, r.seq)),
            (None, false) => {
                out.push_str(&format!("DIFF {}#{}\n", r.conversation_id, r.seq));
                for d in &r.differences {
                    out.push_str(&format!("  {d}\n"));
                }
            }
        }
    }
    let diff = results.iter().filter(|r| !r.differences.is_empty()).count();
    let same = results.iter().filter(|r| r.skipped.is_none() && r.differences.is_empty()).count();
    out.push_str(&format!(
        "{same} turn(s) replayed the same, {diff} differ, {} skipped\n",
        results.len() - same - diff
    ));
    out
}
