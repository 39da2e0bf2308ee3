//! `explain`: a conversation's turns as a readable timeline, pointing at the flow file, step and
//! line of each decision and at the subsystem of each failure. The same data is served as JSON by
//! the admin API (`GET /admin/conversations/{id}/explain`).

use serde::Serialize;
use serde_json::Value;

use crate::engine::{ConversationState, EventKind, InboundEvent};
use crate::record::TurnRecord;
use crate::store::{OutboxStatus, Store, StoreError};

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
    /// What was set aside unread (the quarantine), newest first.
    pub set_aside: Vec<crate::store::QuarantineRow>,
}

fn subsystem(code: &str) -> String {
    code.split('.').next().unwrap_or("unknown").to_string()
}

/// A turn's event in words: `text "…"`, `pressed "…"`, `location …`, what the ERP answered.
pub fn describe(event: &InboundEvent) -> String {
    match &event.kind {
        EventKind::Text { body } => format!("text {body:?}"),
        EventKind::Choice { title, .. } => format!("pressed {title:?}"),
        EventKind::Location { latitude, longitude, .. } => format!("location {latitude}, {longitude}"),
        EventKind::ErpOutcome { action, reference: Some(r), .. } => format!("ERP answered {action} with {r}"),
        EventKind::ErpOutcome { action, error, .. } => {
            format!("ERP failed {action}: {}", error.as_deref().unwrap_or_default())
        }
        EventKind::SetAside { what, quarantine_id, .. } => format!("{what} set aside (quarantine #{quarantine_id})"),
        EventKind::TicketReply { ticket, reviewer, .. } => format!("reply to ticket {ticket} approved by {reviewer}"),
        other => other.name().replace('_', " "),
    }
}

fn at(source: &Option<crate::flow::graph::SourceRef>) -> Option<String> {
    source.as_ref().map(|s| s.to_string())
}

/// One turn of the timeline, from its stored record.
fn entry(t: &crate::store::TurnRow, outbox: &[crate::store::OutboxRow]) -> Entry {
    let record = match TurnRecord::parse(&t.record) {
        Ok(r) => r,
        Err(e) => {
            let failure = Failure {
                subsystem: "record".into(),
                code: "record.unreadable".into(),
                detail: e.to_string(),
                at: None,
            };
            return Entry {
                seq: t.seq,
                at: t.created_at,
                event: "(unreadable record)".into(),
                step_before: t.step_before.clone(),
                step_after: t.step_after.clone(),
                outcome: t.outcome.clone(),
                guards: vec![],
                decisions: vec![],
                replies: vec![],
                effects: vec![],
                failures: vec![failure],
            };
        }
    };
    let step_at = record.trace.iter().find_map(|d| at(&d.source));
    let mut failures = Vec::new();
    if let EventKind::SetAside { error, .. } = &record.event.kind {
        // The code of what failed leads the error ("store.corrupt_event: …").
        let code = error.split(':').next().unwrap_or("worker.set_aside").to_string();
        failures.push(Failure { subsystem: subsystem(&code), code, detail: error.clone(), at: None });
    }
    if t.outcome != "ok" {
        let detail = record
            .error
            .clone()
            .or_else(|| record.trace.iter().find(|d| d.what == "error").map(|d| d.detail.clone()))
            .unwrap_or_default();
        failures.push(Failure {
            subsystem: subsystem(&t.outcome),
            code: t.outcome.clone(),
            detail,
            at: step_at.clone(),
        });
    }
    let mut guards = Vec::new();
    for run in &record.guards.runs {
        guards.push(format!(
            "{} {} ({} ms){}",
            run.guard,
            run.outcome,
            run.latency_ms,
            if run.filled.is_empty() { String::new() } else { format!(" filled {}", run.filled.join(", ")) }
        ));
        if run.outcome != "ok" && run.outcome != "guard.unsettled" {
            let detail = run.detail["rejected"]
                .as_array()
                .and_then(|r| r.first())
                .and_then(|r| r["why"].as_str())
                .map(String::from)
                .unwrap_or_else(|| run.detail.to_string());
            failures.push(Failure {
                subsystem: subsystem(&run.outcome),
                code: run.outcome.clone(),
                detail,
                at: step_at.clone(),
            });
        }
    }
    let erp_keys: Vec<&str> = record.erp.iter().map(|e| e.action.idempotency_key.as_str()).collect();
    let forward_keys: Vec<&str> = record.forwards.iter().map(|f| f.event.message_id.as_str()).collect();
    let effects: Vec<Effect> = outbox
        .iter()
        .filter(|o| {
            o.idempotency_key.starts_with(&format!("{}:", record.message_id))
                || erp_keys.contains(&o.idempotency_key.as_str())
                || forward_keys.contains(&o.idempotency_key.as_str())
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
            let detail = if OutboxStatus::parse(&e.status) == Some(OutboxStatus::Dead) {
                format!("dead after {} attempts: {err}", e.attempts)
            } else {
                format!("retried ({} attempts): {err}", e.attempts)
            };
            failures.push(Failure { subsystem: subsystem(&code), code, detail, at: step_at.clone() });
        }
    }
    Entry {
        seq: t.seq,
        at: t.created_at,
        event: describe(&record.event),
        step_before: t.step_before.clone(),
        step_after: t.step_after.clone(),
        outcome: t.outcome.clone(),
        guards,
        decisions: record.trace.iter().map(|d| (d.what.clone(), d.detail.clone(), at(&d.source))).collect(),
        replies: record.replies.iter().map(|r| r.body().to_string()).collect(),
        effects,
        failures,
    }
}

/// Finds `tenant`'s conversations of `key` (a conversation id, or a customer's number with or
/// without `+`) and builds their timelines.
pub async fn build(store: &Store, tenant: &crate::tenant::TenantId, key: &str) -> Result<Vec<Timeline>, StoreError> {
    let key = key.trim();
    let mut convs = match store.conversation(tenant, key).await? {
        Some(c) => vec![c],
        None => vec![],
    };
    if convs.is_empty() {
        convs = store.conversations_of(tenant, key.trim_start_matches('+')).await?;
    }
    let mut out = Vec::new();
    for c in convs {
        let turns = store.turns_of(tenant, &c.id).await?;
        let outbox = store.outbox_of(tenant, &c.id, None, 0).await?;
        let entries = turns.iter().map(|t| entry(t, &outbox)).collect();
        let state: Option<ConversationState> = serde_json::from_str(&c.state).ok();
        let summary = match &state {
            Some(s) => serde_json::json!({
                "step": s.journey.as_ref().map(|j| format!("{}/{}", j.flow, j.step)),
                "phase": s.phase().name(),
                "handoff": s.handoff(),
                "stage": s.stage,
                "mood": s.mood,
                "slots": s.journey.as_ref().map(|j| j.slots.iter().map(|(k, v)| (k.clone(), serde_json::to_value(&v.value).unwrap_or_default())).collect::<std::collections::BTreeMap<_, _>>()),
                "profile": s.profile.keys().collect::<Vec<_>>(),
                "put_aside": s.suspended.iter().map(|j| format!("{}/{}", j.flow, j.step)).collect::<Vec<_>>(),
            }),
            None => serde_json::json!({"error": "record.unreadable: the stored state does not parse"}),
        };
        let set_aside = store.quarantined(tenant, Some(&c.id), 100).await?;
        out.push(Timeline {
            conversation_id: c.id.clone(),
            customer: c.customer.clone(),
            state: summary,
            entries,
            set_aside,
        });
    }
    Ok(out)
}

/// The timeline as text for a terminal.
pub fn render(t: &Timeline) -> String {
    let mut out = format!("conversation {} (customer +{})\nnow: {}\n", t.conversation_id, t.customer, t.state);
    for q in &t.set_aside {
        out.push_str(&format!(
            "   !! SET ASIDE #{} ({}{}): {}\n",
            q.id,
            q.kind,
            q.inbox_id.map(|i| format!(", inbox row {i}")).unwrap_or_default(),
            q.error
        ));
    }
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
