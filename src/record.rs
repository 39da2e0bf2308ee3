//! The turn record: everything one turn read and decided, stored with the turn (`turns.record`)
//! and read back, typed, by `explain`, `replay`, the admin API and the inspector. With the state
//! before the turn, the event, the guard results and the lookup snapshot they name, a stored turn
//! can be decided again and compared (`carewell replay`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::engine::{ConversationState, ErpRequest, Forward, GuardPlan, GuardResults, InboundEvent, Reply, TraceEntry};

/// The flow a turn's journey ran on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowRef {
    /// Flow id.
    pub id: String,
    /// Its version.
    pub version: u32,
}

/// How long the turn's stages took.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// The guards (lookups, parsers, LLM), in ms.
    pub guards_ms: u64,
    /// The transition function alone, in µs.
    pub decide_us: u64,
    /// The whole turn before its commit, in ms.
    pub total_ms: u64,
}

/// One stored turn.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TurnRecord {
    /// The inbox row it processed.
    pub inbox_id: i64,
    /// The event's message id.
    pub message_id: String,
    /// The event as it arrived.
    pub event: InboundEvent,
    /// The conversation before the turn (absent in records written before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_before: Option<ConversationState>,
    /// What the guards were asked to work out.
    #[serde(default)]
    pub plan: GuardPlan,
    /// What they found; the lookups are stored apart (see `lookup_snapshot`).
    #[serde(default)]
    pub guards: GuardResults,
    /// The SHA-256 of the lookup results the guards used, stored once in `lookup_snapshots`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookup_snapshot: Option<String>,
    /// What was decided, with the flow lines that decided it.
    #[serde(default)]
    pub trace: Vec<TraceEntry>,
    /// Replies.
    #[serde(default)]
    pub replies: Vec<Reply>,
    /// ERP writes.
    #[serde(default)]
    pub erp: Vec<ErpRequest>,
    /// Events for other conversations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forwards: Vec<Forward>,
    /// Places the turn held, booked and let go (`engine::capacity`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holds: Vec<crate::engine::capacity::HoldChange>,
    /// `flow/step` before, or `-`.
    #[serde(default)]
    pub step_before: String,
    /// `flow/step` after, or `-`.
    #[serde(default)]
    pub step_after: String,
    /// `ok`, or the stable code of the failure.
    pub outcome: String,
    /// What failed, when something did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The version of every loaded flow.
    #[serde(default)]
    pub flow_versions: BTreeMap<String, u32>,
    /// The flow the turn's journey ran on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journey_flow: Option<FlowRef>,
    /// Unix ms at which the customer's words were erased from this record (see
    /// [`crate::erasure`]): it still says what was decided, and replay skips it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erased_at: Option<i64>,
    /// Stage timings.
    #[serde(default)]
    pub timings: Timings,
}

/// Why a stored record could not be read.
#[derive(Debug, thiserror::Error)]
#[error("record.unreadable: the turn record does not parse ({0}); it was written by a build this one cannot read")]
pub struct RecordError(String);

impl TurnRecord {
    /// Reads a stored record, also in the shape written before records were typed (the lookup
    /// snapshot under `guards.lookups.snapshot`, no state before).
    ///
    /// Errors: [`RecordError`] when it is not a turn record at all.
    pub fn parse(text: &str) -> Result<TurnRecord, RecordError> {
        let mut v: Value = serde_json::from_str(text).map_err(|e| RecordError(e.to_string()))?;
        if let Some(hash) = v.pointer("/guards/lookups/snapshot").and_then(Value::as_str).map(String::from) {
            v["lookup_snapshot"] = Value::String(hash);
            v["guards"]["lookups"] = Value::Object(Default::default());
        }
        serde_json::from_value(v).map_err(|e| RecordError(e.to_string()))
    }

    /// As stored.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_of_the_older_shape_is_read() {
        let old = r#"{"inbox_id":3,"message_id":"wamid.1","event":{"message_id":"wamid.1","customer":"9715","timestamp":1,"kind":{"type":"text","body":"hi"}},
          "plan":{"flow":null,"text":null,"focus":[],"others":[],"question":null,"lookups":[]},
          "guards":{"lookups":{"snapshot":"abc"},"runs":[]},"trace":[{"what":"menu","detail":"main menu","source":null}],
          "replies":[],"erp":[],"step_before":"-","step_after":"-","outcome":"ok","flow_versions":{"booking":1},
          "journey_flow":null,"timings":{"guards_ms":1,"decide_us":2,"total_ms":3}}"#;
        let r = TurnRecord::parse(old).unwrap();
        assert_eq!(r.lookup_snapshot.as_deref(), Some("abc"));
        assert!(r.guards.lookups.is_empty());
        assert_eq!(r.trace[0].what, "menu");
        assert!(TurnRecord::parse("[]").is_err());
    }
}
