//! Setting aside what the worker cannot read, so that one bad row or state never blocks its
//! conversation: the thing goes to the quarantine (with its error, for the admin API and
//! `explain`), and the conversation gets a `SetAside` event that hands it to a person. Later
//! messages are processed as usual.

use tracing::error;

use crate::engine::{ConversationState, EventKind, InboundEvent};
use crate::pipeline::App;
use crate::pipeline::queue;
use crate::store::{ConversationRow, InboxRow, Lane, QuarantineKind, StoreError, now_ms};

/// The customer of a conversation id (`phone_number_id:wa_id`).
fn customer_of(conversation_id: &str) -> &str {
    conversation_id.split_once(':').map_or(conversation_id, |(_, wa)| wa)
}

/// The event telling a conversation that something of it was set aside.
fn notice(conversation_id: &str, what: QuarantineKind, quarantine_id: i64, error: &str) -> InboundEvent {
    InboundEvent::internal(
        format!("set-aside:{conversation_id}:{quarantine_id}"),
        customer_of(conversation_id),
        now_ms() / 1000,
        EventKind::SetAside { what: what.as_str().into(), quarantine_id, error: error.into() },
    )
}

/// Sets an inbox row aside: its event does not parse ([`QuarantineKind::InboxEvent`]) or its
/// turn failed on every attempt ([`QuarantineKind::Turn`]). Wakes the conversation for the
/// notice.
///
/// Errors: the store's (the row stays pending and is tried again).
pub async fn row(app: &App, row: &InboxRow, what: QuarantineKind, error: &str) -> Result<(), StoreError> {
    let cid = row.conversation_id.clone();
    let number = row.phone_number_id.clone();
    let tenant = app.tenant_id_of(&cid);
    let tell = |id: i64| queue::inbox_row(&tenant, &number, &notice(&cid, what, id, error), now_ms());
    let id = app.store.quarantine_inbox_row(&tenant, row, what, error, tell).await?;
    error!(
        code = "worker.set_aside",
        quarantine_id = id,
        inbox_id = row.id,
        what = what.as_str(),
        error,
        "an inbox row was set aside for a person"
    );
    app.metrics.errors.with_label_values(&["worker.set_aside"]).inc();
    app.wake(&row.conversation_id, Lane::Interactive);
    Ok(())
}

/// Sets a conversation's stored state aside (it does not parse) and stores a fresh one whose
/// turn numbers carry on after the stored turns; returns the conversation as it now is and the
/// fresh state.
///
/// Errors: the store's, or [`StoreError::LeaseLost`].
pub async fn state(
    app: &App,
    conv: &ConversationRow,
    error: &str,
) -> Result<(ConversationRow, ConversationState), StoreError> {
    let mut fresh = ConversationState::new(&conv.customer);
    fresh.turns = app.store.last_turn_seq(&conv.id).await?.max(0) as u64;
    let body = serde_json::to_string(&fresh).unwrap_or_default();
    let number = conv.phone_number_id.clone();
    let tenant = app.tenant_id_of(&conv.id);
    let tell =
        |id: i64| queue::inbox_row(&tenant, &number, &notice(&conv.id, QuarantineKind::State, id, error), now_ms());
    let (id, version) =
        app.store.quarantine_state(&tenant, &conv.id, &app.instance_id, conv.version, &body, error, tell).await?;
    error!(code = "worker.set_aside", quarantine_id = id, conversation_id = %conv.id, error, "a stored state was set aside for a person; the conversation starts afresh");
    app.metrics.errors.with_label_values(&["worker.set_aside"]).inc();
    let mut now = conv.clone();
    now.state = body;
    now.version = version;
    Ok((now, fresh))
}
