//! One turn: plan → guards (the speech-to-text guard first for a voice note) → decide (pure) →
//! the turn record → one commit of the state, the record and the outbox rows.

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use tracing::{Instrument, error, warn};

use crate::channel::whatsapp::render::render;
use crate::engine::{self, ConversationState, InboundEvent};
use crate::pipeline::App;
use crate::pipeline::Tenant;
use crate::pipeline::queue::{self, ErpWrite, Forward, Payload, Send, WebReply};
use crate::record::{FlowRef, Timings, TurnRecord};
use crate::store::{ConversationRow, InboxRow, Lane, NewTurn, StoreError, TurnCommit, now_ms};

/// What a committed turn leaves: the new state's JSON, the conversation's next pending row, and
/// whether the lease was given back (no row left).
pub type Processed = (String, Option<InboxRow>, bool);

/// One turn, in a task of its own so that a panic anywhere in it (the guards, the LLM client, a
/// bug) fails this turn alone: see [`TurnFailure`].
pub async fn process_isolated(
    app: Arc<App>,
    row: InboxRow,
    event: InboundEvent,
    conv: ConversationRow,
    state: ConversationState,
) -> Result<Processed, TurnFailure> {
    let Some(tenant) = app.tenants.of_conversation(&row.conversation_id) else {
        return Err(TurnFailure::NoTenant(row.conversation_id.clone()));
    };
    let span = tracing::Span::current();
    let task = tokio::spawn(async move { process(&app, &tenant, &row, &event, &conv, state).await }.instrument(span));
    match task.await {
        Ok(result) => result.map_err(TurnFailure::Store),
        Err(e) => {
            let what = match e.try_into_panic() {
                Ok(panic) => panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown".into()),
                Err(_) => "the turn's task was cancelled".into(),
            };
            Err(TurnFailure::Panicked(what))
        }
    }
}

/// Why a turn was not committed.
#[derive(Debug, thiserror::Error)]
pub enum TurnFailure {
    /// The store failed (see [`StoreError::is_transient`] for whether it was the database's
    /// fault or the turn's).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The turn panicked (a bug): nothing of it was committed.
    #[error("worker.panicked: the turn panicked ({0}); nothing of it was committed")]
    Panicked(String),
    /// The conversation's number or website belongs to no tenant this process serves (one
    /// removed from `TENANTS_DIR` since its messages arrived).
    #[error("tenant.unknown: conversation {0} belongs to no tenant this process serves; check TENANTS_DIR")]
    NoTenant(String),
}

impl TurnFailure {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            TurnFailure::Store(e) => e.code(),
            TurnFailure::Panicked(_) => "worker.panicked",
            TurnFailure::NoTenant(_) => "tenant.unknown",
        }
    }

    /// Whether trying the turn again later may succeed without anything changing (the database
    /// was unavailable): such a failure is not counted against the message.
    pub fn is_transient(&self) -> bool {
        matches!(self, TurnFailure::Store(e) if e.is_transient())
    }
}

/// One turn, against the conversation as loaded under the lease and its parsed `state`.
async fn process(
    app: &App,
    tenant: &Tenant,
    row: &InboxRow,
    event: &InboundEvent,
    conv: &ConversationRow,
    state: ConversationState,
) -> Result<Processed, StoreError> {
    let started = Instant::now();
    app.metrics.observe("inbox_wait", (now_ms() - row.received_at).max(0) as f64 / 1000.0);
    let flows = app.flows_for(tenant, &state).await;
    let guards_started = Instant::now();
    // A voice note is heard first (when speech to text is configured): the turn then reads what
    // was said like typed text.
    let heard = transcribe(app, tenant, event).await;
    let transcript = heard.as_ref().and_then(|(_, t)| t.clone());
    let plan = engine::plan(&flows, &state, event, transcript.as_deref());
    let now = if event.timestamp > 0 {
        jiff::Timestamp::from_second(event.timestamp).unwrap_or_else(|_| jiff::Timestamp::now())
    } else {
        jiff::Timestamp::from_millisecond(row.received_at).unwrap_or_else(|_| jiff::Timestamp::now())
    };
    // Places other customers hold, when the business counts them and this turn may read times.
    let reads_times = plan.lookups.iter().any(|l| l == "visit_slots") || plan.understand.is_some();
    let holds = match (&flows.business.capacity, reads_times) {
        (Some(_), true) => app.live_holds(&tenant.id).await?,
        _ => None,
    };
    let held = engine::capacity::HeldFor { holds: holds.as_deref(), conversation_id: &row.conversation_id };
    let (tenant_guards, over_quota) = tenant.guards_for_today(app, now_ms()).await;
    let mut guards = tenant_guards.run(&flows, &plan, now, held).await;
    if let Some(over) = over_quota {
        // Recorded, so the turn says why no LLM read it.
        guards.runs.insert(
            0,
            engine::GuardRun {
                guard: "quota".into(),
                outcome: over.code().into(),
                filled: vec![],
                latency_ms: 0,
                detail: json!({"tenant": tenant.id}),
            },
        );
    }
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
    let lane = if used_llm { Lane::Bulk } else { crate::pipeline::lane_of(&event.kind) };
    let bulk_slot = if used_llm { app.bulk_turn_slots.acquire().await.ok() } else { None };
    // Decided again, with the window marked as taken, when the turn's hold is refused because
    // another customer took the window's last place first (at most twice: the second decision
    // cannot hold the same window).
    let mut slot = bulk_slot;
    for _ in 0..3 {
        let decided = Decided { tenant, flows: &flows, plan: &plan, guards: &guards, guards_ms, started, lane };
        match decide_and_commit(app, row, event, conv, &state, decided, slot.take()).await {
            Err(StoreError::HoldRefused(refused)) => {
                warn!(window = %refused.0, "the turn's place was taken meanwhile; deciding it again");
                guards
                    .availability
                    .get_or_insert_with(|| {
                        engine::capacity::Availability::count(&flows.business, &Default::default(), Default::default())
                    })
                    .just_taken
                    .push(refused.0);
            }
            done => return done,
        }
    }
    Err(StoreError::HoldRefused(crate::store::HoldRefused("several windows".into())))
}

/// What the guard phase of a turn produced, for [`decide_and_commit`].
struct Decided<'a> {
    tenant: &'a Tenant,
    flows: &'a crate::flow::FlowSet,
    plan: &'a engine::GuardPlan,
    guards: &'a engine::GuardResults,
    guards_ms: u64,
    started: Instant,
    lane: Lane,
}

/// Decides the turn and commits it (state, record, outbox rows, holds) under the lease.
async fn decide_and_commit(
    app: &App,
    row: &InboxRow,
    event: &InboundEvent,
    conv: &ConversationRow,
    state: &ConversationState,
    decided: Decided<'_>,
    bulk_slot: Option<tokio::sync::SemaphorePermit<'_>>,
) -> Result<Processed, StoreError> {
    let Decided { tenant, flows, plan, guards, guards_ms, started, lane } = decided;
    let (version, phone_number_id) = (conv.version, conv.phone_number_id.clone());
    let state = state.clone();
    let decide_started = Instant::now();
    // The engine is pure and should never panic; if a bug makes it, the turn is recorded as an
    // engine failure with an apology instead of the message being retried forever.
    let decision =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| engine::decide(flows, &state, event, guards)))
            .unwrap_or_else(|panic| {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown".into());
                Err(engine::EngineError::Panicked(what))
            });
    let decide_us = decide_started.elapsed().as_micros() as u64;

    // The configured sender number answers WhatsApp conversations; a web one keeps its site.
    let sender = match crate::channel::web::site_of(&phone_number_id) {
        Some(_) => phone_number_id,
        None => app.settings.phone_number_id.clone().unwrap_or(phone_number_id),
    };
    let flags = decision.as_ref().map(|d| d.flags.clone()).unwrap_or_default();
    let (new_state, replies, erp, trace, step_before, step_after, outcome, forwards, error_text, holds) = match decision
    {
        Ok(d) => (
            d.state,
            d.replies,
            d.erp,
            d.trace,
            d.step_before,
            d.step_after,
            "ok".to_string(),
            d.forwards,
            None,
            d.holds,
        ),
        Err(e) => {
            error!(code = e.code(), error = %e, "the engine refused this turn");
            let apology = engine::Reply::Text { body: flows.business.messages.something_went_wrong.clone() };
            let label = state.journey.as_ref().map(|j| format!("{}/{}", j.flow, j.step)).unwrap_or_else(|| "-".into());
            let mut st = state.clone();
            st.turns += 1;
            let trace = vec![engine::TraceEntry::new("error", e.to_string(), None)];
            let text = Some(e.to_string());
            (st, vec![apology], vec![], trace, label.clone(), label, e.code().to_string(), vec![], text, vec![])
        }
    };
    let now_ms = now_ms();
    let mut outbox = Vec::new();
    let site = crate::channel::web::site_of(&row.phone_number_id);
    for (i, reply) in replies.iter().enumerate() {
        let payload = match site {
            Some(site) => Payload::Web(WebReply {
                site: site.to_string(),
                session: event.customer.clone(),
                body: crate::channel::web::render(reply),
                received_at: Some(row.received_at),
            }),
            None => Payload::Send(Send {
                phone_number_id: sender.clone(),
                to: event.customer.clone(),
                body: render(&event.customer, reply),
                received_at: Some(row.received_at),
            }),
        };
        outbox.push(payload.row(&row.conversation_id, format!("{}:reply:{i}", row.dedup_key), now_ms));
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
        let number = forward.phone_number_id.clone().unwrap_or_else(|| row.phone_number_id.clone());
        let f = Forward {
            conversation_id: queue::conversation_id(&number, &forward.customer),
            phone_number_id: number,
            event: forward.event.clone(),
        };
        outbox.push(Payload::Forward(f).row(&row.conversation_id, forward.event.message_id.clone(), now_ms));
    }
    outbox.extend(crate::pipeline::knowledge::flag_rows(
        &tenant.id,
        &row.conversation_id,
        &row.dedup_key,
        &flags,
        now_ms,
    ));
    outbox.extend(crate::pipeline::team::handoff_rows(
        app,
        tenant,
        &row.conversation_id,
        &row.dedup_key,
        &sender,
        &state,
        &new_state,
        now_ms,
    ));
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
        erased_at: None,
        event: event.clone(),
        state_before: Some(state.clone()),
        plan: plan.clone(),
        guards: stored_guards,
        lookup_snapshot: lookup_hash,
        trace: trace.clone(),
        replies,
        erp,
        forwards,
        holds: holds.clone(),
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
    observe_turn(app, guards, &trace, &outcome, guards_ms, decide_us);
    let seq = new_state.turns as i64;
    tracing::Span::current().record("turn", seq);
    let flow = new_state.journey.as_ref().or(state.journey.as_ref()).map(|j| j.flow.clone()).or(plan.flow.clone());
    let is_customer = event.kind.from_customer();
    // Claimed by this process as they are queued: handed to its dispatcher after the commit.
    let claimed_until = now_ms + app.settings.outbox_claim.as_millis() as i64;
    let outbox: Vec<_> = outbox.into_iter().map(|r| r.claimed_by(&app.instance_id, claimed_until)).collect();
    let queued = outbox.clone();
    let commit_started = started.elapsed().as_secs_f64();
    let state_json = serde_json::to_string(&new_state).unwrap_or_default();
    let counts = crate::stats::counts(&record, &flows.business.time_zone);
    tenant
        .meter
        .add(&crate::tenant::quota::day_of(&flows.business.time_zone, now_ms), crate::tenant::quota::usage_of(&counts));
    let commit = app.store.commit_and_next(TurnCommit {
        tenant: tenant.id.clone(),
        conversation_id: row.conversation_id.clone(),
        owner: app.instance_id.clone(),
        expected_version: version,
        state: state_json.clone(),
        inbox_id: row.id,
        turn: NewTurn {
            tenant: tenant.id.to_string(),
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
        holds: holds.clone(),
        counts,
    });
    // The commit waits in the store's bulk lane without holding a slot.
    drop(bulk_slot);
    let committed = commit.await?;
    // This process's next turns see the places it just took or gave back.
    app.holds.committed(tenant.id.as_str(), &row.conversation_id, &holds);
    let (following, released) = (committed.next, committed.released);
    if let Some(snapshot) = lookup_snapshot {
        app.lookup_snapshots_stored.insert(snapshot.hash, ()).await;
    }
    let total = started.elapsed().as_secs_f64();
    let llm_s: f64 = guards.runs.iter().filter(|r| r.guard == "llm").map(|r| r.latency_ms as f64 / 1000.0).sum();
    app.metrics.observe("commit", (total - commit_started).max(0.0));
    app.metrics.observe("engine", (total - llm_s).max(0.0));
    let handed: Vec<_> = queued
        .iter()
        .zip(&committed.outbox_ids)
        .filter_map(|(new, id)| {
            let (row, claim) = new.stored(*id);
            claim.map(|c| (row, c))
        })
        .collect();
    app.outbox_handoff.send(lane, handed);
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
async fn transcribe(app: &App, tenant: &Tenant, event: &InboundEvent) -> Option<(engine::GuardRun, Option<String>)> {
    let engine::EventKind::Media { media_type, media_id, mime_type, .. } = &event.kind else { return None };
    let (true, Some(speech), Some(graph)) = (media_type == "audio", &app.speech, &tenant.graph) else { return None };
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
