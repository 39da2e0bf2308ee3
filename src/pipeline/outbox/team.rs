//! The outbox's hand-off effects: writing the hand-off record (and a flagged question, written
//! the same way), and telling the team's webhook
//! (a signed POST, retried and dead-lettered like every row). The WhatsApp alerts to the staff
//! numbers are ordinary WhatsApp rows.

use super::effects::retry_or_dead;
use crate::channel::whatsapp::signature::sign;
use crate::pipeline::App;
use crate::pipeline::queue::HandoffNotice;
use crate::store::{Claim, OutboxRecord, OutboxRow};

/// The header carrying the body's HMAC-SHA256 (`sha256=<hex>`), keyed with
/// `HANDOFF_WEBHOOK_SECRET`.
pub const SIGNATURE_HEADER: &str = "X-Carewell-Signature";

/// Writes `record` (a hand-off record, a flagged question) and closes the row in one
/// transaction; returns whether the row is finished.
pub async fn record(app: &App, row: &OutboxRow, claim: Claim, record: OutboxRecord) -> bool {
    match app.store.outbox_done_with_record(claim, record).await {
        Ok(true) => true,
        Ok(false) => {
            tracing::warn!(code = "outbox.claim_lost", outbox_id = row.id, kind = %row.kind, "record: claim taken elsewhere");
            true
        }
        Err(e) => retry_or_dead(app, row, claim, e.code(), &e.to_string(), true).await,
    }
}

/// Posts `notice` to the team's webhook; a 2xx answer closes the row (in the caller's batch of
/// sent rows), anything else is retried with backoff and dead-lettered after the last attempt.
/// Returns whether the row is finished.
pub async fn post_notice(
    app: &App,
    row: &OutboxRow,
    claim: Claim,
    notice: &HandoffNotice,
    sent: &mut Vec<(Claim, String)>,
) -> bool {
    let Some(hook) = &app.settings.team_webhook else {
        // Configured when queued, not any more: nothing to tell.
        sent.push((claim, "no webhook configured".into()));
        return true;
    };
    let body = serde_json::to_string(notice).unwrap_or_default();
    let answer = app
        .http
        .post(&hook.url)
        .timeout(hook.timeout)
        .header("Content-Type", "application/json")
        .header(SIGNATURE_HEADER, sign(hook.secret.as_bytes(), body.as_bytes()))
        .body(body)
        .send()
        .await;
    match answer {
        Ok(r) if r.status().is_success() => {
            sent.push((claim, format!("HTTP {}", r.status().as_u16())));
            true
        }
        Ok(r) => {
            let status = r.status();
            let why = format!("the hand-off webhook answered HTTP {}", status.as_u16());
            // A 4xx other than 408/429 will not change by retrying.
            let retryable = status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429;
            retry_or_dead(app, row, claim, "team.webhook_refused", &why, retryable).await
        }
        Err(e) => {
            let why = format!("the hand-off webhook could not be reached: {e}");
            retry_or_dead(app, row, claim, "team.webhook_unreachable", &why, true).await
        }
    }
}
