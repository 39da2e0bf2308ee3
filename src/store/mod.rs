//! Storage: diesel + diesel_async over PostgreSQL (production, several instances) or SQLite (the
//! embedded default). One portable schema ([`schema`]), migrations in `migrations/<backend>/` run
//! at start-up, and one [`Store`] whose queries are written once and expanded for each backend by
//! the `with_conn!` macro.
//!
//! What lives here: the inbox (durable, deduplicated inbound events), conversations (state,
//! optimistic version, lease for one-worker-at-a-time), turns (the record of every decision) and
//! the outbox (sends and ERP writes, committed in the same transaction as the state).

mod lanes;
mod pg_batch;
mod pg_statements;
pub mod schema;
mod sqlite_batch;
mod sqlite_statements;
mod sqlite_sync;

use diesel::prelude::*;
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, RecyclingMethod};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use schema::{conversations, inbox};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

diesel::define_sql_function! {
    /// SQL `lower(text)`, on both databases.
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

type SqliteConn = SyncConnectionWrapper<diesel::SqliteConnection>;

/// Storage failures, each with a stable code.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A query failed.
    #[error("store.query: {0}")]
    Query(#[from] diesel::result::Error),
    /// No connection could be had.
    #[error("store.pool: {}; check DATABASE_URL and that the database is up", without_credentials(.0))]
    Pool(String),
    /// Migrations failed.
    #[error("store.migration: {}", without_credentials(.0))]
    Migration(String),
    /// Another worker took the conversation's lease meanwhile; the turn was not committed and
    /// will be processed again.
    #[error("store.lease_lost: conversation {0} is being processed elsewhere; this turn was rolled back")]
    LeaseLost(String),
    /// The turn held a place in a visit window whose last place another conversation took
    /// first; nothing of the turn was committed. Not a failure: the worker decides the turn
    /// again with the window marked as taken.
    #[error(transparent)]
    HoldRefused(#[from] HoldRefused),
    /// DATABASE_URL is not understood.
    #[error("store.url: {:?} is neither postgres://… nor sqlite://…; see README, Configuration", without_credentials(.0))]
    Url(String),
}

impl StoreError {
    /// Whether the failure is the database's, not the work's: it could not be reached, a
    /// connection broke (a restart, a network blip), SQLite was busy, or PostgreSQL refused a
    /// serializable transaction. Trying the same work again later may succeed, so such a failure
    /// is never counted against the message being processed.
    pub fn is_transient(&self) -> bool {
        use diesel::result::{DatabaseErrorKind as Kind, Error as E};
        match self {
            StoreError::Pool(_) => true,
            StoreError::Query(E::DatabaseError(
                Kind::ClosedConnection | Kind::UnableToSendCommand | Kind::SerializationFailure,
                _,
            )) => true,
            StoreError::Query(E::BrokenTransactionManager) => true,
            // PostgreSQL's shutdown and start-up refusals (SQLSTATE 57P01–57P03) and SQLite's
            // busy database arrive without a kind of their own: known by their message.
            StoreError::Query(E::DatabaseError(Kind::Unknown, info)) => {
                let m = info.message();
                ["terminating connection", "the database system is", "database is locked", "connection"]
                    .iter()
                    .any(|needle| m.contains(needle))
            }
            _ => false,
        }
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::Query(_) => "store.query",
            StoreError::Pool(_) => "store.pool",
            StoreError::Migration(_) => "store.migration",
            StoreError::LeaseLost(_) => "store.lease_lost",
            StoreError::HoldRefused(_) => "store.hold_refused",
            StoreError::Url(_) => "store.url",
        }
    }
}

enum Pools {
    Sqlite(Pool<SqliteConn>),
    Postgres(Pool<AsyncPgConnection>),
}

/// The database.
pub struct Store {
    pools: Pools,
    /// PostgreSQL only: a few connections kept for the interactive lane's hot calls while the
    /// main pool has a queue (see [`Store::pg_conn`]).
    pg_interactive: Option<Pool<AsyncPgConnection>>,
    /// SQLite only: a read connection kept for the interactive outbox pass, which must not queue
    /// behind the reads of a burst (thousands of new conversations' first rows) on the main pool.
    sqlite_interactive_reads: Option<Pool<SqliteConn>>,
    /// SQLite only: the group commit of the hot path's calls.
    sqlite_batch: Option<sqlite_batch::Batcher>,
    /// PostgreSQL only: the group commit of the webhook's inserts and the turns' commits.
    pg_batch: Option<pg_batch::PgBatcher>,
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// PostgreSQL: whether one tenant's reads raise the row-level security wall (the role
    /// `carewell_tenant` exists and may be taken; see [`tenant_wall`]).
    pub row_security: bool,
}

/// PostgreSQL connections kept for the interactive lane (see [`Store::pg_conn`]).
const INTERACTIVE_CONNECTIONS: usize = 4;

/// Every SQLite connection's settings: write-ahead log (readers do not block the writer), wait
/// up to 5 s for the write lock instead of failing, fsync at checkpoints only (a crash loses no
/// committed transaction in WAL mode, a power cut may lose the last few), foreign keys enforced,
/// and no automatic checkpoint inside a commit: a thread of the store checkpoints beside the
/// writer (see `sqlite_batch::start_checkpointer`).
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; PRAGMA synchronous = NORMAL; \
     PRAGMA foreign_keys = ON; PRAGMA wal_autocheckpoint = 0;";

macro_rules! with_conn {
    ($store:expr, |$conn:ident| $body:expr) => {
        match &$store.pools {
            $crate::store::Pools::Sqlite(pool) => {
                let mut guard = pool.get().await.map_err(|e| $crate::store::StoreError::Pool(e.to_string()))?;
                let $conn: &mut $crate::store::SqliteConn = &mut *guard;
                $body
            }
            $crate::store::Pools::Postgres(pool) => {
                let mut guard = pool.get().await.map_err(|e| $crate::store::StoreError::Pool(e.to_string()))?;
                let $conn: &mut diesel_async::AsyncPgConnection = &mut *guard;
                $body
            }
        }
    };
}

/// Like `with_conn!`, for one tenant's reads: on PostgreSQL the body runs in a transaction that
/// raises the row-level security wall for `$tenant` first (see [`tenant_wall`]); on SQLite it is
/// `with_conn!`. The body's `?` gives [`StoreError`]s.
macro_rules! with_tenant {
    ($store:expr, $tenant:expr, |$conn:ident| $body:expr) => {
        match &$store.pools {
            $crate::store::Pools::Sqlite(_) => with_conn!($store, |$conn| $body),
            $crate::store::Pools::Postgres(pool) => {
                let mut guard = pool.get().await.map_err(|e| $crate::store::StoreError::Pool(e.to_string()))?;
                let conn: &mut diesel_async::AsyncPgConnection = &mut *guard;
                let wall = $store.row_security;
                let tenant: String = $tenant.as_str().to_string();
                diesel_async::AsyncConnection::transaction::<_, $crate::store::StoreError, _>(
                    conn,
                    async move |$conn| {
                        $crate::store::tenant_wall::enter($conn, &tenant, wall).await?;
                        Ok::<_, $crate::store::StoreError>($body)
                    },
                )
                .await?
            }
        }
    };
}

mod console;
mod erasure;
mod flags;
mod handoffs;
mod holds;
mod knowledge;
mod measures;
mod operator_reads;
mod outbox_queue;
mod quarantine;
mod records;
mod replies;
mod rows;
mod search;
mod tenant_wall;
mod url;
mod web;
pub use console::{ApiKeyRow, AuditFilter, AuditRow, NewApiKey, NewAudit, UserRow, secret_digest};
pub use erasure::ConversationRows;
pub use flags::{FlagRow, NewFlag};
pub use handoffs::{HandoffRow, HandoffStatus, NewHandoff, OutboxRecord};
pub use holds::{HoldRefused, LiveHold};
pub use knowledge::{KnowledgeRevision, KnowledgeSource};
pub use outbox_queue::{Claim, DUE_PER_CONVERSATION, NewOutbox, OutboxKind, OutboxRow, OutboxStatus};
pub use quarantine::{QuarantineKind, QuarantineRow};
pub use replies::{DraftRow, DraftStatus, NewDraft, Reviewed};

pub use rows::{Committed, ConversationRow, InboxRow, LookupSnapshot, NewInbox, NewTurn, Stored, TurnCommit, TurnRow};
pub use search::TurnSearch;
pub use url::{DatabaseUrl, without_credentials};
pub use web::{WEB_SESSION_IDLE_MS, WebSessionRow};

/// How soon a hot-path call should run when the database is busy.
///
/// Under a burst (a promotion answered by thousands at once, thousands of LLM answers arriving
/// together), calls queue in front of the database. SQLite's group commit serves the interactive
/// lane first and keeps a quarter of each batch for the bulk lane, so a customer tapping through a
/// journey is not kept behind the burst and the burst still moves. PostgreSQL runs calls on its
/// pool as they come; while callers queue for it, interactive calls use a few reserved
/// connections instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lane {
    /// Quick work a customer is waiting on: webhook inserts, the turns of button and list
    /// replies (and locations, agents' actions, ERP answers), and the outbox claims and marks of
    /// their replies.
    #[default]
    Interactive,
    /// Work that keeps its place in arrival order: typed text and media (a promotion's answers
    /// come typed, by the thousand), turns that waited on the LLM (their customer already waits
    /// seconds), conversations found by polling rather than woken by a webhook, and the
    /// outbox's backlog.
    Bulk,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

impl Store {
    /// Connects, runs pending migrations, and returns the store.
    ///
    /// Errors: [`StoreError::Pool`] if the database cannot be reached, [`StoreError::Migration`]
    /// if a migration fails.
    pub async fn connect(url: &DatabaseUrl, pool_size: usize) -> Result<Store, StoreError> {
        match url {
            DatabaseUrl::Sqlite(path) => {
                if let Some(parent) = std::path::Path::new(path).parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| StoreError::Pool(format!("cannot create {}: {e}", parent.display())))?;
                }
                let p = path.clone();
                tokio::task::spawn_blocking(move || -> Result<(), StoreError> {
                    let mut conn =
                        diesel::SqliteConnection::establish(&p).map_err(|e| StoreError::Pool(e.to_string()))?;
                    diesel::connection::SimpleConnection::batch_execute(&mut conn, "PRAGMA journal_mode = WAL;")
                        .map_err(|e| StoreError::Migration(e.to_string()))?;
                    conn.run_pending_migrations(SQLITE_MIGRATIONS).map_err(|e| StoreError::Migration(e.to_string()))?;
                    Ok(())
                })
                .await
                .map_err(|e| StoreError::Migration(e.to_string()))??;
                let sqlite_pool = || {
                    let mut config = diesel_async::pooled_connection::ManagerConfig::<SqliteConn>::default();
                    // No `SELECT 1` on each checkout (a blocking-pool hop each time); see PostgreSQL below.
                    config.recycling_method = RecyclingMethod::Fast;
                    config.custom_setup = Box::new(|url| {
                        Box::pin(async move {
                            let mut conn = SqliteConn::establish(url).await?;
                            conn.batch_execute(SQLITE_PRAGMAS)
                                .await
                                .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                            Ok(conn)
                        })
                    });
                    let manager = AsyncDieselConnectionManager::<SqliteConn>::new_with_config(path, config);
                    Pool::builder(manager).max_size(1).build().map_err(|e| StoreError::Pool(e.to_string()))
                };
                // SQLite has one writer: one connection for the calls outside the group commit
                // avoids "database is locked" between our own transactions; WAL lets other
                // processes (and the reserved interactive reader) read meanwhile.
                let pool = sqlite_pool()?;
                let interactive_reads = sqlite_pool()?;
                let _ = pool_size;
                Ok(Store {
                    sqlite_batch: Some(sqlite_batch::Batcher::start(path)?),
                    pg_batch: None,
                    pools: Pools::Sqlite(pool),
                    sqlite_interactive_reads: Some(interactive_reads),
                    pg_interactive: None,
                    backend: "sqlite",
                    row_security: false,
                })
            }
            DatabaseUrl::Postgres(u) => {
                let url = u.clone();
                tokio::task::spawn_blocking(move || -> Result<(), StoreError> {
                    use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
                    let mut conn = <AsyncConnectionWrapper<AsyncPgConnection> as diesel::Connection>::establish(&url)
                        .map_err(|e| StoreError::Pool(e.to_string()))?;
                    conn.run_pending_migrations(POSTGRES_MIGRATIONS)
                        .map_err(|e| StoreError::Migration(e.to_string()))?;
                    Ok(())
                })
                .await
                .map_err(|e| StoreError::Migration(e.to_string()))??;
                // No test query on each checkout: the default (`Verified`) sent `SELECT 1` before
                // every use, a dozen extra round trips per message under load. A connection that
                // died fails its next statement, the pool drops it (diesel_async marks it
                // broken), and the turn or send is retried like any other store error.
                let pg_pool = |size: usize| {
                    let mut config = diesel_async::pooled_connection::ManagerConfig::<AsyncPgConnection>::default();
                    config.recycling_method = RecyclingMethod::Fast;
                    let manager =
                        AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(u.as_str(), config);
                    Pool::builder(manager).max_size(size).build().map_err(|e| StoreError::Pool(e.to_string()))
                };
                let pool = pg_pool(pool_size.max(2))?;
                let row_security = {
                    let mut conn = pool.get().await.map_err(|e| StoreError::Pool(e.to_string()))?;
                    tenant_wall::available(&mut conn).await?
                };
                if !row_security {
                    tracing::warn!(
                        code = "store.row_security_off",
                        "the role carewell_tenant is missing or cannot be taken: tenants are kept apart by the store's filters only; run the migrations as a user with CREATEROLE to raise the second wall"
                    );
                }
                Ok(Store {
                    pools: Pools::Postgres(pool),
                    pg_interactive: Some(pg_pool(INTERACTIVE_CONNECTIONS)?),
                    sqlite_interactive_reads: None,
                    sqlite_batch: None,
                    pg_batch: Some(pg_batch::PgBatcher::start(pg_pool(pg_batch::RUNNERS)?)),
                    backend: "postgres",
                    row_security,
                })
            }
        }
    }

    /// PostgreSQL: a connection for a hot-path call in `lane`. An interactive call takes one of
    /// the reserved connections when the main pool has callers queued (a burst of bulk turns),
    /// and otherwise shares the main pool like every call.
    async fn pg_conn(
        &self,
        pool: &Pool<AsyncPgConnection>,
        lane: Lane,
    ) -> Result<diesel_async::pooled_connection::deadpool::Object<AsyncPgConnection>, StoreError> {
        let chosen = match (&self.pg_interactive, lane) {
            (Some(reserved), Lane::Interactive) => {
                let st = pool.status();
                if st.waiting > 0 || (st.available == 0 && st.size >= st.max_size) { reserved } else { pool }
            }
            _ => pool,
        };
        chosen.get().await.map_err(|e| StoreError::Pool(e.to_string()))
    }

    /// PostgreSQL's group commit (see `pg_batch`).
    fn pg_batcher(&self) -> Result<&pg_batch::PgBatcher, StoreError> {
        self.pg_batch
            .as_ref()
            .ok_or_else(|| StoreError::Pool("the PostgreSQL group commit is not running on this store".into()))
    }

    /// Runs a hot-path call on SQLite through the group commit (see `sqlite_batch`).
    async fn sqlite_group<R: Send + 'static>(
        &self,
        lane: Lane,
        call: impl FnOnce(&mut diesel::SqliteConnection) -> diesel::QueryResult<R> + Send + 'static,
    ) -> Result<diesel::QueryResult<R>, StoreError> {
        match &self.sqlite_batch {
            Some(batch) => batch.run(lane, call).await,
            None => Err(StoreError::Pool("the SQLite group commit is not running on this store".into())),
        }
    }

    /// Stores inbound events; returns, for each, whether it was new (false: a duplicate, which
    /// changes nothing).
    pub async fn insert_inbox(&self, rows: &[NewInbox]) -> Result<Vec<bool>, StoreError> {
        if rows.is_empty() {
            return Ok(vec![]);
        }
        // PostgreSQL: one prepared statement for any batch, returning the keys that were new. SQLite
        // (whose batch insert diesel cannot combine with ON CONFLICT): one statement per row.
        let inserted: Vec<String> = match &self.pools {
            Pools::Postgres(pool) => {
                let mut conn = self.pg_conn(pool, Lane::Interactive).await?;
                let keys: Vec<pg_statements::StoredKey> =
                    pg_statements::InsertInbox::new(rows).load(&mut *conn).await?;
                keys.into_iter().map(|k| k.dedup_key).collect()
            }
            Pools::Sqlite(_) => {
                let rows = rows.to_vec();
                self.sqlite_group(Lane::Interactive, move |c| sqlite_sync::insert_inbox(c, &rows)).await??
            }
        };
        let inserted: std::collections::HashSet<String> = inserted.into_iter().collect();
        Ok(rows.iter().map(|r| inserted.contains(&r.dedup_key)).collect())
    }

    /// Stores one conversation's inbound events like [`Store::insert_inbox`] (see [`Stored`]) and, in the same
    /// statement (SQLite: the same trip to the writer), takes the conversation's lease for
    /// `owner` until `until_ms` when that is safe at once: the conversation exists, an event was
    /// new, its lease is free or ended and no earlier event of it is pending. Returns, for each
    /// event, whether it was new, and with the lease the conversation and the first new row, for
    /// the worker to process without reading them again.
    ///
    /// Errors: as [`Store::insert_inbox`]; `rows` must all belong to `conversation_id`.
    pub async fn insert_inbox_and_lease(
        &self,
        rows: &[NewInbox],
        conversation_id: &str,
        owner: &str,
        until_ms: i64,
    ) -> Result<Stored<bool>, StoreError> {
        if rows.is_empty() {
            return Ok((vec![], None));
        }
        let (inserted, leased) = match &self.pools {
            Pools::Postgres(_) => {
                let call = pg_batch::StoreCall {
                    rows: rows.to_vec(),
                    conversation_id: conversation_id.to_string(),
                    owner: owner.to_string(),
                    until_ms,
                };
                self.pg_batcher()?.store(call).await?
            }
            Pools::Sqlite(_) => {
                let (rows, cid, own) = (rows.to_vec(), conversation_id.to_string(), owner.to_string());
                self.sqlite_group(Lane::Interactive, move |c| {
                    sqlite_sync::insert_inbox_and_lease(c, &rows, &cid, &own, until_ms)
                })
                .await??
            }
        };
        let inserted: std::collections::HashSet<String> = inserted.into_iter().collect();
        Ok((rows.iter().map(|r| inserted.contains(&r.dedup_key)).collect(), leased))
    }

    /// Takes an existing conversation's lease, loads it and reads its oldest pending inbox row
    /// (SQLite: in one trip to the blocking pool); `None` when it does not exist yet or another
    /// live owner holds it. `lane`: how soon, when the database is busy.
    pub async fn lease_load_next(
        &self,
        conversation_id: &str,
        owner: &str,
        until_ms: i64,
        lane: Lane,
    ) -> Result<Option<(ConversationRow, Option<InboxRow>)>, StoreError> {
        match &self.pools {
            Pools::Sqlite(_) => {
                let (cid, own) = (conversation_id.to_string(), owner.to_string());
                Ok(self.sqlite_group(lane, move |c| sqlite_sync::lease_load_next(c, &cid, &own, until_ms)).await??)
            }
            Pools::Postgres(pool) => {
                let mut conn = self.pg_conn(pool, lane).await?;
                let statement = pg_statements::LeaseLoadNext { conversation_id, owner, until_ms, now_ms: now_ms() };
                let rows: Vec<pg_statements::Leased> = statement.load(&mut *conn).await?;
                Ok(rows.into_iter().next().map(|r| (r.conversation, r.next.into_row())))
            }
        }
    }

    /// Commits a turn (see [`Store::commit_turn`]), then reads the conversation's next pending
    /// row; with none left, gives the lease back. SQLite does it all in one trip to the blocking
    /// pool, PostgreSQL in one prepared statement.
    ///
    /// Errors: [`StoreError::LeaseLost`] when another worker changed the conversation meanwhile
    /// (nothing written).
    pub async fn commit_and_next(&self, commit: TurnCommit) -> Result<Committed, StoreError> {
        let id = commit.conversation_id.clone();
        let lane = commit.lane;
        let committed = match &self.pools {
            Pools::Sqlite(_) => match self.sqlite_group(lane, move |c| sqlite_sync::commit_and_next(c, &commit)).await?
            {
                Ok(done) => Some(done),
                Err(diesel::result::Error::RollbackTransaction) => None,
                Err(e) => return Err(holds::refused_window(&e).map(|w| HoldRefused(w).into()).unwrap_or(e.into())),
            },
            Pools::Postgres(_) => self.pg_batcher()?.commit(commit).await?,
        };
        committed.ok_or(StoreError::LeaseLost(id))
    }

    /// Conversations that nobody is working on although they have unprocessed inbox rows stored
    /// before `stored_before` (Unix ms): no live lease (free, or ended before `now`), oldest
    /// row first, at most `limit`. Rows a process is handling as they arrive do not show up, so
    /// a safety poll of several processes does not chase each other's conversations.
    pub async fn orphaned_conversations(
        &self,
        stored_before: i64,
        now: i64,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        use diesel::dsl::{exists, not};
        let ids: Vec<String> = with_conn!(self, |conn| {
            inbox::table
                .filter(inbox::processed_at.is_null())
                .filter(inbox::received_at.lt(stored_before))
                .filter(not(exists(
                    conversations::table
                        .filter(conversations::id.eq(inbox::conversation_id))
                        .filter(conversations::lease_owner.is_not_null())
                        .filter(conversations::lease_until.ge(now)),
                )))
                .order(inbox::id)
                .select(inbox::conversation_id)
                .limit(limit * 4)
                .load(conn)
                .await?
        });
        let mut seen = std::collections::HashSet::new();
        Ok(ids.into_iter().filter(|i| seen.insert(i.clone())).take(limit as usize).collect())
    }

    /// The oldest unprocessed inbox row of a conversation.
    pub async fn next_inbox(&self, conversation_id: &str) -> Result<Option<InboxRow>, StoreError> {
        let id = conversation_id.to_string();
        Ok(with_conn!(self, |conn| {
            inbox::table
                .filter(inbox::conversation_id.eq(&id))
                .filter(inbox::processed_at.is_null())
                .order(inbox::id)
                .select(InboxRow::as_select())
                .first(conn)
                .await
                .optional()?
        }))
    }

    /// Takes the conversation's lease for `owner` until `until_ms`, creating the conversation with
    /// `initial_state` and as `tenant`'s if it is new. Returns false when another live owner
    /// holds it.
    #[allow(clippy::too_many_arguments)]
    pub async fn acquire_lease(
        &self,
        tenant: &crate::tenant::TenantId,
        conversation_id: &str,
        customer: &str,
        phone_number_id: &str,
        initial_state: &str,
        owner: &str,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        let tenant = tenant.as_str().to_string();
        let (cid, cust, pnid, st, own) = (
            conversation_id.to_string(),
            customer.to_string(),
            phone_number_id.to_string(),
            initial_state.to_string(),
            owner.to_string(),
        );
        let pool = match &self.pools {
            Pools::Sqlite(_) => {
                return Ok(self
                    .sqlite_group(Lane::Interactive, move |c| {
                        sqlite_sync::acquire_lease(c, &tenant, &cid, &cust, &pnid, &st, &own, now, until_ms)
                    })
                    .await??);
            }
            Pools::Postgres(pool) => pool,
        };
        let mut guard = pool.get().await.map_err(|e| StoreError::Pool(e.to_string()))?;
        let conn: &mut AsyncPgConnection = &mut guard;
        diesel::insert_into(conversations::table)
            .values((
                conversations::tenant.eq(&tenant),
                conversations::id.eq(&cid),
                conversations::customer.eq(&cust),
                conversations::phone_number_id.eq(&pnid),
                conversations::state.eq(&st),
                conversations::version.eq(0i64),
                conversations::created_at.eq(now),
                conversations::updated_at.eq(now),
            ))
            .on_conflict(conversations::id)
            .do_nothing()
            .execute(conn)
            .await?;
        let n = diesel::update(conversations::table)
            .filter(conversations::id.eq(&cid))
            .filter(
                conversations::lease_owner
                    .is_null()
                    .or(conversations::lease_until.lt(now))
                    .or(conversations::lease_owner.eq(&own)),
            )
            .set((conversations::lease_owner.eq(Some(&own)), conversations::lease_until.eq(Some(until_ms))))
            .execute(conn)
            .await?;
        Ok(n == 1)
    }

    /// Gives the lease back.
    pub async fn release_lease(&self, conversation_id: &str, owner: &str) -> Result<(), StoreError> {
        if let Pools::Postgres(pool) = &self.pools {
            let mut conn = pool.get().await.map_err(|e| StoreError::Pool(e.to_string()))?;
            pg_statements::ReleaseLease { conversation_id, owner }.execute(&mut *conn).await?;
            return Ok(());
        }
        let (cid, own) = (conversation_id.to_string(), owner.to_string());
        with_conn!(self, |conn| {
            diesel::update(conversations::table)
                .filter(conversations::id.eq(&cid))
                .filter(conversations::lease_owner.eq(&own))
                .set((conversations::lease_owner.eq(None::<String>), conversations::lease_until.eq(None::<i64>)))
                .execute(conn)
                .await?;
            Ok(())
        })
    }

    /// Commits a turn: new state (only if the version and lease still hold), the inbox row marked
    /// processed, the turn record and the outbox rows, all or nothing; like
    /// [`Store::commit_and_next`], it gives the lease back when nothing else is pending.
    ///
    /// Errors: [`StoreError::LeaseLost`] when another worker changed the conversation meanwhile.
    pub async fn commit_turn(&self, commit: TurnCommit) -> Result<(), StoreError> {
        self.commit_and_next(commit).await.map(|_| ())
    }

    /// Stores an event for a conversation (agent actions, ERP notices); false if its key was seen.
    pub async fn insert_event(&self, event: NewInbox) -> Result<bool, StoreError> {
        let fresh = self.insert_inbox(&[event]).await?;
        Ok(fresh.iter().any(|f| *f))
    }

    /// Counts a failed attempt at an inbox row.
    pub async fn inbox_failed(&self, inbox_id: i64, error: &str) -> Result<i32, StoreError> {
        let e = error.to_string();
        with_conn!(self, |conn| {
            diesel::update(inbox::table.find(inbox_id))
                .set((inbox::attempts.eq(inbox::attempts + 1), inbox::last_error.eq(Some(&e))))
                .execute(conn)
                .await?;
            Ok(inbox::table.find(inbox_id).select(inbox::attempts).first(conn).await?)
        })
    }
}
