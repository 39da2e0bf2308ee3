//! Group commit for SQLite's hot path: the inbox inserts, lease takes, turn commits and outbox
//! claims and marks of many conversations, queued while the database is busy, run together in
//! one `BEGIN IMMEDIATE` transaction and one trip to the blocking thread pool.
//!
//! SQLite has one writer, so these calls were already taken one after another; each paid for its
//! own transaction (a WAL commit) and its own hand-off to a blocking thread and back. Batched,
//! a burst of N calls pays once. Each call runs inside its own savepoint: its failure undoes only
//! its own writes and reaches only its caller. Results are handed out after the batch's commit,
//! so no caller sees as done what a failed commit rolled back. The calls of one conversation are
//! never in flight together (its worker awaits each), and the queue keeps arrival order.

use std::panic::AssertUnwindSafe;

use diesel::connection::Connection;
use diesel::result::Error as DieselError;
use diesel::{QueryResult, SqliteConnection};
use diesel_async::pooled_connection::deadpool::Pool;
use tokio::sync::{mpsc, oneshot};

use super::{SqliteConn, StoreError};

/// The most calls in one transaction (a bound on how long one batch holds the database).
const MAX_BATCH: usize = 64;

/// Hands a call's result to its caller once the batch's commit is known (`Some(error)` when it
/// failed).
type Deliver = Box<dyn FnOnce(Option<&str>) + Send>;
/// A queued call.
type Job = Box<dyn FnOnce(&mut SqliteConnection) -> Deliver + Send>;

/// The queue in front of SQLite's connection, served by one task.
pub(super) struct Batcher {
    queue: mpsc::UnboundedSender<Job>,
}

impl Batcher {
    /// Starts the task that serves the queue with connections from `pool` (one per batch, so
    /// the store's other calls interleave between batches). Must be called inside a tokio runtime.
    pub(super) fn start(pool: Pool<SqliteConn>) -> Batcher {
        let (queue, mut jobs) = mpsc::unbounded_channel::<Job>();
        tokio::spawn(async move {
            while let Some(first) = jobs.recv().await {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match jobs.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
                // Without a connection the batch's jobs are dropped, and each caller gets an error.
                if let Ok(mut conn) = pool.get().await {
                    let _ = conn
                        .spawn_blocking(move |c| {
                            run_batch(c, batch);
                            Ok(())
                        })
                        .await;
                }
            }
        });
        Batcher { queue }
    }

    /// Runs `call` in the next batch, in its own savepoint, and returns its result after the
    /// batch committed.
    ///
    /// Errors: the outer `Err` is [`StoreError::Pool`] when the call could not be run or its
    /// batch's commit failed (nothing it wrote was kept); the inner one is the call's own.
    pub(super) async fn run<R: Send + 'static>(
        &self,
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
        self.queue.send(job).map_err(|_| StoreError::Pool("the SQLite queue has stopped".into()))?;
        answer.await.map_err(|_| {
            StoreError::Pool("the SQLite batch could not be run (no connection, or the database is locked)".into())
        })?
    }
}

/// One transaction for all of `jobs`; each job's result is delivered after the commit.
fn run_batch(c: &mut SqliteConnection, jobs: Vec<Job>) {
    let mut delivers: Vec<Deliver> = Vec::with_capacity(jobs.len());
    let outcome = c.immediate_transaction::<_, DieselError, _>(|c| {
        for job in jobs {
            // A panic (a bug) rolls the whole batch back; the jobs not yet run are dropped, and
            // their callers get an error rather than waiting forever.
            match std::panic::catch_unwind(AssertUnwindSafe(|| job(c))) {
                Ok(deliver) => delivers.push(deliver),
                Err(_) => return Err(DieselError::RollbackTransaction),
            }
        }
        Ok(())
    });
    let error = outcome.err().map(|e| e.to_string());
    for deliver in delivers {
        deliver(error.as_deref());
    }
}
