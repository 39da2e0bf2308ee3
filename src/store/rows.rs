//! The rows the store reads and writes on the hot path (inbox, conversations, turns) and what
//! a turn's commit carries and returns.

use diesel::prelude::*;

use super::schema::{conversations, inbox, turns};
use super::{Lane, NewOutbox};

/// A new inbox row: built by `pipeline::inbox::row`, the one way every producer (the webhook,
/// the admin API, the outbox, the scheduler) queues an event.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = inbox)]
pub struct NewInbox {
    /// The business whose number or site the event came in on.
    pub tenant: String,
    /// wamid or `erp:<outbox id>`.
    pub dedup_key: String,
    /// `phone_number_id:wa_id`.
    pub conversation_id: String,
    /// The business number.
    pub phone_number_id: String,
    /// The event as JSON.
    pub event: String,
    /// Unix ms.
    pub received_at: i64,
}

/// A stored inbox row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = inbox)]
pub struct InboxRow {
    /// Arrival order.
    pub id: i64,
    /// Dedup key.
    pub dedup_key: String,
    /// Conversation.
    pub conversation_id: String,
    /// Business number.
    pub phone_number_id: String,
    /// Event JSON.
    pub event: String,
    /// Unix ms.
    pub received_at: i64,
    /// Unix ms, once processed.
    pub processed_at: Option<i64>,
    /// Failed attempts.
    pub attempts: i32,
    /// Last failure.
    pub last_error: Option<String>,
}

/// What storing one conversation's inbound events gave: per event (its key, or whether it was
/// new) and, when the lease was taken with them, the conversation and the row to process first.
pub type Stored<T> = (Vec<T>, Option<(ConversationRow, InboxRow)>);

/// A stored conversation.
#[derive(Debug, Clone, Queryable, Selectable, QueryableByName)]
#[diesel(table_name = conversations)]
pub struct ConversationRow {
    /// `phone_number_id:wa_id`.
    pub id: String,
    /// The customer's wa_id.
    pub customer: String,
    /// The business number.
    pub phone_number_id: String,
    /// State JSON.
    pub state: String,
    /// Optimistic version, +1 per committed turn.
    pub version: i64,
    /// Who holds the lease.
    pub lease_owner: Option<String>,
    /// Until when (Unix ms).
    pub lease_until: Option<i64>,
    /// Last inbound message (Unix ms), for the 24-hour window.
    pub last_inbound_at: Option<i64>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
    /// When the scheduler should wake it (Unix ms).
    pub wake_at: Option<i64>,
}

/// A new turn record.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = turns)]
pub struct NewTurn {
    /// The business the conversation belongs to.
    pub tenant: String,
    /// Conversation.
    pub conversation_id: String,
    /// Turn number in the conversation.
    pub seq: i64,
    /// The inbox row it processed.
    pub inbox_id: i64,
    /// Flow id, if in a journey.
    pub flow: Option<String>,
    /// `flow/step` before.
    pub step_before: String,
    /// `flow/step` after.
    pub step_after: String,
    /// `ok` or an error code.
    pub outcome: String,
    /// The full record (JSON).
    pub record: String,
    /// Unix ms.
    pub created_at: i64,
}

/// A stored turn.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = turns)]
pub struct TurnRow {
    /// Id.
    pub id: i64,
    /// Conversation.
    pub conversation_id: String,
    /// Turn number.
    pub seq: i64,
    /// Inbox row.
    pub inbox_id: i64,
    /// Flow.
    pub flow: Option<String>,
    /// Before.
    pub step_before: String,
    /// After.
    pub step_after: String,
    /// Outcome.
    pub outcome: String,
    /// Record JSON.
    pub record: String,
    /// Unix ms.
    pub created_at: i64,
}

/// Everything one turn writes, in one transaction.
#[derive(Debug, Clone)]
pub struct TurnCommit {
    /// Conversation.
    pub conversation_id: String,
    /// The lease owner committing.
    pub owner: String,
    /// The version the state was read at.
    pub expected_version: i64,
    /// The new state JSON.
    pub state: String,
    /// The inbox row processed.
    pub inbox_id: i64,
    /// Its turn record.
    pub turn: NewTurn,
    /// Effects to queue.
    pub outbox: Vec<NewOutbox>,
    /// Unix ms of the customer's message, when it was one.
    pub last_inbound_at: Option<i64>,
    /// When the scheduler should wake the conversation (Unix ms), if ever.
    pub wake_at: Option<i64>,
    /// The stored `last_inbound_at`, kept when this turn is not a customer's message.
    pub previous_inbound_at: Option<i64>,
    /// How soon the commit should run when the database is busy.
    pub lane: Lane,
    /// The lookup results the turn record names by hash, when they may not be stored yet.
    pub lookup_snapshot: Option<LookupSnapshot>,
    /// Places the turn holds, books and lets go, applied first; a refused one undoes the commit
    /// ([`StoreError::HoldRefused`]).
    pub holds: Vec<crate::engine::capacity::HoldChange>,
    /// What the turn adds to the dashboard's figures ([`crate::stats::counts`]), one per day,
    /// flow and metric; added to `daily_counts` with the turn.
    pub counts: Vec<crate::stats::Count>,
    /// The business the conversation belongs to (its counts are that tenant's).
    pub tenant: crate::tenant::TenantId,
}

/// What a committed turn leaves: the conversation's next pending row, whether the lease was
/// given back (no row left), and the ids of the outbox rows it queued, in the order of
/// [`TurnCommit::outbox`].
#[derive(Debug, Clone)]
pub struct Committed {
    /// The next pending row.
    pub next: Option<InboxRow>,
    /// Whether the lease was given back.
    pub released: bool,
    /// The queued outbox rows' ids.
    pub outbox_ids: Vec<i64>,
}

/// ERP lookup results stored once per content (table `lookup_snapshots`); a turn record names
/// them by `hash` instead of repeating them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupSnapshot {
    /// SHA-256 of `body`, hex.
    pub hash: String,
    /// The lookups as JSON (an object: lookup name → rows).
    pub body: String,
}

impl LookupSnapshot {
    /// The snapshot of `body` (lookup results as JSON).
    pub fn of(body: String) -> LookupSnapshot {
        use sha2::Digest;
        LookupSnapshot { hash: hex::encode(sha2::Sha256::digest(body.as_bytes())), body }
    }
}
