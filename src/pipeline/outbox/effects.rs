//! What the dispatcher does with one claimed row: send a WhatsApp message, write to the ERP, or
//! deliver an event to another conversation, and record the outcome under the row's claim (a
//! retry with backoff, the dead letter, or done with the event that tells the conversation).
//! Every record is conditional on the claim's fencing token: a process whose claim expired is
//! told so and records nothing (`outbox.claim_lost`).

use tracing::{error, info, warn};

use super::backoff_delay;
use super::keeper::ClaimKeeper;
use crate::engine::{ErpRequest, EventKind, InboundEvent};
use crate::erp::ErpError;
use crate::pipeline::App;
use crate::pipeline::Tenant;
use crate::pipeline::queue::{self, ErpWrite, Send};
use crate::store::{Claim, Lane, OutboxKind, OutboxRow, OutboxStatus, StoreError, now_ms};

/// Logs and counts an outbox record that was not written: its claim was lost (another process
/// holds the row), or the store failed (the claim runs out and the row is attempted again,
/// its attempt counted, so it still reaches the dead letter).
fn not_recorded(app: &App, row: &OutboxRow, what: &str, outcome: Result<bool, StoreError>) {
    match outcome {
        Ok(true) => {}
        Ok(false) => {
            warn!(
                code = "outbox.claim_lost",
                outbox_id = row.id,
                what,
                "the row's claim was taken elsewhere; nothing recorded"
            );
            app.metrics.errors.with_label_values(&["outbox.claim_lost"]).inc();
        }
        Err(e) => {
            error!(code = e.code(), error = %e, outbox_id = row.id, what, "could not record an outbox outcome; the row will be attempted again");
            app.metrics.errors.with_label_values(&[e.code()]).inc();
        }
    }
}

/// Schedules a retry, or dead-letters the row after its last attempt (or at once when not
/// `retryable`); returns whether it is finished (dead).
pub async fn retry_or_dead(app: &App, row: &OutboxRow, claim: Claim, code: &str, error: &str, retryable: bool) -> bool {
    let attempt = claim.attempt.max(1) as u32;
    if retryable && attempt < app.settings.outbox_max_attempts {
        let delay = backoff_delay(app.settings.outbox_base_delay, attempt);
        warn!(
            code,
            error,
            outbox_id = row.id,
            attempt,
            retry_in_ms = delay.as_millis() as u64,
            "outbox attempt failed; will retry"
        );
        let at = now_ms() + delay.as_millis() as i64;
        not_recorded(app, row, "retry", app.store.outbox_retry(claim, at, &format!("{code}: {error}")).await);
        app.outbox_due.due_at(at);
        false
    } else {
        error!(code, error, outbox_id = row.id, attempts = attempt, "outbox row dead-lettered");
        not_recorded(app, row, "dead letter", app.store.outbox_dead(claim, &format!("{code}: {error}")).await);
        true
    }
}

/// Counts a finished row and, for a reply, the time from the customer's webhook to the send.
pub fn observe_sent(app: &App, send: Option<&Send>, kind: OutboxKind, status: OutboxStatus) {
    app.metrics.outbox_done.with_label_values(&[kind.as_str(), status.as_str()]).inc();
    if let Some((received, to)) = send.and_then(|s| s.received_at.map(|r| (r, &s.to))) {
        let ms = (now_ms() - received).max(0);
        app.metrics.observe("reply", ms as f64 / 1000.0);
        tracing::debug!(to = %to, reply_ms = ms, "reply sent");
    }
}

/// Counts a reply to a website visitor as sent, with the time from the visitor's message.
pub fn observe_web(app: &App, reply: &super::super::queue::WebReply) {
    app.metrics.outbox_done.with_label_values(&[OutboxKind::Web.as_str(), OutboxStatus::Sent.as_str()]).inc();
    if let Some(received) = reply.received_at {
        app.metrics.observe("reply", (now_ms() - received).max(0) as f64 / 1000.0);
    }
}

/// Sends a WhatsApp message; on success pushes `(claim, wamid)` to `sent` (marked with the rest
/// of the pass). Returns whether the row is finished (sent or dead) rather than waiting for a
/// retry.
pub async fn send_message(
    app: &App,
    row: &OutboxRow,
    claim: Claim,
    payload: &Send,
    sent: &mut Vec<(Claim, String)>,
) -> bool {
    let tenant = app.tenants.of_conversation(&row.conversation_id);
    let Some(graph) = tenant.as_ref().and_then(|t| t.graph.as_ref()) else {
        // Sandbox: no WhatsApp configured; the message is kept as sent, for `chat` to show.
        sent.push((claim, format!("wamid.sandbox-{}", row.id)));
        observe_sent(app, Some(payload), OutboxKind::WhatsApp, OutboxStatus::Sent);
        return true;
    };
    app.limits.outbound.until_key_ready(&payload.phone_number_id).await;
    let started = std::time::Instant::now();
    let outcome = graph.send(&payload.phone_number_id, &payload.body).await;
    app.metrics.observe("outbox_send", started.elapsed().as_secs_f64());
    tracing::debug!(outbox_id = row.id, send_ms = started.elapsed().as_millis() as u64, "Graph API answered");
    match outcome {
        Ok(wamid) => {
            sent.push((claim, wamid));
            observe_sent(app, Some(payload), OutboxKind::WhatsApp, OutboxStatus::Sent);
            true
        }
        Err(e) => {
            app.metrics.errors.with_label_values(&[e.code()]).inc();
            let dead = retry_or_dead(app, row, claim, e.code(), &e.to_string(), e.is_retryable()).await;
            if dead {
                observe_sent(app, None, OutboxKind::WhatsApp, OutboxStatus::Dead);
            }
            dead
        }
    }
}

/// After the first failed attempt at an ERP write, the conversation is told (through its inbox, so
/// the engine decides and the turn is recorded) that the confirmation will take longer.
async fn tell_delay(app: &App, row: &OutboxRow, write: &ErpWrite) {
    let event = InboundEvent::internal(
        format!("erp-delay:{}", row.id),
        write.customer.clone(),
        now_ms() / 1000,
        EventKind::ErpDelayed {
            journey_id: write.request.journey_id.clone(),
            action: write.request.action.action.clone(),
        },
    );
    if let Err(e) =
        queue::enqueue(app, &app.tenant_id_of(&row.conversation_id), &write.phone_number_id, &event, Lane::Interactive)
            .await
    {
        error!(code = e.code(), error = %e, "could not queue the delay notice");
    }
}

/// Delivers an event to another conversation's inbox (a conversation moved to the customer's
/// new number): the inbox row and this row's `sent` mark in one transaction, so it arrives once.
pub async fn forward(app: &App, row: &OutboxRow, claim: Claim, forward: &queue::Forward) -> bool {
    // The other conversation is the same business's (a number change, a website chat moving to
    // WhatsApp).
    let inbox =
        queue::inbox_row(&app.tenant_id_of(&row.conversation_id), &forward.phone_number_id, &forward.event, now_ms());
    let target = inbox.conversation_id.clone();
    match app.store.outbox_done_with_event(claim, &target, OutboxStatus::Sent, inbox).await {
        Ok(recorded) => {
            if recorded {
                observe_sent(app, None, OutboxKind::Inbox, OutboxStatus::Sent);
                app.wake(&target, Lane::Interactive);
            } else {
                not_recorded(app, row, "forward", Ok(false));
            }
            true
        }
        Err(e) => retry_or_dead(app, row, claim, e.code(), &e.to_string(), true).await,
    }
}

/// Fetches from WhatsApp the files an ERP action attaches (none for the sandbox ERP).
async fn fetch_attachments(tenant: &Tenant, request: &ErpRequest) -> Result<Vec<Vec<u8>>, ErpError> {
    let mut files = Vec::new();
    if tenant.erp.is_sandbox() {
        return Ok(files);
    }
    for attachment in &request.action.attachments {
        let Some(graph) = &tenant.graph else {
            return Err(ErpError::Attachment {
                message: "a file must be fetched from WhatsApp but no Graph API client is configured; set WHATSAPP_ACCESS_TOKEN".into(),
                retryable: false,
            });
        };
        let (bytes, _) = graph.download_media(&attachment.media_id).await.map_err(|e| ErpError::Attachment {
            message: format!("media {} could not be fetched: {e}", attachment.media_id),
            retryable: e.is_retryable(),
        })?;
        files.push(bytes);
    }
    Ok(files)
}

/// Executes an ERP write under `claim`, kept alive by `keeper` meanwhile, and records its
/// outcome: done with the event that tells the conversation (its key names this claim, so a
/// write sent again by an operator is told again), a retry, or the dead letter. Stops, writing
/// nothing more, as soon as the claim is lost: whoever holds the row now writes it (the ERP
/// write looks its documents up first, so the two cannot make two).
pub async fn write_erp(app: &App, row: &OutboxRow, claim: Claim, write: &ErpWrite, keeper: &ClaimKeeper) {
    let request = &write.request;
    let tenant = app.tenants.of_conversation(&row.conversation_id);
    let work = async {
        let Some(tenant) = tenant else {
            return Err(ErpError::Attachment {
                message: format!(
                    "conversation {} belongs to no tenant this process serves; check TENANTS_DIR",
                    row.conversation_id
                ),
                retryable: false,
            });
        };
        // Files the customer sent are fetched from WhatsApp first (the sandbox ERP needs none).
        match fetch_attachments(&tenant, request).await {
            Ok(files) => tenant.erp.execute_with_files(&request.action, &files).await,
            Err(e) => Err(e),
        }
    };
    let outcome = tokio::select! {
        outcome = work => outcome,
        _ = keeper.lost(claim.id) => {
            warn!(code = "outbox.claim_lost", outbox_id = row.id, "an ERP write outlived its claim; it stops here and the row's new holder writes it");
            return;
        }
    };
    keeper.release(claim.id);
    let (reference, error, status) = match outcome {
        Ok(reference) => {
            info!(outbox_id = row.id, reference, action = request.action.action, "ERP write accepted");
            (Some(reference), None, OutboxStatus::Sent)
        }
        Err(e) => {
            if e.is_retryable() && (claim.attempt.max(1) as u32) < app.settings.outbox_max_attempts {
                if claim.attempt <= 1 {
                    tell_delay(app, row, write).await;
                }
                retry_or_dead(app, row, claim, e.code(), &e.to_string(), true).await;
                return;
            }
            error!(code = e.code(), error = %e, outbox_id = row.id, "ERP write failed for good; the customer will be told");
            (None, Some(format!("{}: {e}", e.code())), OutboxStatus::Dead)
        }
    };
    record_erp_outcome(app, row, claim, write, reference, error, status).await;
}

/// Dead-letters an ERP write given up on without an answer from the ERP, telling its
/// conversation that it failed (`why`).
pub async fn erp_given_up(app: &App, row: &OutboxRow, claim: Claim, write: &ErpWrite, why: &str) {
    record_erp_outcome(app, row, claim, write, None, Some(why.to_string()), OutboxStatus::Dead).await;
}

/// Closes an ERP row under `claim` with the event that tells its conversation the outcome (its
/// key names this claim, so a write sent again by an operator is told again).
async fn record_erp_outcome(
    app: &App,
    row: &OutboxRow,
    claim: Claim,
    write: &ErpWrite,
    reference: Option<String>,
    error: Option<String>,
    status: OutboxStatus,
) {
    let request = &write.request;
    let event = InboundEvent::internal(
        format!("erp:{}:{}", row.id, claim.token),
        write.customer.clone(),
        now_ms() / 1000,
        EventKind::ErpOutcome {
            journey_id: request.journey_id.clone(),
            action: request.action.action.clone(),
            reference: reference.clone(),
            error: error.clone(),
        },
    );
    let inbox = queue::inbox_row(&app.tenant_id_of(&row.conversation_id), &write.phone_number_id, &event, now_ms());
    let result = reference.unwrap_or_else(|| error.unwrap_or_default());
    match app.store.outbox_done_with_event(claim, &result, status, inbox).await {
        Ok(true) => {
            observe_sent(app, None, OutboxKind::Erp, status);
            app.wake(&row.conversation_id, Lane::Interactive);
        }
        outcome => {
            // The write is done in the ERP; whoever attempts the row next looks it up by key and
            // finds it.
            not_recorded(app, row, "ERP answer", outcome);
        }
    }
}
