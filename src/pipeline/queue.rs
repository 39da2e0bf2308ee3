//! What the pipeline queues, typed: inbox rows (one builder, [`inbox_row`], for every producer:
//! the webhook, the admin API, the outbox, the scheduler) and outbox payloads ([`Payload`], one
//! variant per [`OutboxKind`]).

use crate::tenant::TenantId;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::App;
use crate::engine::{ErpRequest, InboundEvent};
use crate::store::{Lane, NewInbox, NewOutbox, OutboxKind, OutboxRow, StoreError};

/// The conversation of `customer` on the business number `phone_number_id`.
pub fn conversation_id(phone_number_id: &str, customer: &str) -> String {
    format!("{phone_number_id}:{customer}")
}

/// The inbox row of `event` for its customer's conversation on `phone_number_id`, keyed by the
/// event's message id (a repeated delivery finds the first row). `received_at`: Unix ms.
pub fn inbox_row(tenant: &TenantId, phone_number_id: &str, event: &InboundEvent, received_at: i64) -> NewInbox {
    NewInbox {
        tenant: tenant.to_string(),
        dedup_key: event.message_id.clone(),
        conversation_id: conversation_id(phone_number_id, &event.customer),
        phone_number_id: phone_number_id.to_string(),
        event: serde_json::to_string(event).unwrap_or_default(),
        received_at,
    }
}

/// Queues one event and wakes its conversation in `lane`. Returns whether it was new.
///
/// Errors: [`StoreError`] when the inbox cannot be written (nothing was queued).
pub async fn enqueue(
    app: &App,
    tenant: &TenantId,
    phone_number_id: &str,
    event: &InboundEvent,
    lane: Lane,
) -> Result<bool, StoreError> {
    let row = inbox_row(tenant, phone_number_id, event, crate::store::now_ms());
    let conversation = row.conversation_id.clone();
    let fresh = app.store.insert_event(row).await?;
    if fresh {
        app.wake(&conversation, lane);
    }
    Ok(fresh)
}

/// A message to send through the Graph API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Send {
    /// The business number it goes from.
    pub phone_number_id: String,
    /// The customer (a number's digits or a business-scoped user id).
    pub to: String,
    /// The Graph API body (see `channel::whatsapp::render`).
    pub body: Value,
    /// When the customer's message that this answers arrived (Unix ms), for the reply-time
    /// metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_at: Option<i64>,
}

/// A reply to a website visitor (the widget reads it; see `channel::web`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebReply {
    /// The site's key.
    pub site: String,
    /// The visitor's session.
    pub session: String,
    /// The message as the widget shows it (see `channel::web::render`).
    pub body: Value,
    /// When the visitor's message that this answers arrived (Unix ms), for the reply-time
    /// metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_at: Option<i64>,
}

/// A write to the ERP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErpWrite {
    /// The customer.
    pub customer: String,
    /// The business number the conversation is on.
    pub phone_number_id: String,
    /// The rendered, validated action.
    pub request: ErpRequest,
}

/// An event for another conversation's inbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forward {
    /// The conversation it goes to.
    pub conversation_id: String,
    /// Its business number.
    pub phone_number_id: String,
    /// The event.
    pub event: InboundEvent,
}

/// What the team's hand-off webhook receives (`HANDOFF_WEBHOOK_URL`), as JSON, signed with
/// `X-Carewell-Signature: sha256=<hex HMAC-SHA256 of the body with HANDOFF_WEBHOOK_SECRET>` (the
/// same scheme WhatsApp uses for its webhooks).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandoffNotice {
    /// Always `handoff.waiting`.
    pub event: String,
    /// The record's idempotency key: a receiver that sees it twice (a retried POST) ignores the
    /// second.
    pub key: String,
    /// `phone_number_id:wa_id`.
    pub conversation_id: String,
    /// The customer's number (wa_id).
    pub customer: String,
    /// Why the conversation was handed off.
    pub reason: String,
    /// The team queue.
    pub queue: String,
    /// When it was handed off (Unix ms).
    pub since: i64,
}

/// An outbox row's payload, by kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// [`OutboxKind::WhatsApp`].
    Send(Send),
    /// [`OutboxKind::Erp`].
    Erp(ErpWrite),
    /// [`OutboxKind::Inbox`].
    Forward(Forward),
    /// [`OutboxKind::Handoff`].
    Handoff(crate::store::NewHandoff),
    /// [`OutboxKind::Webhook`].
    Webhook(HandoffNotice),
    /// [`OutboxKind::KnowledgeFlag`].
    Flag(crate::store::NewFlag),
    /// [`OutboxKind::Web`].
    Web(WebReply),
}

impl Payload {
    /// Its kind.
    pub fn kind(&self) -> OutboxKind {
        match self {
            Payload::Send(_) => OutboxKind::WhatsApp,
            Payload::Erp(_) => OutboxKind::Erp,
            Payload::Forward(_) => OutboxKind::Inbox,
            Payload::Handoff(_) => OutboxKind::Handoff,
            Payload::Webhook(_) => OutboxKind::Webhook,
            Payload::Flag(_) => OutboxKind::KnowledgeFlag,
            Payload::Web(_) => OutboxKind::Web,
        }
    }

    /// As stored.
    pub fn to_json(&self) -> String {
        match self {
            Payload::Send(p) => serde_json::to_string(p),
            Payload::Erp(p) => serde_json::to_string(p),
            Payload::Forward(p) => serde_json::to_string(p),
            Payload::Handoff(p) => serde_json::to_string(p),
            Payload::Webhook(p) => serde_json::to_string(p),
            Payload::Flag(p) => serde_json::to_string(p),
            Payload::Web(p) => serde_json::to_string(p),
        }
        .unwrap_or_default()
    }

    /// A pending outbox row carrying it for `conversation_id` (`now`: Unix ms).
    pub fn row(&self, conversation_id: &str, idempotency_key: String, now: i64) -> NewOutbox {
        NewOutbox::pending(conversation_id, self.kind(), idempotency_key, self.to_json(), now)
    }

    /// A stored row's payload.
    ///
    /// Errors: the row's kind is unknown to this build, or its payload does not parse as that
    /// kind's (`outbox.corrupt_payload`).
    pub fn of(row: &OutboxRow) -> Result<Payload, String> {
        let kind = row.kind().ok_or_else(|| format!("outbox.unknown_kind: {}", row.kind))?;
        let bad = |e: serde_json::Error| format!("outbox.corrupt_payload: {e}");
        Ok(match kind {
            OutboxKind::WhatsApp => Payload::Send(serde_json::from_str(&row.payload).map_err(bad)?),
            OutboxKind::Erp => Payload::Erp(serde_json::from_str(&row.payload).map_err(bad)?),
            OutboxKind::Inbox => Payload::Forward(serde_json::from_str(&row.payload).map_err(bad)?),
            OutboxKind::Handoff => Payload::Handoff(serde_json::from_str(&row.payload).map_err(bad)?),
            OutboxKind::Webhook => Payload::Webhook(serde_json::from_str(&row.payload).map_err(bad)?),
            OutboxKind::KnowledgeFlag => Payload::Flag(serde_json::from_str(&row.payload).map_err(bad)?),
            OutboxKind::Web => Payload::Web(serde_json::from_str(&row.payload).map_err(bad)?),
        })
    }
}
