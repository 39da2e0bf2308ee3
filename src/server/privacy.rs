//! What is held about one customer (permission `privacy`, each call recorded in the audit trail):
//!
//! - `GET /admin/customers/{number}/export`, their right of access: as one JSON document, each of
//!   their conversations (its state: profile, journeys, visits; its transcript and timeline;
//!   every turn record), their hand-offs and the audit entries about them;
//! - `POST /admin/customers/{number}/erase`, their right to erasure: their texts and slots go
//!   from every row of their conversations, the turns stay with their decisions and counts (see
//!   [`crate::erasure`]).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::auth::{self, Permission, record};
use super::problem;
use crate::pipeline::App;
use crate::store::{AuditFilter, now_ms};

/// Registers the routes (inside the `/admin` scope).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/customers/{number}/export", web::get().to(export))
        .route("/customers/{number}/erase", web::post().to(erase));
}

/// The digits of a customer's WhatsApp number; `None` when it cannot be one.
fn number_of(raw: &str) -> Option<String> {
    let digits: String = raw.trim().trim_start_matches('+').chars().filter(char::is_ascii_digit).collect();
    (digits.len() >= 6).then_some(digits)
}

async fn erase(app: web::Data<App>, req: HttpRequest, number: web::Path<String>) -> HttpResponse {
    let p = match auth::caller(&app, &req, Permission::Privacy).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let Some(customer) = number_of(&number) else {
        return problem(StatusCode::BAD_REQUEST, "server.bad_number", "give the customer's WhatsApp number");
    };
    let conversations = match app.store.conversations_of(&p.tenant.id, &customer).await {
        Ok(c) => c,
        Err(e) => return problem(StatusCode::SERVICE_UNAVAILABLE, e.code(), &e.to_string()),
    };
    if conversations.is_empty() {
        return problem(StatusCode::NOT_FOUND, "server.no_customer", "nothing is held about that number");
    }
    let mut erased_turns = 0;
    for conv in &conversations {
        match erase_conversation(&app, &p.tenant.id, &conv.id).await {
            Ok(n) => erased_turns += n,
            Err(resp) => {
                record(&app, &p, "customer.erase", &customer, "failed", json!({"conversation": conv.id})).await;
                return resp;
            }
        }
    }
    let detail = json!({"conversations": conversations.len(), "turns": erased_turns});
    record(&app, &p, "customer.erase", &customer, "ok", detail.clone()).await;
    HttpResponse::Ok().json(detail)
}

/// Erases one conversation's rows; tries again (three times) when a turn was committed
/// meanwhile. Returns how many turn records were erased.
async fn erase_conversation(
    app: &App,
    tenant: &crate::tenant::TenantId,
    conversation_id: &str,
) -> Result<usize, HttpResponse> {
    use crate::erasure::{Redactor, erase_record, erase_state};
    let unavailable = |e: crate::store::StoreError| problem(StatusCode::SERVICE_UNAVAILABLE, e.code(), &e.to_string());
    for _ in 0..3 {
        let Some(mut rows) = app.store.conversation_rows(tenant, conversation_id).await.map_err(unavailable)? else {
            return Ok(0);
        };
        let state: crate::engine::ConversationState = serde_json::from_str(&rows.state).map_err(|e| {
            problem(
                StatusCode::CONFLICT,
                "server.state_unreadable",
                &format!("the conversation's state does not parse ({e}); see the quarantine"),
            )
        })?;
        let events: Vec<Value> = rows.inbox.iter().filter_map(|(_, e)| serde_json::from_str(e).ok()).collect();
        let redactor = Redactor::new(&state, &events);
        let now = now_ms();
        rows.state = erase_state(&state, &redactor).to_string();
        let rewrite = |text: &mut String, from_customer: bool| {
            if let Ok(mut v) = serde_json::from_str::<Value>(text) {
                redactor.json(&mut v, from_customer);
                *text = v.to_string();
            } else {
                *text = crate::erasure::ERASED.to_string();
            }
        };
        rows.inbox.iter_mut().for_each(|(_, e)| rewrite(e, true));
        rows.outbox.iter_mut().for_each(|(_, p)| rewrite(p, false));
        rows.quarantine.iter_mut().for_each(|(_, b)| rewrite(b, true));
        for (_, record) in rows.turns.iter_mut() {
            let mut v: Value = serde_json::from_str(record).unwrap_or(Value::Null);
            erase_record(&mut v, &redactor, now);
            *record = v.to_string();
        }
        for (_, reason, note) in rows.handoffs.iter_mut() {
            *reason = redactor.text(reason);
            *note = note.as_deref().map(|n| redactor.text(n));
        }
        // A flagged question is the customer's own words, whole.
        for (_, question, evidence) in rows.flags.iter_mut() {
            *question = crate::erasure::ERASED.to_string();
            *evidence = evidence.as_ref().map(|_| crate::erasure::ERASED.to_string());
        }
        // A ticket's subject and details are the customer's words, and the drafts quote them.
        for (_, texts, sent) in rows.drafts.iter_mut() {
            texts.iter_mut().for_each(|t| *t = crate::erasure::ERASED.to_string());
            *sent = sent.as_ref().map(|_| crate::erasure::ERASED.to_string());
        }
        let turns = rows.turns.len();
        if app.store.rewrite_conversation_rows(tenant, rows, now).await.map_err(unavailable)? {
            return Ok(turns);
        }
    }
    Err(problem(
        StatusCode::CONFLICT,
        "server.erase_busy",
        "the conversation kept taking turns while it was being erased; try again",
    ))
}

async fn export(app: web::Data<App>, req: HttpRequest, number: web::Path<String>) -> HttpResponse {
    let p = match auth::caller(&app, &req, Permission::Privacy).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let Some(customer) = number_of(&number) else {
        return problem(StatusCode::BAD_REQUEST, "server.bad_number", "give the customer's WhatsApp number");
    };
    match document(&app, &p.tenant.id, &customer).await {
        Ok(doc) if doc["conversations"].as_array().is_some_and(|c| c.is_empty()) => {
            problem(StatusCode::NOT_FOUND, "server.no_customer", "nothing is held about that number")
        }
        Ok(doc) => {
            let n = doc["conversations"].as_array().map_or(0, Vec::len);
            record(&app, &p, "customer.export", &customer, "ok", json!({"conversations": n})).await;
            HttpResponse::Ok()
                .insert_header(("Content-Disposition", format!("attachment; filename=\"customer-{customer}.json\"")))
                .json(doc)
        }
        Err(e) => problem(StatusCode::SERVICE_UNAVAILABLE, e.code(), &e.to_string()),
    }
}

/// The export of `customer` (digits of their WhatsApp id).
async fn document(
    app: &App,
    tenant: &crate::tenant::TenantId,
    customer: &str,
) -> Result<Value, crate::store::StoreError> {
    let mut conversations = Vec::new();
    let mut ids = Vec::new();
    for conv in app.store.conversations_of(tenant, customer).await? {
        let state: Value = serde_json::from_str(&conv.state).unwrap_or(Value::String(conv.state.clone()));
        let turns: Vec<Value> = app
            .store
            .turns_of(tenant, &conv.id)
            .await?
            .iter()
            .map(|t| serde_json::from_str(&t.record).unwrap_or(Value::String(t.record.clone())))
            .collect();
        let timeline = crate::explain::build(&app.store, tenant, &conv.id).await?;
        let flagged = app.store.flags_of(tenant, &conv.id).await?;
        let replies = app.store.drafts_of(tenant, &conv.id).await?;
        ids.push(conv.id.clone());
        conversations.push(json!({
            "id": conv.id, "business_number": conv.phone_number_id, "state": state,
            "timeline": timeline, "turns": turns, "flagged_questions": flagged,
            "ticket_replies": replies,
        }));
    }
    let handoffs: Vec<Value> = app
        .store
        .handoffs(tenant, None, 100_000)
        .await?
        .into_iter()
        .filter(|h| h.customer == customer || ids.contains(&h.conversation_id))
        .map(|h| json!(h))
        .collect();
    let mut audit = Vec::new();
    for target in ids.iter().map(String::as_str).chain([customer]) {
        let filter = AuditFilter { target: Some(target.to_string()), ..Default::default() };
        audit.extend(app.store.audit_entries(tenant, &filter, 5000).await?.into_iter().map(|a| json!(a)));
    }
    Ok(json!({
        "customer": customer, "exported_at": now_ms(),
        "conversations": conversations, "handoffs": handoffs, "audit": audit,
    }))
}
