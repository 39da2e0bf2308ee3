//! The conversation worker: takes inbox rows one conversation at a time (a lease row in the
//! database, so this holds across processes), in arrival order, and for each runs the turn
//! ([`turn`]): load state → plan guards → run guards → decide (pure) → commit state, turn record
//! and outbox rows in one transaction.
//!
//! What can go wrong, and what happens then: the database unavailable (a restart, a blip) — the
//! turn is tried again later, never counted against the message; a row or a stored state that
//! does not parse, or a turn that fails on every attempt (a bug, a panic) — it is set aside for a
//! person ([`set_aside`]) and the conversation's later messages go on.

pub mod set_aside;
pub mod turn;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::{Instrument, error, info_span, warn};

use super::{App, Ready};
use crate::engine::{ConversationState, InboundEvent};
use crate::store::{ConversationRow, InboxRow, Lane, QuarantineKind, StoreError, now_ms};
use turn::TurnFailure;

/// Attempts at one inbox row before it is set aside for a person (so one poisoned message
/// cannot block a conversation forever). Failures of the database itself are not counted.
pub const MAX_TURN_ATTEMPTS: i32 = 5;

/// How long a drain waits before giving its conversation back after the database failed.
const DATABASE_BACKOFF: Duration = Duration::from_millis(500);

/// The conversations being drained in this process, and those of them for which a row was
/// stored (with its lease, possibly) while they were. One lock for both, so that "is it being
/// drained? then mark it" in the worker's loop and "the drain ended: was it marked?" in the drain
/// cannot interleave: a row marked a moment after its drain looked, with the lease its webhook took
/// held by nobody working, would wait for that lease to run out (`LEASE_MS`, 30 s by default).
#[derive(Default)]
struct Drains {
    active: HashSet<String>,
    dirty: HashSet<String>,
}

impl Drains {
    /// Starts a drain of `id` and returns true, or, when one is running, returns false and, when
    /// `mark` (this process stored a row for it), marks it to be taken again when that drain ends.
    fn begin(&mut self, id: &str, mark: bool) -> bool {
        if self.active.insert(id.to_string()) {
            return true;
        }
        if mark {
            self.dirty.insert(id.to_string());
        }
        false
    }

    /// Ends the drain of `id`; true when a row was stored for it meanwhile.
    fn end(&mut self, id: &str) -> bool {
        self.active.remove(id);
        self.dirty.remove(id)
    }
}

/// Marks a conversation as being drained in this process, until dropped (also when the drain
/// panics); then wakes it again when a row was stored for it meanwhile.
struct Draining {
    drains: Arc<Mutex<Drains>>,
    app: Arc<App>,
    id: String,
}

impl Drop for Draining {
    fn drop(&mut self) {
        let again = self.drains.lock().map(|mut d| d.end(&self.id)).unwrap_or(false);
        if again {
            // Whatever stopped the drain: the row may hold a lease this process took as it was
            // stored, which no poll would take over before it runs out.
            self.app.wake(&self.id, Lane::Interactive);
        }
    }
}

/// Runs the worker until the process stops.
pub async fn run(app: Arc<App>) {
    let permits = Arc::new(tokio::sync::Semaphore::new(app.settings.worker_concurrency));
    let drains: Arc<Mutex<Drains>> = Arc::default();
    let polled: Arc<Mutex<Vec<String>>> = Arc::default();
    tokio::spawn(poll(app.clone(), polled.clone()));
    loop {
        // Conversations this process just stored rows for, interactive ones first (a stable
        // sort keeps arrival order within a lane), then those the poll found.
        let mut ids: Vec<(Ready, bool)> =
            app.ready.lock().map(|mut q| q.drain(..).map(|r| (r, false)).collect()).unwrap_or_default();
        ids.sort_by_key(|(r, _)| r.lane != Lane::Interactive);
        let found = polled.lock().map(|mut p| std::mem::take(&mut *p)).unwrap_or_default();
        ids.extend(found.into_iter().map(|id| (Ready { conversation_id: id, lane: Lane::Bulk, leased: None }, true)));
        for (Ready { conversation_id: id, lane, leased }, from_poll) in ids {
            // Being drained now: a row stored here meanwhile is looked for when that drain ends
            // (a lease taken with the row is this process's, so that drain's successor takes it
            // as its own); one the poll found needs nothing (the drain reads rows until none is
            // left, and the next poll sees any stored after).
            let fresh = drains.lock().map(|mut d| d.begin(&id, !from_poll)).unwrap_or(false);
            if !fresh {
                continue;
            }
            let Ok(permit) = permits.clone().acquire_owned().await else { return };
            let app = app.clone();
            let draining = Draining { drains: drains.clone(), app: app.clone(), id: id.clone() };
            tokio::spawn(async move {
                drain(&app, &id, lane, leased.map(|l| *l)).await;
                drop(permit);
                drop(draining);
            });
        }
        tokio::select! {
            _ = app.inbox_notify.notified() => {}
            _ = tokio::time::sleep(app.activity.poll_every(SAFETY_POLL)) => {}
        }
    }
}

/// How often the safety poll reads the inbox for rows nobody took while this process has work
/// (see [`super::activity`]: slower once it is idle).
const SAFETY_POLL: Duration = Duration::from_secs(1);

/// How old an unprocessed row must be before the safety poll takes it: rows are taken as they
/// arrive by the process that stored them (its webhook took the lease or woke its worker), so
/// the poll looks only for rows whose process died, or that a race between processes left
/// behind.
const ORPHANED_AFTER_MS: i64 = 1000;

/// Every [`SAFETY_POLL`] (slower when idle), reads the conversations with rows nobody is working on (stored by a
/// process that stopped, or left by a race between processes) for the worker, beside it so that
/// a slow read never holds up the conversations this process just woke. Rows this process
/// stores wake its worker at once; no LISTEN/NOTIFY between processes is needed, because the
/// process that stores a row is the one that takes it.
async fn poll(app: Arc<App>, polled: Arc<Mutex<Vec<String>>>) {
    loop {
        let now = now_ms();
        match app.store.orphaned_conversations(now - ORPHANED_AFTER_MS, now, 2048).await {
            Ok(ids) if !ids.is_empty() => {
                if let Ok(mut p) = polled.lock() {
                    *p = ids;
                }
                app.inbox_notify.notify_one();
            }
            Ok(_) => {}
            Err(e) => error!(code = e.code(), error = %e, "cannot read the inbox"),
        }
        tokio::time::sleep(app.activity.poll_every(SAFETY_POLL)).await;
    }
}

/// Takes the conversation's lease and reads its next row, creating the conversation when it is
/// seen for the first time; `None` when another process holds it, nothing is pending, or the
/// store failed (logged).
async fn lease(app: &App, conversation_id: &str, lane: Lane) -> Option<(ConversationRow, Option<InboxRow>)> {
    let until = now_ms() + app.settings.lease.as_millis() as i64;
    match app.store.lease_load_next(conversation_id, &app.instance_id, until, lane).await {
        Ok(Some(found)) => return Some(found),
        Ok(None) => {}
        Err(e) => {
            error!(code = e.code(), error = %e, conversation_id, "cannot take the lease");
            return None;
        }
    }
    let row = match app.store.next_inbox(conversation_id).await {
        Ok(Some(row)) => row,
        Ok(None) => return None,
        Err(e) => {
            error!(code = e.code(), error = %e, conversation_id, "cannot read the inbox");
            return None;
        }
    };
    let Some((customer, _)) = customer_and_event(&row) else {
        // Not even its customer can be read: set aside before the conversation exists.
        let _ = set_aside_unreadable(app, &row).await;
        return None;
    };
    let Some(tenant) = app.tenants.of_conversation(conversation_id) else {
        error!(
            code = "tenant.unknown",
            conversation_id,
            "a conversation of no tenant this process serves; its message is set aside (check TENANTS_DIR)"
        );
        let _ = set_aside_unreadable(app, &row).await;
        return None;
    };
    let initial = serde_json::to_string(&ConversationState::new(&customer)).unwrap_or_default();
    match app
        .store
        .acquire_lease(&tenant.id, conversation_id, &customer, &row.phone_number_id, &initial, &app.instance_id, until)
        .await
    {
        Ok(true) => app.store.lease_load_next(conversation_id, &app.instance_id, until, lane).await.ok().flatten(),
        Ok(false) => None,
        Err(e) => {
            error!(code = e.code(), error = %e, conversation_id, "cannot take the lease");
            None
        }
    }
}

/// The customer of an inbox row and its event, when the event parses.
fn customer_and_event(row: &InboxRow) -> Option<(String, InboundEvent)> {
    let event: InboundEvent = serde_json::from_str(&row.event).ok()?;
    Some((event.customer.clone(), event))
}

/// Sets aside an inbox row whose event does not parse.
async fn set_aside_unreadable(app: &App, row: &InboxRow) -> Result<(), StoreError> {
    let why = match serde_json::from_str::<InboundEvent>(&row.event) {
        Err(e) => format!("store.corrupt_event: the inbox row does not parse: {e}"),
        Ok(_) => return Ok(()),
    };
    set_aside::row(app, row, QuarantineKind::InboxEvent, &why).await.inspect_err(|e| {
        error!(code = e.code(), error = %e, inbox_id = row.id, "cannot set an unreadable inbox row aside; it is tried again")
    })
}

/// Processes every pending row of one conversation while holding its lease, until none is left,
/// another process takes the lease, or the store fails (the row is then taken again later).
/// `lane`: how soon its first row is taken when the database is busy; `leased`: the
/// conversation and its first row when the lease was taken as the row was stored.
async fn drain(app: &Arc<App>, conversation_id: &str, lane: Lane, leased: Option<(ConversationRow, InboxRow)>) {
    tracing::debug!(conversation_id, ?lane, leased = leased.is_some(), "drain started");
    let found = match leased {
        Some((conv, row)) => Some((conv, Some(row))),
        None => lease(app, conversation_id, lane).await,
    };
    let Some((mut conv, mut next)) = found else { return };
    let half_lease = app.settings.lease.as_millis() as i64 / 2;
    let mut lease_until = conv.lease_until.unwrap_or_else(|| now_ms() + app.settings.lease.as_millis() as i64);
    let mut released = false;
    loop {
        if lease_until - now_ms() < half_lease {
            let until = now_ms() + app.settings.lease.as_millis() as i64;
            match app.store.lease_load_next(conversation_id, &app.instance_id, until, Lane::Interactive).await {
                Ok(Some((c, n))) => {
                    (conv, next, lease_until) = (c, n, until);
                }
                _ => break,
            }
        }
        let Some(row) = next.take() else { break };
        let Some((_, event)) = customer_and_event(&row) else {
            if set_aside_unreadable(app, &row).await.is_err() {
                break;
            }
            match reread(app, conversation_id).await {
                Some((c, n)) => (conv, next) = (c, n),
                None => break,
            }
            continue;
        };
        let state = match serde_json::from_str::<ConversationState>(&conv.state) {
            Ok(state) => state,
            Err(e) => match set_aside::state(app, &conv, &format!("store.corrupt_state: {e}")).await {
                Ok((c, fresh)) => {
                    conv = c;
                    fresh
                }
                Err(e) => {
                    error!(code = e.code(), error = %e, conversation_id, "cannot set an unreadable state aside");
                    break;
                }
            },
        };
        let span = info_span!("turn", conversation_id, inbox_id = row.id, message_id = %event.message_id, turn = tracing::field::Empty);
        let from_customer = event.kind.from_customer();
        let outcome =
            turn::process_isolated(app.clone(), row.clone(), event, conv.clone(), state).instrument(span).await;
        match outcome {
            Ok((state, following, gave_back)) => {
                conv.version += 1;
                conv.state = state;
                if from_customer {
                    conv.last_inbound_at = Some(row.received_at);
                }
                next = following;
                if gave_back {
                    released = true;
                    break;
                }
            }
            Err(TurnFailure::Store(StoreError::LeaseLost(_))) => {
                warn!(code = "store.lease_lost", conversation_id, "another worker took this conversation; leaving it");
                break;
            }
            Err(failure) => {
                if !after_failure(app, &row, &failure).await {
                    break;
                }
                match reread(app, conversation_id).await {
                    Some((c, n)) => (conv, next) = (c, n),
                    None => break,
                }
            }
        }
    }
    if !released {
        let _ = app.store.release_lease(conversation_id, &app.instance_id).await;
    }
}

/// The conversation and its next row again, under the lease (after something was set aside).
async fn reread(app: &App, conversation_id: &str) -> Option<(ConversationRow, Option<InboxRow>)> {
    let until = now_ms() + app.settings.lease.as_millis() as i64;
    app.store.lease_load_next(conversation_id, &app.instance_id, until, Lane::Interactive).await.ok().flatten()
}

/// Handles a turn that was not committed; returns whether the drain goes on with the next row
/// (the failed one was set aside) rather than giving the conversation back to try again later.
async fn after_failure(app: &App, row: &InboxRow, failure: &TurnFailure) -> bool {
    let code = failure.code();
    app.metrics.errors.with_label_values(&[code]).inc();
    if failure.is_transient() {
        // The database's failure, not the message's: nothing is counted; the row is taken again
        // once the database answers (this drain gives the conversation back; the poll or the
        // lease's end brings it back).
        warn!(code, error = %failure, inbox_id = row.id, "the database is unavailable; the turn will be tried again");
        tokio::time::sleep(DATABASE_BACKOFF).await;
        return false;
    }
    error!(code, error = %failure, inbox_id = row.id, "turn failed");
    match app.store.inbox_failed(row.id, &failure.to_string()).await {
        Ok(attempts) if attempts >= MAX_TURN_ATTEMPTS => {
            let why = format!("{failure} (after {attempts} attempts)");
            set_aside::row(app, row, QuarantineKind::Turn, &why).await.is_ok()
        }
        Ok(attempts) => {
            tokio::time::sleep(Duration::from_millis(200 * attempts as u64)).await;
            false
        }
        Err(e) => {
            // Not counted this time: the row is simply tried again.
            error!(code = e.code(), error = %e, inbox_id = row.id, "could not count a failed turn; it will be tried again");
            tokio::time::sleep(DATABASE_BACKOFF).await;
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Drains;

    #[test]
    fn a_row_stored_during_a_drain_is_taken_when_it_ends() {
        let mut d = Drains::default();
        assert!(d.begin("c1", true), "the first wake starts a drain");
        assert!(!d.begin("c1", true), "a second wake while it runs starts none");
        assert!(d.end("c1"), "the drain's end sees the row stored meanwhile");
        assert!(d.begin("c1", true), "so the conversation is drained again");
        assert!(!d.end("c1"), "with nothing stored meanwhile, nothing more to do");
    }

    #[test]
    fn a_conversation_the_poll_found_is_not_marked() {
        let mut d = Drains::default();
        assert!(d.begin("c1", false));
        assert!(!d.begin("c1", false), "the running drain reads every row left");
        assert!(!d.end("c1"));
        assert!(d.begin("c2", true) && !d.begin("c2", true));
        assert!(d.begin("c1", true), "marking one conversation leaves the others alone");
        assert!(!d.end("c1") && d.end("c2"));
    }
}
