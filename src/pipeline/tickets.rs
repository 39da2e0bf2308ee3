//! Replies to support tickets, reviewed before sending. The poller reads the ERP's tickets
//! (`flows/erp.yaml`, `tickets`) changed since its cursor and drafts one reply per ticket from the
//! knowledge base (worded by the LLM and checked against its sources when a flow words its
//! answers, the best passage as written otherwise). A person approves (perhaps edits) or rejects
//! each draft: approval queues a [`EventKind::TicketReply`] for the customer's conversation in
//! the same transaction, and the engine sends it and posts it on the ticket; rejection flags the
//! knowledge the draft used.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tracing::{error, info};

use super::{App, Tenant};
use crate::engine::answers::FlagReason;
use crate::engine::{EventKind, InboundEvent};
use crate::erp::ErpError;
use crate::flow::FlowSet;
use crate::flow::messages::Messages;
use crate::flow::tickets::Tickets;
use crate::guard::knowledge::{KNOWLEDGE_ANSWER, worded};
use crate::knowledge::{KnowledgeError, Shelf};
use crate::store::{DraftRow, NewDraft, NewFlag, Reviewed, StoreError, now_ms};

/// The cursor's name in `poll_cursors`.
pub const CURSOR: &str = "erp_tickets";

/// The cursor before the first poll: every ticket the list's other filters let through.
pub const START: &str = "1970-01-01 00:00:00";

/// How long the poller waits when no tickets are declared before looking again (a reload may
/// add them).
const IDLE: Duration = Duration::from_secs(60);

/// The passages a draft records (and a rejection flags).
const PASSAGES_KEPT: usize = 3;

/// Why a poll or a review failed.
#[derive(Debug, thiserror::Error)]
pub enum TicketError {
    /// The ERP's list could not be read.
    #[error("reading the tickets from the ERP failed: {0}")]
    Erp(#[from] ErpError),
    /// The database failed.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The knowledge base could not be read.
    #[error("{0}")]
    Knowledge(#[from] KnowledgeError),
    /// `flows/erp.yaml` declares no `tickets`.
    #[error("flows/erp.yaml declares no `tickets`: add the section to draft replies to support tickets")]
    NotConfigured,
    /// An approval with an empty reply.
    #[error("the reply is empty: give the text to send")]
    EmptyReply,
    /// A rejection without a reason.
    #[error("give the reason the draft is wrong: it is shown beside the knowledge it used")]
    NoReason,
}

impl TicketError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            TicketError::Erp(e) => e.code(),
            TicketError::Store(e) => e.code(),
            TicketError::Knowledge(e) => e.code(),
            TicketError::NotConfigured => "tickets.not_configured",
            TicketError::EmptyReply => "tickets.empty_reply",
            TicketError::NoReason => "tickets.no_reason",
        }
    }
}

/// What one poll did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Polled {
    /// Tickets the list returned.
    pub read: usize,
    /// Drafts written.
    pub drafted: usize,
    /// Tickets that had a draft already.
    pub known: usize,
    /// Tickets without a WhatsApp number (left to the ERP's e-mail).
    pub no_number: usize,
    /// The cursor after the poll.
    pub cursor: String,
}

/// Polls every `tickets.poll_seconds` until the process stops. Several instances may poll: a
/// ticket gets one draft (unique in the database) and the cursor only moves forward.
pub async fn run(app: Arc<App>) {
    for tenant in app.tenants.all() {
        tokio::spawn(run_for(app.clone(), tenant.clone()));
    }
}

/// [`run`] for one tenant's ERP.
async fn run_for(app: Arc<App>, tenant: Arc<Tenant>) {
    loop {
        let flows = tenant.flows();
        let Some(settings) = flows.tickets.as_ref() else {
            tokio::time::sleep(IDLE).await;
            continue;
        };
        let every = settings.poll_every();
        match poll(&app, &tenant).await {
            Ok(p) if p.drafted > 0 => {
                info!(tenant = %tenant.id, drafted = p.drafted, read = p.read, "replies drafted for new tickets")
            }
            Ok(_) => {}
            Err(e) => {
                error!(code = e.code(), tenant = %tenant.id, error = %e, "reading the support tickets failed; trying again at the next poll");
                app.metrics.errors.with_label_values(&[e.code()]).inc();
            }
        }
        tokio::time::sleep(every).await;
    }
}

/// Reads the tickets changed since the cursor and drafts a reply for each one without a draft.
///
/// Errors: [`TicketError`]; drafts written before the failure stay, and the cursor moves only
/// past tickets that were drafted or skipped.
pub async fn poll(app: &App, tenant: &Tenant) -> Result<Polled, TicketError> {
    let flows = tenant.flows();
    let settings = flows.tickets.as_ref().ok_or(TicketError::NotConfigured)?;
    let d = &settings.decl;
    let since = app.store.cursor(&tenant.id, CURSOR).await?.unwrap_or_else(|| START.to_string());
    let mut context = Map::new();
    context.insert("since".into(), json!(since));
    context.insert(
        "today".into(),
        json!(jiff::Timestamp::now().to_zoned(flows.business.time_zone.clone()).date().to_string()),
    );
    let rows = tenant.erp.rows(&d.source, &context, &flows.root).await?;
    let catalog = tenant.erp.catalog(&flows.catalog, &flows.root).await.map(|c| c.0).unwrap_or_default();
    let shelf = tenant.guards.knowledge.shelf(&flows.knowledge, &catalog).await?;
    let names: Vec<String> = rows.iter().filter_map(|r| text(r, &d.source.id_field)).collect();
    let known = app.store.drafted(&tenant.id, &names).await?;
    let mut polled = Polled { read: rows.len(), cursor: since.clone(), ..Default::default() };
    for row in &rows {
        let modified = text(row, &d.modified_field).unwrap_or_default();
        match text(row, &d.source.id_field) {
            Some(ticket) if known.contains(&ticket) => polled.known += 1,
            Some(ticket) => match ticket_of(row, settings, ticket) {
                Some(t) => {
                    let draft = draft(app, tenant, &flows, &shelf, t, &modified).await?;
                    if app.store.insert_draft(draft).await? {
                        polled.drafted += 1;
                    } else {
                        polled.known += 1;
                    }
                }
                None => polled.no_number += 1,
            },
            None => polled.no_number += 1,
        }
        if modified > polled.cursor {
            polled.cursor = modified;
        }
    }
    if polled.cursor != since {
        app.store.advance_cursor(&tenant.id, CURSOR, &polled.cursor).await?;
    }
    Ok(polled)
}

/// A ticket as read from one list row.
struct Ticket {
    name: String,
    customer: String,
    subject: String,
    details: String,
}

fn text(row: &Value, field: &str) -> Option<String> {
    match &row[field] {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The ticket in `row`, when it has a WhatsApp number.
fn ticket_of(row: &Value, settings: &Tickets, name: String) -> Option<Ticket> {
    let d = &settings.decl;
    let digits: String = text(row, &d.number_field)?.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 8 {
        return None;
    }
    Some(Ticket {
        name,
        customer: digits,
        subject: text(row, &d.subject_field).unwrap_or_default(),
        details: plain(&text(row, &d.details_field).unwrap_or_default()),
    })
}

/// HTML (Frappe's text editor fields) as plain text: tags dropped, the common entities read,
/// paragraphs and breaks as spaces.
fn plain(html: &str) -> String {
    let spaced = html.replace("</p>", " ").replace("<br>", " ").replace("<br/>", " ").replace("<br />", " ");
    let text = crate::erp::strip_tags(&spaced)
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The draft for `t`: the knowledge base's answer to its subject and details, in the business's
/// draft sentence.
async fn draft(
    app: &App,
    tenant: &Tenant,
    flows: &FlowSet,
    shelf: &Shelf,
    t: Ticket,
    modified: &str,
) -> Result<NewDraft, TicketError> {
    let question = if t.details.is_empty() { t.subject.clone() } else { format!("{}. {}", t.subject, t.details) };
    let found = shelf.find(&question);
    let passages: Vec<Value> = found
        .iter()
        .take(PASSAGES_KEPT)
        .map(|f| json!({"id": f.passage.id, "title": f.passage.title, "score": (f64::from(f.score) * 1000.0).round() / 1000.0}))
        .collect();
    let llm_guard = flows.flows.values().find_map(|f| f.llm.as_ref().filter(|g| g.output == KNOWLEDGE_ANSWER));
    let mut answer = None;
    if let (Some(llm), Some(guard), false) = (&tenant.guards.llm, llm_guard, found.is_empty()) {
        let (_, option) = worded(llm, guard, &flows.business, shelf, &question).await;
        answer = option.and_then(|o| o.description).map(|a| (a, "llm"));
    }
    let (answer, worded_by) = answer.unwrap_or_else(|| match found.first() {
        Some(f) => (f.passage.text.clone(), "knowledge"),
        None => (flows.business.messages.ticket_reply_unknown.clone(), "none"),
    });
    let draft = Messages::fill(
        &flows.business.messages.ticket_reply_draft,
        &[("subject", &t.subject), ("ticket", &t.name), ("answer", &answer), ("business", &flows.business.name)],
    );
    let conversation_id = conversation_for(app, tenant, &t.customer).await?;
    Ok(NewDraft {
        tenant: tenant.id.to_string(),
        ticket: t.name,
        conversation_id,
        customer: t.customer,
        subject: t.subject,
        details: t.details,
        draft,
        passages: Value::Array(passages).to_string(),
        worded_by: worded_by.into(),
        ticket_modified: modified.to_string(),
        status: "pending".into(),
        created_at: now_ms(),
    })
}

/// The conversation a reply to `customer` goes to: theirs, if they have written; otherwise one
/// on the configured sender number (`WHATSAPP_PHONE_NUMBER_ID`), or on the number the business's
/// latest conversation came in on.
async fn conversation_for(app: &App, tenant: &Tenant, customer: &str) -> Result<String, TicketError> {
    if let Some(c) = app.store.conversations_of(&tenant.id, customer).await?.into_iter().next() {
        return Ok(c.id);
    }
    let declared = if app.tenants.is_single() { app.settings.phone_number_id.clone() } else { tenant.number() };
    let number = match declared {
        Some(n) => n,
        None => app
            .store
            .recent_conversations(&tenant.id, 1)
            .await?
            .into_iter()
            .next()
            .map(|c| c.phone_number_id)
            .unwrap_or_else(|| "sandbox".into()),
    };
    Ok(super::queue::conversation_id(&number, customer))
}

/// Approves draft `id` as `text` (the draft itself when `None`) by `reviewer`: the reply is
/// queued for the customer's conversation in the same transaction and its conversation woken.
///
/// Errors: [`TicketError::EmptyReply`], or the store's.
pub async fn approve(
    app: &App,
    tenant: &Tenant,
    id: i64,
    text: Option<&str>,
    reviewer: &str,
) -> Result<Reviewed, TicketError> {
    let Some(row) = app.store.draft(&tenant.id, id).await? else { return Ok(Reviewed::NotFound) };
    let text = text.map(str::trim).unwrap_or(row.draft.as_str()).to_string();
    if text.is_empty() {
        return Err(TicketError::EmptyReply);
    }
    let (phone_number_id, _) = row.conversation_id.split_once(':').unwrap_or((row.conversation_id.as_str(), ""));
    let kind = EventKind::TicketReply {
        draft: row.id,
        ticket: row.ticket.clone(),
        subject: row.subject.clone(),
        text: text.clone(),
        reviewer: reviewer.to_string(),
    };
    let event = InboundEvent::internal(format!("reply:{}", row.id), row.customer.clone(), now_ms() / 1000, kind);
    let inbox = super::queue::inbox_row(&tenant.id, phone_number_id, &event, now_ms());
    let reviewed = app.store.approve_draft(&tenant.id, id, &text, reviewer, inbox).await?;
    if matches!(reviewed, Reviewed::Done(_)) {
        app.wake(&row.conversation_id, crate::store::Lane::Interactive);
    }
    Ok(reviewed)
}

/// Rejects draft `id` with `reason` by `reviewer`: nothing is sent, and the ticket's question is
/// flagged for review with the passages the draft used.
///
/// Errors: [`TicketError::NoReason`], or the store's.
pub async fn reject(
    app: &App,
    tenant: &Tenant,
    id: i64,
    reason: &str,
    reviewer: &str,
) -> Result<Reviewed, TicketError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(TicketError::NoReason);
    }
    let Some(row) = app.store.draft(&tenant.id, id).await? else { return Ok(Reviewed::NotFound) };
    Ok(app.store.reject_draft(&tenant.id, id, reason, reviewer, Some(flag_of(&row, reason))).await?)
}

/// The flag a rejected draft leaves on the knowledge it used.
fn flag_of(row: &DraftRow, reason: &str) -> NewFlag {
    let used: Vec<Value> = serde_json::from_str::<Vec<Value>>(&row.passages)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| p.get("id").cloned())
        .collect();
    let question =
        if row.details.is_empty() { row.subject.clone() } else { format!("{}. {}", row.subject, row.details) };
    NewFlag {
        tenant: row.tenant.clone(),
        idempotency_key: format!("draft:{}", row.id),
        conversation_id: row.conversation_id.clone(),
        question,
        reason: FlagReason::RejectedReply.as_str().into(),
        passages: Value::Array(used).to_string(),
        evidence: Some(format!("draft {} for ticket {} rejected: {reason}", row.id, row.ticket)),
        created_at: now_ms(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_descriptions_read_as_plain_text() {
        assert_eq!(plain("<p>Hi,&nbsp;the car</p><p>is &amp; was <b>dirty</b></p>"), "Hi, the car is & was dirty");
    }

    #[test]
    fn a_row_without_a_number_is_no_ticket_to_reply_to() {
        let yaml = r#"
source: { doctype: Issue, fields: [name, subject, description, whatsapp_number, modified], title: "${subject}" }
reply_action: post
template: { name: t, language: en }
"#;
        let decl: crate::flow::tickets::TicketsDecl = serde_saphyr::from_str(yaml).expect("valid");
        let settings = Tickets {
            template: crate::flow::graph::Template { name: "t".into(), language: "en".into(), parameters: vec![] },
            decl,
        };
        let row = json!({"name": "ISS-1", "subject": "Late", "description": "<p>Crew late</p>", "whatsapp_number": "+971 50 123 4567"});
        let t = ticket_of(&row, &settings, "ISS-1".into()).expect("a ticket");
        assert_eq!((t.customer.as_str(), t.details.as_str()), ("971501234567", "Crew late"));
        assert!(ticket_of(&json!({"name": "ISS-2", "whatsapp_number": ""}), &settings, "ISS-2".into()).is_none());
        assert!(ticket_of(&json!({"name": "ISS-3"}), &settings, "ISS-3".into()).is_none());
    }
}
