//! Hand-offs to a person: the record of each time a conversation was handed to the team, so that
//! somebody is told and the wait is visible (issue: "hand-offs that reach a person"). A record is
//! written by the outbox from the turn that handed off (so it is durable with that turn and
//! written once), then moves `waiting` → `taken` → `resolved` or `released` as agents act.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::schema::{handoffs, knowledge_flags, outbox};
use super::{Claim, OutboxStatus, Store, StoreError, now_ms};

/// Where a hand-off is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandoffStatus {
    /// Nobody has taken it yet.
    Waiting,
    /// An agent has the conversation.
    Taken,
    /// Closed by an agent with a note; the conversation went back to the bot.
    Resolved,
    /// Given back to the bot without a resolution.
    Released,
}

impl HandoffStatus {
    /// As stored in the `status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            HandoffStatus::Waiting => "waiting",
            HandoffStatus::Taken => "taken",
            HandoffStatus::Resolved => "resolved",
            HandoffStatus::Released => "released",
        }
    }

    /// From the `status` column or a query parameter; `None` for anything else.
    pub fn parse(s: &str) -> Option<HandoffStatus> {
        [HandoffStatus::Waiting, HandoffStatus::Taken, HandoffStatus::Resolved, HandoffStatus::Released]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// A hand-off as stored.
#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = handoffs)]
pub struct HandoffRow {
    /// Id.
    pub id: i64,
    /// The outbox row's key that wrote it (one record per handing-off turn).
    pub idempotency_key: String,
    /// `phone_number_id:wa_id`.
    pub conversation_id: String,
    /// The customer's wa_id.
    pub customer: String,
    /// Why the conversation was handed off, as the turn recorded it.
    pub reason: String,
    /// The team queue it waits in (`support`, or one a flow names).
    pub queue: String,
    /// [`HandoffStatus::as_str`].
    pub status: String,
    /// When it was handed off (Unix ms).
    pub created_at: i64,
    /// The agent who took it.
    pub taken_by: Option<String>,
    /// Unix ms.
    pub taken_at: Option<i64>,
    /// The agent who resolved or released it.
    pub closed_by: Option<String>,
    /// Unix ms.
    pub closed_at: Option<i64>,
    /// The resolution note.
    pub note: Option<String>,
}

/// A row an outbox row writes when it is worked (see [`Store::outbox_done_with_record`]).
#[derive(Debug, Clone, PartialEq)]
pub enum OutboxRecord {
    /// A hand-off record.
    Handoff(NewHandoff),
    /// A flagged question.
    Flag(super::NewFlag),
}

fn default_tenant() -> String {
    crate::tenant::DEFAULT_TENANT.into()
}

/// A hand-off to record (see [`Store::outbox_done_with_record`]).
#[derive(Debug, Clone, PartialEq, Insertable, serde::Serialize, serde::Deserialize)]
#[diesel(table_name = handoffs)]
pub struct NewHandoff {
    /// The business (a hand-off queued before tenants existed is the single business's).
    #[serde(default = "default_tenant")]
    pub tenant: String,
    /// Unique per handing-off turn.
    pub idempotency_key: String,
    /// `phone_number_id:wa_id`.
    pub conversation_id: String,
    /// The customer's wa_id.
    pub customer: String,
    /// Why.
    pub reason: String,
    /// The team queue.
    pub queue: String,
    /// [`HandoffStatus::as_str`]: `waiting`.
    pub status: String,
    /// Unix ms.
    pub created_at: i64,
}

impl Store {
    /// Closes an outbox row under `claim` and writes `record` in the same transaction (once: a
    /// repeated idempotency key changes nothing). Returns false when the claim no longer holds
    /// (nothing written).
    pub async fn outbox_done_with_record(&self, claim: Claim, record: OutboxRecord) -> Result<bool, StoreError> {
        with_conn!(self, |conn| {
            conn.transaction::<_, StoreError, _>(async move |c| {
                let n = diesel::update(super::outbox_queue::under_claim(claim))
                    .set((
                        outbox::status.eq(OutboxStatus::Sent.as_str()),
                        outbox::result.eq(Some("recorded")),
                        outbox::updated_at.eq(now_ms()),
                    ))
                    .execute(c)
                    .await?;
                if n == 0 {
                    return Ok(false);
                }
                match &record {
                    OutboxRecord::Handoff(h) => {
                        diesel::insert_into(handoffs::table)
                            .values(h)
                            .on_conflict(handoffs::idempotency_key)
                            .do_nothing()
                            .execute(c)
                            .await?
                    }
                    OutboxRecord::Flag(f) => {
                        diesel::insert_into(knowledge_flags::table)
                            .values(f)
                            .on_conflict(knowledge_flags::idempotency_key)
                            .do_nothing()
                            .execute(c)
                            .await?
                    }
                };
                Ok(true)
            })
            .await
        })
    }

    /// Hand-offs, oldest first; only those in `status` when given; at most `limit`.
    pub async fn handoffs(
        &self,
        tenant: &crate::tenant::TenantId,
        status: Option<HandoffStatus>,
        limit: i64,
    ) -> Result<Vec<HandoffRow>, StoreError> {
        Ok(with_tenant!(self, tenant, |conn| {
            let mut q = handoffs::table
                .filter(handoffs::tenant.eq(tenant.as_str().to_string()))
                .select(HandoffRow::as_select())
                .order(handoffs::id)
                .limit(limit)
                .into_boxed();
            if let Some(s) = status {
                q = q.filter(handoffs::status.eq(s.as_str()));
            }
            q.load(conn).await?
        }))
    }

    /// One hand-off of `tenant` (another tenant's is not found).
    pub async fn handoff(&self, tenant: &crate::tenant::TenantId, id: i64) -> Result<Option<HandoffRow>, StoreError> {
        Ok(with_tenant!(self, tenant, |conn| {
            handoffs::table
                .find(id)
                .filter(handoffs::tenant.eq(tenant.as_str()))
                .select(HandoffRow::as_select())
                .first(conn)
                .await
                .optional()?
        }))
    }

    /// `agent` took the conversation over: its waiting hand-offs become `taken` by them.
    /// Returns how many.
    pub async fn handoffs_taken(
        &self,
        tenant: &crate::tenant::TenantId,
        conversation_id: &str,
        agent: &str,
    ) -> Result<usize, StoreError> {
        let (id, agent) = (conversation_id.to_string(), agent.to_string());
        Ok(with_tenant!(self, tenant, |conn| {
            diesel::update(handoffs::table)
                .filter(handoffs::tenant.eq(tenant.as_str()))
                .filter(handoffs::conversation_id.eq(&id))
                .filter(handoffs::status.eq(HandoffStatus::Waiting.as_str()))
                .set((
                    handoffs::status.eq(HandoffStatus::Taken.as_str()),
                    handoffs::taken_by.eq(Some(&agent)),
                    handoffs::taken_at.eq(Some(now_ms())),
                ))
                .execute(conn)
                .await?
        }))
    }

    /// Closes the conversation's open (waiting or taken) hand-offs as `status` (resolved or
    /// released) by `agent`, with `note`. Returns how many.
    pub async fn handoffs_closed(
        &self,
        tenant: &crate::tenant::TenantId,
        conversation_id: &str,
        status: HandoffStatus,
        agent: &str,
        note: Option<&str>,
    ) -> Result<usize, StoreError> {
        let (id, agent, note) = (conversation_id.to_string(), agent.to_string(), note.map(String::from));
        let open = [HandoffStatus::Waiting.as_str(), HandoffStatus::Taken.as_str()];
        Ok(with_tenant!(self, tenant, |conn| {
            diesel::update(handoffs::table)
                .filter(handoffs::tenant.eq(tenant.as_str()))
                .filter(handoffs::conversation_id.eq(&id))
                .filter(handoffs::status.eq_any(open))
                .set((
                    handoffs::status.eq(status.as_str()),
                    handoffs::closed_by.eq(Some(&agent)),
                    handoffs::closed_at.eq(Some(now_ms())),
                    handoffs::note.eq(note.as_deref()),
                ))
                .execute(conn)
                .await?
        }))
    }
}
