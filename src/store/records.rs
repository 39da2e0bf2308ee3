//! What the store keeps beside the queues: conversations' wake-ups (the scheduler's), the lookup
//! results and compiled flows that turn records name by hash, the turns of a conversation, and
//! WhatsApp's delivery receipts.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::schema::{conversations, flow_versions, inbox, lookup_snapshots, message_statuses, turns};
use super::{NewInbox, Store, StoreError, TurnRow, now_ms};
use crate::tenant::TenantId;

impl Store {
    /// Conversations whose wake-up time has come: (id, customer, phone_number_id, wake_at).
    pub async fn due_wakeups(&self, now: i64, limit: i64) -> Result<Vec<(String, String, String, i64)>, StoreError> {
        let rows: Vec<(String, String, String, Option<i64>)> = with_conn!(self, |conn| {
            conversations::table
                .filter(conversations::wake_at.le(now))
                .order(conversations::wake_at)
                .limit(limit)
                .select((
                    conversations::id,
                    conversations::customer,
                    conversations::phone_number_id,
                    conversations::wake_at,
                ))
                .load(conn)
                .await?
        });
        Ok(rows.into_iter().filter_map(|(a, b, c, w)| w.map(|w| (a, b, c, w))).collect())
    }

    /// Queues the wake-up event of a conversation and clears its wake-up time, once: a second
    /// process doing the same finds the time already cleared, and the event's key is unique.
    pub async fn queue_wakeup(&self, conversation_id: &str, wake_at: i64, event: NewInbox) -> Result<bool, StoreError> {
        let cid = conversation_id.to_string();
        with_conn!(self, |conn| {
            conn.transaction::<_, StoreError, _>(async move |c| {
                let n = diesel::update(conversations::table)
                    .filter(conversations::id.eq(&cid))
                    .filter(conversations::wake_at.eq(wake_at))
                    .set(conversations::wake_at.eq(None::<i64>))
                    .execute(c)
                    .await?;
                if n == 1 {
                    diesel::insert_into(inbox::table)
                        .values(&event)
                        .on_conflict(inbox::dedup_key)
                        .do_nothing()
                        .execute(c)
                        .await?;
                }
                Ok(n == 1)
            })
            .await
        })
    }

    /// Sets when a conversation should be woken (Unix ms), as if time had passed; for operators
    /// ("remind now") and tests.
    pub async fn set_wake_at(&self, conversation_id: &str, at: Option<i64>) -> Result<(), StoreError> {
        let cid = conversation_id.to_string();
        with_conn!(self, |conn| {
            diesel::update(conversations::table.find(&cid)).set(conversations::wake_at.eq(at)).execute(conn).await?;
            Ok(())
        })
    }

    /// `tenant`'s lookup results stored under `hash` (see [`LookupSnapshot`]), as JSON.
    pub async fn lookup_snapshot(&self, tenant: &TenantId, hash: &str) -> Result<Option<String>, StoreError> {
        let h = hash.to_string();
        Ok(with_conn!(self, |conn| {
            lookup_snapshots::table
                .find((tenant.as_str(), &h))
                .select(lookup_snapshots::body)
                .first::<String>(conn)
                .await
                .optional()?
        }))
    }

    /// Stores `tenant`'s compiled flows by content hash (`(hash, flow id, version, body JSON)`);
    /// one already stored is left as it is.
    pub async fn store_flow_versions(
        &self,
        tenant: &TenantId,
        versions: &[(String, String, i32, String)],
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let rows: Vec<_> = versions
            .iter()
            .map(|(h, id, v, body)| {
                (
                    flow_versions::tenant.eq(tenant.to_string()),
                    flow_versions::hash.eq(h.clone()),
                    flow_versions::flow_id.eq(id.clone()),
                    flow_versions::version.eq(*v),
                    flow_versions::body.eq(body.clone()),
                    flow_versions::created_at.eq(now),
                )
            })
            .collect();
        with_conn!(self, |conn| {
            for row in &rows {
                diesel::insert_into(flow_versions::table)
                    .values(row.clone())
                    .on_conflict((flow_versions::tenant, flow_versions::hash))
                    .do_nothing()
                    .execute(conn)
                    .await?;
            }
            Ok::<(), StoreError>(())
        })
    }

    /// `tenant`'s compiled flow stored under `hash`, as JSON.
    pub async fn flow_version(&self, tenant: &TenantId, hash: &str) -> Result<Option<String>, StoreError> {
        let h = hash.to_string();
        Ok(with_conn!(self, |conn| {
            flow_versions::table
                .find((tenant.as_str(), &h))
                .select(flow_versions::body)
                .first::<String>(conn)
                .await
                .optional()?
        }))
    }

    /// Turns of one of `tenant`'s conversations, in order.
    pub async fn turns_of(&self, tenant: &TenantId, conversation_id: &str) -> Result<Vec<TurnRow>, StoreError> {
        let cid = conversation_id.to_string();
        Ok(with_tenant!(self, tenant, |conn| {
            turns::table
                .filter(turns::tenant.eq(tenant.as_str()))
                .filter(turns::conversation_id.eq(&cid))
                .order(turns::seq)
                .select(TurnRow::as_select())
                .load(conn)
                .await?
        }))
    }

    /// Records a delivery receipt of a message `tenant` sent; a repeated one changes nothing.
    pub async fn record_status(
        &self,
        tenant: &TenantId,
        message_id: &str,
        status: &str,
        recipient: &str,
        timestamp: i64,
        detail: Option<String>,
    ) -> Result<(), StoreError> {
        let (m, s, r) = (message_id.to_string(), status.to_string(), recipient.to_string());
        with_conn!(self, |conn| {
            diesel::insert_into(message_statuses::table)
                .values((
                    message_statuses::tenant.eq(tenant.as_str()),
                    message_statuses::message_id.eq(&m),
                    message_statuses::status.eq(&s),
                    message_statuses::recipient.eq(&r),
                    message_statuses::timestamp.eq(timestamp),
                    message_statuses::detail.eq(detail.clone()),
                ))
                .on_conflict((message_statuses::message_id, message_statuses::status))
                .do_nothing()
                .execute(conn)
                .await?;
            Ok(())
        })
    }
}
