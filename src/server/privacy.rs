//! What is held about one customer, for their right of access: `GET
//! /admin/customers/{number}/export` (permission `privacy`) answers, as one JSON document, each
//! of their conversations (its state: profile, journeys, visits; its transcript and timeline;
//! every turn record), their hand-offs and the audit entries about them. The export is itself
//! recorded in the audit trail.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::auth::{self, Permission, record};
use super::problem;
use crate::pipeline::App;
use crate::store::{AuditFilter, now_ms};

/// Registers the routes (inside the `/admin` scope).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/customers/{number}/export", web::get().to(export));
}

async fn export(app: web::Data<App>, req: HttpRequest, number: web::Path<String>) -> HttpResponse {
    let p = match auth::caller(&app, &req, Permission::Privacy).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let customer: String = number.trim().trim_start_matches('+').chars().filter(char::is_ascii_digit).collect();
    if customer.len() < 6 {
        return problem(StatusCode::BAD_REQUEST, "server.bad_number", "give the customer's WhatsApp number");
    }
    match document(&app, &customer).await {
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
async fn document(app: &App, customer: &str) -> Result<Value, crate::store::StoreError> {
    let mut conversations = Vec::new();
    let mut ids = Vec::new();
    for conv in app.store.conversations_of(customer).await? {
        let state: Value = serde_json::from_str(&conv.state).unwrap_or(Value::String(conv.state.clone()));
        let turns: Vec<Value> = app
            .store
            .turns_of(&conv.id)
            .await?
            .iter()
            .map(|t| serde_json::from_str(&t.record).unwrap_or(Value::String(t.record.clone())))
            .collect();
        let timeline = crate::explain::build(&app.store, &conv.id).await?;
        ids.push(conv.id.clone());
        conversations.push(json!({
            "id": conv.id, "business_number": conv.phone_number_id, "state": state,
            "timeline": timeline, "turns": turns,
        }));
    }
    let handoffs: Vec<Value> = app
        .store
        .handoffs(None, 100_000)
        .await?
        .into_iter()
        .filter(|h| h.customer == customer || ids.contains(&h.conversation_id))
        .map(|h| json!(h))
        .collect();
    let mut audit = Vec::new();
    for target in ids.iter().map(String::as_str).chain([customer]) {
        let filter = AuditFilter { target: Some(target.to_string()), ..Default::default() };
        audit.extend(app.store.audit_entries(&filter, 5000).await?.into_iter().map(|a| json!(a)));
    }
    Ok(json!({
        "customer": customer, "exported_at": now_ms(),
        "conversations": conversations, "handoffs": handoffs, "audit": audit,
    }))
}
