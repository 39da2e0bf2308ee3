//! The admin API, for operators and agents: read a conversation (transcript, slots, timeline
//! with failures), take it over, reply to the customer, give it back to the bot, list the
//! hand-offs waiting for a person and resolve them with a note, and see and re-drive dead
//! outbox rows. Every call needs `Authorization: Bearer $ADMIN_TOKEN`; without
//! `ADMIN_TOKEN` the admin API is off. Agent actions go through the conversation's inbox, so they
//! are applied in order with the customer's messages and recorded as turns.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::problem;
use crate::engine::{EventKind, InboundEvent};
use crate::pipeline::App;
use crate::store::{HandoffStatus, now_ms};

/// Registers the admin routes under `/admin`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/admin")
            .route("/conversations", web::get().to(list))
            .route("/conversations/{key}", web::get().to(show))
            .route("/conversations/{key}/takeover", web::post().to(takeover))
            .route("/conversations/{key}/reply", web::post().to(reply))
            .route("/conversations/{key}/release", web::post().to(release))
            .route("/handoffs", web::get().to(handoffs))
            .route("/handoffs/{id}/resolve", web::post().to(resolve))
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

/// Queues an agent's action for the conversation `key` (an id or a customer's number); returns
/// the 202 answer and the conversation's id, or the error answer.
async fn agent_event(app: &App, key: &str, kind: EventKind) -> Result<(HttpResponse, String), HttpResponse> {
    use actix_web::http::StatusCode;
    let conv = match app.store.conversation(key).await {
        Ok(Some(c)) => Some(c),
        Ok(None) => {
            app.store.conversations_of(key.trim_start_matches('+')).await.ok().and_then(|v| v.into_iter().next())
        }
        Err(e) => return Err(problem(StatusCode::SERVICE_UNAVAILABLE, e.code(), &e.to_string())),
    };
    let Some(conv) = conv else {
        return Err(problem(StatusCode::NOT_FOUND, "server.no_conversation", "no conversation for that id or number"));
    };
    let id = format!("admin:{}", uuid::Uuid::now_v7());
    let event = InboundEvent::internal(id.clone(), conv.customer.clone(), now_ms() / 1000, kind);
    match crate::pipeline::queue::enqueue(app, &conv.phone_number_id, &event, crate::pipeline::lane_of(&event.kind))
        .await
    {
        Ok(_) => Ok((HttpResponse::Accepted().json(json!({"queued": id, "conversation_id": conv.id})), conv.id)),
        Err(e) => Err(problem(StatusCode::SERVICE_UNAVAILABLE, e.code(), &e.to_string())),
    }
}

/// Records what an agent did to the conversation's hand-offs; a failure is logged (the action
/// itself is queued and happens: the record catches up on the next action).
async fn record_handoffs(app: &App, what: Result<usize, crate::store::StoreError>) {
    if let Err(e) = what {
        tracing::error!(code = e.code(), error = %e, "could not record an agent's action on a hand-off");
        app.metrics.errors.with_label_values(&[e.code()]).inc();
    }
}

async fn takeover(
    app: web::Data<App>,
    req: HttpRequest,
    key: web::Path<String>,
    body: web::Json<AgentBody>,
) -> HttpResponse {
    guarded!(app, req);
    match agent_event(&app, &key, EventKind::AgentTakeover { agent: body.agent.clone() }).await {
        Ok((answer, conversation_id)) => {
            record_handoffs(&app, app.store.handoffs_taken(&conversation_id, &body.agent).await).await;
            answer
        }
        Err(answer) => answer,
    }
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
    match agent_event(&app, &key, EventKind::AgentMessage { agent: body.agent.clone(), text }).await {
        Ok((answer, _)) | Err(answer) => answer,
    }
}

async fn release(
    app: web::Data<App>,
    req: HttpRequest,
    key: web::Path<String>,
    body: web::Json<AgentBody>,
) -> HttpResponse {
    guarded!(app, req);
    match agent_event(&app, &key, EventKind::AgentRelease { agent: body.agent.clone() }).await {
        Ok((answer, conversation_id)) => {
            let closed = app.store.handoffs_closed(&conversation_id, HandoffStatus::Released, &body.agent, None).await;
            record_handoffs(&app, closed).await;
            answer
        }
        Err(answer) => answer,
    }
}

#[derive(Deserialize)]
struct HandoffQuery {
    /// `waiting` (the default), `taken`, `resolved`, `released` or `all`.
    #[serde(default)]
    status: Option<String>,
}

/// Hand-offs, oldest first, with how long each has waited (`waiting_seconds`: until an agent
/// took it, or until now). `?status=` as [`HandoffQuery`].
async fn handoffs(app: web::Data<App>, req: HttpRequest, q: web::Query<HandoffQuery>) -> HttpResponse {
    guarded!(app, req);
    let wanted = q.status.as_deref().unwrap_or("waiting");
    let status = match wanted {
        "all" => None,
        s => match HandoffStatus::parse(s) {
            Some(s) => Some(s),
            None => {
                return problem(
                    actix_web::http::StatusCode::BAD_REQUEST,
                    "server.bad_status",
                    "status must be waiting, taken, resolved, released or all",
                );
            }
        },
    };
    match app.store.handoffs(status, 500).await {
        Ok(rows) => {
            let now = now_ms();
            let listed: Vec<_> = rows
                .iter()
                .map(|h| {
                    let until = h.taken_at.or(h.closed_at).unwrap_or(now);
                    let mut v = json!(h);
                    v["waiting_seconds"] = json!((until - h.created_at).max(0) / 1000);
                    v
                })
                .collect();
            HttpResponse::Ok().json(json!({"handoffs": listed}))
        }
        Err(e) => problem(actix_web::http::StatusCode::SERVICE_UNAVAILABLE, e.code(), &e.to_string()),
    }
}

#[derive(Deserialize)]
struct ResolveBody {
    agent: String,
    note: String,
}

/// Resolves a hand-off with a note and gives its conversation back to the bot.
async fn resolve(
    app: web::Data<App>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<ResolveBody>,
) -> HttpResponse {
    use actix_web::http::StatusCode;
    guarded!(app, req);
    if body.note.trim().is_empty() || body.agent.trim().is_empty() {
        return problem(
            StatusCode::BAD_REQUEST,
            "server.resolve_incomplete",
            "give the `agent` who resolved it and a `note`",
        );
    }
    let found = match id.parse::<i64>() {
        Ok(id) => app.store.handoff(id).await,
        Err(_) => return problem(StatusCode::BAD_REQUEST, "server.bad_id", "give a hand-off id"),
    };
    let handoff = match found {
        Ok(Some(h)) => h,
        Ok(None) => return problem(StatusCode::NOT_FOUND, "server.no_handoff", "no hand-off with that id"),
        Err(e) => return problem(StatusCode::SERVICE_UNAVAILABLE, e.code(), &e.to_string()),
    };
    if matches!(HandoffStatus::parse(&handoff.status), Some(HandoffStatus::Resolved | HandoffStatus::Released)) {
        return problem(StatusCode::CONFLICT, "server.handoff_closed", "this hand-off is already closed");
    }
    let closed = app
        .store
        .handoffs_closed(&handoff.conversation_id, HandoffStatus::Resolved, &body.agent, Some(body.note.trim()))
        .await;
    if let Err(e) = closed {
        return problem(StatusCode::SERVICE_UNAVAILABLE, e.code(), &e.to_string());
    }
    match agent_event(&app, &handoff.conversation_id, EventKind::AgentRelease { agent: body.agent.clone() }).await {
        Ok((answer, _)) | Err(answer) => answer,
    }
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
