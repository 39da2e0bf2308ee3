//! A conversation test's `review:` turn: a person in the console approves (perhaps edits) or
//! rejects the draft reply to the customer's latest ticket, as `tickets::approve` and
//! `tickets::reject` do for the console and the admin API.

use serde::Deserialize;

use crate::pipeline::App;
use crate::pipeline::tickets;
use crate::store::{DraftStatus, Reviewed};

/// Who reviews in a conversation test (in the audit trail and the ticket's comment).
pub const REVIEWER: &str = "qa";

/// Review the draft reply to the customer's ticket: exactly one of `approve` and `reject`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Review {
    /// The draft must contain each of these.
    #[serde(default)]
    pub draft_says: Vec<String>,
    /// Approve it: as drafted when empty, otherwise as this text.
    #[serde(default)]
    pub approve: Option<String>,
    /// Reject it, with this reason.
    #[serde(default)]
    pub reject: Option<String>,
}

/// Reads the ERP's tickets, then reviews the customer's pending draft as `r` says. Returns what
/// was done, for the report.
///
/// Errors: no draft waits for the customer, the draft lacks a `draft_says` text, or the review
/// failed.
pub async fn review(app: &App, customer: &str, r: &Review) -> Result<String, String> {
    let tenant = app.tenants.all().first().cloned().ok_or("no tenant is served")?;
    tickets::poll(app, &tenant).await.map_err(|e| format!("reading the tickets failed: {e}"))?;
    let pending = app.store.drafts(&tenant.id, Some(DraftStatus::Pending), 100).await.map_err(|e| e.to_string())?;
    let Some(d) = pending.into_iter().find(|d| d.customer == customer) else {
        return Err("no draft reply waits for review for this customer".into());
    };
    for s in &r.draft_says {
        if !d.draft.contains(s.as_str()) {
            return Err(format!("expected the draft to say {s:?}; it says {:?}", d.draft));
        }
    }
    let (done, what) = match (&r.approve, &r.reject) {
        (Some(text), None) => {
            let edited = Some(text.as_str()).filter(|t| !t.trim().is_empty());
            let done = tickets::approve(app, &tenant, d.id, edited, REVIEWER).await;
            (done, format!("approve the reply to {}", d.ticket))
        }
        (None, Some(reason)) => {
            (tickets::reject(app, &tenant, d.id, reason, REVIEWER).await, format!("reject the reply to {}", d.ticket))
        }
        _ => return Err("give one of approve (the text, or \"\" as drafted) and reject (the reason)".into()),
    };
    match done.map_err(|e| e.to_string())? {
        Reviewed::Done(_) => Ok(what),
        other => Err(format!("{what}: {other:?}")),
    }
}
