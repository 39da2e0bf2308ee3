//! Operators' reads of conversations (table `conversations`), each for one tenant: the
//! row-level security wall is raised for them on PostgreSQL (see `tenant_wall`).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::schema::conversations;
use super::{ConversationRow, Store, StoreError};

impl Store {
    /// `tenant`'s conversation by id (another tenant's is not found).
    pub async fn conversation(
        &self,
        tenant: &crate::tenant::TenantId,
        conversation_id: &str,
    ) -> Result<Option<ConversationRow>, StoreError> {
        let cid = conversation_id.to_string();
        Ok(with_tenant!(self, tenant, |conn| {
            conversations::table
                .find(&cid)
                .filter(conversations::tenant.eq(tenant.as_str()))
                .select(ConversationRow::as_select())
                .first(conn)
                .await
                .optional()?
        }))
    }

    /// `tenant`'s conversations with a customer (by wa_id), newest first.
    pub async fn conversations_of(
        &self,
        tenant: &crate::tenant::TenantId,
        customer: &str,
    ) -> Result<Vec<ConversationRow>, StoreError> {
        let c = customer.to_string();
        Ok(with_tenant!(self, tenant, |conn| {
            conversations::table
                .filter(conversations::tenant.eq(tenant.as_str()))
                .filter(conversations::customer.eq(&c))
                .order(conversations::updated_at.desc())
                .select(ConversationRow::as_select())
                .load(conn)
                .await?
        }))
    }

    /// `tenant`'s conversations, most recently updated first (for operators' lists).
    pub async fn recent_conversations(
        &self,
        tenant: &crate::tenant::TenantId,
        limit: i64,
    ) -> Result<Vec<ConversationRow>, StoreError> {
        Ok(with_tenant!(self, tenant, |conn| {
            conversations::table
                .filter(conversations::tenant.eq(tenant.as_str()))
                .order(conversations::updated_at.desc())
                .limit(limit)
                .select(ConversationRow::as_select())
                .load(conn)
                .await?
        }))
    }
}
