//! SQLite's hot-path writes as statements with a fixed SQL text and a static query id, so that
//! the writer's connection prepares each one once and then only binds and runs it.
//!
//! diesel does not cache the prepared statement of an `UPDATE` (a changeset may skip `None`
//! fields), of an upsert's `DO UPDATE`, or of an `INSERT` of an `Insertable` struct on SQLite (a
//! field may become its default): each was compiled by SQLite's parser and planner on every call
//! (seen in `perf` under load), on the single writer thread every write goes through. These are
//! the statements a message's webhook and turn run; the same as the diesel queries they replace,
//! one row each (SQLite has no arrays to bind).

use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Integer, Nullable, Text, Untyped};
use diesel::sqlite::Sqlite;
use diesel::{QueryResult, QueryableByName};

use super::{NewInbox, NewOutbox, NewTurn};

/// Declares a statement: its struct, a static query id (its cache key), no typed rows (rows are
/// read by name), and its SQL: `$sql` split at each `?`, with the fields bound in order.
macro_rules! sqlite_statement {
    (
        $(#[$doc:meta])*
        $name:ident { $($field:ident : $rust:ty => $sqlty:ty),* $(,)? }
        $sql:expr
    ) => {
        $(#[$doc])*
        pub(super) struct $name<'a> {
            $(pub $field: $rust,)*
            pub _rows: std::marker::PhantomData<&'a ()>,
        }
        impl QueryId for $name<'_> {
            type QueryId = $name<'static>;
            const HAS_STATIC_QUERY_ID: bool = true;
        }
        impl Query for $name<'_> {
            type SqlType = Untyped;
        }
        impl QueryFragment<Sqlite> for $name<'_> {
            fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
                let mut pieces = $sql.split('?');
                out.push_sql(pieces.next().unwrap_or_default());
                $(
                    out.push_bind_param::<$sqlty, _>(&self.$field)?;
                    out.push_sql(pieces.next().unwrap_or_default());
                )*
                Ok(())
            }
        }
        impl diesel::query_dsl::RunQueryDsl<diesel::SqliteConnection> for $name<'_> {}
    };
}

sqlite_statement!(
    /// Writes a turn's state under its version and lease (no row changed: the lease was lost).
    CommitState {
        state: &'a str => Text,
        version: i64 => BigInt,
        updated_at: i64 => BigInt,
        wake_at: Option<i64> => Nullable<BigInt>,
        last_inbound_at: Option<i64> => Nullable<BigInt>,
        id: &'a str => Text,
        expected_version: i64 => BigInt,
        owner: &'a str => Text,
    }
    "UPDATE conversations SET state = ?, version = ?, updated_at = ?, wake_at = ?, last_inbound_at = ? \
     WHERE id = ? AND version = ? AND lease_owner = ?"
);

sqlite_statement!(
    /// Marks an inbox row processed.
    MarkProcessed { processed_at: i64 => BigInt, id: i64 => BigInt }
    "UPDATE inbox SET processed_at = ? WHERE id = ?"
);

sqlite_statement!(
    /// Stores a turn record.
    InsertTurn {
        tenant: &'a str => Text,
        conversation_id: &'a str => Text,
        seq: i64 => BigInt,
        inbox_id: i64 => BigInt,
        flow: Option<&'a str> => Nullable<Text>,
        step_before: &'a str => Text,
        step_after: &'a str => Text,
        outcome: &'a str => Text,
        record: &'a str => Text,
        created_at: i64 => BigInt,
    }
    "INSERT INTO turns (tenant, conversation_id, seq, inbox_id, flow, step_before, step_after, outcome, record, \
     created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
);

impl<'a> InsertTurn<'a> {
    pub(super) fn of(t: &'a NewTurn) -> Self {
        InsertTurn {
            tenant: &t.tenant,
            conversation_id: &t.conversation_id,
            seq: t.seq,
            inbox_id: t.inbox_id,
            flow: t.flow.as_deref(),
            step_before: &t.step_before,
            step_after: &t.step_after,
            outcome: &t.outcome,
            record: &t.record,
            created_at: t.created_at,
            _rows: std::marker::PhantomData,
        }
    }
}

sqlite_statement!(
    /// Adds to one of the dashboard's counts.
    AddCount {
        tenant: &'a str => Text,
        day: &'a str => Text,
        flow: &'a str => Text,
        metric: &'a str => Text,
        shard: i32 => Integer,
        n: i64 => BigInt,
    }
    "INSERT INTO daily_counts (tenant, day, flow, metric, shard, n) VALUES (?, ?, ?, ?, ?, ?) \
     ON CONFLICT (tenant, day, flow, metric, shard) DO UPDATE SET n = n + excluded.n"
);

sqlite_statement!(
    /// Queues an outbox row, returning its id (no `ON CONFLICT`: a key already queued fails the
    /// turn).
    InsertOutbox {
        tenant: &'a str => Text,
        conversation_id: &'a str => Text,
        kind: &'a str => Text,
        idempotency_key: &'a str => Text,
        payload: &'a str => Text,
        status: &'a str => Text,
        next_attempt_at: i64 => BigInt,
        created_at: i64 => BigInt,
        updated_at: i64 => BigInt,
        claim_owner: Option<&'a str> => Nullable<Text>,
        claim_token: i64 => BigInt,
        attempts: i32 => Integer,
    }
    "INSERT INTO outbox (tenant, conversation_id, kind, idempotency_key, payload, status, next_attempt_at, \
     created_at, updated_at, claim_owner, claim_token, attempts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
     RETURNING id"
);

impl<'a> InsertOutbox<'a> {
    pub(super) fn of(tenant: &'a str, r: &'a NewOutbox) -> Self {
        InsertOutbox {
            tenant,
            conversation_id: &r.conversation_id,
            kind: &r.kind,
            idempotency_key: &r.idempotency_key,
            payload: &r.payload,
            status: &r.status,
            next_attempt_at: r.next_attempt_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
            claim_owner: r.claim_owner.as_deref(),
            claim_token: r.claim_token,
            attempts: r.attempts,
            _rows: std::marker::PhantomData,
        }
    }
}

/// An id returned by a statement.
#[derive(QueryableByName)]
pub(super) struct Id {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
}

sqlite_statement!(
    /// Gives a conversation's lease back, if `owner` still holds it.
    ReleaseLease { id: &'a str => Text, owner: &'a str => Text }
    "UPDATE conversations SET lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ?"
);

sqlite_statement!(
    /// Stores an inbox row unless its key is stored already (no row changed then).
    InsertInbox {
        tenant: &'a str => Text,
        dedup_key: &'a str => Text,
        conversation_id: &'a str => Text,
        phone_number_id: &'a str => Text,
        event: &'a str => Text,
        received_at: i64 => BigInt,
    }
    "INSERT INTO inbox (tenant, dedup_key, conversation_id, phone_number_id, event, received_at) \
     VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (dedup_key) DO NOTHING"
);

impl<'a> InsertInbox<'a> {
    pub(super) fn of(r: &'a NewInbox) -> Self {
        InsertInbox {
            tenant: &r.tenant,
            dedup_key: &r.dedup_key,
            conversation_id: &r.conversation_id,
            phone_number_id: &r.phone_number_id,
            event: &r.event,
            received_at: r.received_at,
            _rows: std::marker::PhantomData,
        }
    }
}

/// The columns of a conversation row, as [`super::ConversationRow`] reads them by name.
macro_rules! conversation_columns {
    () => {
        "id, customer, phone_number_id, state, version, lease_owner, lease_until, last_inbound_at, created_at, \
         updated_at, wake_at"
    };
}

sqlite_statement!(
    /// Takes a conversation's lease when it is free or ended, returning the conversation.
    TakeFreeLease { owner: &'a str => Text, until_ms: i64 => BigInt, id: &'a str => Text, now_ms: i64 => BigInt }
    concat!(
        "UPDATE conversations SET lease_owner = ?, lease_until = ? WHERE id = ? AND (lease_owner IS NULL OR \
         lease_until < ?) RETURNING ",
        conversation_columns!()
    )
);

sqlite_statement!(
    /// Takes a conversation's lease when it is free, ended or already `owner`'s, returning the
    /// conversation.
    TakeLease {
        owner: &'a str => Text,
        until_ms: i64 => BigInt,
        id: &'a str => Text,
        now_ms: i64 => BigInt,
        same_owner: &'a str => Text,
    }
    concat!(
        "UPDATE conversations SET lease_owner = ?, lease_until = ? WHERE id = ? AND (lease_owner IS NULL OR \
         lease_until < ? OR lease_owner = ?) RETURNING ",
        conversation_columns!()
    )
);

sqlite_statement!(
    /// Marks an outbox row sent with its result, while its claim holds (no row changed: it was
    /// lost).
    MarkSent {
        result: &'a str => Text,
        updated_at: i64 => BigInt,
        id: i64 => BigInt,
        claim_token: i64 => BigInt,
    }
    "UPDATE outbox SET status = 'sent', result = ?, updated_at = ? WHERE id = ? AND claim_token = ? \
     AND status = 'pending'"
);

sqlite_statement!(
    /// Creates a conversation seen for the first time (nothing when it exists).
    CreateConversation {
        tenant: &'a str => Text,
        id: &'a str => Text,
        customer: &'a str => Text,
        phone_number_id: &'a str => Text,
        state: &'a str => Text,
        created_at: i64 => BigInt,
        updated_at: i64 => BigInt,
    }
    "INSERT INTO conversations (tenant, id, customer, phone_number_id, state, version, created_at, updated_at) \
     VALUES (?, ?, ?, ?, ?, 0, ?, ?) ON CONFLICT (id) DO NOTHING"
);
