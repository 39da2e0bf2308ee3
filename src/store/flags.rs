//! Flagged questions (table `knowledge_flags`): written through the outbox, once per flagging
//! turn; listed open for review; resolved in groups.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::schema::knowledge_flags;
use super::{Store, StoreError, now_ms};
use crate::tenant::TenantId;

fn default_tenant() -> String {
    crate::tenant::DEFAULT_TENANT.into()
}

/// A flag to record (see [`Store::outbox_done_with_record`]).
#[derive(Debug, Clone, PartialEq, Insertable, serde::Serialize, serde::Deserialize)]
#[diesel(table_name = knowledge_flags)]
pub struct NewFlag {
    /// The business (a flag queued before tenants existed is the single business's).
    #[serde(default = "default_tenant")]
    pub tenant: String,
    /// Unique per flagging turn and reason.
    pub idempotency_key: String,
    /// `phone_number_id:wa_id`.
    pub conversation_id: String,
    /// The customer's question.
    pub question: String,
    /// `unknown`, `unsure`, `thumbs_down`, `wrong` or `handoff`.
    pub reason: String,
    /// The passages it was answered from (JSON array of ids).
    pub passages: String,
    /// What showed it.
    pub evidence: Option<String>,
    /// Unix ms.
    pub created_at: i64,
}

/// A flag as stored.
#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = knowledge_flags)]
pub struct FlagRow {
    /// Id.
    pub id: i64,
    /// The conversation.
    pub conversation_id: String,
    /// The question.
    pub question: String,
    /// Why.
    pub reason: String,
    /// The passages (JSON array).
    pub passages: String,
    /// What showed it.
    pub evidence: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms, once resolved.
    pub resolved_at: Option<i64>,
    /// Who resolved it.
    pub resolved_by: Option<String>,
    /// The item that now answers it.
    pub resolution: Option<String>,
}

impl Store {
    /// `tenant`'s flags not resolved yet, newest first, at most `limit`.
    pub async fn open_flags(&self, tenant: &TenantId, limit: i64) -> Result<Vec<FlagRow>, StoreError> {
        Ok(with_tenant!(self, tenant, |conn| {
            knowledge_flags::table
                .filter(knowledge_flags::tenant.eq(tenant.as_str()))
                .filter(knowledge_flags::resolved_at.is_null())
                .select(FlagRow::as_select())
                .order(knowledge_flags::id.desc())
                .limit(limit)
                .load(conn)
                .await?
        }))
    }

    /// The flags of one of `tenant`'s conversations, oldest first (for a customer's export).
    pub async fn flags_of(&self, tenant: &TenantId, conversation_id: &str) -> Result<Vec<FlagRow>, StoreError> {
        Ok(with_tenant!(self, tenant, |conn| {
            knowledge_flags::table
                .filter(knowledge_flags::tenant.eq(tenant.as_str()))
                .filter(knowledge_flags::conversation_id.eq(conversation_id))
                .select(FlagRow::as_select())
                .order(knowledge_flags::id)
                .load(conn)
                .await?
        }))
    }

    /// Flags of `tenant` by id (another tenant's are not found).
    pub async fn flags(&self, tenant: &TenantId, ids: &[i64]) -> Result<Vec<FlagRow>, StoreError> {
        Ok(with_tenant!(self, tenant, |conn| {
            knowledge_flags::table
                .filter(knowledge_flags::tenant.eq(tenant.as_str()))
                .filter(knowledge_flags::id.eq_any(ids))
                .select(FlagRow::as_select())
                .order(knowledge_flags::id)
                .load(conn)
                .await?
        }))
    }

    /// Marks open flags `ids` of `tenant` resolved by `by` with the item `resolution`; returns how many.
    pub async fn resolve_flags(
        &self,
        tenant: &TenantId,
        ids: &[i64],
        by: &str,
        resolution: &str,
    ) -> Result<usize, StoreError> {
        Ok(with_conn!(self, |conn| {
            diesel::update(knowledge_flags::table.filter(knowledge_flags::id.eq_any(ids)))
                .filter(knowledge_flags::tenant.eq(tenant.as_str()))
                .filter(knowledge_flags::resolved_at.is_null())
                .set((
                    knowledge_flags::resolved_at.eq(Some(now_ms())),
                    knowledge_flags::resolved_by.eq(Some(by)),
                    knowledge_flags::resolution.eq(Some(resolution)),
                ))
                .execute(conn)
                .await?
        }))
    }
}
