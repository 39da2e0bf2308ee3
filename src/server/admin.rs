//! The admin API, for operators and agents: read a conversation (transcript, slots, timeline
//! with failures), take it over, reply to the customer, give it back to the bot, and see and
//! re-drive dead outbox rows. Every call needs `Authorization: Bearer $ADMIN_TOKEN`; without
//! `ADMIN_TOKEN` the admin API is off. Agent actions go through the conversation's inbox, so they
//! are applied in order with the customer's messages and recorded as turns.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::problem;
use crate::engine::{EventKind, InboundEvent};
use crate::pipeline::App;
use crate::store::now_ms;

/// Registers the admin routes under `/admin`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/admin")
            .route("/conversations", web::get().to(list))
            .route("/conversations/{key}", web::get().to(show))
            .route("/conversations/{key}/takeover", web::post().to(takeover))
            .route("/conversations/{key}/reply", web::post().to(reply))
            .route("/conversations/{key}/release", web::post().to(release))
            .route("/quarantine", web::get().to(quarantined))
            .route("/outbox/dead", web::get().to(dead))
            .route("/outbox/{id}/redrive", web::post().to(redrive)),
    );
}

/// Compares two secrets in constant time (through an HMAC of each, so lengths do not leak).
pub fn same_secret(a: &str, b: &str) -> bool {
    use hmac::Mac;
    let mac = |v: &str| {
        let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"carewell-compare")
            .unwrap_or_else(|_| unreachable!("HMAC takes any key"));
        m.update(v.as_bytes());
        m.finalize().into_bytes()
    };
    mac(a) == mac(b)
}

fn authorize(app: &App, req: &HttpRequest) -> Result<(), HttpResponse> {
    use actix_web::http::StatusCode;
    let Some(token) = &app.settings.admin_token else {
        return Err(problem(StatusCode::NOT_FOUND, "server.admin_off", "the admin API is off: set ADMIN_TOKEN"));
    };
    if let Some(ip) = super::client_ip(req, app.settings.trusted_proxy_header.as_deref()) {
        if app.limits.admin.check_key(&ip).is_err() {
            return Err(problem(
                StatusCode::TOO_MANY_REQUESTS,
                "server.rate_limited",
                "too many admin requests; slow down",
            ));
        }
    }
    let given = req
        .headers()
        .get("Authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or_default();
    if same_secret(given, token) {
        Ok(())
    } else {
        Err(problem(StatusCode::UNAUTHORIZED, "server.admin_unauthorized", "send Authorization: Bearer <ADMIN_TOKEN>"))
    }
}

macro_rules! guarded {
    ($app:expr, $req:expr) => {
        if let Err(resp) = authorize(&$app, &$req) {
            return resp;
        }
    };
}

async fn list(app: web::Data<App>, req: HttpRequest) -> HttpResponse {
    guarded!(app, req);
    match app.store.recent_conversations(200).await {
        Ok(rows) => HttpResponse::Ok().json(json!({"conversations": rows.iter().map(|c| {
            let state: Option<crate::engine::ConversationState> = serde_json::from_str(&c.state).ok();
            json!({
                "id": c.id, "customer": c.customer, "updated_at": c.updated_at,
                "step": state.as_ref().and_then(|s| s.journey.as_ref()).map(|j| format!("{}/{}", j.flow, j.step)),
                "handoff": state.as_ref().and_then(|s| s.handoff()),
            })
        }).collect::<Vec<_>>()})),
        Err(e) => problem(actix_web::http::StatusCode::SERVICE_UNAVAILABLE, e.code(), &e.to_string()),
    }
}

async fn show(app: web::Data<App>, req: HttpRequest, key: web::Path<String>) -> HttpResponse {
    guarded!(app, req);
    match crate::explain::build(&app.store, &key).await {
        Ok(t) if t.is_empty() => problem(
            actix_web::http::StatusCode::NOT_FOUND,
            "server.no_conversation",
            "no conversation for that id or number",
        ),
        Ok(t) => HttpResponse::Ok().json(json!({"conversations": t})),
        Err(e) => problem(actix_web::http::StatusCode::SERVICE_UNAVAILABLE, e.code(), &e.to_string()),
    }
}

#[derive(Deserialize)]
struct AgentBody {
    agent: String,
    #[serde(default)]
    text: Option<String>,
}

async fn agent_event(app: &App, key: &str, kind: EventKind) -> HttpResponse {
    use actix_web::http::StatusCode;
    let conv = match app.store.conversation(key).await {
        Ok(Some(c)) => Some(c),
        Ok(None) => {
            app.store.conversations_of(key.trim_start_matches('+')).await.ok().and_then(|v| v.into_iter().next())
        }
        Err(e) => return problem(StatusCode::SERVICE_UNAVAILABLE, e.code(), &e.to_string()),
    };
    let Some(conv) = conv else {
        return problem(StatusCode::NOT_FOUND, "server.no_conversation", "no conversation for that id or number");
    };
    let id = format!("admin:{}", uuid::Uuid::now_v7());
    let event = InboundEvent::internal(id.clone(), conv.customer.clone(), now_ms() / 1000, kind);
    match crate::pipeline::queue::enqueue(app, &conv.phone_number_id, &event, crate::pipeline::lane_of(&event.kind))
        .await
    {
        Ok(_) => HttpResponse::Accepted().json(json!({"queued": id, "conversation_id": conv.id})),
        Err(e) => problem(StatusCode::SERVICE_UNAVAILABLE, e.code(), &e.to_string()),
    }
}

async fn takeover(
    app: web::Data<App>,
    req: HttpRequest,
    key: web::Path<String>,
    body: web::Json<AgentBody>,
) -> HttpResponse {
    guarded!(app, req);
    agent_event(&app, &key, EventKind::AgentTakeover { agent: body.agent.clone() }).await
}

async fn reply(
    app: web::Data<App>,
    req: HttpRequest,
    key: web::Path<String>,
    body: web::Json<AgentBody>,
) -> HttpResponse {
    guarded!(app, req);
    let Some(text) = body.text.clone().filter(|t| !t.trim().is_empty()) else {
        return problem(actix_web::http::StatusCode::BAD_REQUEST, "server.empty_reply", "give the reply in `text`");
    };
    agent_event(&app, &key, EventKind::AgentMessage { agent: body.agent.clone(), text }).await
}

async fn release(
    app: web::Data<App>,
    req: HttpRequest,
    key: web::Path<String>,
    body: web::Json<AgentBody>,
) -> HttpResponse {
    guarded!(app, req);
    agent_event(&app, &key, EventKind::AgentRelease { agent: body.agent.clone() }).await
}

/// What the worker set aside unread, newest first (`?conversation=<id>` for one conversation).
async fn quarantined(app: web::Data<App>, req: HttpRequest, q: web::Query<QuarantineQuery>) -> HttpResponse {
    guarded!(app, req);
    match app.store.quarantined(q.conversation.as_deref(), 500).await {
        Ok(rows) => HttpResponse::Ok().json(json!({"set_aside": rows})),
        Err(e) => problem(actix_web::http::StatusCode::SERVICE_UNAVAILABLE, e.code(), &e.to_string()),
    }
}

#[derive(Deserialize)]
struct QuarantineQuery {
    #[serde(default)]
    conversation: Option<String>,
}

async fn dead(app: web::Data<App>, req: HttpRequest) -> HttpResponse {
    guarded!(app, req);
    match app.store.dead_outbox(500).await {
        Ok(rows) => HttpResponse::Ok().json(json!({"dead": rows})),
        Err(e) => problem(actix_web::http::StatusCode::SERVICE_UNAVAILABLE, e.code(), &e.to_string()),
    }
}

async fn redrive(app: web::Data<App>, req: HttpRequest, id: web::Path<String>) -> HttpResponse {
    guarded!(app, req);
    let target = if id.as_str() == "all" { None } else { id.parse::<i64>().ok() };
    if target.is_none() && id.as_str() != "all" {
        return problem(actix_web::http::StatusCode::BAD_REQUEST, "server.bad_id", "give an outbox id or `all`");
    }
    match app.store.redrive(target).await {
        Ok(n) => {
            app.outbox_notify.notify_one();
            HttpResponse::Ok().json(json!({"redriven": n}))
        }
        Err(e) => problem(actix_web::http::StatusCode::SERVICE_UNAVAILABLE, e.code(), &e.to_string()),
    }
}
