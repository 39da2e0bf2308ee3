//! The conversation worker: takes inbox rows one conversation at a time (a lease row in the
//! database, so this holds across processes), in arrival order, and for each runs the turn:
//! load state → plan guards → run guards → decide (pure) → commit state, turn record and outbox
//! rows in one transaction.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::Semaphore;
use tracing::{Instrument, error, info_span, warn};

use super::App;
use super::queue::{self, ErpWrite, Forward, Payload, Send};
use crate::channel::whatsapp::render::render;
use crate::engine::{self, ConversationState, InboundEvent};
use crate::record::{FlowRef, Timings, TurnRecord};
use crate::store::{ConversationRow, InboxRow, Lane, NewTurn, StoreError, TurnCommit, now_ms};

/// Attempts at one inbox row before it is recorded as failed and skipped (so one poisoned message
/// cannot block a conversation forever).
pub const MAX_TURN_ATTEMPTS: i32 = 5;

/// Runs the worker until the process stops.
pub async fn run(app: Arc<App>) {
    let permits = Arc::new(Semaphore::new(app.settings.worker_concurrency));
    let active: Arc<Mutex<HashSet<String>>> = Arc::default();
    let dirty: Arc<Mutex<HashSet<String>>> = Arc::default();
    let polled: Arc<Mutex<Vec<String>>> = Arc::default();
    tokio::spawn(poll(app.clone(), polled.clone()));
    loop {
        // Conversations this process just stored rows for, interactive ones first (a stable
        // sort keeps arrival order within a lane), then those the poll found.
        let mut ids: Vec<(String, Lane, bool)> =
            app.ready.lock().map(|mut q| q.drain(..).map(|(id, lane)| (id, lane, false)).collect()).unwrap_or_default();
        ids.sort_by_key(|(_, lane, _)| *lane != Lane::Interactive);
        let found = polled.lock().map(|mut p| std::mem::take(&mut *p)).unwrap_or_default();
        ids.extend(found.into_iter().map(|id| (id, Lane::Bulk, true)));
        for (id, lane, from_poll) in ids {
            let fresh = active.lock().map(|mut a| a.insert(id.clone())).unwrap_or(false);
            if !fresh {
                // Being drained now. A row stored here meanwhile is looked for when that drain
                // ends; one the poll found needs nothing (the drain reads rows until none is
                // left, and the next poll sees any stored after).
                if !from_poll && let Ok(mut d) = dirty.lock() {
                    d.insert(id);
                }
                continue;
            }
            let Ok(permit) = permits.clone().acquire_owned().await else { return };
            let (app, active, dirty) = (app.clone(), active.clone(), dirty.clone());
            tokio::spawn(async move {
                let emptied = drain(&app, &id, lane).await;
                if let Ok(mut a) = active.lock() {
                    a.remove(&id);
                }
                drop(permit);
                // A row stored while the drain was finishing is taken at once.
                let again = dirty.lock().map(|mut d| d.remove(&id)).unwrap_or(false);
                if emptied && again {
                    app.wake(&id, Lane::Interactive);
                }
            });
        }
        tokio::select! {
            _ = app.inbox_notify.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
    }
}

/// Every 250 ms, reads the conversations with pending rows (stored by other processes, or left
/// by a crash) for the worker, beside it so that a slow read never holds up the conversations
/// this process just woke.
async fn poll(app: Arc<App>, polled: Arc<Mutex<Vec<String>>>) {
    loop {
        match app.store.pending_conversations(2048).await {
            Ok(ids) if !ids.is_empty() => {
                if let Ok(mut p) = polled.lock() {
                    *p = ids;
                }
                app.inbox_notify.notify_one();
            }
            Ok(_) => {}
            Err(e) => error!(code = e.code(), error = %e, "cannot read the inbox"),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Processes every pending row of one conversation while holding its lease. Returns true when
/// it stopped because no row was left (not because of another process's lease or an error).
/// `lane`: how soon its first row is taken when the database is busy.
async fn drain(app: &App, conversation_id: &str, lane: Lane) -> bool {
    let until = || now_ms() + app.settings.lease.as_millis() as i64;
    tracing::debug!(conversation_id, ?lane, "drain started");
    // Lease, load and read the next row together; a conversation seen for the first time is
    // created first.
    let (mut conv, mut next) = match app.store.lease_load_next(conversation_id, &app.instance_id, until(), lane).await {
        Ok(Some(found)) => found,
        Ok(None) => {
            let Ok(Some(row)) = app.store.next_inbox(conversation_id).await else { return true };
            let Ok(event) = serde_json::from_str::<InboundEvent>(&row.event) else {
                let _ = app.store.inbox_failed(row.id, "store.corrupt_event: the inbox row does not parse").await;
                return false;
            };
            let initial = serde_json::to_string(&ConversationState::new(&event.customer)).unwrap_or_default();
            match app
                .store
                .acquire_lease(
                    conversation_id,
                    &event.customer,
                    &row.phone_number_id,
                    &initial,
                    &app.instance_id,
                    until(),
                )
                .await
            {
                Ok(true) => {}
                Ok(false) => return false,
                Err(e) => {
                    error!(code = e.code(), error = %e, conversation_id, "cannot take the lease");
                    return false;
                }
            }
            match app.store.lease_load_next(conversation_id, &app.instance_id, until(), lane).await {
                Ok(Some(found)) => found,
                _ => return false,
            }
        }
        Err(e) => {
            error!(code = e.code(), error = %e, conversation_id, "cannot take the lease");
            return false;
        }
    };
    tracing::debug!(conversation_id, "lease taken");
    let mut lease_until = until();
    let mut emptied = false;
    let mut released = false;
    loop {
        if lease_until - now_ms() < app.settings.lease.as_millis() as i64 / 2 {
            match app.store.lease_load_next(conversation_id, &app.instance_id, until(), Lane::Interactive).await {
                Ok(Some((c, n))) => {
                    conv = c;
                    next = n;
                    lease_until = until();
                }
                _ => break,
            }
        }
        let Some(row) = next.take() else {
            emptied = true;
            break;
        };
        let event: InboundEvent = match serde_json::from_str(&row.event) {
            Ok(e) => e,
            Err(e) => {
                error!(code = "store.corrupt_event", error = %e, inbox_id = row.id, "an inbox row does not parse; it is skipped");
                let _ = app.store.inbox_failed(row.id, &format!("store.corrupt_event: {e}")).await;
                break;
            }
        };
        let span = info_span!("turn", conversation_id, inbox_id = row.id, message_id = %event.message_id, turn = tracing::field::Empty);
        match process(app, &row, &event, &conv).instrument(span).await {
            Ok((state, following, gave_back)) => {
                conv.version += 1;
                conv.state = state;
                if event.kind.from_customer() {
                    conv.last_inbound_at = Some(row.received_at);
                }
                next = following;
                if gave_back {
                    released = true;
                    emptied = true;
                    break;
                }
            }
            Err(StoreError::LeaseLost(_)) => {
                warn!(code = "store.lease_lost", conversation_id, "another worker took this conversation; leaving it");
                break;
            }
            Err(e) => {
                error!(code = e.code(), error = %e, conversation_id, inbox_id = row.id, "turn failed; will retry");
                let attempts = app.store.inbox_failed(row.id, &e.to_string()).await.unwrap_or(MAX_TURN_ATTEMPTS);
                tokio::time::sleep(Duration::from_millis(200 * attempts as u64)).await;
                if attempts >= MAX_TURN_ATTEMPTS {
                    let _ = record_failed(app, &row, &event, &e.to_string(), e.code()).await;
                }
                break;
            }
        }
    }
    if !released {
        let _ = app.store.release_lease(conversation_id, &app.instance_id).await;
    }
    emptied
}

/// One turn, against the conversation as loaded under the lease. Returns the new state's JSON,
/// the conversation's next pending row, and whether the lease was given back (no row left).
async fn process(
    app: &App,
    row: &InboxRow,
    event: &InboundEvent,
    conv: &ConversationRow,
) -> Result<(String, Option<InboxRow>, bool), StoreError> {
    let started = Instant::now();
    app.metrics.observe("inbox_wait", (now_ms() - row.received_at).max(0) as f64 / 1000.0);
    let state = serde_json::from_str::<ConversationState>(&conv.state).unwrap_or_else(|e| {
        error!(code = "store.corrupt_state", error = %e, "stored state does not parse; starting afresh");
        ConversationState::new(&event.customer)
    });
    let (version, phone_number_id) = (conv.version, conv.phone_number_id.clone());
    let flows = app.flows_for(&state).await;
    let guards_started = Instant::now();
    // A voice note is heard first (when speech to text is configured): the turn then reads what
    // was said like typed text.
    let heard = transcribe(app, event).await;
    let transcript = heard.as_ref().and_then(|(_, t)| t.clone());
    let plan = engine::plan(&flows, &state, event, transcript.as_deref());
    let now = if event.timestamp > 0 {
        jiff::Timestamp::from_second(event.timestamp).unwrap_or_else(|_| jiff::Timestamp::now())
    } else {
        jiff::Timestamp::from_millisecond(row.received_at).unwrap_or_else(|_| jiff::Timestamp::now())
    };
    let mut guards = app.guards.run(&flows, &plan, now).await;
    if let Some((run, text)) = heard {
        guards.runs.insert(0, run);
        guards.transcript = text;
    }
    // Names any ERP write this turn asks for (see `GuardResults::minted_key`); stored with the
    // record, so a replay names it alike.
    guards.minted_key = Some(uuid::Uuid::now_v7().to_string());
    let guards_ms = guards_started.elapsed().as_millis() as u64;
    // The turn commits in its event's lane (`lane_of`): a button or list reply ahead of a
    // burst, typed text with the burst in arrival order (a promotion's thousands of answers are
    // typed; had the deterministic ones gone first, they would have filled the interactive lane).
    // A turn that waited on the LLM is bulk whatever its event: its customer already waited
    // seconds. Such a turn's remaining work (decide, record, commit) starts a few at a time, so
    // the runtime's queue of ready tasks stays short and a button press is not scheduled behind
    // thousands of them.
    let used_llm = guards.runs.iter().any(|r| r.guard == "llm");
    let lane = if used_llm { Lane::Bulk } else { super::lane_of(&event.kind) };
    let bulk_slot = if used_llm { app.bulk_turn_slots.acquire().await.ok() } else { None };
    let decide_started = Instant::now();
    // The engine is pure and should never panic; if a bug makes it, the turn is recorded as an
    // engine failure with an apology instead of the message being retried forever.
    let decision =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| engine::decide(&flows, &state, event, &guards)))
            .unwrap_or_else(|panic| {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown".into());
                Err(engine::EngineError::Panicked(what))
            });
    let decide_us = decide_started.elapsed().as_micros() as u64;

    let sender = app.settings.phone_number_id.clone().unwrap_or(phone_number_id);
    let (new_state, replies, erp, trace, step_before, step_after, outcome, forwards, error_text) = match decision {
        Ok(d) => (d.state, d.replies, d.erp, d.trace, d.step_before, d.step_after, "ok".to_string(), d.forwards, None),
        Err(e) => {
            error!(code = e.code(), error = %e, "the engine refused this turn");
            let apology = engine::Reply::Text { body: flows.business.messages.something_went_wrong.clone() };
            let label = state.journey.as_ref().map(|j| format!("{}/{}", j.flow, j.step)).unwrap_or_else(|| "-".into());
            let mut st = state.clone();
            st.turns += 1;
            let trace = vec![engine::TraceEntry::new("error", e.to_string(), None)];
            let text = Some(e.to_string());
            (st, vec![apology], vec![], trace, label.clone(), label, e.code().to_string(), vec![], text)
        }
    };
    let now_ms = now_ms();
    let mut outbox = Vec::new();
    for (i, reply) in replies.iter().enumerate() {
        let send = Send {
            phone_number_id: sender.clone(),
            to: event.customer.clone(),
            body: render(&event.customer, reply),
            received_at: Some(row.received_at),
        };
        outbox.push(Payload::Send(send).row(&row.conversation_id, format!("{}:reply:{i}", row.dedup_key), now_ms));
    }
    for request in &erp {
        let write = ErpWrite {
            customer: event.customer.clone(),
            phone_number_id: row.phone_number_id.clone(),
            request: request.clone(),
        };
        outbox.push(Payload::Erp(write).row(&row.conversation_id, request.action.idempotency_key.clone(), now_ms));
    }
    for forward in &forwards {
        // Delivered by the outbox into the other conversation's inbox (see `outbox::forward`).
        let f = Forward {
            conversation_id: queue::conversation_id(&row.phone_number_id, &forward.customer),
            phone_number_id: row.phone_number_id.clone(),
            event: forward.event.clone(),
        };
        outbox.push(Payload::Forward(f).row(&row.conversation_id, forward.event.message_id.clone(), now_ms));
    }
    // The lookup results (most of a record's bytes, and the same for many turns) are stored once
    // per content and named by hash.
    let mut stored_guards = guards.clone();
    let mut lookup_snapshot = None;
    let mut lookup_hash = None;
    if !guards.lookups.is_empty() {
        let snapshot = crate::store::LookupSnapshot::of(serde_json::to_string(&guards.lookups).unwrap_or_default());
        stored_guards.lookups.clear();
        lookup_hash = Some(snapshot.hash.clone());
        if app.lookup_snapshots_stored.get(&snapshot.hash).await.is_none() {
            lookup_snapshot = Some(snapshot);
        }
    }
    let record = TurnRecord {
        inbox_id: row.id,
        message_id: event.message_id.clone(),
        event: event.clone(),
        state_before: Some(state.clone()),
        plan: plan.clone(),
        guards: stored_guards,
        lookup_snapshot: lookup_hash,
        trace: trace.clone(),
        replies,
        erp,
        forwards,
        step_before: step_before.clone(),
        step_after: step_after.clone(),
        outcome: outcome.clone(),
        error: error_text,
        flow_versions: flows.flows.values().map(|f| (f.id.clone(), f.version)).collect(),
        // The version this turn's journey ran on (it keeps the one it started with).
        journey_flow: new_state
            .journey
            .as_ref()
            .or(state.journey.as_ref())
            .map(|j| FlowRef { id: j.flow.clone(), version: j.version }),
        timings: Timings { guards_ms, decide_us, total_ms: started.elapsed().as_millis() as u64 },
    };
    observe_turn(app, &guards, &trace, &outcome, guards_ms, decide_us);
    let seq = new_state.turns as i64;
    tracing::Span::current().record("turn", seq);
    let flow = new_state.journey.as_ref().or(state.journey.as_ref()).map(|j| j.flow.clone()).or(plan.flow.clone());
    let is_customer = event.kind.from_customer();
    let has_replies = !outbox.is_empty();
    let commit_started = started.elapsed().as_secs_f64();
    let state_json = serde_json::to_string(&new_state).unwrap_or_default();
    let commit = app.store.commit_and_next(TurnCommit {
        conversation_id: row.conversation_id.clone(),
        owner: app.instance_id.clone(),
        expected_version: version,
        state: state_json.clone(),
        inbox_id: row.id,
        turn: NewTurn {
            conversation_id: row.conversation_id.clone(),
            seq,
            inbox_id: row.id,
            flow,
            step_before,
            step_after,
            outcome,
            record: record.to_json(),
            created_at: now_ms,
        },
        outbox,
        last_inbound_at: is_customer.then_some(row.received_at),
        wake_at: new_state.wake_at.map(|s| s * 1000),
        previous_inbound_at: conv.last_inbound_at,
        lane,
        lookup_snapshot: lookup_snapshot.clone(),
    });
    // The commit waits in the store's bulk lane without holding a slot.
    drop(bulk_slot);
    let (following, released) = commit.await?;
    if let Some(snapshot) = lookup_snapshot {
        app.lookup_snapshots_stored.insert(snapshot.hash, ()).await;
    }
    let total = started.elapsed().as_secs_f64();
    let llm_s: f64 = guards.runs.iter().filter(|r| r.guard == "llm").map(|r| r.latency_ms as f64 / 1000.0).sum();
    app.metrics.observe("commit", (total - commit_started).max(0.0));
    app.metrics.observe("engine", (total - llm_s).max(0.0));
    if has_replies {
        app.outbox_queued(&row.conversation_id, lane);
    }
    tracing::info!(
        turn = seq,
        kind = event.kind.name(),
        lane = ?lane,
        waited_ms = (now_ms - row.received_at).max(0),
        guards_ms,
        commit_ms = ((total - commit_started) * 1000.0) as u64,
        ms = (total * 1000.0) as u64,
        "turn committed"
    );
    Ok((state_json, following, released))
}

/// The speech-to-text guard: a voice note fetched from WhatsApp and transcribed, with its run
/// record. `None` when the event is not audio or speech to text (or the Graph API) is not
/// configured; the transcript is `None` when it failed (the customer is then asked to type).
async fn transcribe(app: &App, event: &InboundEvent) -> Option<(engine::GuardRun, Option<String>)> {
    let engine::EventKind::Media { media_type, media_id, mime_type, .. } = &event.kind else { return None };
    let (true, Some(speech), Some(graph)) = (media_type == "audio", &app.speech, &app.graph) else { return None };
    let started = Instant::now();
    let heard = match graph.download_media(media_id).await {
        Ok((bytes, mime)) => {
            let mime = mime_type.clone().unwrap_or(mime);
            speech.transcribe(bytes, &mime).await.map_err(|e| (e.code().to_string(), e.to_string()))
        }
        Err(e) => Err((e.code().to_string(), e.to_string())),
    };
    let (outcome, text, detail) = match heard {
        Ok(text) => ("ok".to_string(), Some(text.clone()), json!({"model": speech.model(), "text": text})),
        Err((code, error)) => {
            warn!(code = %code, error = %error, "a voice note could not be transcribed; the customer is asked to type");
            (code, None, json!({"model": speech.model(), "error": error}))
        }
    };
    let run = engine::GuardRun {
        guard: "speech_to_text".into(),
        outcome,
        filled: vec![],
        latency_ms: started.elapsed().as_millis() as u64,
        detail,
    };
    Some((run, text))
}

/// Feeds a turn's numbers to the metrics.
fn observe_turn(
    app: &App,
    guards: &engine::GuardResults,
    trace: &[engine::TraceEntry],
    outcome: &str,
    guards_ms: u64,
    decide_us: u64,
) {
    let m = &app.metrics;
    m.turns.with_label_values(&[outcome]).inc();
    if outcome != "ok" {
        m.errors.with_label_values(&[outcome]).inc();
    }
    m.observe("guards", guards_ms as f64 / 1000.0);
    m.observe("decide", decide_us as f64 / 1_000_000.0);
    for run in &guards.runs {
        if run.guard == "llm" {
            m.llm_calls.with_label_values(&[run.outcome.as_str()]).inc();
            m.observe("llm", run.latency_ms as f64 / 1000.0);
            let tokens: u64 =
                run.detail["attempts"].as_array().into_iter().flatten().filter_map(|a| a["tokens"].as_u64()).sum();
            m.llm_tokens.inc_by(tokens);
        }
        if run.outcome != "ok" && run.outcome != "guard.unsettled" {
            m.errors.with_label_values(&[run.outcome.as_str()]).inc();
        }
    }
    for t in trace {
        match t.what.as_str() {
            "stuck" => m.stuck.inc(),
            "handoff" => m.handoffs.inc(),
            _ => {}
        }
    }
}

/// Records a turn that could not be processed after [`MAX_TURN_ATTEMPTS`], and apologises.
async fn record_failed(
    app: &App,
    row: &InboxRow,
    event: &InboundEvent,
    error: &str,
    code: &str,
) -> Result<(), StoreError> {
    let conv = app.store.conversation(&row.conversation_id).await?;
    let (state, version) = match &conv {
        Some(c) => (
            serde_json::from_str::<ConversationState>(&c.state)
                .unwrap_or_else(|_| ConversationState::new(&event.customer)),
            c.version,
        ),
        None => return Ok(()),
    };
    let mut st = state.clone();
    st.turns += 1;
    let now = now_ms();
    let apology = engine::Reply::Text { body: app.flows().business.messages.something_went_wrong.clone() };
    let send = Send {
        phone_number_id: row.phone_number_id.clone(),
        to: event.customer.clone(),
        body: render(&event.customer, &apology),
        received_at: None,
    };
    let record = TurnRecord {
        inbox_id: row.id,
        message_id: event.message_id.clone(),
        event: event.clone(),
        state_before: Some(state.clone()),
        plan: Default::default(),
        guards: Default::default(),
        lookup_snapshot: None,
        trace: vec![engine::TraceEntry::new("error", error.to_string(), None)],
        replies: vec![apology],
        erp: vec![],
        forwards: vec![],
        step_before: "-".into(),
        step_after: "-".into(),
        outcome: code.into(),
        error: Some(error.to_string()),
        flow_versions: Default::default(),
        journey_flow: None,
        timings: Timings::default(),
    };
    app.store
        .commit_turn(TurnCommit {
            conversation_id: row.conversation_id.clone(),
            owner: app.instance_id.clone(),
            expected_version: version,
            state: serde_json::to_string(&st).unwrap_or_default(),
            inbox_id: row.id,
            turn: NewTurn {
                conversation_id: row.conversation_id.clone(),
                seq: st.turns as i64,
                inbox_id: row.id,
                flow: None,
                step_before: "-".into(),
                step_after: "-".into(),
                outcome: code.into(),
                record: record.to_json(),
                created_at: now,
            },
            outbox: vec![Payload::Send(send).row(&row.conversation_id, format!("{}:failed", row.dedup_key), now)],
            last_inbound_at: None,
            wake_at: None,
            previous_inbound_at: conv.as_ref().and_then(|c| c.last_inbound_at),
            lane: Lane::Interactive,
            lookup_snapshot: None,
        })
        .await
}
