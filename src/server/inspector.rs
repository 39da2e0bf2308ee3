//! The inspector page, for operators (a console session that may act on conversations, or the
//! break-glass `ADMIN_TOKEN`): chat as a WhatsApp customer would,
//! with buttons and lists rendered, and see beside the chat the journey's step, its slots, the last
//! guard results, and the flow's steps with the current one marked. Messages go through the same
//! webhook pipeline and sandbox as `chat`. The conversation just held can be exported as a
//! conversation test for `carewell simulate`.

use crate::engine::EventKind;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::problem;
use crate::channel::whatsapp::webhook;
use crate::pipeline::App;
use crate::store::now_ms;

/// The page.
const PAGE: &str = include_str!("inspector.html");
/// The business number the inspector's customer writes to.
const INSPECTOR_NUMBER: &str = "100000000000001";

/// Registers the inspector's routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/inspector", web::get().to(page))
        .route("/inspector/api/send", web::post().to(send))
        .route("/inspector/api/state", web::get().to(state))
        .route("/inspector/api/export", web::get().to(export));
}

/// Lets in a caller who may act on conversations (a console session, an API key with `act`, the
/// break-glass token as a header), or the break-glass token in the page's query string (a
/// browser opening a link cannot send a header); the inspector then needs the sandbox.
async fn authorized(app: &App, req: &HttpRequest, query_token: Option<&str>) -> Result<(), HttpResponse> {
    use actix_web::http::StatusCode;
    let by_query = match (&app.settings.admin_token, query_token) {
        (Some(token), Some(given)) => super::admin::same_secret(given, token),
        _ => false,
    };
    if !by_query {
        // The page polls while a reply is on its way: no per-address limit here.
        let p = super::auth::identify(app, req).await?;
        super::auth::require(&p, super::auth::Permission::Act)?;
    }
    if !app.is_sandbox() {
        return Err(problem(
            StatusCode::CONFLICT,
            "server.not_sandbox",
            "the inspector talks to the sandbox; unset WHATSAPP_API_BASE_URL",
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

async fn page(app: web::Data<App>, req: HttpRequest, q: web::Query<TokenQuery>) -> HttpResponse {
    if let Err(r) = authorized(&app, &req, q.token.as_deref()).await {
        return r;
    }
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(PAGE)
}

#[derive(Deserialize)]
struct SendBody {
    customer: String,
    message: Value,
}

/// Wraps the page's message in WhatsApp's envelope and takes it through the webhook's pipeline.
async fn send(app: web::Data<App>, req: HttpRequest, body: web::Json<SendBody>) -> HttpResponse {
    if let Err(r) = authorized(&app, &req, None).await {
        return r;
    }
    let customer: String = body.customer.chars().filter(char::is_ascii_digit).collect();
    if customer.is_empty() {
        return problem(
            actix_web::http::StatusCode::BAD_REQUEST,
            "server.bad_customer",
            "the customer is a number (digits)",
        );
    }
    let mut message = body.message.clone();
    message["from"] = json!(customer);
    message["id"] = json!(format!("wamid.INSPECTOR-{}", uuid::Uuid::now_v7().simple()));
    message["timestamp"] = json!((now_ms() / 1000).to_string());
    if let Some(context) = message.get("context").and_then(Value::as_str).map(String::from) {
        message["context"] = json!({"from": INSPECTOR_NUMBER, "id": context});
    }
    let envelope = crate::channel::whatsapp::envelope::envelope(INSPECTOR_NUMBER, &customer, "Inspector", message);
    match webhook::parse(envelope.to_string().as_bytes()) {
        Ok(n) => super::accept(&app, &n).await,
        Err(e) => problem(actix_web::http::StatusCode::BAD_REQUEST, e.code(), &e.to_string()),
    }
}

#[derive(Deserialize)]
struct CustomerQuery {
    customer: String,
}

async fn state(app: web::Data<App>, req: HttpRequest, q: web::Query<CustomerQuery>) -> HttpResponse {
    if let Err(r) = authorized(&app, &req, None).await {
        return r;
    }
    let unavailable = |e: crate::store::StoreError| {
        problem(actix_web::http::StatusCode::SERVICE_UNAVAILABLE, e.code(), &e.to_string())
    };
    let conversation_id = format!("{INSPECTOR_NUMBER}:{}", q.customer);
    let tenant = app.tenant_id_of(&conversation_id);
    let rows = match app
        .store
        .outbox_of(&tenant, &conversation_id, Some(crate::store::OutboxKind::WhatsApp.as_str()), 0)
        .await
    {
        Ok(r) => r,
        Err(e) => return unavailable(e),
    };
    let messages: Vec<Value> = rows
        .iter()
        .filter(|r| r.status() == Some(crate::store::OutboxStatus::Sent))
        .map(|r| {
            let payload: Value = serde_json::from_str(&r.payload).unwrap_or(Value::Null);
            json!({"id": r.id, "wamid": r.result, "body": payload["body"]})
        })
        .collect();
    // The inspector runs in the sandbox only, on the first tenant.
    let Some(tenant) = app.tenants.all().first().cloned() else { return unavailable_tenant() };
    let conv = match app.store.conversation(&tenant.id, &conversation_id).await {
        Ok(c) => c,
        Err(e) => return unavailable(e),
    };
    let st: Option<crate::engine::ConversationState> = conv.as_ref().and_then(|c| serde_json::from_str(&c.state).ok());
    let journey = st.as_ref().and_then(|s| s.journey.clone());
    let slots: serde_json::Map<String, Value> = journey
        .as_ref()
        .map(|j| j.slots.iter().map(|(k, v)| (k.clone(), json!(v.value.display()))).collect())
        .unwrap_or_default();
    let turns = app.store.turns_of(&tenant.id, &conversation_id).await.unwrap_or_default();
    let guards = turns
        .last()
        .and_then(|t| crate::record::TurnRecord::parse(&t.record).ok())
        .map(|r| json!(r.guards.runs))
        .unwrap_or(json!([]));
    let flows = tenant.flows();
    let flow = journey.as_ref().and_then(|j| flows.flow_of(j)).map(|f| {
        let edges = crate::flow::diagram::edges(f);
        let current = journey.as_ref().map(|j| j.step.clone()).unwrap_or_default();
        json!({
            "id": f.id,
            "steps": f.steps.values().map(|s| json!({
                "id": s.id,
                "kind": match s.kind {
                    crate::flow::graph::StepKind::Collect { .. } => "asks",
                    crate::flow::graph::StepKind::Confirm { .. } => "summary",
                    crate::flow::graph::StepKind::Erp { .. } => "ERP",
                    crate::flow::graph::StepKind::End { .. } => "end",
                },
                "current": current == s.id,
                "edges": edges.iter().filter(|e| e.0 == s.id).map(|e| json!({"to": e.1, "label": e.2, "recovery": e.3})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })
    });
    HttpResponse::Ok().json(json!({
        "messages": messages,
        "step": journey.as_ref().map(|j| format!("{}/{}", j.flow, j.step)),
        "phase": st.as_ref().map(|s| s.phase().name()),
        "handoff": st.as_ref().and_then(|s| s.handoff()).is_some(),
        "stage": st.as_ref().map(|s| s.stage),
        "mood": st.as_ref().map(|s| s.mood),
        "put_aside": st.as_ref().map(|s| s.suspended.iter().map(|j| format!("{}/{}", j.flow, j.step)).collect::<Vec<_>>()).unwrap_or_default(),
        "slots": slots,
        "guards": guards,
        "flow": flow,
        "turns": turns.len(),
    }))
}

/// The conversation as a conversation test (YAML) for `carewell simulate`: each customer turn,
/// with the first line of the bot's answer and the step reached as expectations.
async fn export(app: web::Data<App>, req: HttpRequest, q: web::Query<CustomerQuery>) -> HttpResponse {
    if let Err(r) = authorized(&app, &req, None).await {
        return r;
    }
    let conversation_id = format!("{INSPECTOR_NUMBER}:{}", q.customer);
    let turns = match app.store.turns_of(&app.tenant_id_of(&conversation_id), &conversation_id).await {
        Ok(t) => t,
        Err(e) => return problem(actix_web::http::StatusCode::SERVICE_UNAVAILABLE, e.code(), &e.to_string()),
    };
    let quote = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let mut out = format!(
        "name: Exported from the inspector ({})\ncustomer: {}\nllm: absent\nturns:\n",
        q.customer,
        quote(&q.customer)
    );
    for t in turns {
        let Ok(r) = crate::record::TurnRecord::parse(&t.record) else { continue };
        let action = match &r.event.kind {
            EventKind::Text { body } => format!("  - send: {}\n", quote(body)),
            EventKind::Choice { title, .. } => format!("  - press: {}\n", quote(title)),
            EventKind::Location { latitude, longitude, .. } => {
                format!("  - location: {{latitude: {latitude}, longitude: {longitude}}}\n")
            }
            EventKind::Media { .. } => "  - image: \"\"\n".to_string(),
            _ => continue,
        };
        out.push_str(&action);
        let first = r.replies.first().map(|m| m.body()).and_then(|b| b.lines().next()).unwrap_or("");
        out.push_str("    expect:\n");
        if !first.is_empty() {
            out.push_str(&format!("      says: [{}]\n", quote(first)));
        }
        out.push_str(&format!("      step: {}\n", quote(&t.step_after)));
    }
    HttpResponse::Ok().content_type("text/yaml; charset=utf-8").body(out)
}

/// 503 when no tenant is served (cannot happen once started; kept for the type).
fn unavailable_tenant() -> HttpResponse {
    problem(actix_web::http::StatusCode::SERVICE_UNAVAILABLE, "tenant.none", "no tenant is served")
}
