//! Draft replies to support tickets (table `reply_drafts`) and the cursors of outside lists
//! (table `poll_cursors`). A draft is written once per ticket; approving it queues the reply for
//! the customer's conversation in the same transaction (so an approval is never lost, nor sent
//! twice); rejecting it flags the knowledge it used, also in one transaction.

use crate::tenant::TenantId;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::schema::{inbox, knowledge_flags, poll_cursors, reply_drafts};
use super::{NewFlag, NewInbox, Store, StoreError, now_ms};

/// Where a draft is in its review.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DraftStatus {
    /// Waiting for a person.
    Pending,
    /// Approved (perhaps edited) and queued to be sent and posted on the ticket.
    Approved,
    /// Rejected with a reason; nothing was sent.
    Rejected,
}

impl DraftStatus {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            DraftStatus::Pending => "pending",
            DraftStatus::Approved => "approved",
            DraftStatus::Rejected => "rejected",
        }
    }

    /// From the stored (or asked-for) name; `None` for anything else.
    pub fn parse(s: &str) -> Option<DraftStatus> {
        [DraftStatus::Pending, DraftStatus::Approved, DraftStatus::Rejected].into_iter().find(|d| d.as_str() == s)
    }
}

/// A draft to record (see [`Store::insert_draft`]).
#[derive(Debug, Clone, PartialEq, Insertable)]
#[diesel(table_name = reply_drafts)]
pub struct NewDraft {
    /// The business whose ERP holds the ticket.
    pub tenant: String,
    /// The ticket's ERP name (`ISS-2026-00041`); one draft per ticket.
    pub ticket: String,
    /// `phone_number_id:wa_id` of the customer the reply goes to.
    pub conversation_id: String,
    /// The customer's WhatsApp id (digits).
    pub customer: String,
    /// The ticket's subject.
    pub subject: String,
    /// What the customer wrote, as text.
    pub details: String,
    /// The proposed reply.
    pub draft: String,
    /// The passages it was drafted from: JSON `[{"id", "title", "score"}]`.
    pub passages: String,
    /// `knowledge` (a passage as written), `llm` (worded and checked) or `none` (nothing found).
    pub worded_by: String,
    /// The ticket's `modified` when it was read.
    pub ticket_modified: String,
    /// Always `pending` when written.
    pub status: String,
    /// Unix ms.
    pub created_at: i64,
}

/// A draft as stored.
#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = reply_drafts)]
pub struct DraftRow {
    /// Id.
    pub id: i64,
    /// See [`NewDraft`].
    pub ticket: String,
    /// See [`NewDraft`].
    pub conversation_id: String,
    /// See [`NewDraft`].
    pub customer: String,
    /// See [`NewDraft`].
    pub subject: String,
    /// See [`NewDraft`].
    pub details: String,
    /// See [`NewDraft`].
    pub draft: String,
    /// See [`NewDraft`].
    pub passages: String,
    /// See [`NewDraft`].
    pub worded_by: String,
    /// See [`NewDraft`].
    pub ticket_modified: String,
    /// `pending`, `approved` or `rejected`.
    pub status: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms, once reviewed.
    pub reviewed_at: Option<i64>,
    /// Who reviewed it.
    pub reviewed_by: Option<String>,
    /// What was sent (the draft, or the reviewer's edit).
    pub final_text: Option<String>,
    /// Why it was rejected.
    pub reason: Option<String>,
    /// The business whose ticket it is.
    pub tenant: String,
}

/// What a review did.
#[derive(Debug, Clone)]
pub enum Reviewed {
    /// Done: the draft as it is now.
    Done(DraftRow),
    /// No draft with that id.
    NotFound,
    /// Someone reviewed it first: the draft as they left it (nothing was changed or queued).
    Already(DraftRow),
}

impl Store {
    /// Records a draft unless its ticket has one already. Returns whether it was new.
    pub async fn insert_draft(&self, draft: NewDraft) -> Result<bool, StoreError> {
        Ok(with_conn!(self, |conn| {
            diesel::insert_into(reply_drafts::table).values(&draft).on_conflict_do_nothing().execute(conn).await? > 0
        }))
    }

    /// Which of `tenant`'s `tickets` have a draft.
    pub async fn drafted(&self, tenant: &TenantId, tickets: &[String]) -> Result<Vec<String>, StoreError> {
        Ok(with_tenant!(self, tenant, |conn| {
            reply_drafts::table
                .filter(reply_drafts::tenant.eq(tenant.as_str()))
                .filter(reply_drafts::ticket.eq_any(tickets))
                .select(reply_drafts::ticket)
                .load(conn)
                .await?
        }))
    }

    /// `tenant`'s drafts in `status` (all when `None`), newest first, at most `limit`.
    pub async fn drafts(
        &self,
        tenant: &TenantId,
        status: Option<DraftStatus>,
        limit: i64,
    ) -> Result<Vec<DraftRow>, StoreError> {
        Ok(with_tenant!(self, tenant, |conn| {
            let mut q = reply_drafts::table
                .filter(reply_drafts::tenant.eq(tenant.as_str()))
                .select(DraftRow::as_select())
                .order(reply_drafts::id.desc())
                .into_boxed();
            if let Some(s) = status {
                q = q.filter(reply_drafts::status.eq(s.as_str()));
            }
            q.limit(limit).load(conn).await?
        }))
    }

    /// One draft of `tenant` (another tenant's is not found).
    pub async fn draft(&self, tenant: &TenantId, id: i64) -> Result<Option<DraftRow>, StoreError> {
        Ok(with_tenant!(self, tenant, |conn| {
            reply_drafts::table
                .find(id)
                .filter(reply_drafts::tenant.eq(tenant.as_str()))
                .select(DraftRow::as_select())
                .first(conn)
                .await
                .optional()?
        }))
    }

    /// The drafts of one of `tenant`'s conversations, oldest first (for a customer's export).
    pub async fn drafts_of(&self, tenant: &TenantId, conversation_id: &str) -> Result<Vec<DraftRow>, StoreError> {
        Ok(with_tenant!(self, tenant, |conn| {
            reply_drafts::table
                .filter(reply_drafts::tenant.eq(tenant.as_str()))
                .filter(reply_drafts::conversation_id.eq(conversation_id))
                .select(DraftRow::as_select())
                .order(reply_drafts::id)
                .load(conn)
                .await?
        }))
    }

    /// Approves `tenant`'s pending draft `id` as `text` by `reviewer` and, in the same transaction, queues
    /// `reply` (the event that sends it) in its conversation's inbox. A second approval finds it
    /// reviewed and changes nothing.
    pub async fn approve_draft(
        &self,
        tenant: &TenantId,
        id: i64,
        text: &str,
        reviewer: &str,
        reply: NewInbox,
    ) -> Result<Reviewed, StoreError> {
        let (text, reviewer, tenant) = (text.to_string(), reviewer.to_string(), tenant.as_str().to_string());
        with_conn!(self, |conn| {
            conn.transaction::<_, StoreError, _>(async move |c| {
                let changed = diesel::update(reply_drafts::table.find(id))
                    .filter(reply_drafts::tenant.eq(&tenant))
                    .filter(reply_drafts::status.eq(DraftStatus::Pending.as_str()))
                    .set((
                        reply_drafts::status.eq(DraftStatus::Approved.as_str()),
                        reply_drafts::reviewed_at.eq(Some(now_ms())),
                        reply_drafts::reviewed_by.eq(Some(&reviewer)),
                        reply_drafts::final_text.eq(Some(&text)),
                    ))
                    .execute(c)
                    .await?;
                if changed > 0 {
                    diesel::insert_into(inbox::table).values(&reply).on_conflict_do_nothing().execute(c).await?;
                }
                let row = reply_drafts::table
                    .find(id)
                    .filter(reply_drafts::tenant.eq(&tenant))
                    .select(DraftRow::as_select())
                    .first::<DraftRow>(c)
                    .await
                    .optional()?;
                Ok(review_of(row, changed > 0))
            })
            .await
        })
    }

    /// Rejects `tenant`'s pending draft `id` with `reason` by `reviewer` and, in the same transaction,
    /// records `flag` (the knowledge it used, for review). A second review changes nothing.
    pub async fn reject_draft(
        &self,
        tenant: &TenantId,
        id: i64,
        reason: &str,
        reviewer: &str,
        flag: Option<NewFlag>,
    ) -> Result<Reviewed, StoreError> {
        let (reason, reviewer, tenant) = (reason.to_string(), reviewer.to_string(), tenant.as_str().to_string());
        with_conn!(self, |conn| {
            conn.transaction::<_, StoreError, _>(async move |c| {
                let changed = diesel::update(reply_drafts::table.find(id))
                    .filter(reply_drafts::tenant.eq(&tenant))
                    .filter(reply_drafts::status.eq(DraftStatus::Pending.as_str()))
                    .set((
                        reply_drafts::status.eq(DraftStatus::Rejected.as_str()),
                        reply_drafts::reviewed_at.eq(Some(now_ms())),
                        reply_drafts::reviewed_by.eq(Some(&reviewer)),
                        reply_drafts::reason.eq(Some(&reason)),
                    ))
                    .execute(c)
                    .await?;
                if let (true, Some(flag)) = (changed > 0, &flag) {
                    diesel::insert_into(knowledge_flags::table)
                        .values(flag)
                        .on_conflict_do_nothing()
                        .execute(c)
                        .await?;
                }
                let row = reply_drafts::table
                    .find(id)
                    .filter(reply_drafts::tenant.eq(&tenant))
                    .select(DraftRow::as_select())
                    .first::<DraftRow>(c)
                    .await
                    .optional()?;
                Ok(review_of(row, changed > 0))
            })
            .await
        })
    }

    /// Where `tenant`'s poller `name` got to, if it has run.
    pub async fn cursor(&self, tenant: &TenantId, name: &str) -> Result<Option<String>, StoreError> {
        Ok(with_conn!(self, |conn| {
            poll_cursors::table
                .find((tenant.as_str(), name))
                .select(poll_cursors::value)
                .first(conn)
                .await
                .optional()?
        }))
    }

    /// Moves `tenant`'s cursor `name` forward to `value` (never back: two instances polling at
    /// once leave the later of their values).
    pub async fn advance_cursor(&self, tenant: &TenantId, name: &str, value: &str) -> Result<(), StoreError> {
        let (name, value, tenant) = (name.to_string(), value.to_string(), tenant.to_string());
        with_conn!(self, |conn| {
            conn.transaction::<_, StoreError, _>(async move |c| {
                let now = now_ms();
                let inserted = diesel::insert_into(poll_cursors::table)
                    .values((
                        poll_cursors::tenant.eq(&tenant),
                        poll_cursors::name.eq(&name),
                        poll_cursors::value.eq(&value),
                        poll_cursors::updated_at.eq(now),
                    ))
                    .on_conflict_do_nothing()
                    .execute(c)
                    .await?;
                if inserted == 0 {
                    diesel::update(poll_cursors::table.find((&tenant, &name)))
                        .filter(poll_cursors::value.lt(&value))
                        .set((poll_cursors::value.eq(&value), poll_cursors::updated_at.eq(now)))
                        .execute(c)
                        .await?;
                }
                Ok(())
            })
            .await
        })
    }
}

/// The draft after a review: [`Reviewed::Done`] when this review `changed` it.
fn review_of(row: Option<DraftRow>, changed: bool) -> Reviewed {
    match (row, changed) {
        (None, _) => Reviewed::NotFound,
        (Some(r), true) => Reviewed::Done(r),
        (Some(r), false) => Reviewed::Already(r),
    }
}
