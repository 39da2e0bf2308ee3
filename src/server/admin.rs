//! The admin API, for operators and agents: read a conversation (transcript, slots, timeline
//! with failures), take it over, reply to the customer, give it back to the bot, list the
//! hand-offs waiting for a person and resolve them with a note, see and re-drive dead
//! outbox rows, and reload the flow files. Every call needs a caller with the route's permission (see [`super::auth`]):
//! a console session, an API key, or the break-glass `ADMIN_TOKEN`; every change is written to
//! the audit trail with who did it. Agent actions go through the conversation's inbox, so they
//! are applied in order with the customer's messages and recorded as turns.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::auth::{Permission, Principal, record};
use super::problem;
use crate::engine::{EventKind, InboundEvent};
use crate::pipeline::App;
use crate::store::{HandoffStatus, now_ms};
use crate::tenant::TenantId;

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
            .route("/outbox/{id}/redrive", web::post().to(redrive))
            .route("/flows/reload", web::post().to(reload_flows))
            .configure(super::console::routes)
            .configure(super::privacy::routes)
            .configure(super::dashboard::routes)
            .configure(super::transcripts::routes)
            .configure(super::knowledge::routes)
            .configure(super::replies::routes),
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

macro_rules! guarded {
    ($app:expr, $req:expr, $permission:expr) => {
        match super::auth::caller(&$app, &$req, $permission).await {
            Ok(p) => p,
            Err(resp) => return resp,
        }
    };
}

/// The name an action is recorded under: a user acts as themselves; a key or the break-glass
/// token may name the agent (`agent` in the body), else its own name.
fn agent_name(p: &Principal, given: Option<&str>) -> String {
    match (&p.actor, given.map(str::trim).filter(|g| !g.is_empty())) {
        (super::auth::Actor::User { name, .. }, _) => name.clone(),
        (_, Some(g)) => g.to_string(),
        (_, None) => p.name(),
    }
}

async fn list(app: web::Data<App>, req: HttpRequest) -> HttpResponse {
    let p = guarded!(app, req, Permission::Read);
    match app.store.recent_conversations(&p.tenant.id, 200).await {
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
    let p = guarded!(app, req, Permission::Read);
    match crate::explain::build(&app.store, &p.tenant.id, &key).await {
        Ok(t) if t.is_empty() => problem(
            actix_web::http::StatusCode::NOT_FOUND,
            "server.no_conversation",
            "no conversation for that id or number",
        ),
        Ok(t) => HttpResponse::Ok().json(json!({"conversations": t})),
        Err(e) => problem(actix_web::http::StatusCode::SERVICE_UNAVAILABLE, e.code(), &e.to_string()),
    }
}

#[derive(Deserialize, Default)]
struct AgentBody {
    /// The agent's name, for a key or the break-glass token (a user acts as themselves).
    #[serde(default)]
    agent: Option<String>,
    #[serde(default)]
    text: Option<String>,
}

/// Queues an agent's action for the conversation `key` (an id or a customer's number); returns
/// the 202 answer and the conversation's id, or the error answer.
async fn agent_event(
    app: &App,
    tenant: &TenantId,
    key: &str,
    kind: EventKind,
) -> Result<(HttpResponse, String), HttpResponse> {
    use actix_web::http::StatusCode;
    let conv = match app.store.conversation(tenant, key).await {
        Ok(Some(c)) => Some(c),
        Ok(None) => app
            .store
            .conversations_of(tenant, key.trim_start_matches('+'))
            .await
            .ok()
            .and_then(|v| v.into_iter().next()),
        Err(e) => return Err(problem(StatusCode::SERVICE_UNAVAILABLE, e.code(), &e.to_string())),
    };
    let Some(conv) = conv else {
        return Err(problem(StatusCode::NOT_FOUND, "server.no_conversation", "no conversation for that id or number"));
    };
    let id = format!("admin:{}", uuid::Uuid::now_v7());
    let event = InboundEvent::internal(id.clone(), conv.customer.clone(), now_ms() / 1000, kind);
    match crate::pipeline::queue::enqueue(
        app,
        tenant,
        &conv.phone_number_id,
        &event,
        crate::pipeline::lane_of(&event.kind),
    )
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
    let p = guarded!(app, req, Permission::Act);
    let agent = agent_name(&p, body.agent.as_deref());
    match agent_event(&app, &p.tenant.id, &key, EventKind::AgentTakeover { agent: agent.clone() }).await {
        Ok((answer, conversation_id)) => {
            record_handoffs(&app, app.store.handoffs_taken(&p.tenant.id, &conversation_id, &agent).await).await;
            record(&app, &p, "conversation.takeover", &conversation_id, "ok", json!({"agent": agent})).await;
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
    let p = guarded!(app, req, Permission::Act);
    let Some(text) = body.text.clone().filter(|t| !t.trim().is_empty()) else {
        return problem(actix_web::http::StatusCode::BAD_REQUEST, "server.empty_reply", "give the reply in `text`");
    };
    let agent = agent_name(&p, body.agent.as_deref());
    let chars = text.chars().count();
    match agent_event(&app, &p.tenant.id, &key, EventKind::AgentMessage { agent: agent.clone(), text }).await {
        Ok((answer, conversation_id)) => {
            record(&app, &p, "conversation.reply", &conversation_id, "ok", json!({"agent": agent, "chars": chars}))
                .await;
            answer
        }
        Err(answer) => answer,
    }
}

async fn release(
    app: web::Data<App>,
    req: HttpRequest,
    key: web::Path<String>,
    body: web::Json<AgentBody>,
) -> HttpResponse {
    let p = guarded!(app, req, Permission::Act);
    let agent = agent_name(&p, body.agent.as_deref());
    match agent_event(&app, &p.tenant.id, &key, EventKind::AgentRelease { agent: agent.clone() }).await {
        Ok((answer, conversation_id)) => {
            let closed =
                app.store.handoffs_closed(&p.tenant.id, &conversation_id, HandoffStatus::Released, &agent, None).await;
            record_handoffs(&app, closed).await;
            record(&app, &p, "conversation.release", &conversation_id, "ok", json!({"agent": agent})).await;
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
    let p = guarded!(app, req, Permission::Read);
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
    match app.store.handoffs(&p.tenant.id, status, 500).await {
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
    /// For a key or the break-glass token: the agent's name.
    #[serde(default)]
    agent: Option<String>,
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
    let p = guarded!(app, req, Permission::Act);
    if body.note.trim().is_empty() {
        return problem(
            StatusCode::BAD_REQUEST,
            "server.resolve_incomplete",
            "give a `note` saying how it was resolved",
        );
    }
    let agent = agent_name(&p, body.agent.as_deref());
    let found = match id.parse::<i64>() {
        Ok(id) => app.store.handoff(&p.tenant.id, id).await,
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
        .handoffs_closed(
            &p.tenant.id,
            &handoff.conversation_id,
            HandoffStatus::Resolved,
            &agent,
            Some(body.note.trim()),
        )
        .await;
    if let Err(e) = closed {
        return problem(StatusCode::SERVICE_UNAVAILABLE, e.code(), &e.to_string());
    }
    let detail = json!({"agent": agent, "handoff": handoff.id, "note": body.note.trim()});
    record(&app, &p, "handoff.resolve", &handoff.conversation_id, "ok", detail).await;
    match agent_event(&app, &p.tenant.id, &handoff.conversation_id, EventKind::AgentRelease { agent }).await {
        Ok((answer, _)) | Err(answer) => answer,
    }
}

/// What the worker set aside unread, newest first (`?conversation=<id>` for one conversation).
async fn quarantined(app: web::Data<App>, req: HttpRequest, q: web::Query<QuarantineQuery>) -> HttpResponse {
    let p = guarded!(app, req, Permission::Read);
    match app.store.quarantined(&p.tenant.id, q.conversation.as_deref(), 500).await {
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
    let p = guarded!(app, req, Permission::Read);
    match app.store.dead_outbox(&p.tenant.id, 500).await {
        Ok(rows) => HttpResponse::Ok().json(json!({"dead": rows})),
        Err(e) => problem(actix_web::http::StatusCode::SERVICE_UNAVAILABLE, e.code(), &e.to_string()),
    }
}

async fn redrive(app: web::Data<App>, req: HttpRequest, id: web::Path<String>) -> HttpResponse {
    let p = guarded!(app, req, Permission::Operate);
    let target = if id.as_str() == "all" { None } else { id.parse::<i64>().ok() };
    if target.is_none() && id.as_str() != "all" {
        return problem(actix_web::http::StatusCode::BAD_REQUEST, "server.bad_id", "give an outbox id or `all`");
    }
    // Only the caller's tenant's rows: `all` is each of its dead rows; another tenant's id is
    // not found.
    match app.store.redrive(&p.tenant.id, target).await {
        Ok(n) => {
            app.outbox_notify.notify_one();
            record(&app, &p, "outbox.redrive", id.as_str(), "ok", json!({"redriven": n})).await;
            HttpResponse::Ok().json(json!({"redriven": n}))
        }
        Err(e) => problem(actix_web::http::StatusCode::SERVICE_UNAVAILABLE, e.code(), &e.to_string()),
    }
}

/// `POST /admin/flows/reload` (permission `operate`): reads the flow files now rather than at the
/// watcher's next look, and answers the flows served (`{"flows": ["booking v3", …]}`) or, when
/// the set does not check, 422 with every problem (the last good version is still served).
/// Either way the audit trail records who asked.
async fn reload_flows(app: web::Data<App>, req: HttpRequest) -> HttpResponse {
    let p = guarded!(app, req, Permission::Operate);
    let outcome = crate::pipeline::reload::reload_now(&app, &p.tenant).await;
    let entry = crate::pipeline::reload::audit_entry(&p.tenant.id, &p.name(), p.kind(), p.address.clone(), &outcome);
    if let Err(e) = app.store.audit(entry).await {
        tracing::error!(code = e.code(), error = %e, "the audit trail could not record a flow reload");
    }
    match outcome {
        Ok(versions) => HttpResponse::Ok().json(json!({"flows": versions})),
        Err(e) => problem(actix_web::http::StatusCode::UNPROCESSABLE_ENTITY, e.code(), &e.to_string()),
    }
}
