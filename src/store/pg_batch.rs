//! Group commit for PostgreSQL's hot path: the webhook's inbox inserts (with the lease they may
//! take) and the turns' commits of many conversations, queued while the database is busy, run
//! together in one transaction, their statements pipelined on one connection.
//!
//! Each of those calls is one prepared statement (`pg_statements`), and each ran as a
//! transaction of its own: a commit record and a WAL flush per call, a round trip and a wake-up
//! of both sides per call, and, because every turn's commit also adds to the dashboard's counts,
//! a queue on the few `daily_counts` rows, whose locks each transaction holds until its WAL flush
//! (about 3.5 commits per inbound message, issue 17). Here a batch pays one `BEGIN`/`COMMIT`, one
//! flush and one trip for all its calls, and adds the counts of all its committed turns in one
//! statement at its end.
//!
//! How a batch runs (see [`run_batch`]):
//! - Its calls are sorted by conversation (arrival order kept within one), so every batch takes
//!   conversation rows in the same order, and the counts come last, in key order: two batches
//!   (of this process or another) wait for each other but do not deadlock on those rows.
//! - Results are handed out after the commit, so no caller sees as done what a failed commit
//!   rolled back. If the batch fails as a whole (a deadlock PostgreSQL broke, a lost connection),
//!   nothing of it was kept and each call runs again alone, as it did before batching, and gets
//!   its own result or error.
//! - A batch of one call runs alone (one statement, no `BEGIN`/`COMMIT`): a quiet service pays
//!   no more than before.
//! - [`RUNNERS`] batches are in flight at once, each on a connection of its own, so that one
//!   batch executes while another waits for its flush; calls arriving meanwhile form the next.
//!   Each runner adds its counts to a shard of its own (see `crate::stats::SHARDS`).
//!
//! A commit that changes visit-time holds joins the batch with its hold changes in one call
//! before it (`carewell_apply_holds`); the batch first locks every window its commits take a
//! place in. A refused place fails the batch, which then runs its calls alone: the refusal
//! reaches only its own caller, as [`HoldRefused`].

use diesel::QueryResult;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Integer, Text, Untyped};
use diesel_async::pooled_connection::deadpool::{self, Pool};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures_util::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};

use super::holds::{self, HoldRefused};
use super::lanes::Lanes;
use super::pg_statements::{self, CommitAndNext, InsertInbox, InsertInboxAndLease, StoredAndLeased};
use super::{Committed, Lane, NewInbox, StoreError, Stored, TurnCommit, now_ms};

/// Batches in flight at once (each on its own connection).
pub(super) const RUNNERS: usize = 2;

/// One conversation's inbound rows to store, and the lease to take for `owner` until
/// `until_ms` (Unix ms) when that is safe at once (see [`InsertInboxAndLease`]).
pub(super) struct StoreCall {
    pub rows: Vec<NewInbox>,
    pub conversation_id: String,
    pub owner: String,
    pub until_ms: i64,
}

/// What a commit gives: `None` when the lease was lost (nothing written).
type CommitResult = Option<Committed>;

/// A queued call, with where its result goes.
enum Job {
    Store(StoreCall, oneshot::Sender<Result<Stored<String>, StoreError>>),
    Commit(Box<TurnCommit>, oneshot::Sender<Result<CommitResult, StoreError>>),
}

/// A call's result, before it is handed to its caller.
enum Done {
    Stored(Stored<String>),
    Committed(CommitResult),
}

impl Job {
    fn conversation_id(&self) -> &str {
        match self {
            Job::Store(call, _) => &call.conversation_id,
            Job::Commit(commit, _) => &commit.conversation_id,
        }
    }

    /// Hands `result` to the caller (who may have gone: then nothing happens).
    fn deliver(self, result: Result<Done, StoreError>) {
        let mismatch = || StoreError::Pool("a group commit's result did not match its call".into());
        match self {
            Job::Store(_, reply) => {
                let _ = reply.send(result.and_then(|d| match d {
                    Done::Stored(s) => Ok(s),
                    Done::Committed(_) => Err(mismatch()),
                }));
            }
            Job::Commit(_, reply) => {
                let _ = reply.send(result.and_then(|d| match d {
                    Done::Committed(c) => Ok(c),
                    Done::Stored(_) => Err(mismatch()),
                }));
            }
        }
    }
}

/// The queue in front of PostgreSQL's hot path, served by a task (it ends when the store, and
/// with it the queue's sender, is dropped).
pub(super) struct PgBatcher {
    queue: mpsc::UnboundedSender<(Lane, Job)>,
}

impl PgBatcher {
    /// Starts the task that serves the queue on `pool`'s connections (it should hold
    /// [`RUNNERS`]). Must be called inside a tokio runtime.
    pub(super) fn start(pool: Pool<AsyncPgConnection>) -> PgBatcher {
        let (queue, jobs) = mpsc::unbounded_channel();
        tokio::spawn(serve(pool, jobs));
        PgBatcher { queue }
    }

    /// Stores `call`'s rows (see [`InsertInboxAndLease`]) in the next batch: the keys that were
    /// new, and the conversation and first new row when the lease was taken.
    ///
    /// Errors: [`StoreError::Diesel`] when the statement failed (run alone after its batch
    /// failed), [`StoreError::Pool`] when no connection could be had or the batcher stopped.
    pub(super) async fn store(&self, call: StoreCall) -> Result<Stored<String>, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.send(Lane::Interactive, Job::Store(call, reply))?;
        answer.await.map_err(|_| stopped())?
    }

    /// Commits `commit` in the next batch (see [`CommitAndNext`]); `None` when the lease was
    /// lost and nothing was written.
    ///
    /// Errors: as [`PgBatcher::store`].
    pub(super) async fn commit(&self, commit: TurnCommit) -> Result<CommitResult, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.send(commit.lane, Job::Commit(Box::new(commit), reply))?;
        answer.await.map_err(|_| stopped())?
    }

    fn send(&self, lane: Lane, job: Job) -> Result<(), StoreError> {
        self.queue.send((lane, job)).map_err(|_| stopped())
    }
}

fn stopped() -> StoreError {
    StoreError::Pool("the PostgreSQL group commit has stopped (its batch was dropped); the call was not run".into())
}

/// Gives a runner's slot back when its batch ends, even by a panic.
struct Slot {
    index: usize,
    free: mpsc::Sender<usize>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        // The channel holds one place per slot, so this never finds it full.
        let _ = self.free.try_send(self.index);
    }
}

/// Forms batches while runners are busy and starts one per free runner.
async fn serve(pool: Pool<AsyncPgConnection>, mut jobs: mpsc::UnboundedReceiver<(Lane, Job)>) {
    let (free, mut freed) = mpsc::channel::<usize>(RUNNERS);
    for index in 0..RUNNERS {
        let _ = free.try_send(index);
    }
    let salt = usize::try_from(std::process::id()).unwrap_or(0);
    let mut lanes = Lanes::<Job>::default();
    loop {
        if lanes.is_empty() {
            match jobs.recv().await {
                Some((lane, job)) => lanes.push(lane, job),
                None => return,
            }
        }
        let Some(index) = freed.recv().await else { return };
        // While every runner was busy, calls kept coming: they make this batch.
        while let Ok((lane, job)) = jobs.try_recv() {
            lanes.push(lane, job);
        }
        let (batch, bulk) = lanes.next_batch();
        let slot = Slot { index, free: free.clone() };
        let shard = i32::try_from((salt + index) % crate::stats::SHARDS.unsigned_abs() as usize).unwrap_or(0);
        let pool = pool.clone();
        tokio::spawn(async move {
            run_batch(&pool, batch, bulk, shard).await;
            drop(slot);
        });
    }
}

/// Runs `jobs` (the last `bulk` from the bulk lane) in one transaction, or alone when there is
/// one or the transaction failed, and hands out the results.
async fn run_batch(pool: &Pool<AsyncPgConnection>, mut jobs: Vec<Job>, bulk: usize, shard: i32) {
    let started = std::time::Instant::now();
    let mut conn = match pool.get().await {
        Ok(conn) => Checkout(Some(conn)),
        Err(e) => {
            let error = e.to_string();
            jobs.into_iter().for_each(|job| job.deliver(Err(StoreError::Pool(error.clone()))));
            return;
        }
    };
    let Some(c) = conn.0.as_deref_mut() else { return };
    let size = jobs.len();
    if size == 1 {
        for job in jobs {
            let done = run_alone(c, &job, shard).await;
            job.deliver(done);
        }
        return;
    }
    jobs.sort_by(|a, b| a.conversation_id().cmp(b.conversation_id()));
    match run_together(c, &jobs, now_ms(), shard).await {
        Ok(done) => {
            for (job, done) in jobs.into_iter().zip(done) {
                job.deliver(Ok(done));
            }
            tracing::debug!(
                calls = size,
                bulk,
                us = started.elapsed().as_micros() as u64,
                "PostgreSQL batch committed"
            );
        }
        Err(e) => {
            tracing::warn!(
                code = "store.group_commit_failed",
                calls = size,
                error = %e,
                "a PostgreSQL group commit failed and was rolled back; its calls run again one by one"
            );
            if Rollback.execute(c).await.is_err() {
                // The connection cannot say its transaction ended: it is not used again.
                conn.discard();
                match pool.get().await {
                    Ok(fresh) => conn = Checkout(Some(fresh)),
                    Err(e) => {
                        let error = e.to_string();
                        jobs.into_iter().for_each(|job| job.deliver(Err(StoreError::Pool(error.clone()))));
                        return;
                    }
                }
            }
            let Some(c) = conn.0.as_deref_mut() else { return };
            for job in jobs {
                let done = run_alone(c, &job, shard).await;
                job.deliver(done);
            }
        }
    }
}

/// A pooled connection that is closed, not given back, when its batch ends by a panic (its
/// transaction may still be open: closing the connection rolls it back).
struct Checkout(Option<deadpool::Object<AsyncPgConnection>>);

impl Checkout {
    fn discard(&mut self) {
        if let Some(object) = self.0.take() {
            drop(deadpool::Object::take(object));
        }
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.discard();
        }
    }
}

/// One call alone: in a transaction of its own, one statement with its counts (a commit that
/// changes holds: `BEGIN`, its holds and its commit, as a batch of one).
async fn run_alone(conn: &mut AsyncPgConnection, job: &Job, shard: i32) -> Result<Done, StoreError> {
    let now = now_ms();
    match job {
        Job::Commit(commit, _) if !commit.holds.is_empty() => {
            match run_together(conn, std::slice::from_ref(job), now, shard).await {
                Ok(mut done) => done.pop().ok_or_else(|| StoreError::Pool("a commit gave no result".into())),
                Err(e) => {
                    Rollback.execute(conn).await?;
                    Err(holds::refused_window(&e).map(|w| HoldRefused(w).into()).unwrap_or(e.into()))
                }
            }
        }
        Job::Store(call, _) => {
            let rows: Vec<StoredAndLeased> = store_statement(call, now).load(conn).await?;
            Ok(Done::Stored(stored_of(rows)))
        }
        Job::Commit(commit, _) => {
            let rows: Vec<pg_statements::Committed> = CommitAndNext::new(commit, now).load(conn).await?;
            Ok(Done::Committed(committed_of(rows)))
        }
    }
}

/// `BEGIN`, the locks of the windows the batch takes places in (sorted: see
/// [`holds::LockWindows`]), every call's statements (a commit's hold changes before it) and the
/// committed turns' counts, pipelined (one round trip), then `COMMIT` once every answer is in and
/// none failed. On `Err` the transaction may still be open: the caller rolls it back.
///
/// Locks are taken in one order by every batch: windows, then conversations (the calls are
/// sorted by conversation), then counts (in key order), so batches wait for each other but do not
/// deadlock.
async fn run_together(c: &mut AsyncPgConnection, jobs: &[Job], now: i64, shard: i32) -> QueryResult<Vec<Done>> {
    let shared: &AsyncPgConnection = c;
    // Each future sends its statement when first polled, and `join` polls them in this order;
    // a statement not prepared yet holds the connection's statement cache (a fair lock) while it
    // prepares, so the ones after it wait and keep their order.
    let begin = Begin.execute(&mut { shared });
    let commits = || {
        jobs.iter().filter_map(|job| match job {
            Job::Commit(commit, _) if !commit.holds.is_empty() => Some(&**commit),
            _ => None,
        })
    };
    let locks = holds::LockWindows::of(commits());
    let locked: futures_util::future::OptionFuture<_> =
        (!locks.windows.is_empty()).then(|| locks.execute(&mut { shared })).into();
    let calls: Vec<BoxFuture<'_, QueryResult<Done>>> = jobs
        .iter()
        .map(|job| -> BoxFuture<'_, QueryResult<Done>> {
            match job {
                Job::Store(call, _) => {
                    let rows = store_statement(call, now).load::<StoredAndLeased>(&mut { shared });
                    Box::pin(async move { Ok(Done::Stored(stored_of(rows.await?))) })
                }
                Job::Commit(commit, _) => {
                    let held: futures_util::future::OptionFuture<_> = (!commit.holds.is_empty())
                        .then(|| holds::ApplyHolds::new(commit, now).execute(&mut { shared }))
                        .into();
                    let rows = CommitAndNext::new(commit, now).without_counts().load(&mut { shared });
                    Box::pin(async move {
                        let (held, rows) = futures_util::future::join(held, rows).await;
                        held.transpose()?;
                        Ok(Done::Committed(committed_of(rows?)))
                    })
                }
            }
        })
        .collect();
    let counts = AddCounts::of(jobs, shard);
    let counted: futures_util::future::OptionFuture<_> =
        (!counts.tenants.is_empty()).then(|| counts.execute(&mut { shared })).into();
    let (begun, locked, done, counted) =
        futures_util::future::join4(begin, locked, futures_util::future::join_all(calls), counted).await;
    begun?;
    locked.transpose()?;
    // Every statement's answer is awaited (none is dropped mid-flight) before the first error.
    let done = done.into_iter().collect::<QueryResult<Vec<Done>>>()?;
    counted.transpose()?;
    Commit.execute(c).await?;
    Ok(done)
}

fn store_statement(call: &StoreCall, now: i64) -> InsertInboxAndLease<'_> {
    InsertInboxAndLease {
        insert: InsertInbox::new(&call.rows),
        conversation_id: &call.conversation_id,
        owner: &call.owner,
        until_ms: call.until_ms,
        now_ms: now,
    }
}

fn stored_of(mut rows: Vec<StoredAndLeased>) -> Stored<String> {
    match rows.pop() {
        Some(mut row) => (std::mem::take(&mut row.inserted), row.leased()),
        None => (vec![], None),
    }
}

fn committed_of(rows: Vec<pg_statements::Committed>) -> CommitResult {
    rows.into_iter().next().map(|row| {
        let next = row.next.into_row();
        Committed { released: next.is_none(), next, outbox_ids: row.outbox_ids }
    })
}

/// Adds a batch's counts to `daily_counts` in one statement, after its turns' statements in the
/// same transaction: the counts of each turn whose record is there (a turn whose lease was lost
/// wrote none), summed per (tenant, day, flow, metric) (one statement may not update a row
/// twice), taken in key order, on the runner's shard. Each turn is looked up by its key
/// (`turns (conversation_id, seq)`) in a `LATERAL ... LIMIT 1`, which the planner cannot turn
/// into a join: a prepared statement's generic plan otherwise hashed the whole `turns` table for
/// every batch, a cost that grew with every turn ever stored.
struct AddCounts<'a> {
    tenants: Vec<&'a str>,
    days: Vec<&'a str>,
    flows: Vec<&'a str>,
    metrics: Vec<&'a str>,
    ns: Vec<i64>,
    /// The turn each count belongs to: conversation, sequence number, creation time (Unix ms).
    conversations: Vec<&'a str>,
    seqs: Vec<i64>,
    created: Vec<i64>,
    shard: i32,
}

impl QueryId for AddCounts<'_> {
    type QueryId = AddCounts<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl Query for AddCounts<'_> {
    type SqlType = Untyped;
}

impl<'a> AddCounts<'a> {
    fn of(jobs: &'a [Job], shard: i32) -> AddCounts<'a> {
        let mut counts = AddCounts {
            tenants: vec![],
            days: vec![],
            flows: vec![],
            metrics: vec![],
            ns: vec![],
            conversations: vec![],
            seqs: vec![],
            created: vec![],
            shard,
        };
        for job in jobs {
            let Job::Commit(commit, _) = job else { continue };
            for k in &commit.counts {
                counts.tenants.push(commit.tenant.as_str());
                counts.days.push(&k.day);
                counts.flows.push(&k.flow);
                counts.metrics.push(&k.metric);
                counts.ns.push(k.n);
                counts.conversations.push(&commit.conversation_id);
                counts.seqs.push(commit.turn.seq);
                counts.created.push(commit.turn.created_at);
            }
        }
        counts
    }
}

impl QueryFragment<Pg> for AddCounts<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(
            "INSERT INTO daily_counts (tenant, day, flow, metric, shard, n) SELECT k.tenant, k.day, k.flow, k.metric, ",
        );
        out.push_bind_param::<Integer, _>(&self.shard)?;
        out.push_sql(", sum(k.n)::bigint FROM unnest(");
        out.push_bind_param::<Array<Text>, _>(&self.tenants)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.days)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.flows)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.metrics)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<BigInt>, _>(&self.ns)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.conversations)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<BigInt>, _>(&self.seqs)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<BigInt>, _>(&self.created)?;
        out.push_sql(
            ") AS k(tenant, day, flow, metric, n, conversation_id, seq, created_at) CROSS JOIN LATERAL (SELECT 1 \
             FROM turns t WHERE t.conversation_id = k.conversation_id AND t.seq = k.seq AND t.created_at = k.created_at \
             LIMIT 1) AS stored GROUP BY k.tenant, k.day, k.flow, k.metric ORDER BY k.tenant, k.day, k.flow, k.metric \
             ON CONFLICT (tenant, day, flow, metric, shard) DO UPDATE SET n = daily_counts.n + excluded.n",
        );
        Ok(())
    }
}

/// Declares a transaction-control statement with a fixed text and a static query id, so that
/// it is prepared once per connection and travels in the same pipeline as the batch's
/// statements.
macro_rules! control_statement {
    ($(#[$doc:meta])* $name:ident, $sql:literal) => {
        $(#[$doc])*
        struct $name;
        impl QueryId for $name {
            type QueryId = $name;
            const HAS_STATIC_QUERY_ID: bool = true;
        }
        impl Query for $name {
            type SqlType = Untyped;
        }
        impl QueryFragment<Pg> for $name {
            fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
                out.push_sql($sql);
                Ok(())
            }
        }
    };
}

control_statement!(
    /// Starts a batch's transaction.
    Begin,
    "BEGIN"
);
control_statement!(
    /// Ends a batch's transaction, keeping it.
    Commit,
    "COMMIT"
);
control_statement!(
    /// Ends a batch's transaction, undoing it (a warning, no error, when none is open).
    Rollback,
    "ROLLBACK"
);
