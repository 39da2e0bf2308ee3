//! The quarantine: what the worker could not read, set aside with its error so that its
//! conversation is not blocked (a poison row retried forever, or a corrupt state whose fresh
//! replacement collides with stored turns). Each entry comes with an event for its conversation
//! (queued in the same transaction), which hands it to a person.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::schema::{conversations, inbox, quarantine, turns};
use super::{InboxRow, NewInbox, Store, StoreError, now_ms};

/// What was set aside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuarantineKind {
    /// A stored inbound event that does not parse.
    InboxEvent,
    /// A conversation's stored state that does not parse.
    State,
    /// An inbound event whose turn failed on every attempt.
    Turn,
}

impl QuarantineKind {
    /// As stored in the `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            QuarantineKind::InboxEvent => "inbox_event",
            QuarantineKind::State => "state",
            QuarantineKind::Turn => "turn",
        }
    }
}

/// A quarantine entry.
#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = quarantine)]
pub struct QuarantineRow {
    /// Id.
    pub id: i64,
    /// The conversation it belongs to.
    pub conversation_id: String,
    /// [`QuarantineKind::as_str`].
    pub kind: String,
    /// The inbox row, for an event or a turn.
    pub inbox_id: Option<i64>,
    /// What could not be read, as stored.
    pub body: String,
    /// Why, with the failing subsystem's code.
    pub error: String,
    /// Unix ms.
    pub created_at: i64,
}

/// A new quarantine entry.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = quarantine)]
struct NewEntry {
    conversation_id: String,
    kind: String,
    inbox_id: Option<i64>,
    body: String,
    error: String,
    created_at: i64,
}

impl NewEntry {
    fn new(conversation_id: &str, kind: QuarantineKind, inbox_id: Option<i64>, body: &str, error: &str) -> NewEntry {
        NewEntry {
            conversation_id: conversation_id.to_string(),
            kind: kind.as_str().to_string(),
            inbox_id,
            body: body.to_string(),
            error: error.to_string(),
            created_at: now_ms(),
        }
    }
}

impl Store {
    /// Sets an inbox row aside (`kind` [`QuarantineKind::InboxEvent`] or
    /// [`QuarantineKind::Turn`]): the entry, the row marked processed with the error, and the
    /// event `tell(entry id)` makes for its conversation, in one transaction. Returns the
    /// entry's id.
    pub async fn quarantine_inbox_row(
        &self,
        tenant: &crate::tenant::TenantId,
        row: &InboxRow,
        kind: QuarantineKind,
        error: &str,
        tell: impl FnOnce(i64) -> NewInbox + Send,
    ) -> Result<i64, StoreError> {
        let (row, error, tenant) = (row.clone(), error.to_string(), tenant.to_string());
        with_conn!(self, |conn| {
            conn.transaction::<_, StoreError, _>(async move |c| {
                let now = now_ms();
                let entry = NewEntry::new(&row.conversation_id, kind, Some(row.id), &row.event, &error);
                let id: i64 = diesel::insert_into(quarantine::table)
                    .values((quarantine::tenant.eq(&tenant), &entry))
                    .returning(quarantine::id)
                    .get_result(c)
                    .await?;
                diesel::update(inbox::table.find(row.id))
                    .set((inbox::processed_at.eq(Some(now)), inbox::last_error.eq(Some(format!("set aside: {error}")))))
                    .execute(c)
                    .await?;
                diesel::insert_into(inbox::table)
                    .values(&tell(id))
                    .on_conflict(inbox::dedup_key)
                    .do_nothing()
                    .execute(c)
                    .await?;
                Ok(id)
            })
            .await
        })
    }

    /// Sets a conversation's stored state aside: the entry, `fresh` stored in its place (only
    /// while `owner` holds the lease and the version is `expected_version`), and the event
    /// `tell(entry id)` makes for it, in one transaction. Returns the entry's id and the new
    /// version.
    ///
    /// Errors: [`StoreError::LeaseLost`] when the lease or version no longer holds.
    #[allow(clippy::too_many_arguments)]
    pub async fn quarantine_state(
        &self,
        tenant: &crate::tenant::TenantId,
        conversation_id: &str,
        owner: &str,
        expected_version: i64,
        fresh: &str,
        error: &str,
        tell: impl FnOnce(i64) -> NewInbox + Send,
    ) -> Result<(i64, i64), StoreError> {
        let (cid, own, fresh, error, tenant) =
            (conversation_id.to_string(), owner.to_string(), fresh.to_string(), error.to_string(), tenant.to_string());
        with_conn!(self, |conn| {
            conn.transaction::<_, StoreError, _>(async move |c| {
                let now = now_ms();
                let old: String = conversations::table.find(&cid).select(conversations::state).first(c).await?;
                let n = diesel::update(conversations::table)
                    .filter(conversations::id.eq(&cid))
                    .filter(conversations::version.eq(expected_version))
                    .filter(conversations::lease_owner.eq(&own))
                    .set((
                        conversations::state.eq(&fresh),
                        conversations::version.eq(expected_version + 1),
                        conversations::updated_at.eq(now),
                    ))
                    .execute(c)
                    .await?;
                if n != 1 {
                    return Err(StoreError::LeaseLost(cid.clone()));
                }
                let entry = NewEntry::new(&cid, QuarantineKind::State, None, &old, &error);
                let id: i64 = diesel::insert_into(quarantine::table)
                    .values((quarantine::tenant.eq(&tenant), &entry))
                    .returning(quarantine::id)
                    .get_result(c)
                    .await?;
                diesel::insert_into(inbox::table)
                    .values(&tell(id))
                    .on_conflict(inbox::dedup_key)
                    .do_nothing()
                    .execute(c)
                    .await?;
                Ok((id, expected_version + 1))
            })
            .await
        })
    }

    /// The highest turn number stored for a conversation (0 when none).
    pub async fn last_turn_seq(&self, conversation_id: &str) -> Result<i64, StoreError> {
        let cid = conversation_id.to_string();
        let last: Option<i64> = with_conn!(self, |conn| {
            turns::table
                .filter(turns::conversation_id.eq(&cid))
                .select(diesel::dsl::max(turns::seq))
                .first(conn)
                .await?
        });
        Ok(last.unwrap_or(0))
    }

    /// Quarantine entries, newest first: of one conversation, or all with `None`.
    pub async fn quarantined(
        &self,
        tenant: &crate::tenant::TenantId,
        conversation_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<QuarantineRow>, StoreError> {
        let cid = conversation_id.map(String::from);
        Ok(with_tenant!(self, tenant, |conn| {
            let mut q = quarantine::table
                .filter(quarantine::tenant.eq(tenant.as_str().to_string()))
                .order(quarantine::id.desc())
                .limit(limit)
                .select(QuarantineRow::as_select())
                .into_boxed();
            if let Some(cid) = &cid {
                q = q.filter(quarantine::conversation_id.eq(cid.clone()));
            }
            q.load(conn).await?
        }))
    }
}
