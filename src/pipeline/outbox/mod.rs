//! The outbox dispatcher: sends queued WhatsApp messages and executes queued ERP writes, with
//! exponential backoff and jitter (`backon`) on retryable failures and a dead-letter status after
//! `OUTBOX_MAX_ATTEMPTS`. Rows of one conversation and kind leave in the order they were queued:
//! a row waiting for its retry holds back the later rows of its queue, and nothing else.
//!
//! Every row is done under a claim with a fencing token (`store::Claim`), kept alive while its
//! work runs ([`keeper`]); [`dispatch`] runs a pass, [`effects`] does one row.
//!
//! An ERP write's answer (reference or final failure) is fed back to its conversation as an inbox
//! event in the same transaction that closes the outbox row, so the confirmation message is
//! decided by the engine like any other turn, and nothing is lost between the two.

pub mod dispatch;
pub mod effects;
pub mod keeper;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use backon::BackoffBuilder;
use tracing::error;

use super::App;
use crate::store::{Lane, now_ms};
use dispatch::dispatch;

/// The longest wait between two attempts at a row.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// The delay before attempt `n + 1` (n ≥ 1 failures so far): exponential from `base`, with
/// jitter, never more than [`MAX_BACKOFF`] (the jitter is added to the capped delay by `backon`,
/// so the sum is capped again).
pub fn backoff_delay(base: Duration, failures: u32) -> Duration {
    backon::ExponentialBuilder::default()
        .with_min_delay(base)
        .with_max_delay(MAX_BACKOFF)
        .with_factor(2.0)
        .with_jitter()
        .with_max_times(failures as usize + 1)
        .build()
        .nth(failures.saturating_sub(1) as usize)
        .unwrap_or(base)
        .min(MAX_BACKOFF)
}

/// Runs the dispatcher until the process stops: the backlog in queue order, and beside it the
/// interactive pass ([`run_interactive`]).
pub async fn run(app: Arc<App>) {
    tokio::spawn(run_interactive(app.clone()));
    loop {
        let started = std::time::Instant::now();
        let did = match app.store.due_outbox(now_ms(), PASS_ROWS).await {
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

/// Due rows read by one pass of the backlog.
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

    fn marked(&self, ids: &[i64]) {
        if let Ok(mut s) = self.sent_unmarked.lock() {
            ids.iter().for_each(|id| {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_grows_and_never_passes_its_cap_even_with_jitter() {
        let base = Duration::from_millis(500);
        let first = backoff_delay(base, 1);
        assert!(first >= base && first <= base * 2, "{first:?}");
        for failures in 1..40 {
            for _ in 0..20 {
                let d = backoff_delay(base, failures);
                assert!(d <= MAX_BACKOFF, "attempt {failures}: {d:?}");
            }
        }
        assert!(backoff_delay(base, 12) >= MAX_BACKOFF / 2, "late attempts wait minutes");
    }

    #[test]
    fn a_reply_behind_another_pass_is_handed_back_once_and_sent_rows_stop_holding_it() {
        let backlog = Backlog::default();
        backlog.sent(7);
        assert!(backlog.is_sent_unmarked(7), "sent, not yet marked: later rows may go");
        assert!(!backlog.is_sent_unmarked(8));
        backlog.marked(&[7]);
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
