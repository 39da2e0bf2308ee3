//! The outbox dispatcher: sends queued WhatsApp messages and executes queued ERP writes, with
//! exponential backoff and jitter (`backon`) on retryable failures and a dead-letter status after
//! `OUTBOX_MAX_ATTEMPTS`. Rows of one conversation and kind leave in the order they were queued:
//! a row waiting for its retry holds back the later rows of its queue, and nothing else.
//!
//! Every row is done under a claim with a fencing token (`store::Claim`), kept alive while its
//! work runs ([`keeper`]). A turn's rows are claimed as they are queued and handed straight to
//! this process's dispatcher ([`handoff`]): no read and no claim statement per message. The
//! backlog ([`run`], [`dispatch`]) reads the rest: retries when due, and rows left by a crash or
//! another process. [`effects`] does one row.
//!
//! An ERP write's answer (reference or final failure) is fed back to its conversation as an inbox
//! event in the same transaction that closes the outbox row, so the confirmation message is
//! decided by the engine like any other turn, and nothing is lost between the two.

pub mod dispatch;
pub mod effects;
pub mod handoff;
pub mod keeper;
pub mod team;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
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

/// How often the backlog is read when nothing announced a due row: rows left by a crash or by
/// another process, retries scheduled elsewhere. Rows this process queues go straight to the
/// hand-off ([`handoff`]) and retries it schedules wake the backlog when due ([`DueTimer`]).
const SAFETY_POLL: Duration = Duration::from_secs(2);

/// Runs the backlog dispatcher until the process stops: due rows in queue order, read when a
/// retry this process scheduled comes due, when told (`outbox_notify`: an operator re-drove
/// rows), and every [`SAFETY_POLL`] while this process has work (slower when idle: see
/// [`super::activity`]).
pub async fn run(app: Arc<App>) {
    loop {
        let started = std::time::Instant::now();
        let did = match app.store.due_outbox(now_ms(), PASS_ROWS).await {
            Ok(rows) => dispatch(&app, rows, Lane::Bulk, started).await,
            Err(e) => {
                error!(code = e.code(), error = %e, "cannot read the outbox");
                0
            }
        };
        if did as i64 >= PASS_ROWS {
            continue;
        }
        let wait = app.outbox_due.until_next(app.activity.poll_every(SAFETY_POLL));
        tokio::select! {
            _ = app.outbox_notify.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Due rows read by one pass of the backlog.
const PASS_ROWS: i64 = 200;

/// When the next retry this process scheduled comes due, so the backlog reads the outbox then
/// rather than polling for it.
#[derive(Debug, Default)]
pub struct DueTimer {
    /// Unix ms of the earliest scheduled retry not yet read; 0 when none.
    next: AtomicI64,
}

impl DueTimer {
    /// A row will be due at `at_ms` (Unix ms).
    pub fn due_at(&self, at_ms: i64) {
        let _ =
            self.next.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| (n == 0 || at_ms < n).then_some(at_ms));
    }

    /// How long to wait before reading the backlog: until the earliest announced due time, at
    /// most `longest`; an announced time that has come is consumed.
    fn until_next(&self, longest: Duration) -> Duration {
        let next = self.next.load(Ordering::Relaxed);
        if next == 0 {
            return longest;
        }
        let wait = next - now_ms();
        if wait <= 0 {
            let _ = self.next.compare_exchange(next, 0, Ordering::Relaxed, Ordering::Relaxed);
            return Duration::ZERO;
        }
        Duration::from_millis(wait as u64).min(longest)
    }
}

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
    fn the_backlog_wakes_for_the_earliest_retry_and_otherwise_polls_slowly() {
        let timer = DueTimer::default();
        assert_eq!(timer.until_next(SAFETY_POLL), SAFETY_POLL, "nothing announced");
        timer.due_at(now_ms() + 800);
        timer.due_at(now_ms() + 300_000);
        let wait = timer.until_next(SAFETY_POLL);
        assert!(wait <= Duration::from_millis(800) && wait >= Duration::from_millis(700), "{wait:?}");
        timer.due_at(now_ms() - 1);
        assert_eq!(timer.until_next(SAFETY_POLL), Duration::ZERO, "one is due now");
        assert_eq!(timer.until_next(SAFETY_POLL), SAFETY_POLL, "and consumed");
    }
}
