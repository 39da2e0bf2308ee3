//! The HTTP side (actix-web): the WhatsApp webhook, health, and the sandbox's read-out used by
//! `chat`.
//!
//! `POST /webhooks/whatsapp` verifies the signature over the raw bytes, parses, writes every
//! message to the inbox (deduplicated by its id) and only then answers 200; no guard and no LLM
//! runs inside the request.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::{info, warn};

pub mod admin;
pub mod auth;
pub mod console;
pub mod dashboard;
pub mod inspector;
pub mod knowledge;
pub mod pages;
pub mod privacy;
pub mod replies;
pub mod transcripts;
pub mod widget;

use crate::channel::whatsapp::{signature, webhook};
use crate::pipeline::App;
use crate::store::{NewInbox, now_ms};

/// WhatsApp payloads can reach 3 MB (reference §6); anything larger is refused early.
pub const MAX_WEBHOOK_BYTES: usize = 3 * 1024 * 1024 + 64 * 1024;

/// Registers the routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PayloadConfig::new(MAX_WEBHOOK_BYTES))
        .route("/webhooks/whatsapp", web::get().to(verify))
        .route("/webhooks/whatsapp", web::post().to(receive))
        .route("/health", web::get().to(health))
        .route("/widget.js", web::get().to(widget::script))
        .route("/widget-demo", web::get().to(widget::demo))
        .route("/metrics", web::get().to(metrics))
        .route("/sandbox/messages", web::get().to(sandbox_messages))
        .configure(admin::routes)
        .configure(inspector::routes)
        .configure(pages::routes);
}

pub(crate) fn problem(status: actix_web::http::StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({"error": {"code": code, "message": message}}))
}

/// A CSV download named `filename`: the `header` row, then `rows` (each as many fields as the
/// header). Errors: 500 `server.csv` when a row cannot be written.
pub(crate) fn csv_download<R, F>(filename: &str, header: &[&str], rows: R) -> HttpResponse
where
    R: IntoIterator<Item = Vec<F>>,
    F: AsRef<[u8]>,
{
    let mut out = csv::Writer::from_writer(Vec::new());
    let mut written = out.write_record(header);
    for row in rows {
        written = written.and_then(|_| out.write_record(row));
    }
    match (written, out.into_inner()) {
        (Ok(()), Ok(body)) => HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .insert_header(("Content-Disposition", format!("attachment; filename=\"{filename}\"")))
            .body(body),
        _ => problem(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR, "server.csv", "the CSV could not be written"),
    }
}

#[derive(Deserialize)]
struct VerifyQuery {
    #[serde(rename = "hub.mode")]
    mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    token: Option<String>,
    #[serde(rename = "hub.challenge")]
    challenge: Option<String>,
}

/// The verification handshake (reference §1): 200 with the raw challenge, or 403.
async fn verify(app: web::Data<App>, q: web::Query<VerifyQuery>) -> HttpResponse {
    let token_ok = q.token.as_deref().is_some_and(|t| admin::same_secret(t, &app.settings.verify_token));
    match (q.mode.as_deref(), token_ok, &q.challenge) {
        (Some("subscribe"), true, Some(challenge)) => {
            HttpResponse::Ok().content_type("text/plain").body(challenge.clone())
        }
        _ => problem(
            actix_web::http::StatusCode::FORBIDDEN,
            "channel.verify_refused",
            "hub.mode must be subscribe and hub.verify_token must equal WHATSAPP_VERIFY_TOKEN",
        ),
    }
}

/// The client's address for the per-address rate limits: from `trusted_header` when it is set
/// and the request carries it (the last entry of a list: the one the trusted proxy appended;
/// `for=` of a `Forwarded` element, with its quotes, brackets and port), otherwise the
/// connection's.
pub(crate) fn client_ip(req: &HttpRequest, trusted_header: Option<&str>) -> Option<std::net::IpAddr> {
    let forwarded = trusted_header
        .and_then(|name| req.headers().get(name))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|last| {
            let last = last.split(';').find(|p| p.trim().to_ascii_lowercase().starts_with("for=")).unwrap_or(last);
            let value = last.trim().trim_start_matches("for=").trim_start_matches("For=").trim_matches('"');
            value
                .parse::<std::net::IpAddr>()
                .ok()
                .or_else(|| value.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
                .or_else(|| value.trim_start_matches('[').split(']').next().and_then(|v| v.parse().ok()))
        });
    forwarded.or_else(|| req.peer_addr().map(|a| a.ip()))
}

/// Receives a notification.
///
/// Only refused requests count against their address's limit (`RATE_IP_PER_SECOND`): WhatsApp
/// delivers from a few addresses at up to the business number's throughput (1,000 a second on
/// the highest tier), and a valid signature proves the sender. An address over its limit of
/// refusals gets 429 instead of 401 or 400.
async fn receive(app: web::Data<App>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let over_limit = || {
        let ip = client_ip(&req, app.settings.trusted_proxy_header.as_deref())?;
        app.limits.ip.check_key(&ip).is_err().then(|| {
            warn!(code = "server.rate_limited", %ip, "webhook refused: too many refused requests from this address");
            app.metrics.webhooks.with_label_values(&["rate_limited"]).inc();
            problem(
                actix_web::http::StatusCode::TOO_MANY_REQUESTS,
                "server.rate_limited",
                "too many refused requests from this address; retry later",
            )
        })
    };
    let header = req.headers().get("X-Hub-Signature-256").and_then(|h| h.to_str().ok());
    if let Err(e) = signature::verify(app.settings.app_secret.as_bytes(), &body, header) {
        if let Some(refused) = over_limit() {
            return refused;
        }
        warn!(code = e.code(), "webhook refused: bad signature");
        app.metrics.webhooks.with_label_values(&["bad_signature"]).inc();
        app.metrics.errors.with_label_values(&[e.code()]).inc();
        return problem(actix_web::http::StatusCode::UNAUTHORIZED, e.code(), &e.to_string());
    }
    let notification = match webhook::parse(&body) {
        Ok(n) => n,
        Err(e) => {
            if let Some(refused) = over_limit() {
                return refused;
            }
            warn!(code = e.code(), error = %e, "webhook refused: malformed body");
            app.metrics.webhooks.with_label_values(&["malformed"]).inc();
            app.metrics.errors.with_label_values(&[e.code()]).inc();
            return problem(actix_web::http::StatusCode::BAD_REQUEST, e.code(), &e.to_string());
        }
    };
    accept(&app, &notification).await
}

/// Stores a parsed notification's messages in the inbox and its statuses, and answers as the
/// webhook does: 200 once durable, 503 (WhatsApp retries) when the store is unavailable. Shared
/// by the webhook and the inspector page, so both take the same pipeline.
pub(crate) async fn accept(app: &App, notification: &webhook::Notification) -> HttpResponse {
    let received_at = now_ms();
    for skipped in &notification.skipped {
        warn!(
            code = "channel.message_skipped",
            message_id = skipped.message_id.as_deref().unwrap_or("-"),
            reason = skipped.reason,
            "webhook: a message was skipped"
        );
        app.metrics.webhooks.with_label_values(&["skipped"]).inc();
    }
    let mut rows: Vec<NewInbox> = Vec::with_capacity(notification.messages.len());
    let mut lanes = Vec::with_capacity(notification.messages.len());
    let mut known = 0;
    for m in &notification.messages {
        if app.seen.contains_key(&m.event.message_id) {
            known += 1;
            continue;
        }
        // A number no tenant claims: nobody here may read or answer it (TENANTS_DIR lists each
        // tenant's numbers). Acknowledged, so WhatsApp does not retry forever, and logged.
        let Some(tenant) = app.tenants.of_number(&m.phone_number_id) else {
            tracing::error!(
                code = "tenant.unknown_number",
                phone_number_id = %m.phone_number_id,
                message_id = %m.event.message_id,
                "a message arrived on a number no tenant claims; add it to a tenant's tenant.yaml"
            );
            app.metrics.webhooks.with_label_values(&["unknown_number"]).inc();
            continue;
        };
        let mut event = m.event.clone();
        // A website chat's code, sent from WhatsApp: the chat is carried over to this number.
        if let Some(joined) = widget::join(app, &m.phone_number_id, &event, received_at).await {
            match joined {
                Ok(kind) => event.kind = kind,
                Err(refused) => return refused,
            }
        }
        // Over its limit, a sender's message is kept and recorded but not answered. Counted per
        // business: writing to one does not use up the limit with another.
        event.throttled = app.limits.sender.check_key(&format!("{}:{}", tenant.id, event.customer)).is_err();
        if event.throttled {
            warn!(code = "server.sender_throttled", customer = %event.customer, "sender over its rate limit; message kept, not answered");
        }
        lanes.push(crate::pipeline::lane_of(&event.kind));
        rows.push(crate::pipeline::queue::inbox_row(&tenant.id, &m.phone_number_id, &event, received_at));
    }
    if known > 0 {
        info!(duplicates = known, "webhook: messages already stored (seen recently)");
    }
    if !rows.is_empty() {
        // One conversation's messages (nearly every webhook): stored and leased for the worker
        // in one statement, so its turn needs no statement of its own to begin.
        let one_conversation = rows.iter().all(|r| r.conversation_id == rows[0].conversation_id);
        let stored = if one_conversation {
            let until = now_ms() + app.settings.lease.as_millis() as i64;
            app.store.insert_inbox_and_lease(&rows, &rows[0].conversation_id, &app.instance_id, until).await
        } else {
            app.store.insert_inbox(&rows).await.map(|fresh| (fresh, None))
        };
        match stored {
            Ok((fresh, leased)) => {
                let new = fresh.iter().filter(|f| **f).count();
                info!(messages = rows.len(), new, duplicates = rows.len() - new, "webhook stored");
                let mut leased = leased;
                for ((r, fresh), lane) in rows.iter().zip(&fresh).zip(&lanes) {
                    app.seen.insert(r.dedup_key.clone(), ()).await;
                    if *fresh {
                        match leased.take() {
                            Some((conversation, row)) => app.wake_leased(conversation, row, *lane),
                            None => app.wake(&r.conversation_id, *lane),
                        }
                    }
                }
                app.metrics.webhooks.with_label_values(&["stored"]).inc_by(new as u64);
                app.metrics.webhooks.with_label_values(&["duplicate"]).inc_by((rows.len() - new) as u64);
            }
            Err(e) => {
                // Not durable: answer non-200 so WhatsApp delivers it again (reference §6).
                tracing::error!(code = e.code(), error = %e, "webhook not stored");
                return problem(
                    actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                    e.code(),
                    "the inbox is unavailable; WhatsApp will retry",
                );
            }
        }
    }
    for s in &notification.statuses {
        // A receipt for a number no tenant claims is no business's: not kept.
        let Some(tenant) = app.tenants.of_number(&s.phone_number_id) else { continue };
        let detail = (!s.errors.is_empty()).then(|| s.errors.join("; "));
        if let Err(e) =
            app.store.record_status(&tenant.id, &s.message_id, &s.status, &s.recipient, s.timestamp, detail).await
        {
            tracing::error!(code = e.code(), error = %e, "status not stored");
            return problem(
                actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                e.code(),
                "the store is unavailable; WhatsApp will retry",
            );
        }
    }
    HttpResponse::Ok().json(json!({"received": notification.messages.len(), "statuses": notification.statuses.len()}))
}

/// Prometheus metrics (text exposition format).
async fn metrics(app: web::Data<App>) -> HttpResponse {
    if let Ok((depth, oldest)) = app.store.outbox_backlog().await {
        app.metrics.outbox_depth.set(depth);
        app.metrics.outbox_oldest_age.set(oldest.map_or(0, |o| (now_ms() - o) / 1000));
    }
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(app.metrics.render())
}

async fn health(app: web::Data<App>) -> HttpResponse {
    // One business: its flows; several: how many tenants (this answer is public, so it names
    // none of them).
    let flows: Value = match app.tenants.is_single() {
        true => app
            .tenants
            .all()
            .iter()
            .flat_map(|t| {
                t.flows().flows.values().map(|f| json!({"id": f.id, "version": f.version})).collect::<Vec<_>>()
            })
            .collect(),
        false => Value::Null,
    };
    let erp_sandbox = app.tenants.all().iter().all(|t| t.erp.is_sandbox());
    match app.store.counts().await {
        Ok((inbox, pending, turns, outbox_pending, dead)) => HttpResponse::Ok().json(json!({
            "status": "ok",
            "database": app.store.backend,
            "sandbox": {"whatsapp": app.is_sandbox(), "erp": erp_sandbox},
            "tenants": app.tenants.all().len(),
            "llm": app.settings.llm.as_ref().map(|l| l.model.clone()),
            "flows": flows,
            "inbox": {"total": inbox, "pending": pending},
            "turns": turns,
            "outbox": {"pending": outbox_pending, "dead": dead},
        })),
        Err(e) => problem(actix_web::http::StatusCode::SERVICE_UNAVAILABLE, e.code(), &e.to_string()),
    }
}

#[derive(Deserialize)]
struct SandboxQuery {
    customer: String,
    #[serde(default)]
    after: i64,
}

/// The messages the sandbox "sent" to a customer after outbox id `after` (only without a Graph
/// API): what `chat` shows.
async fn sandbox_messages(app: web::Data<App>, q: web::Query<SandboxQuery>) -> HttpResponse {
    if !app.is_sandbox() {
        return problem(
            actix_web::http::StatusCode::NOT_FOUND,
            "server.not_sandbox",
            "the sandbox is off: WHATSAPP_API_BASE_URL is set",
        );
    }
    // The sandbox is for trying flows on one machine: the customer's conversations in every tenant.
    let mut conversations = Vec::new();
    for tenant in app.tenants.all() {
        match app.store.conversations_of(&tenant.id, &q.customer).await {
            Ok(c) => conversations.extend(c.into_iter().map(|c| (tenant.id.clone(), c))),
            Err(e) => return problem(actix_web::http::StatusCode::SERVICE_UNAVAILABLE, e.code(), &e.to_string()),
        }
    }
    let mut out: Vec<Value> = Vec::new();
    for (tenant, c) in conversations {
        match app.store.outbox_of(&tenant, &c.id, Some(crate::store::OutboxKind::WhatsApp.as_str()), q.after).await {
            Ok(rows) => {
                out.extend(rows.into_iter().filter(|r| r.status() == Some(crate::store::OutboxStatus::Sent)).map(|r| {
                    let payload: Value = serde_json::from_str(&r.payload).unwrap_or(Value::Null);
                    json!({"id": r.id, "wamid": r.result, "body": payload["body"]})
                }))
            }
            Err(e) => return problem(actix_web::http::StatusCode::SERVICE_UNAVAILABLE, e.code(), &e.to_string()),
        }
    }
    out.sort_by_key(|v| v["id"].as_i64().unwrap_or(0));
    HttpResponse::Ok().json(json!({"messages": out}))
}

/// Binds the HTTP server (the routes above, with a request log). Returns the bound addresses and
/// the server future, which runs until it stops; the background tasks are started by
/// `startup`.
///
/// Errors: the address cannot be bound.
pub fn bind(app: Arc<App>) -> std::io::Result<(Vec<std::net::SocketAddr>, actix_web::dev::Server)> {
    let data = web::Data::from(app.clone());
    let for_workers = app.clone();
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(data.clone())
            .service(widget::scope(for_workers.clone()))
            .configure(routes)
            // The path without its query: `/inspector?token=…` must not reach the log.
            .wrap(
                actix_web::middleware::Logger::new("%{method}xi %U %s %Dms")
                    .custom_request_replace("method", |req| req.method().to_string())
                    .log_target("http"),
            )
    })
    .workers(app.settings.http_workers)
    .bind((app.settings.host.as_str(), app.settings.port))?;
    let addrs = server.addrs();
    Ok((addrs, server.run()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn the_client_address_comes_from_a_trusted_header_only_when_one_is_configured() {
        let peer: std::net::SocketAddr = "10.0.0.2:55000".parse().unwrap();
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        let req = |name: &str, value: &str| {
            TestRequest::default().peer_addr(peer).insert_header((name, value)).to_http_request()
        };
        let xff = req("X-Forwarded-For", "203.0.113.9, 198.51.100.7");
        assert_eq!(client_ip(&xff, None), Some(ip("10.0.0.2")), "off by default: the header is the client's to write");
        assert_eq!(client_ip(&xff, Some("X-Forwarded-For")), Some(ip("198.51.100.7")), "the entry the proxy appended");
        let real = req("X-Real-IP", "2001:db8::7");
        assert_eq!(client_ip(&real, Some("x-real-ip")), Some(ip("2001:db8::7")));
        let fwd = req("Forwarded", "for=192.0.2.60;proto=http, for=\"[2001:db8:cafe::17]:4711\"");
        assert_eq!(client_ip(&fwd, Some("Forwarded")), Some(ip("2001:db8:cafe::17")));
        let junk = req("X-Forwarded-For", "not-an-address");
        assert_eq!(client_ip(&junk, Some("X-Forwarded-For")), Some(ip("10.0.0.2")), "unreadable: the connection's");
    }
}
