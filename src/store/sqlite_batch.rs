//! Group commit for SQLite's hot path: the inbox inserts, lease takes, turn commits and outbox
//! claims and marks of many conversations, queued while the database is busy, run together in
//! one `BEGIN IMMEDIATE` transaction and one trip to the blocking thread pool.
//!
//! SQLite has one writer, so these calls were already taken one after another; each paid for its
//! own transaction (a WAL commit) and its own hand-off to a blocking thread and back. Batched,
//! a burst of N calls pays once. The batches run on a thread of their own with a connection of
//! its own, so the writer never waits for a turn on tokio's busy workers (under a burst it did,
//! and stood idle half the time); the store's other calls use its pool's connection meanwhile
//! (WAL readers do not block the writer, and SQLite's busy timeout orders the rare other writes). Each call runs inside its own savepoint: its failure undoes only
//! its own writes and reaches only its caller. Results are handed out after the batch's commit,
//! so no caller sees as done what a failed commit rolled back. The calls of one conversation are
//! never in flight together (its worker awaits each).
//!
//! The queue has two lanes (see `super::lanes`): interactive calls go first, and the bulk lane
//! keeps a share of every batch.
//!
//! Beside the writer, a thread of its own checkpoints the WAL (see `start_checkpointer`), so that
//! no commit pays for copying the WAL into the database file.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};

use diesel::connection::{Connection, SimpleConnection};
use diesel::result::Error as DieselError;
use diesel::{QueryResult, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

use super::lanes::Lanes;
use super::{Lane, StoreError};

/// Hands a call's result to its caller once the batch's commit is known (`Some(error)` when it
/// failed).
type Deliver = Box<dyn FnOnce(Option<&str>) + Send>;
/// A queued call.
type Job = Box<dyn FnOnce(&mut SqliteConnection) -> Deliver + Send>;

/// How often the checkpointer copies the WAL's pages into the database file.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// The queue in front of SQLite's connection, served by one thread, and the checkpointer
/// beside it.
pub(super) struct Batcher {
    queue: mpsc::UnboundedSender<(Lane, Job)>,
    /// The checkpointer stops once this is dropped (with the store).
    _alive: std::sync::Arc<()>,
}

impl Batcher {
    /// Opens the writer's connection to the SQLite file at `path` and starts the thread that
    /// serves the queue (it ends when the store is dropped).
    ///
    /// Errors: [`StoreError::Pool`] when the file cannot be opened or set up, or the thread
    /// cannot be started.
    pub(super) fn start(path: &str) -> Result<Batcher, StoreError> {
        let mut conn = open_writer(path)?;
        let writer_path = path.to_string();
        let (queue, mut jobs) = mpsc::unbounded_channel::<(Lane, Job)>();
        let alive = std::sync::Arc::new(());
        let finish_checkpoint = std::sync::Arc::new(AtomicBool::new(false));
        let finish = finish_checkpoint.clone();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                let mut lanes = Lanes::<Job>::default();
                loop {
                    if lanes.is_empty() {
                        match jobs.blocking_recv() {
                            Some((lane, job)) => lanes.push(lane, job),
                            None => return,
                        }
                    }
                    while let Ok((lane, job)) = jobs.try_recv() {
                        lanes.push(lane, job);
                    }
                    if finish.swap(false, Ordering::Relaxed) {
                        finish_checkpoint_between_batches(&mut conn);
                    }
                    let (batch, bulk) = lanes.next_batch();
                    let clean = run_batch(&mut conn, batch, bulk);
                    if !clean {
                        // A call panicked inside its savepoint: diesel's transaction bookkeeping
                        // no longer matches SQLite's, and the batch's transaction (with the write
                        // lock) may still be open. A new connection starts clean; closing the
                        // old one rolls back whatever it held.
                        match open_writer(&writer_path) {
                            Ok(fresh) => conn = fresh,
                            Err(e) => tracing::error!(code = e.code(), error = %e, "cannot reopen the SQLite writer connection"),
                        }
                    }
                }
            })
            .map_err(|e| StoreError::Pool(format!("cannot start the SQLite writer thread: {e}")))?;
        start_checkpointer(path, std::sync::Arc::downgrade(&alive), finish_checkpoint)?;
        Ok(Batcher { queue, _alive: alive })
    }

    /// Runs `call` in the next batch, in its own savepoint, and returns its result after the
    /// batch committed.
    ///
    /// Errors: the outer `Err` is [`StoreError::Pool`] when the call could not be run or its
    /// batch's commit failed (nothing it wrote was kept); the inner one is the call's own.
    pub(super) async fn run<R: Send + 'static>(
        &self,
        lane: Lane,
        call: impl FnOnce(&mut SqliteConnection) -> QueryResult<R> + Send + 'static,
    ) -> Result<QueryResult<R>, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |c| {
            let result = c.transaction(call);
            Box::new(move |commit_error: Option<&str>| {
                let _ = reply.send(match commit_error {
                    None => Ok(result),
                    Some(e) => Err(StoreError::Pool(format!("SQLite commit failed: {e}"))),
                });
            })
        });
        self.queue.send((lane, job)).map_err(|_| StoreError::Pool("the SQLite queue has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Pool("the SQLite batch could not be run (the writer thread stopped)".into()))?
    }
}

/// Opens a connection to the SQLite file at `path` with the store's settings.
///
/// Errors: [`StoreError::Pool`] when it cannot be opened or set up.
fn open_writer(path: &str) -> Result<SqliteConnection, StoreError> {
    let mut conn = SqliteConnection::establish(path).map_err(|e| StoreError::Pool(e.to_string()))?;
    conn.batch_execute(super::SQLITE_PRAGMAS).map_err(|e| StoreError::Pool(e.to_string()))?;
    Ok(conn)
}

/// What `PRAGMA wal_checkpoint` reports: whether it was blocked, the WAL's frames, and how many
/// of them are in the database file now (<https://www.sqlite.org/pragma.html#pragma_wal_checkpoint>).
#[derive(diesel::QueryableByName)]
struct CheckpointResult {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    busy: i32,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    log: i32,
}

/// WAL frames (pages, 4 KiB) past which the writer is asked to finish the checkpoint, so that
/// its next transaction starts the WAL file over: SQLite's own automatic checkpoint threshold.
const RESTART_AT_FRAMES: i32 = 1_000;

/// Starts the thread that checkpoints the WAL every [`CHECKPOINT_EVERY`] while `alive` can be
/// upgraded.
///
/// SQLite's automatic checkpoint runs inside the commit that crosses 1,000 WAL pages, on the
/// committing connection: here the writer, whose batch then took 15 – 25 ms instead of under 1
/// (copying about 4 MB into the database file and syncing it), every 90 ms at 500 msg/s, while
/// every caller in that batch and the next waited. The connections are opened with automatic
/// checkpoints off ([`super::SQLITE_PRAGMAS`]); this thread runs passive checkpoints, which copy
/// pages into the database file without blocking the writer or readers. A passive checkpoint
/// never catches up with a busy writer, though, and the WAL only starts over once all of it has
/// been copied (it grew past 500 MB); so once it holds more than [`RESTART_AT_FRAMES`], this
/// thread copies it twice (the second pass takes what the writer wrote during the first) and
/// sets `finish`: the writer then copies the few pages left between two batches
/// ([`finish_checkpoint_between_batches`]), and its next transaction starts the WAL over. A
/// `RESTART` checkpoint from this thread would do the same but make the writer wait in SQLite's
/// busy handler, whose sleeps (up to 25 ms each) cost more than the copy.
/// See <https://www.sqlite.org/wal.html#checkpointing>.
///
/// Errors: [`StoreError::Pool`] when its connection cannot be opened or the thread started.
fn start_checkpointer(
    path: &str,
    alive: std::sync::Weak<()>,
    finish: std::sync::Arc<AtomicBool>,
) -> Result<(), StoreError> {
    let mut conn = SqliteConnection::establish(path).map_err(|e| StoreError::Pool(e.to_string()))?;
    conn.batch_execute(super::SQLITE_PRAGMAS).map_err(|e| StoreError::Pool(e.to_string()))?;
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            while alive.upgrade().is_some() {
                std::thread::sleep(CHECKPOINT_EVERY);
                match passive_checkpoint(&mut conn) {
                    Ok(r) if r.busy == 0 && r.log > RESTART_AT_FRAMES => {
                        let _ = passive_checkpoint(&mut conn);
                        finish.store(true, Ordering::Relaxed);
                    }
                    Ok(_) => {}
                    // The next round tries again; the WAL only grows meanwhile.
                    Err(e) => tracing::warn!(error = %e, "SQLite checkpoint failed"),
                }
            }
        })
        .map_err(|e| StoreError::Pool(format!("cannot start the SQLite checkpoint thread: {e}")))?;
    Ok(())
}

fn passive_checkpoint(conn: &mut SqliteConnection) -> QueryResult<CheckpointResult> {
    use diesel::RunQueryDsl;
    diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)").get_result::<CheckpointResult>(conn)
}

/// The writer's part of a checkpoint (see [`start_checkpointer`]): copies the pages written
/// since the checkpointer's last pass, outside any transaction, so that the next batch's
/// transaction starts the WAL over (unless a reader still uses it: then a later round does).
fn finish_checkpoint_between_batches(conn: &mut SqliteConnection) {
    let started = std::time::Instant::now();
    match passive_checkpoint(conn) {
        Ok(r) => tracing::debug!(
            frames = r.log,
            busy = r.busy,
            us = started.elapsed().as_micros() as u64,
            "SQLite checkpoint finished by the writer"
        ),
        Err(e) => tracing::warn!(error = %e, "SQLite checkpoint failed"),
    }
}

/// One transaction for all of `jobs` (the last `bulk` of them from the bulk lane); each job's
/// result is delivered after the commit. Returns false when the connection must not be used
/// again (a job panicked, or a transaction is still open after the batch).
fn run_batch(c: &mut SqliteConnection, jobs: Vec<Job>, bulk: usize) -> bool {
    let started = std::time::Instant::now();
    let size = jobs.len();
    let mut delivers: Vec<Deliver> = Vec::with_capacity(jobs.len());
    let mut panicked = false;
    let outcome = c.immediate_transaction::<_, DieselError, _>(|c| {
        for job in jobs {
            // A panic (a bug) rolls the whole batch back; the jobs not yet run are dropped, and
            // their callers get an error rather than waiting forever.
            match std::panic::catch_unwind(AssertUnwindSafe(|| job(c))) {
                Ok(deliver) => delivers.push(deliver),
                Err(_) => {
                    panicked = true;
                    return Err(DieselError::RollbackTransaction);
                }
            }
        }
        Ok(())
    });
    let error = match (&outcome, panicked) {
        (_, true) => Some("a call panicked; the batch was rolled back".to_string()),
        (Err(e), false) => Some(e.to_string()),
        (Ok(()), false) => None,
    };
    for deliver in delivers {
        deliver(error.as_deref());
    }
    if panicked {
        tracing::error!(code = "store.panicked", calls = size, "a SQLite call panicked; its batch was rolled back");
    }
    tracing::debug!(calls = size, bulk, us = started.elapsed().as_micros() as u64, "SQLite batch committed");
    use diesel::connection::TransactionManager;
    let open = diesel::connection::AnsiTransactionManager::transaction_manager_status_mut(c)
        .transaction_depth()
        .map_or(true, |depth| depth.is_some());
    !panicked && !open
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_call_that_panics_fails_its_batch_and_the_writer_goes_on() {
        use diesel::RunQueryDsl;
        let path = std::env::temp_dir().join(format!("carewell-batch-{}.db", std::process::id()));
        let path = path.display().to_string();
        let batcher = Batcher::start(&path).unwrap();
        let create =
            batcher.run(Lane::Interactive, |c| diesel::sql_query("CREATE TABLE t (n INTEGER)").execute(c)).await;
        assert!(matches!(create, Ok(Ok(0))), "{create:?}");
        // A deliberately panicking call, inside its savepoint, after a write.
        let panicking = batcher
            .run(Lane::Interactive, |c| -> QueryResult<usize> {
                diesel::sql_query("INSERT INTO t VALUES (1)").execute(c)?;
                panic!("a bug in a store call");
            })
            .await;
        assert!(panicking.is_err(), "its caller gets an error: {panicking:?}");
        // The next batches run: no transaction left open, no write lock kept.
        for n in 2..4 {
            let insert = batcher
                .run(Lane::Bulk, move |c| diesel::sql_query(format!("INSERT INTO t VALUES ({n})")).execute(c))
                .await;
            assert!(matches!(insert, Ok(Ok(1))), "{insert:?}");
        }
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let rows = batcher
            .run(Lane::Interactive, |c| diesel::sql_query("SELECT count(*) AS n FROM t").get_result::<Count>(c))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(rows.n, 2, "the panicking call's write was rolled back, the later ones kept");
        let _ = std::fs::remove_file(&path);
    }
}
