//! The outbox dispatcher: sends queued WhatsApp messages and executes queued ERP writes, with
//! exponential backoff and jitter (`backon`) on retryable failures and a dead-letter status after
//! `OUTBOX_MAX_ATTEMPTS`. Messages of one conversation leave in the order they were queued: a
//! row waiting for its retry holds back the later rows of its conversation.
//!
//! An ERP write's answer (reference or final failure) is fed back to its conversation as an inbox
//! event in the same transaction that closes the outbox row, so the confirmation message is
//! decided by the engine like any other turn, and nothing is lost between the two.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use backon::BackoffBuilder;
use tracing::{error, info, warn};

use super::App;
use super::queue::{self, ErpWrite, Payload, Send};
use crate::engine::{ErpRequest, EventKind, InboundEvent};
use crate::erp::ErpError;
use crate::store::{Lane, OutboxKind, OutboxRow, OutboxStatus, now_ms};

/// The delay before attempt `n + 1` (n ≥ 1 failures so far): exponential from `base`, capped at
/// five minutes, with jitter.
pub fn backoff_delay(base: Duration, failures: u32) -> Duration {
    backon::ExponentialBuilder::default()
        .with_min_delay(base)
        .with_max_delay(Duration::from_secs(300))
        .with_factor(2.0)
        .with_jitter()
        .with_max_times(failures as usize + 1)
        .build()
        .nth(failures.saturating_sub(1) as usize)
        .unwrap_or(base)
}

/// Runs the dispatcher until the process stops: the backlog in queue order, and beside it the
/// interactive pass ([`run_interactive`]).
pub async fn run(app: Arc<App>) {
    tokio::spawn(run_interactive(app.clone()));
    loop {
        let started = std::time::Instant::now();
        let did = match app.store.pending_outbox(PASS_ROWS).await {
            Ok(rows) => {
                app.outbox_backlog.pass_started(rows.len());
                let did = dispatch(&app, rows, Lane::Bulk, started).await;
                app.outbox_backlog.pass_ended();
                did
            }
            Err(e) => {
                error!(code = e.code(), error = %e, "cannot read the outbox");
                0
            }
        };
        if did == 0 {
            tokio::select! {
                _ = app.outbox_notify.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    }
}

/// Rows read by one pass of the backlog.
const PASS_ROWS: i64 = 200;

/// How long a backlog pass may run before the replies queued meanwhile take their own pass, ms.
const SLOW_PASS_MS: i64 = 20;

/// What the backlog pass is doing, for deciding where a new interactive reply goes, and the
/// rows this process's passes have sent but not yet marked.
#[derive(Debug, Default)]
pub struct Backlog {
    /// Its current or last pass read a full pass of rows (there is a queue).
    full: AtomicBool,
    /// When its current pass started (Unix ms), 0 while it is idle.
    started_at: AtomicI64,
    /// Rows the Graph API accepted in a pass that has not marked them yet (a pass marks its
    /// rows together at its end): a later row of the same conversation may go at once.
    sent_unmarked: std::sync::Mutex<HashSet<i64>>,
    /// Conversations whose interactive reply found an earlier row still claimed by another pass
    /// of this process: that pass hands them back to the interactive queue once it has sent
    /// their rows.
    wanted: std::sync::Mutex<HashSet<String>>,
}

impl Backlog {
    fn pass_started(&self, rows: usize) {
        self.full.store(rows as i64 >= PASS_ROWS, Ordering::Relaxed);
        self.started_at.store(if rows == 0 { 0 } else { now_ms() }, Ordering::Relaxed);
    }

    fn pass_ended(&self) {
        self.started_at.store(0, Ordering::Relaxed);
    }

    /// Whether a reply queued now would wait for the backlog pass: behind a queue, or for a
    /// pass that is taking long (slow sends). Otherwise the backlog pass takes it at once, with
    /// others in the same statements, which costs the database less than a pass of its own.
    pub fn would_wait(&self) -> bool {
        let started = self.started_at.load(Ordering::Relaxed);
        self.full.load(Ordering::Relaxed) || (started > 0 && now_ms() - started > SLOW_PASS_MS)
    }

    fn sent(&self, id: i64) {
        if let Ok(mut s) = self.sent_unmarked.lock() {
            s.insert(id);
        }
    }

    fn marked(&self, ids: &[(i64, String)]) {
        if let Ok(mut s) = self.sent_unmarked.lock() {
            ids.iter().for_each(|(id, _)| {
                s.remove(id);
            });
        }
    }

    fn is_sent_unmarked(&self, id: i64) -> bool {
        self.sent_unmarked.lock().is_ok_and(|s| s.contains(&id))
    }

    fn want(&self, conversation_id: &str) {
        if let Ok(mut w) = self.wanted.lock() {
            w.insert(conversation_id.to_string());
        }
    }

    /// Whether an interactive reply waits for this conversation's rows (and no longer does).
    fn take_wanted(&self, conversation_id: &str) -> bool {
        self.wanted.lock().is_ok_and(|mut w| w.remove(conversation_id))
    }
}

/// Sends the replies of interactive turns (button and list replies, locations, agents' actions
/// and the ERP's answers) as soon as they are committed, ahead of a backlog in the queue
/// (thousands of replies after a burst), when the backlog pass would make them wait
/// ([`Backlog::would_wait`]). The backlog pass sends
/// everything else: the bulk lane's replies, retries, and rows left by another process or a crash.
/// Its passes overlap (up to eight, each conversation in one at a time) and
/// claim rows exactly as the backlog pass does, so no two passes, nor other processes, send a row
/// twice, and a conversation's rows still leave in order: a row claimed by another pass holds
/// back the conversation's later rows.
pub async fn run_interactive(app: Arc<App>) {
    // Conversations in a pass now: a conversation is in one interactive pass at a time (its
    // later replies wait for the next), and passes of different conversations overlap.
    let in_flight: Arc<std::sync::Mutex<HashSet<String>>> = Arc::default();
    let passes = Arc::new(tokio::sync::Semaphore::new(INTERACTIVE_PASSES));
    loop {
        app.outbox_interactive_notify.notified().await;
        let ids: Vec<String> = {
            let (Ok(mut queued), Ok(mut busy)) = (app.outbox_interactive.lock(), in_flight.lock()) else { continue };
            let (mut free, mut waiting): (Vec<String>, Vec<String>) =
                std::mem::take(&mut *queued).into_iter().partition(|id| !busy.contains(id));
            free.sort_unstable();
            free.dedup();
            if free.len() > PASS_CONVERSATIONS {
                // The rest go in the next passes, which overlap with this one.
                waiting.extend(free.split_off(PASS_CONVERSATIONS));
                app.outbox_interactive_notify.notify_one();
            }
            *queued = waiting;
            busy.extend(free.iter().cloned());
            free
        };
        if ids.is_empty() {
            continue;
        }
        let waiting = std::time::Instant::now();
        let Ok(slot) = passes.clone().acquire_owned().await else { return };
        tracing::debug!(conversations = ids.len(), first = %ids[0], slot_wait_ms = waiting.elapsed().as_millis() as u64, "interactive outbox pass");
        let (app, in_flight) = (app.clone(), in_flight.clone());
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            match app.store.pending_outbox_of(&ids, PASS_ROWS).await {
                Ok(rows) => {
                    dispatch(&app, rows, Lane::Interactive, started).await;
                }
                Err(e) => {
                    // The backlog pass sends them instead.
                    error!(code = e.code(), error = %e, "cannot read the outbox");
                    app.outbox_notify.notify_one();
                }
            }
            drop(slot);
            if let Ok(mut busy) = in_flight.lock() {
                ids.iter().for_each(|id| {
                    busy.remove(id);
                });
            }
            // Replies queued for these conversations meanwhile.
            if app.outbox_interactive.lock().is_ok_and(|q| !q.is_empty()) {
                app.outbox_interactive_notify.notify_one();
            }
        });
    }
}

/// Interactive passes under way at once.
const INTERACTIVE_PASSES: usize = 8;

/// The most conversations in one interactive pass: a pass is as slow as its slowest send, and
/// replies queued behind it take the next, overlapping pass.
const PASS_CONVERSATIONS: usize = 16;

/// ERP writes under way at once (each a few HTTP requests to the ERP).
static ERP_WRITES_IN_FLIGHT: std::sync::LazyLock<tokio::sync::Semaphore> =
    std::sync::LazyLock::new(|| tokio::sync::Semaphore::new(PARALLEL_CONVERSATIONS));

/// Conversations whose rows are sent at the same time.
const PARALLEL_CONVERSATIONS: usize = 32;

/// One pass over the pending rows: claims the due ones (one statement), then sends each
/// conversation's rows in order, conversations in parallel. `lane`: the pass's lane in the
/// store (the backlog's pass is bulk); `started`: when it began reading the rows (for the debug
/// line that times its steps).
async fn dispatch(app: &Arc<App>, rows: Vec<OutboxRow>, lane: Lane, started: std::time::Instant) -> usize {
    let read_ms = started.elapsed().as_millis() as u64;
    let now = now_ms();
    let mut held: HashSet<String> = HashSet::new();
    let mut by_conversation: Vec<(String, Vec<OutboxRow>)> = Vec::new();
    for row in rows {
        if held.contains(&row.conversation_id) {
            continue;
        }
        if app.outbox_backlog.is_sent_unmarked(row.id) {
            // Sent by another pass that marks it at its end: the next rows may go.
            continue;
        }
        if row.next_attempt_at > now {
            // An earlier row of this conversation waits for its retry, or is claimed by
            // another pass: later ones wait too. An interactive reply behind this process's
            // own pass is handed back by that pass once the row is sent.
            if lane == Lane::Interactive {
                app.outbox_backlog.want(&row.conversation_id);
            }
            held.insert(row.conversation_id.clone());
            continue;
        }
        match by_conversation.iter_mut().find(|(c, _)| *c == row.conversation_id) {
            Some((_, rows)) => rows.push(row),
            None => by_conversation.push((row.conversation_id.clone(), vec![row])),
        }
    }
    let ids: Vec<i64> = by_conversation.iter().flat_map(|(_, rows)| rows.iter().map(|r| r.id)).collect();
    // Claim them so another process does not send them too; a claim expires after
    // OUTBOX_CLAIM_MS, so rows claimed by a crashed process are sent by the next one.
    let claimed: HashSet<i64> =
        match app.store.claim_outbox_rows(&ids, now, app.settings.outbox_claim.as_millis() as i64, lane).await {
            Ok(c) => c.into_iter().collect(),
            Err(e) => {
                error!(code = e.code(), error = %e, "cannot claim outbox rows");
                return 0;
            }
        };
    let mut give_back = Vec::new();
    let mut work = Vec::new();
    for (_, rows) in by_conversation {
        // Only the claimed prefix keeps the conversation's order; the rest is given back.
        let mut prefix = Vec::new();
        let mut gap = false;
        for r in rows {
            if claimed.contains(&r.id) && !gap {
                prefix.push(r);
            } else {
                gap = true;
                if claimed.contains(&r.id) {
                    give_back.push(r.id);
                }
            }
        }
        if !prefix.is_empty() {
            work.push(prefix);
        }
    }
    let _ = app.store.unclaim_outbox_rows(&give_back, now).await;
    let claimed_ms = started.elapsed().as_millis() as u64;
    let done = work.iter().map(Vec::len).sum();
    let mut tasks: tokio::task::JoinSet<Vec<(i64, String)>> = tokio::task::JoinSet::new();
    let mut sent_in_pass: Vec<(i64, String)> = Vec::new();
    for rows in work {
        while tasks.len() >= PARALLEL_CONVERSATIONS {
            if let Some(Ok(sent)) = tasks.join_next().await {
                sent_in_pass.extend(sent);
            }
        }
        let app = app.clone();
        tasks.spawn(async move {
            let conversation_id = rows.first().map(|r| r.conversation_id.clone()).unwrap_or_default();
            let mut rows = rows.into_iter();
            let mut sent: Vec<(i64, String)> = Vec::new();
            while let Some(row) = rows.next() {
                let payload = match Payload::of(&row) {
                    Ok(p) => p,
                    Err(why) => {
                        let code = why.split(':').next().unwrap_or("outbox.corrupt_payload").to_string();
                        let _ = app.store.outbox_dead(row.id, &why).await;
                        error!(code = %code, outbox_id = row.id, error = %why, "outbox row dead-lettered: it cannot be read");
                        continue;
                    }
                };
                let finished = match payload {
                    Payload::Send(send) => send_message(&app, &row, &send, &mut sent).await,
                    Payload::Erp(write) => {
                        // An ERP write can take seconds: it finishes on its own, so the pass
                        // (and the replies queued behind it) does not wait for it. Its claim
                        // holds the conversation's later rows back until it is done.
                        let rest: Vec<i64> = rows.map(|r| r.id).collect();
                        let _ = app.store.unclaim_outbox_rows(&rest, now_ms()).await;
                        let app = app.clone();
                        tokio::spawn(async move {
                            let Ok(_slot) = ERP_WRITES_IN_FLIGHT.acquire().await else { return };
                            write_erp(&app, &row, &write).await;
                        });
                        break;
                    }
                    Payload::Forward(f) => forward(&app, &row, &f).await,
                };
                if !finished {
                    // This row waits for a retry; the conversation's later rows wait behind it.
                    let rest: Vec<i64> = rows.map(|r| r.id).collect();
                    let _ = app.store.unclaim_outbox_rows(&rest, now_ms()).await;
                    break;
                }
            }
            sent.iter().for_each(|(id, _)| app.outbox_backlog.sent(*id));
            if app.outbox_backlog.take_wanted(&conversation_id) {
                // An interactive reply waited for these rows: it goes now, not when this
                // pass's marks are written (or when the backlog reaches it).
                if let Ok(mut q) = app.outbox_interactive.lock() {
                    q.push(conversation_id);
                }
                app.outbox_interactive_notify.notify_one();
            }
            sent
        });
    }
    while let Some(joined) = tasks.join_next().await {
        if let Ok(sent) = joined {
            sent_in_pass.extend(sent);
        }
    }
    // The pass's sent messages are marked together, in one statement (a crash before this sends
    // them again: WhatsApp sends are at least once, and the claim keeps other processes off them
    // meanwhile).
    if let Err(e) = app.store.outbox_sent_many(&sent_in_pass, lane).await {
        error!(code = e.code(), error = %e, "could not mark sent outbox rows; they will be sent again");
    }
    app.outbox_backlog.marked(&sent_in_pass);
    if done > 0 {
        tracing::debug!(
            ?lane,
            rows = done,
            read_ms,
            claimed_ms,
            ms = started.elapsed().as_millis() as u64,
            "outbox pass"
        );
    }
    done
}

/// Schedules a retry, or dead-letters the row; returns whether it is finished (dead).
async fn retry_or_dead(app: &App, row: &OutboxRow, code: &str, error: &str, retryable: bool) -> bool {
    let failures = row.attempts as u32 + 1;
    if retryable && failures < app.settings.outbox_max_attempts {
        let delay = backoff_delay(app.settings.outbox_base_delay, failures);
        warn!(
            code,
            error,
            outbox_id = row.id,
            attempt = failures,
            retry_in_ms = delay.as_millis() as u64,
            "outbox attempt failed; will retry"
        );
        let _ = app.store.outbox_retry(row.id, now_ms() + delay.as_millis() as i64, &format!("{code}: {error}")).await;
        false
    } else {
        error!(code, error, outbox_id = row.id, attempts = failures, "outbox row dead-lettered");
        let _ = app.store.outbox_dead(row.id, &format!("{code}: {error}")).await;
        true
    }
}

/// Counts a finished row and, for a reply, the time from the customer's webhook to the send.
fn observe_sent(app: &App, send: Option<&Send>, kind: OutboxKind, status: OutboxStatus) {
    app.metrics.outbox_done.with_label_values(&[kind.as_str(), status.as_str()]).inc();
    if let Some((received, to)) = send.and_then(|s| s.received_at.map(|r| (r, &s.to))) {
        let ms = (now_ms() - received).max(0);
        app.metrics.observe("reply", ms as f64 / 1000.0);
        tracing::debug!(to = %to, reply_ms = ms, "reply sent");
    }
}

async fn send_message(app: &App, row: &OutboxRow, payload: &Send, sent: &mut Vec<(i64, String)>) -> bool {
    let Some(graph) = &app.graph else {
        // Sandbox: no WhatsApp configured; the message is kept as sent, for `chat` to show.
        sent.push((row.id, format!("wamid.sandbox-{}", row.id)));
        observe_sent(app, Some(payload), OutboxKind::WhatsApp, OutboxStatus::Sent);
        return true;
    };
    app.limits.outbound.until_ready().await;
    let started = std::time::Instant::now();
    let outcome = graph.send(&payload.phone_number_id, &payload.body).await;
    app.metrics.observe("outbox_send", started.elapsed().as_secs_f64());
    tracing::debug!(outbox_id = row.id, send_ms = started.elapsed().as_millis() as u64, "Graph API answered");
    match outcome {
        Ok(wamid) => {
            sent.push((row.id, wamid));
            observe_sent(app, Some(payload), OutboxKind::WhatsApp, OutboxStatus::Sent);
            true
        }
        Err(e) => {
            app.metrics.errors.with_label_values(&[e.code()]).inc();
            let dead = retry_or_dead(app, row, e.code(), &e.to_string(), e.is_retryable()).await;
            if dead {
                observe_sent(app, None, OutboxKind::WhatsApp, OutboxStatus::Dead);
            }
            dead
        }
    }
}

/// After the first failed attempt at an ERP write, the conversation is told (through its inbox, so
/// the engine decides and the turn is recorded) that the confirmation will take longer.
async fn tell_delay(app: &App, row: &OutboxRow, write: &ErpWrite) {
    let event = InboundEvent::internal(
        format!("erp-delay:{}", row.id),
        write.customer.clone(),
        now_ms() / 1000,
        EventKind::ErpDelayed {
            journey_id: write.request.journey_id.clone(),
            action: write.request.action.action.clone(),
        },
    );
    if let Err(e) = queue::enqueue(app, &write.phone_number_id, &event, Lane::Interactive).await {
        error!(code = e.code(), error = %e, "could not queue the delay notice");
    }
}

/// Delivers an event to another conversation's inbox (a conversation moved to the customer's
/// new number): the inbox row and this row's `sent` mark in one transaction, so it arrives once.
async fn forward(app: &App, row: &OutboxRow, forward: &queue::Forward) -> bool {
    let inbox = queue::inbox_row(&forward.phone_number_id, &forward.event, now_ms());
    let target = inbox.conversation_id.clone();
    match app.store.outbox_done_with_event(row.id, &target, OutboxStatus::Sent.as_str(), inbox).await {
        Ok(()) => {
            observe_sent(app, None, OutboxKind::Inbox, OutboxStatus::Sent);
            app.wake(&target, Lane::Interactive);
            true
        }
        Err(e) => retry_or_dead(app, row, e.code(), &e.to_string(), true).await,
    }
}

/// Fetches from WhatsApp the files an ERP action attaches (none for the sandbox ERP).
async fn fetch_attachments(app: &App, request: &ErpRequest) -> Result<Vec<Vec<u8>>, ErpError> {
    let mut files = Vec::new();
    if app.erp.is_sandbox() {
        return Ok(files);
    }
    for attachment in &request.action.attachments {
        let Some(graph) = &app.graph else {
            return Err(ErpError::Attachment {
                message: "a file must be fetched from WhatsApp but no Graph API client is configured; set WHATSAPP_ACCESS_TOKEN".into(),
                retryable: false,
            });
        };
        let (bytes, _) = graph.download_media(&attachment.media_id).await.map_err(|e| ErpError::Attachment {
            message: format!("media {} could not be fetched: {e}", attachment.media_id),
            retryable: e.is_retryable(),
        })?;
        files.push(bytes);
    }
    Ok(files)
}

async fn write_erp(app: &App, row: &OutboxRow, write: &ErpWrite) -> bool {
    let request = &write.request;
    // Files the customer sent are fetched from WhatsApp first (the sandbox ERP needs none).
    let outcome = match fetch_attachments(app, request).await {
        Ok(files) => app.erp.execute_with_files(&request.action, &files).await,
        Err(e) => Err(e),
    };
    let (reference, error, status) = match outcome {
        Ok(reference) => {
            info!(outbox_id = row.id, reference, action = request.action.action, "ERP write accepted");
            (Some(reference), None, OutboxStatus::Sent)
        }
        Err(e) => {
            let failures = row.attempts as u32 + 1;
            if e.is_retryable() && failures < app.settings.outbox_max_attempts {
                if row.attempts == 0 {
                    tell_delay(app, row, write).await;
                }
                return retry_or_dead(app, row, e.code(), &e.to_string(), true).await;
            }
            error!(code = e.code(), error = %e, outbox_id = row.id, "ERP write failed for good; the customer will be told");
            (None, Some(format!("{}: {e}", e.code())), OutboxStatus::Dead)
        }
    };
    let event = InboundEvent::internal(
        format!("erp:{}", row.id),
        write.customer.clone(),
        now_ms() / 1000,
        EventKind::ErpOutcome {
            journey_id: request.journey_id.clone(),
            action: request.action.action.clone(),
            reference: reference.clone(),
            error: error.clone(),
        },
    );
    let inbox = queue::inbox_row(&write.phone_number_id, &event, now_ms());
    let result = reference.clone().unwrap_or_else(|| error.clone().unwrap_or_default());
    observe_sent(app, None, OutboxKind::Erp, status);
    match app.store.outbox_done_with_event(row.id, &result, status.as_str(), inbox).await {
        Ok(()) => {
            app.wake(&row.conversation_id, Lane::Interactive);
            true
        }
        Err(e) => {
            // The write is done in the ERP; the retry looks it up by key and finds it.
            error!(code = e.code(), error = %e, outbox_id = row.id, "could not record the ERP answer; will retry");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_behind_another_pass_is_handed_back_once_and_sent_rows_stop_holding_it() {
        let backlog = Backlog::default();
        backlog.sent(7);
        assert!(backlog.is_sent_unmarked(7), "sent, not yet marked: later rows may go");
        assert!(!backlog.is_sent_unmarked(8));
        backlog.marked(&[(7, "wamid.a".into())]);
        assert!(!backlog.is_sent_unmarked(7), "marked: the row is no longer pending anyway");
        assert!(!backlog.take_wanted("c1"), "nobody waits");
        backlog.want("c1");
        assert!(backlog.take_wanted("c1"), "the pass sending c1's rows hands it back");
        assert!(!backlog.take_wanted("c1"), "once");
    }

    #[test]
    fn a_reply_waits_for_the_backlog_only_behind_a_queue_or_a_slow_pass() {
        let backlog = Backlog::default();
        assert!(!backlog.would_wait(), "idle");
        backlog.pass_started(5);
        assert!(!backlog.would_wait(), "a short pass that just started");
        backlog.started_at.store(now_ms() - SLOW_PASS_MS - 5, Ordering::Relaxed);
        assert!(backlog.would_wait(), "a pass running longer than {SLOW_PASS_MS} ms");
        backlog.pass_ended();
        assert!(!backlog.would_wait(), "ended");
        backlog.pass_started(PASS_ROWS as usize);
        assert!(backlog.would_wait(), "a full pass: there is a queue");
        backlog.pass_ended();
        assert!(backlog.would_wait(), "a queue remains after a full pass until a pass reads less");
        backlog.pass_started(0);
        assert!(!backlog.would_wait(), "an empty read: the queue is gone");
    }
}
