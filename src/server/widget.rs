//! The website chat widget's public session API (see `channel::web`). A page on one of a site's
//! origins creates a session, posts the visitor's messages and button choices, and reads the
//! replies; every call but the first carries the session's token. Only the sites' own origins
//! pass CORS, and each session answers only the origin of its site.
//!
//! - `GET /widget/sites/{key}`: the site's look and greeting.
//! - `POST /widget/sessions`: `{"site": key}` → 201 `{"session", "token", "site": {…}}`.
//! - `POST /widget/sessions/{id}/messages`: `{"client_id", "text"}` or `{"client_id", "choice":
//!   {"id", "title"}}` → 202 `{"queued": true|false}` (`false`: that `client_id` was already
//!   taken, nothing new queued).
//! - `GET /widget/sessions/{id}/replies?after=N&wait=S`: the replies after reply `N`, waiting up
//!   to `S` seconds (at most 25) for one → `{"replies": [{"id", "type", "text", "options"?}]}`.
//! - `POST /widget/sessions/{id}/whatsapp`: "Continue on WhatsApp" → 201 `{"code", "link"}`: a
//!   wa.me link to the site's WhatsApp number whose message carries the code; sent from
//!   WhatsApp, it moves this chat there (see [`join`]).
//! - `DELETE /widget/sessions/{id}`: ends the session (the widget's "start again").
//!
//! Errors: 400 `web.bad_message`, 401 `web.bad_token`, 403 `web.origin_refused`, 404
//! `web.unknown_site` / `web.unknown_session`, 410 `web.session_closed` (idle for 30 minutes, or
//! ended: start a new session), 413 `web.too_long`, 429 `web.rate_limited`, 503 `store.*`.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use hmac::Mac;
use serde::Deserialize;
use serde_json::{Value, json};

use super::problem;
use crate::channel::web::{MAX_TEXT_CHARS, number_of};
use crate::engine::{EventKind, InboundEvent};
use crate::flow::web::Site;
use crate::pipeline::App;
use crate::store::{OutboxKind, WebSessionRow, now_ms};
use crate::tenant::TenantId;

/// The longest a replies request waits for a reply.
pub const MAX_WAIT: Duration = Duration::from_secs(25);

/// How often a waiting replies request reads again when several instances run (a reply another
/// instance committed wakes nobody here); with one, this process's own wake-up is enough.
const READ_EVERY: Duration = Duration::from_secs(1);

/// The largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The scope `/widget`, behind CORS that lets only the configured sites' origins in.
pub fn scope(
    app: Arc<App>,
) -> actix_web::Scope<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<actix_web::body::EitherBody<actix_web::body::BoxBody>>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let cors = actix_cors::Cors::default()
        .allowed_origin_fn(move |origin, _| {
            let origin = origin.to_str().unwrap_or_default();
            app.tenants.all().iter().any(|t| t.flows().business.sites.iter().any(|s| s.allows(origin)))
        })
        .allowed_methods(["GET", "POST", "DELETE"])
        .allowed_headers([actix_web::http::header::AUTHORIZATION, actix_web::http::header::CONTENT_TYPE])
        .max_age(600);
    web::scope("/widget")
        .wrap(cors)
        .app_data(web::JsonConfig::default().limit(MAX_BODY_BYTES))
        .route("/sites/{key}", web::get().to(site))
        .route("/sessions", web::post().to(create))
        .route("/sessions/{id}/messages", web::post().to(message))
        .route("/sessions/{id}/replies", web::get().to(replies))
        .route("/sessions/{id}/whatsapp", web::post().to(whatsapp))
        .route("/sessions/{id}", web::delete().to(end))
}

/// The widget's script, `GET /widget.js` (one file, no dependencies; see its header).
pub async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/javascript; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=300"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(include_str!("widget.js"))
}

/// `GET /widget-demo`: a page of this service carrying the widget of the first site whose
/// origins include it (the sample site allows `http://127.0.0.1:8080`), to try it.
pub async fn demo(app: web::Data<App>, req: HttpRequest) -> HttpResponse {
    let info = req.connection_info();
    let here = format!("{}://{}", info.scheme(), info.host());
    let sites: Vec<Site> = app.tenants.all().iter().flat_map(|t| t.flows().business.sites.clone()).collect();
    let Some(site) = sites.iter().find(|s| s.allows(&here)) else {
        return problem(
            StatusCode::NOT_FOUND,
            "web.unknown_site",
            &format!("no site in flows/business.yaml (web) allows {here}: add it to a site's origins"),
        );
    };
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body><main><h1>{title}</h1><p>The website chat widget of site <code>{key}</code>: open it with the button at \
         the bottom.</p></main><script src=\"/widget.js\" data-site=\"{key}\" async></script></body></html>",
        title = super::pages::layout::esc(&site.title),
        key = super::pages::layout::esc(&site.key),
    );
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(page)
}

/// The code a "Continue on WhatsApp" message carries: `W-` and six of an alphabet without 0, O,
/// 1 and I.
static JOIN_CODE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"(?i)\bW-([A-HJ-NP-Z2-9]{6})\b").unwrap_or_else(|_| unreachable!("a valid pattern"))
});

/// The alphabet of join codes.
const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// A WhatsApp text that carries a website chat's code: takes the code and queues the chat's move
/// in one transaction, and answers the event kind the message is stored as
/// ([`EventKind::JoinedFromWeb`]). `None` when the text carries no code, or one that is unknown,
/// used by someone else or expired (the message is then read as it is); `Some(Err)` with the 503
/// to answer when the store failed (WhatsApp delivers the message again).
pub async fn join(
    app: &App,
    phone_number_id: &str,
    event: &InboundEvent,
    received_at: i64,
) -> Option<Result<EventKind, HttpResponse>> {
    let EventKind::Text { body } = &event.kind else { return None };
    let code = format!("W-{}", JOIN_CODE.captures(body)?.get(1)?.as_str().to_ascii_uppercase());
    let tenant = app.tenants.of_number(phone_number_id)?;
    let (customer, number, at) = (event.customer.clone(), phone_number_id.to_string(), event.timestamp);
    let key = code.clone();
    let tenant_id = tenant.id.clone();
    let moved = move |session: &str, site: &str| {
        let kind = EventKind::ContinuedOnWhatsApp { customer, phone_number_id: number };
        let e = InboundEvent::internal(format!("join:{key}"), session, at, kind);
        crate::pipeline::queue::inbox_row(&tenant_id, &number_of(site), &e, received_at)
    };
    let sites: Vec<String> = tenant.flows().business.sites.iter().map(|s| s.key.clone()).collect();
    match app.store.take_web_join(sites, &code, &event.customer, now_ms(), moved).await {
        Ok(Some((session, site))) => {
            tracing::info!(%code, "a website chat continues on WhatsApp");
            let conversation = crate::pipeline::queue::conversation_id(&number_of(&site), &session);
            app.wake(&conversation, crate::store::Lane::Interactive);
            Some(Ok(EventKind::JoinedFromWeb { session }))
        }
        Ok(None) => None,
        Err(e) => Some(Err(problem(
            StatusCode::SERVICE_UNAVAILABLE,
            e.code(),
            "the store is unavailable; WhatsApp will retry",
        ))),
    }
}

async fn whatsapp(app: web::Data<App>, req: HttpRequest, id: web::Path<String>) -> HttpResponse {
    let (row, site) = match session(&app, &req, &id, true).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    let Some(number) = &site.whatsapp else {
        return problem(
            StatusCode::NOT_FOUND,
            "web.no_whatsapp",
            "this site has no WhatsApp number (flows/business.yaml, web)",
        );
    };
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let code: String = std::iter::once("W-".to_string())
        .chain(bytes[..6].iter().map(|b| (CODE_ALPHABET[usize::from(*b) % CODE_ALPHABET.len()] as char).to_string()))
        .collect();
    if let Err(e) = app.store.create_web_join(&TenantId::of_row(&row.tenant), &code, &row.id, &site.key, now_ms()).await
    {
        return problem(StatusCode::SERVICE_UNAVAILABLE, e.code(), &e.to_string());
    }
    let text = format!("Continue my chat: {code}");
    let link = reqwest::Url::parse_with_params(&format!("https://wa.me/{number}"), &[("text", text.as_str())])
        .map(|u| u.to_string())
        .unwrap_or_default();
    HttpResponse::Created().json(json!({"code": code, "link": link}))
}

/// The session token: HMAC-SHA256 of the session id under the widget key, in hex.
pub fn token_of(secret: &str, session: &str) -> String {
    hex::encode(mac(secret, session).finalize().into_bytes())
}

fn mac(secret: &str, session: &str) -> hmac::Hmac<sha2::Sha256> {
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key"));
    m.update(b"session:");
    m.update(session.as_bytes());
    m
}

/// Whether `token` is the session's (compared in constant time).
fn token_ok(secret: &str, session: &str, token: &str) -> bool {
    hex::decode(token).is_ok_and(|t| mac(secret, session).verify_slice(&t).is_ok())
}

/// The request's `Origin` header; `None` when there is none.
fn origin(req: &HttpRequest) -> Option<String> {
    req.headers().get("Origin").map(|o| o.to_str().unwrap_or_default().to_string())
}

/// Whether the page making `req` may use `site`'s widget: its `Origin` is one of the site's.
/// A request without `Origin` comes from a page of this service itself (browsers leave it out
/// of same-origin GETs, as on `/widget-demo`) or from outside a browser, where CORS protects
/// nothing: the session token is what it must show.
fn page_allowed(site: &Site, req: &HttpRequest) -> bool {
    origin(req).is_none_or(|o| site.allows(&o))
}

/// The site with `key`, from the tenant that declares it (the key is what resolves a website
/// chat's tenant).
fn site_by_key(app: &App, key: &str) -> Option<Site> {
    app.tenants.of_site(key)?.flows().business.sites.iter().find(|s| s.key == key).cloned()
}

fn public(site: &Site) -> Value {
    json!({
        "key": site.key, "title": site.title, "greeting": site.greeting, "accent": site.accent,
        "on_accent": site.on_accent, "direction": site.direction, "keep_session": site.keep_session,
        "max_text_chars": MAX_TEXT_CHARS, "whatsapp": site.whatsapp.is_some(),
    })
}

/// The address's request budget; `Err` with the 429 to send when it is spent.
fn address_allows(app: &App, req: &HttpRequest) -> Result<(), HttpResponse> {
    let ip = super::client_ip(req, app.settings.trusted_proxy_header.as_deref());
    match ip.map(|ip| app.limits.web_ip.check_key(&ip)) {
        Some(Err(_)) => Err(problem(StatusCode::TOO_MANY_REQUESTS, "web.rate_limited", "too many requests: slow down")),
        _ => Ok(()),
    }
}

async fn site(app: web::Data<App>, req: HttpRequest, key: web::Path<String>) -> HttpResponse {
    if let Err(resp) = address_allows(&app, &req) {
        return resp;
    }
    match site_by_key(&app, &key) {
        Some(s) if page_allowed(&s, &req) => HttpResponse::Ok().json(public(&s)),
        Some(_) => problem(StatusCode::FORBIDDEN, "web.origin_refused", "this page's origin is not one of the site's"),
        None => problem(StatusCode::NOT_FOUND, "web.unknown_site", "no site with that key (flows/business.yaml, web)"),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSession {
    site: String,
}

async fn create(app: web::Data<App>, req: HttpRequest, body: web::Json<NewSession>) -> HttpResponse {
    if let Err(resp) = address_allows(&app, &req) {
        return resp;
    }
    let Some(site) = site_by_key(&app, &body.site) else {
        return problem(StatusCode::NOT_FOUND, "web.unknown_site", "no site with that key (flows/business.yaml, web)");
    };
    if !page_allowed(&site, &req) {
        return problem(StatusCode::FORBIDDEN, "web.origin_refused", "this page's origin is not one of the site's");
    }
    let origin = origin(&req).unwrap_or_else(|| "same-origin".into());
    let now = now_ms();
    // The site key is what names the business (site_by_key found the site in its flows).
    let Some(owner) = app.tenants.of_site(&site.key) else {
        return problem(StatusCode::NOT_FOUND, "web.unknown_site", "no site has that key");
    };
    let row = WebSessionRow {
        tenant: owner.id.to_string(),
        id: uuid::Uuid::new_v4().to_string(),
        site: site.key.clone(),
        origin,
        created_at: now,
        last_seen_at: now,
        closed_at: None,
    };
    if let Err(e) = app.store.create_web_session(&row).await {
        return problem(StatusCode::SERVICE_UNAVAILABLE, e.code(), &e.to_string());
    }
    let token = token_of(&app.settings.widget_secret, &row.id);
    HttpResponse::Created().json(json!({"session": row.id, "token": token, "site": public(&site)}))
}

/// The session named in the path, checked: its token in `Authorization: Bearer`, the page on its
/// site's origin, open and (when `activity`) kept alive by this request.
async fn session(
    app: &App,
    req: &HttpRequest,
    id: &str,
    activity: bool,
) -> Result<(WebSessionRow, Site), HttpResponse> {
    address_allows(app, req)?;
    let token = req
        .headers()
        .get("Authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !token_ok(&app.settings.widget_secret, id, token) {
        return Err(problem(StatusCode::UNAUTHORIZED, "web.bad_token", "the session's token is missing or wrong"));
    }
    let now = now_ms();
    let row = match app.store.web_session(id, now, activity).await {
        Ok(Some(r)) => r,
        Ok(None) => return Err(problem(StatusCode::NOT_FOUND, "web.unknown_session", "no such session")),
        Err(e) => return Err(problem(StatusCode::SERVICE_UNAVAILABLE, e.code(), &e.to_string())),
    };
    if row.closed_at.is_some() {
        return Err(problem(StatusCode::GONE, "web.session_closed", "this session has ended: start a new one"));
    }
    let Some(site) = site_by_key(app, &row.site).filter(|s| page_allowed(s, req)) else {
        return Err(problem(
            StatusCode::FORBIDDEN,
            "web.origin_refused",
            "this page's origin is not the session's site",
        ));
    };
    Ok((row, site))
}

/// A visitor's message: typed text or a pressed option.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Posted {
    /// The browser's id for this message (1 to 64 of `A-Z a-z 0-9 - _`): a repeated post with
    /// the same id is one message.
    client_id: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    choice: Option<Choice>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Choice {
    id: String,
    title: String,
}

async fn message(
    app: web::Data<App>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<Posted>,
) -> HttpResponse {
    let (row, site) = match session(&app, &req, &id, true).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    let posted = body.into_inner();
    let id_ok = (1..=64).contains(&posted.client_id.len())
        && posted.client_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !id_ok {
        return problem(StatusCode::BAD_REQUEST, "web.bad_message", "client_id: 1 to 64 of A-Z, a-z, 0-9, - and _");
    }
    let kind = match (posted.text, posted.choice) {
        (Some(text), None) if text.chars().count() > MAX_TEXT_CHARS => {
            return problem(
                StatusCode::PAYLOAD_TOO_LARGE,
                "web.too_long",
                &format!("a message holds at most {MAX_TEXT_CHARS} characters"),
            );
        }
        (Some(text), None) if !text.trim().is_empty() => EventKind::Text { body: text },
        (None, Some(c)) if !c.id.is_empty() && c.id.len() <= 256 && c.title.chars().count() <= 100 => {
            EventKind::Choice { id: c.id, title: c.title }
        }
        _ => {
            return problem(
                StatusCode::BAD_REQUEST,
                "web.bad_message",
                "give `text` (not empty) or `choice` {id, title}",
            );
        }
    };
    if app.limits.web_session.check_key(&row.id).is_err() {
        return problem(StatusCode::TOO_MANY_REQUESTS, "web.rate_limited", "too many messages: slow down");
    }
    let event = InboundEvent {
        message_id: format!("web:{}:{}", row.id, posted.client_id),
        customer: row.id.clone(),
        profile_name: None,
        timestamp: now_ms() / 1000,
        context_id: None,
        kind,
        throttled: false,
        followed: false,
    };
    let lane = crate::pipeline::lane_of(&event.kind);
    let tenant = app.tenant_id_of(&crate::pipeline::queue::conversation_id(&number_of(&site.key), &row.id));
    match crate::pipeline::queue::enqueue(&app, &tenant, &number_of(&site.key), &event, lane).await {
        Ok(fresh) => HttpResponse::Accepted().json(json!({"queued": fresh})),
        Err(e) => problem(StatusCode::SERVICE_UNAVAILABLE, e.code(), &e.to_string()),
    }
}

#[derive(Deserialize)]
struct RepliesQuery {
    #[serde(default)]
    after: i64,
    #[serde(default)]
    wait: u64,
}

async fn replies(
    app: web::Data<App>,
    req: HttpRequest,
    id: web::Path<String>,
    q: web::Query<RepliesQuery>,
) -> HttpResponse {
    let (row, site) = match session(&app, &req, &id, false).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    let conversation = crate::pipeline::queue::conversation_id(&number_of(&site.key), &row.id);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(q.wait).min(MAX_WAIT);
    loop {
        let woken = app.web_replies.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let rows = match app
            .store
            .outbox_of(&TenantId::of_row(&row.tenant), &conversation, Some(OutboxKind::Web.as_str()), q.after)
            .await
        {
            Ok(rows) => rows,
            Err(e) => return problem(StatusCode::SERVICE_UNAVAILABLE, e.code(), &e.to_string()),
        };
        let found: Vec<Value> = rows
            .iter()
            .filter_map(|r| {
                let payload: Value = serde_json::from_str(&r.payload).ok()?;
                let mut body = payload.get("body")?.clone();
                body["id"] = json!(r.id);
                Some(body)
            })
            .collect();
        let now = tokio::time::Instant::now();
        if !found.is_empty() || now >= deadline {
            return HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(json!({"replies": found}));
        }
        let every = if app.settings.instances > 1 { READ_EVERY } else { MAX_WAIT };
        let _ = tokio::time::timeout(every.min(deadline - now), woken).await;
    }
}

async fn end(app: web::Data<App>, req: HttpRequest, id: web::Path<String>) -> HttpResponse {
    let (row, _) = match session(&app, &req, &id, false).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    match app.store.close_web_session(&row.id, now_ms()).await {
        Ok(_) => HttpResponse::NoContent().finish(),
        Err(e) => problem(StatusCode::SERVICE_UNAVAILABLE, e.code(), &e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_opens_its_own_session_only() {
        let t = token_of("key", "session-a");
        assert!(token_ok("key", "session-a", &t));
        assert!(!token_ok("key", "session-b", &t));
        assert!(!token_ok("other key", "session-a", &t));
        assert!(!token_ok("key", "session-a", "not hex"));
        assert!(!token_ok("key", "session-a", ""));
    }
}
