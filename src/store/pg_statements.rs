//! The PostgreSQL statements of the hot path, each with a fixed SQL text, so that a connection
//! prepares each one once and then only binds and executes it.
//!
//! Why they are written by hand: diesel caches a prepared statement only when its text cannot
//! vary, and it marks every `UPDATE` (a changeset may skip `None` fields) and every `INSERT` of
//! an `Insertable` struct (a field may become `DEFAULT`) as not cacheable. Each of those was
//! parsed, planned and described anew on every execution: two round trips and PostgreSQL's parser
//! and planner for each of the ~10 statements of a message (seen in `perf` as about half of the
//! database's CPU under load). Each type here has a static [`QueryId`], so diesel_async keys its
//! statement cache by the type, and any number of rows travels as arrays (`unnest`), so one text
//! serves every batch size.
//!
//! Each statement also does in one round trip what took several: taking the lease returns the
//! next pending inbox row; committing a turn writes the state, the inbox mark, the turn record and
//! the outbox rows and the dashboard's counts, reads the next pending row and gives the lease back
//! when there is none, as one atomic statement (no `BEGIN`/`COMMIT`).

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text, Untyped};
use diesel::{QueryResult, QueryableByName};

use super::{ConversationRow, InboxRow, NewInbox, TurnCommit};

/// Gives a statement type a static query id (its cache key) and makes it a query returning rows
/// read by name.
macro_rules! fixed_statement {
    ($name:ident) => {
        impl QueryId for $name<'_> {
            type QueryId = $name<'static>;
            const HAS_STATIC_QUERY_ID: bool = true;
        }
        impl Query for $name<'_> {
            type SqlType = Untyped;
        }
    };
}

/// [`fixed_statement!`] for a statement type without a lifetime.
macro_rules! fixed_statement_owned {
    ($name:ident) => {
        impl QueryId for $name {
            type QueryId = $name;
            const HAS_STATIC_QUERY_ID: bool = true;
        }
        impl Query for $name {
            type SqlType = Untyped;
        }
    };
}

/// The columns of a conversation row, in [`ConversationRow`]'s order.
const CONVERSATION_COLUMNS: &str = "id, customer, phone_number_id, state, version, lease_owner, lease_until, \
     last_inbound_at, created_at, updated_at, wake_at";

/// The oldest pending inbox row `i` (possibly absent), with its columns renamed `next_*`.
const NEXT_COLUMNS: &str = "i.id AS next_id, i.dedup_key AS next_dedup_key, \
     i.conversation_id AS next_conversation_id, i.phone_number_id AS next_phone_number_id, \
     i.event AS next_event, i.received_at AS next_received_at, i.processed_at AS next_processed_at, \
     i.attempts AS next_attempts, i.last_error AS next_last_error";

/// A conversation's next pending inbox row, as read beside another row (all columns nullable:
/// there may be none).
#[derive(Debug, QueryableByName)]
pub(super) struct NextInbox {
    #[diesel(sql_type = Nullable<BigInt>)]
    next_id: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    next_dedup_key: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    next_conversation_id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    next_phone_number_id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    next_event: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    next_received_at: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    next_processed_at: Option<i64>,
    #[diesel(sql_type = Nullable<Integer>)]
    next_attempts: Option<i32>,
    #[diesel(sql_type = Nullable<Text>)]
    next_last_error: Option<String>,
}

impl NextInbox {
    /// The row, if there was one.
    pub(super) fn into_row(self) -> Option<InboxRow> {
        Some(InboxRow {
            id: self.next_id?,
            dedup_key: self.next_dedup_key?,
            conversation_id: self.next_conversation_id?,
            phone_number_id: self.next_phone_number_id?,
            event: self.next_event?,
            received_at: self.next_received_at?,
            processed_at: self.next_processed_at,
            attempts: self.next_attempts?,
            last_error: self.next_last_error,
        })
    }
}

/// What [`LeaseLoadNext`] returns: the conversation and its next pending row.
#[derive(Debug, QueryableByName)]
pub(super) struct Leased {
    #[diesel(embed)]
    pub conversation: ConversationRow,
    #[diesel(embed)]
    pub next: NextInbox,
}

/// Takes an existing conversation's lease (free, expired or already ours), returning the row and
/// its oldest pending inbox row; no row when the conversation does not exist or another live
/// owner holds it.
pub(super) struct LeaseLoadNext<'a> {
    pub conversation_id: &'a str,
    pub owner: &'a str,
    /// Unix ms.
    pub until_ms: i64,
    /// Unix ms: a lease that ended before this is free.
    pub now_ms: i64,
}
fixed_statement!(LeaseLoadNext);

impl QueryFragment<Pg> for LeaseLoadNext<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("WITH c AS (UPDATE conversations SET lease_owner = ");
        out.push_bind_param::<Text, _>(self.owner)?;
        out.push_sql(", lease_until = ");
        out.push_bind_param::<BigInt, _>(&self.until_ms)?;
        out.push_sql(" WHERE id = ");
        out.push_bind_param::<Text, _>(self.conversation_id)?;
        out.push_sql(" AND (lease_owner IS NULL OR lease_until < ");
        out.push_bind_param::<BigInt, _>(&self.now_ms)?;
        out.push_sql(" OR lease_owner = ");
        out.push_bind_param::<Text, _>(self.owner)?;
        out.push_sql(") RETURNING ");
        out.push_sql(CONVERSATION_COLUMNS);
        out.push_sql(") SELECT c.*, ");
        out.push_sql(NEXT_COLUMNS);
        out.push_sql(
            " FROM c LEFT JOIN LATERAL (SELECT * FROM inbox WHERE inbox.conversation_id = c.id \
             AND inbox.processed_at IS NULL ORDER BY inbox.id LIMIT 1) i ON true",
        );
        Ok(())
    }
}

/// What [`CommitAndNext`] returns when it committed: the next pending row, if any (with none, the
/// lease was given back in the same statement).
#[derive(Debug, QueryableByName)]
pub(super) struct Committed {
    #[diesel(sql_type = Text)]
    #[allow(dead_code)]
    pub committed: String,
    #[diesel(embed)]
    pub next: NextInbox,
    /// The queued outbox rows' ids, in queue order.
    #[diesel(sql_type = Array<BigInt>)]
    pub outbox_ids: Vec<i64>,
}

/// Commits a turn in one statement: the state (only if the version and lease still hold), the
/// inbox row marked processed, the turn record, the outbox rows (a key already queued fails the
/// whole statement: an effect is never dropped), the lookup snapshot the record names (if new), and — when no other row of the
/// conversation is pending — the lease given back.
/// Returns no row when the version or lease no longer held (nothing written).
///
/// The pending row is read in the statement's snapshot, where the row being processed still
/// looks pending, hence `id <> inbox_id`. A row stored after that snapshot is not lost: its
/// webhook's lease attempt waits for this statement's row lock, then finds the lease free.
pub(super) struct CommitAndNext<'a> {
    pub commit: &'a TurnCommit,
    /// Unix ms.
    pub now_ms: i64,
    pub last_inbound_at: Option<i64>,
    pub outbox_conversations: Vec<&'a str>,
    pub outbox_kinds: Vec<&'a str>,
    pub outbox_keys: Vec<&'a str>,
    pub outbox_payloads: Vec<&'a str>,
    pub outbox_statuses: Vec<&'a str>,
    pub outbox_due: Vec<i64>,
    pub outbox_created: Vec<i64>,
    pub outbox_updated: Vec<i64>,
    pub outbox_owners: Vec<Option<&'a str>>,
    pub outbox_tokens: Vec<i64>,
    pub outbox_attempts: Vec<i32>,
    pub snapshot_hash: Option<&'a str>,
    pub snapshot_body: Option<&'a str>,
    pub count_days: Vec<&'a str>,
    pub count_flows: Vec<&'a str>,
    pub count_metrics: Vec<&'a str>,
    pub count_ns: Vec<i64>,
    /// The business the counts are of.
    pub count_tenant: &'a str,
    pub count_shard: i32,
}
fixed_statement!(CommitAndNext);

impl<'a> CommitAndNext<'a> {
    /// The statement for `commit`, at `now_ms`.
    pub(super) fn new(commit: &'a TurnCommit, now_ms: i64) -> Self {
        let rows = &commit.outbox;
        CommitAndNext {
            commit,
            now_ms,
            last_inbound_at: commit.last_inbound_at.or(commit.previous_inbound_at),
            outbox_conversations: rows.iter().map(|r| r.conversation_id.as_str()).collect(),
            outbox_kinds: rows.iter().map(|r| r.kind.as_str()).collect(),
            outbox_keys: rows.iter().map(|r| r.idempotency_key.as_str()).collect(),
            outbox_payloads: rows.iter().map(|r| r.payload.as_str()).collect(),
            outbox_statuses: rows.iter().map(|r| r.status.as_str()).collect(),
            outbox_due: rows.iter().map(|r| r.next_attempt_at).collect(),
            outbox_created: rows.iter().map(|r| r.created_at).collect(),
            outbox_updated: rows.iter().map(|r| r.updated_at).collect(),
            outbox_owners: rows.iter().map(|r| r.claim_owner.as_deref()).collect(),
            outbox_tokens: rows.iter().map(|r| r.claim_token).collect(),
            outbox_attempts: rows.iter().map(|r| r.attempts).collect(),
            snapshot_hash: commit.lookup_snapshot.as_ref().map(|s| s.hash.as_str()),
            snapshot_body: commit.lookup_snapshot.as_ref().map(|s| s.body.as_str()),
            count_days: commit.counts.iter().map(|k| k.day.as_str()).collect(),
            count_flows: commit.counts.iter().map(|k| k.flow.as_str()).collect(),
            count_metrics: commit.counts.iter().map(|k| k.metric.as_str()).collect(),
            count_ns: commit.counts.iter().map(|k| k.n).collect(),
            count_tenant: commit.tenant.as_str(),
            count_shard: crate::stats::shard_of(&commit.conversation_id),
        }
    }
}

impl CommitAndNext<'_> {
    /// The statement without the dashboard's counts, for a group commit that adds the counts of
    /// all its turns in one statement at its end (see `pg_batch`).
    pub(super) fn without_counts(mut self) -> Self {
        self.count_days.clear();
        self.count_flows.clear();
        self.count_metrics.clear();
        self.count_ns.clear();
        self
    }
}

impl QueryFragment<Pg> for CommitAndNext<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let c = self.commit;
        let t = &c.turn;
        out.push_sql("WITH i AS (SELECT * FROM inbox WHERE conversation_id = ");
        out.push_bind_param::<Text, _>(&c.conversation_id)?;
        out.push_sql(" AND processed_at IS NULL AND id <> ");
        out.push_bind_param::<BigInt, _>(&c.inbox_id)?;
        out.push_sql(" ORDER BY id LIMIT 1), c AS (UPDATE conversations SET state = ");
        out.push_bind_param::<Text, _>(&c.state)?;
        out.push_sql(", version = version + 1, updated_at = ");
        out.push_bind_param::<BigInt, _>(&self.now_ms)?;
        out.push_sql(", wake_at = ");
        out.push_bind_param::<Nullable<BigInt>, _>(&c.wake_at)?;
        out.push_sql(", last_inbound_at = ");
        out.push_bind_param::<Nullable<BigInt>, _>(&self.last_inbound_at)?;
        out.push_sql(
            ", lease_owner = CASE WHEN EXISTS (SELECT 1 FROM i) THEN lease_owner END, \
             lease_until = CASE WHEN EXISTS (SELECT 1 FROM i) THEN lease_until END WHERE id = ",
        );
        out.push_bind_param::<Text, _>(&c.conversation_id)?;
        out.push_sql(" AND version = ");
        out.push_bind_param::<BigInt, _>(&c.expected_version)?;
        out.push_sql(" AND lease_owner = ");
        out.push_bind_param::<Text, _>(&c.owner)?;
        out.push_sql(" RETURNING id), done AS (UPDATE inbox SET processed_at = ");
        out.push_bind_param::<BigInt, _>(&self.now_ms)?;
        out.push_sql(" WHERE id = ");
        out.push_bind_param::<BigInt, _>(&c.inbox_id)?;
        out.push_sql(
            " AND EXISTS (SELECT 1 FROM c)), turn AS (INSERT INTO turns (tenant, conversation_id, seq, inbox_id, \
             flow, step_before, step_after, outcome, record, created_at) SELECT ",
        );
        out.push_bind_param::<Text, _>(&t.tenant)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&t.conversation_id)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, _>(&t.seq)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, _>(&t.inbox_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Text>, _>(&t.flow)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&t.step_before)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&t.step_after)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&t.outcome)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&t.record)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, _>(&t.created_at)?;
        out.push_sql(
            " FROM c), queued AS (INSERT INTO outbox (tenant, conversation_id, kind, idempotency_key, payload, \
             status, next_attempt_at, created_at, updated_at, claim_owner, claim_token, attempts) SELECT ",
        );
        out.push_bind_param::<Text, _>(&self.count_tenant)?;
        out.push_sql(
            ", q.conversation_id, q.kind, q.key, q.payload, q.status, q.due, q.created, q.updated, q.owner, \
             q.token, q.attempts FROM c CROSS JOIN unnest(",
        );
        out.push_bind_param::<Array<Text>, _>(&self.outbox_conversations)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.outbox_kinds)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.outbox_keys)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.outbox_payloads)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.outbox_statuses)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<BigInt>, _>(&self.outbox_due)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<BigInt>, _>(&self.outbox_created)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<BigInt>, _>(&self.outbox_updated)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.outbox_owners)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<BigInt>, _>(&self.outbox_tokens)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Integer>, _>(&self.outbox_attempts)?;
        out.push_sql(
            ") WITH ORDINALITY AS q(conversation_id, kind, key, payload, status, due, created, updated, owner, \
             token, attempts, n) ORDER BY q.n RETURNING id), snap AS (INSERT INTO \
             lookup_snapshots (tenant, hash, body, created_at) SELECT ",
        );
        out.push_bind_param::<Text, _>(&self.count_tenant)?;
        out.push_sql(", h, b, ");
        out.push_bind_param::<BigInt, _>(&self.now_ms)?;
        out.push_sql(" FROM c CROSS JOIN (SELECT ");
        out.push_bind_param::<Nullable<Text>, _>(&self.snapshot_hash)?;
        out.push_sql("::text AS h, ");
        out.push_bind_param::<Nullable<Text>, _>(&self.snapshot_body)?;
        out.push_sql(
            "::text AS b) s WHERE s.h IS NOT NULL ON CONFLICT (tenant, hash) DO NOTHING), counted AS (INSERT INTO \
             daily_counts (tenant, day, flow, metric, shard, n) SELECT ",
        );
        out.push_bind_param::<Text, _>(&self.count_tenant)?;
        out.push_sql(", k.day, k.flow, k.metric, ");
        out.push_bind_param::<Integer, _>(&self.count_shard)?;
        out.push_sql(", k.n FROM c CROSS JOIN unnest(");
        out.push_bind_param::<Array<Text>, _>(&self.count_days)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.count_flows)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.count_metrics)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<BigInt>, _>(&self.count_ns)?;
        out.push_sql(
            ") AS k(day, flow, metric, n) ON CONFLICT (tenant, day, flow, metric, shard) DO UPDATE SET \
             n = daily_counts.n + excluded.n) SELECT c.id AS committed, ",
        );
        out.push_sql(NEXT_COLUMNS);
        out.push_sql(", ARRAY(SELECT id FROM queued ORDER BY id) AS outbox_ids FROM c LEFT JOIN i ON true");
        Ok(())
    }
}

/// A dedup key returned by [`InsertInbox`].
#[derive(Debug, QueryableByName)]
pub(super) struct StoredKey {
    #[diesel(sql_type = Text)]
    pub dedup_key: String,
}

/// Stores inbox rows in arrival order, skipping keys already stored; returns the new keys.
pub(super) struct InsertInbox<'a> {
    tenants: Vec<&'a str>,
    keys: Vec<&'a str>,
    conversations: Vec<&'a str>,
    numbers: Vec<&'a str>,
    events: Vec<&'a str>,
    received: Vec<i64>,
}
fixed_statement!(InsertInbox);

impl<'a> InsertInbox<'a> {
    /// The statement for `rows`.
    pub(super) fn new(rows: &'a [NewInbox]) -> Self {
        InsertInbox {
            tenants: rows.iter().map(|r| r.tenant.as_str()).collect(),
            keys: rows.iter().map(|r| r.dedup_key.as_str()).collect(),
            conversations: rows.iter().map(|r| r.conversation_id.as_str()).collect(),
            numbers: rows.iter().map(|r| r.phone_number_id.as_str()).collect(),
            events: rows.iter().map(|r| r.event.as_str()).collect(),
            received: rows.iter().map(|r| r.received_at).collect(),
        }
    }
}

impl QueryFragment<Pg> for InsertInbox<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.walk_rows(&mut out)?;
        out.push_sql(" RETURNING dedup_key");
        Ok(())
    }
}

impl<'a> InsertInbox<'a> {
    /// The INSERT without its RETURNING clause.
    fn walk_rows<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(
            "INSERT INTO inbox (tenant, dedup_key, conversation_id, phone_number_id, event, received_at) \
             SELECT r.tenant, r.dedup_key, r.conversation_id, r.phone_number_id, r.event, r.received_at FROM unnest(",
        );
        out.push_bind_param::<Array<Text>, _>(&self.tenants)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.keys)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.conversations)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.numbers)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.events)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<BigInt>, _>(&self.received)?;
        out.push_sql(
            ") WITH ORDINALITY AS r(tenant, dedup_key, conversation_id, phone_number_id, event, received_at, n) \
             ORDER BY r.n ON CONFLICT (dedup_key) DO NOTHING",
        );
        Ok(())
    }
}

/// What [`InsertInboxAndLease`] returns: the keys stored (the others were duplicates) and, when
/// it took the conversation's lease, the conversation and the first stored row (all null
/// otherwise).
#[derive(Debug, QueryableByName)]
pub(super) struct StoredAndLeased {
    #[diesel(sql_type = Array<Text>)]
    pub inserted: Vec<String>,
    #[diesel(sql_type = Nullable<Text>)]
    lc_id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    lc_customer: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    lc_phone_number_id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    lc_state: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    lc_version: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    lc_lease_owner: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    lc_lease_until: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    lc_last_inbound_at: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    lc_created_at: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    lc_updated_at: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    lc_wake_at: Option<i64>,
    #[diesel(embed)]
    pub next: NextInbox,
}

impl StoredAndLeased {
    /// The leased conversation and its row to process, if the lease was taken.
    pub(super) fn leased(self) -> Option<(ConversationRow, InboxRow)> {
        let conversation = ConversationRow {
            id: self.lc_id?,
            customer: self.lc_customer?,
            phone_number_id: self.lc_phone_number_id?,
            state: self.lc_state?,
            version: self.lc_version?,
            lease_owner: self.lc_lease_owner,
            lease_until: self.lc_lease_until,
            last_inbound_at: self.lc_last_inbound_at,
            created_at: self.lc_created_at?,
            updated_at: self.lc_updated_at?,
            wake_at: self.lc_wake_at,
        };
        Some((conversation, self.next.into_row()?))
    }
}

/// Stores one conversation's inbound rows ([`InsertInbox`]) and, in the same statement, takes
/// the conversation's lease for the worker when that is safe without a second trip: the
/// conversation exists, a row was new, the lease is free or ended, and no earlier row of it is
/// pending (in the statement's snapshot; a row another worker is finishing counts as pending,
/// so a stale snapshot only ever declines). The worker then processes the first new row with
/// no lease-and-load statement of its own.
pub(super) struct InsertInboxAndLease<'a> {
    pub insert: InsertInbox<'a>,
    pub conversation_id: &'a str,
    pub owner: &'a str,
    /// Unix ms.
    pub until_ms: i64,
    /// Unix ms: a lease that ended before this is free.
    pub now_ms: i64,
}
fixed_statement!(InsertInboxAndLease);

impl QueryFragment<Pg> for InsertInboxAndLease<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("WITH ins AS (");
        self.insert.walk_rows(&mut out)?;
        out.push_sql(
            " RETURNING id, dedup_key, conversation_id, phone_number_id, event, received_at, processed_at, \
             attempts, last_error), c AS (UPDATE conversations SET lease_owner = ",
        );
        out.push_bind_param::<Text, _>(self.owner)?;
        out.push_sql(", lease_until = ");
        out.push_bind_param::<BigInt, _>(&self.until_ms)?;
        out.push_sql(" WHERE id = ");
        out.push_bind_param::<Text, _>(self.conversation_id)?;
        out.push_sql(" AND (lease_owner IS NULL OR lease_until < ");
        out.push_bind_param::<BigInt, _>(&self.now_ms)?;
        out.push_sql(
            ") AND EXISTS (SELECT 1 FROM ins) AND NOT EXISTS (SELECT 1 FROM inbox p WHERE p.conversation_id = ",
        );
        out.push_bind_param::<Text, _>(self.conversation_id)?;
        out.push_sql(" AND p.processed_at IS NULL) RETURNING ");
        out.push_sql(CONVERSATION_COLUMNS);
        out.push_sql(
            "), i AS (SELECT * FROM ins WHERE EXISTS (SELECT 1 FROM c) ORDER BY id LIMIT 1) \
             SELECT ARRAY(SELECT dedup_key FROM ins) AS inserted, c.id AS lc_id, c.customer AS lc_customer, \
             c.phone_number_id AS lc_phone_number_id, c.state AS lc_state, c.version AS lc_version, \
             c.lease_owner AS lc_lease_owner, c.lease_until AS lc_lease_until, \
             c.last_inbound_at AS lc_last_inbound_at, c.created_at AS lc_created_at, \
             c.updated_at AS lc_updated_at, c.wake_at AS lc_wake_at, ",
        );
        out.push_sql(NEXT_COLUMNS);
        out.push_sql(" FROM (SELECT 1) AS one LEFT JOIN c ON true LEFT JOIN i ON true");
        Ok(())
    }
}

/// An outbox row id, returned by [`MarkSent`] for each row it marked.
#[derive(Debug, QueryableByName)]
pub(super) struct ClaimedId {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
}

/// A claim taken by [`ClaimOutbox`]: the row, its new fencing token and attempt count.
#[derive(Debug, QueryableByName)]
pub(super) struct ClaimedRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = BigInt)]
    pub claim_token: i64,
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
}

/// Claims due pending outbox rows for `owner` by moving their next attempt to `until_ms`,
/// counting an attempt and taking each row's next fencing token, skipping rows another statement
/// holds locked; returns the claims.
pub(super) struct ClaimOutbox<'a> {
    pub ids: &'a [i64],
    /// Unix ms.
    pub now_ms: i64,
    /// Unix ms.
    pub until_ms: i64,
    /// The claiming process's instance id.
    pub owner: &'a str,
}
fixed_statement!(ClaimOutbox);

impl QueryFragment<Pg> for ClaimOutbox<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        // SKIP LOCKED: a row another pass is claiming or marking right now is left to it
        // instead of waited for (waiting could deadlock with that pass's statement, which locks
        // its rows in another order); it is not due for this pass anyway.
        out.push_sql("UPDATE outbox SET next_attempt_at = ");
        out.push_bind_param::<BigInt, _>(&self.until_ms)?;
        out.push_sql(", claim_owner = ");
        out.push_bind_param::<Text, _>(self.owner)?;
        out.push_sql(", claim_token = claim_token + 1, attempts = attempts + 1");
        out.push_sql(" WHERE id IN (SELECT id FROM outbox WHERE id = ANY(");
        out.push_bind_param::<Array<BigInt>, _>(self.ids)?;
        out.push_sql(") AND status = 'pending' AND next_attempt_at <= ");
        out.push_bind_param::<BigInt, _>(&self.now_ms)?;
        out.push_sql(" FOR UPDATE SKIP LOCKED) RETURNING id, claim_token, attempts");
        Ok(())
    }
}

/// Marks outbox rows sent, each with its result (the wamid), each only while the claim that
/// sent it holds (its fencing token); returns the ids marked.
pub(super) struct MarkSent<'a> {
    ids: Vec<i64>,
    tokens: Vec<i64>,
    results: Vec<&'a str>,
    now_ms: i64,
}
fixed_statement!(MarkSent);

impl<'a> MarkSent<'a> {
    /// The statement for `(claim, result)` pairs, at `now_ms`.
    pub(super) fn new(sent: &'a [(super::Claim, String)], now_ms: i64) -> Self {
        MarkSent {
            ids: sent.iter().map(|(c, _)| c.id).collect(),
            tokens: sent.iter().map(|(c, _)| c.token).collect(),
            results: sent.iter().map(|(_, r)| r.as_str()).collect(),
            now_ms,
        }
    }
}

impl QueryFragment<Pg> for MarkSent<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("UPDATE outbox SET status = 'sent', result = s.result, updated_at = ");
        out.push_bind_param::<BigInt, _>(&self.now_ms)?;
        out.push_sql(" FROM unnest(");
        out.push_bind_param::<Array<BigInt>, _>(&self.ids)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<BigInt>, _>(&self.tokens)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.results)?;
        out.push_sql(
            ") AS s(id, token, result) WHERE outbox.id = s.id AND outbox.claim_token = s.token \
             AND outbox.status = 'pending' RETURNING outbox.id",
        );
        Ok(())
    }
}

/// Extends outbox claims (each while its fencing token still holds); returns the ids extended.
pub(super) struct ExtendClaims {
    ids: Vec<i64>,
    tokens: Vec<i64>,
    until_ms: i64,
}
fixed_statement_owned!(ExtendClaims);

impl ExtendClaims {
    /// The statement for `claims`, until `until_ms`.
    pub(super) fn new(claims: &[super::Claim], until_ms: i64) -> Self {
        ExtendClaims {
            ids: claims.iter().map(|c| c.id).collect(),
            tokens: claims.iter().map(|c| c.token).collect(),
            until_ms,
        }
    }
}

impl QueryFragment<Pg> for ExtendClaims {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("UPDATE outbox SET next_attempt_at = ");
        out.push_bind_param::<BigInt, _>(&self.until_ms)?;
        out.push_sql(" FROM unnest(");
        out.push_bind_param::<Array<BigInt>, _>(&self.ids)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<BigInt>, _>(&self.tokens)?;
        out.push_sql(
            ") AS k(id, token) WHERE outbox.id = k.id AND outbox.claim_token = k.token \
             AND outbox.status = 'pending' RETURNING outbox.id",
        );
        Ok(())
    }
}

/// Gives a conversation's lease back, if `owner` holds it.
pub(super) struct ReleaseLease<'a> {
    pub conversation_id: &'a str,
    pub owner: &'a str,
}
fixed_statement!(ReleaseLease);

impl QueryFragment<Pg> for ReleaseLease<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("UPDATE conversations SET lease_owner = NULL, lease_until = NULL WHERE id = ");
        out.push_bind_param::<Text, _>(self.conversation_id)?;
        out.push_sql(" AND lease_owner = ");
        out.push_bind_param::<Text, _>(self.owner)?;
        Ok(())
    }
}
