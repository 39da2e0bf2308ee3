//! The console's accounts: logging in and out, the users and their roles, API keys, and the
//! audit trail (all under `/admin`, beside the admin API they open).
//!
//! - `POST /admin/login` `{name, password}` sets the session cookie (HttpOnly, Secure,
//!   SameSite=Strict; the server keeps only a digest of its token, and ends it after
//!   `SESSION_IDLE_MINUTES` without a request). A wrong name and a wrong password get the same
//!   answer; after [`LOGIN_FAILURES`] failures in [`LOGIN_WINDOW_MINUTES`] minutes from one address
//!   or for one name, logins are refused with 429. Every attempt is in the audit trail.
//! - `POST /admin/logout`, `GET /admin/me`.
//! - `GET|POST /admin/users`, `PATCH /admin/users/{name}` (permission `users`; only an owner
//!   makes or changes an owner or an admin).
//! - `GET|POST /admin/keys`, `DELETE /admin/keys/{id}` (permission `keys`): a key is shown once,
//!   at creation; its scopes cannot exceed its creator's.
//! - `GET /admin/audit?actor=&action=&target=&since=&until=&limit=` (permission `audit`).

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::auth::{self, KEY_PREFIX, MIN_PASSWORD, Permission, Principal, Role, record};
use super::problem;
use crate::pipeline::App;
use crate::store::{AuditFilter, NewApiKey, NewAudit, now_ms, secret_digest};
use crate::tenant::TenantId;

/// Failed logins that close the door for a while.
pub const LOGIN_FAILURES: i64 = 5;
/// The window they are counted in.
pub const LOGIN_WINDOW_MINUTES: i64 = 15;
/// Requests a minute an API key may make unless created with another rate.
pub const DEFAULT_KEY_PER_MINUTE: i32 = 60;

/// Registers the routes (inside the `/admin` scope).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/login", web::post().to(login))
        .route("/logout", web::post().to(logout))
        .route("/me", web::get().to(me))
        .route("/users", web::get().to(users))
        .route("/users", web::post().to(add_user))
        .route("/users/{name}", web::patch().to(change_user))
        .route("/keys", web::get().to(keys))
        .route("/keys", web::post().to(add_key))
        .route("/keys/{id}", web::delete().to(revoke_key))
        .route("/audit", web::get().to(audit));
}

fn unavailable(e: crate::store::StoreError) -> HttpResponse {
    problem(StatusCode::SERVICE_UNAVAILABLE, e.code(), &e.to_string())
}

macro_rules! caller {
    ($app:expr, $req:expr, $permission:expr) => {
        match auth::caller(&$app, &$req, $permission).await {
            Ok(p) => p,
            Err(resp) => return resp,
        }
    };
}

#[derive(Deserialize)]
struct LoginBody {
    name: String,
    password: String,
}

/// A PHC hash of a password nobody has, verified when the name is unknown so that a wrong name
/// takes as long as a wrong password.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| auth::hash_password(&auth::new_secret()).unwrap_or_default())
}

async fn login(app: web::Data<App>, req: HttpRequest, body: web::Json<LoginBody>) -> HttpResponse {
    match sign_in(&app, &req, &body.name, &body.password).await {
        Ok((user, cookie)) => HttpResponse::Ok().cookie(cookie).json(json!({"name": user.name, "role": user.role})),
        Err(resp) => resp,
    }
}

/// Checks a name and password and opens a session: the user and the session cookie to set.
/// Errors: 429 (`server.login_rate_limited`) after too many failures, 401
/// (`server.login_failed`, the same for an unknown name and a wrong password), 503. Every
/// attempt is in the audit trail with the caller's address.
pub async fn sign_in(
    app: &App,
    req: &HttpRequest,
    name: &str,
    password: &str,
) -> Result<(crate::store::UserRow, Cookie<'static>), HttpResponse> {
    let address = super::client_ip(req, app.settings.trusted_proxy_header.as_deref()).map(|i| i.to_string());
    let now = now_ms();
    let since = now - LOGIN_WINDOW_MINUTES * 60_000;
    let name = name.trim().to_string();
    let failures = app.store.login_failures(address.as_deref(), &name, since).await.map_err(unavailable)?;
    // A login attempt is audited under the tenant of the user it names (the single business's
    // when it names none).
    let named = app.store.user_named(&name).await.map_err(unavailable)?;
    let tenant = named.as_ref().map_or_else(|| crate::tenant::DEFAULT_TENANT.to_string(), |u| u.tenant.clone());
    let attempt = |outcome: &str, action: &str| NewAudit {
        tenant: tenant.clone(),
        at: now,
        actor: name.clone(),
        actor_kind: "anonymous".into(),
        action: action.into(),
        target: name.clone(),
        outcome: outcome.into(),
        address: address.clone(),
        detail: "{}".into(),
    };
    if failures >= LOGIN_FAILURES {
        let _ = app.store.audit(attempt("denied", "login.refused")).await;
        return Err(problem(
            StatusCode::TOO_MANY_REQUESTS,
            "server.login_rate_limited",
            &format!("too many failed logins; try again in {LOGIN_WINDOW_MINUTES} minutes"),
        ));
    }
    let user = named.filter(|u| u.disabled_at.is_none());
    let hash = user.as_ref().map(|u| u.password_hash.clone()).unwrap_or_else(|| decoy_hash().to_string());
    let password = password.to_string();
    let matches = web::block(move || auth::verify_password(&password, &hash)).await.unwrap_or(false);
    let (Some(user), true) = (user, matches) else {
        let _ = app.store.audit(attempt("failed", "login.failed")).await;
        return Err(problem(StatusCode::UNAUTHORIZED, "server.login_failed", "wrong name or password"));
    };
    let token = auth::new_secret();
    app.store
        .create_session(&TenantId::of_row(&user.tenant), &secret_digest(&token), user.id, address.as_deref(), now)
        .await
        .map_err(unavailable)?;
    let _ = app.store.audit(NewAudit { actor_kind: "user".into(), ..attempt("ok", "login.ok") }).await;
    let cookie = Cookie::build(auth::SESSION_COOKIE, token)
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Strict)
        .path("/")
        .finish();
    Ok((user, cookie))
}

/// Ends the caller's session (recorded in the audit trail): the cookie that removes it.
/// Errors: 503 when the store cannot end it.
pub async fn sign_out(app: &App, req: &HttpRequest, p: &Principal) -> Result<Cookie<'static>, HttpResponse> {
    if let Some(token) = auth::session_token(req) {
        app.store.end_session(&secret_digest(&token)).await.map_err(unavailable)?;
    }
    record(app, p, "logout", &p.name(), "ok", json!({})).await;
    let mut gone = Cookie::build(auth::SESSION_COOKIE, "").http_only(true).secure(true).path("/").finish();
    gone.make_removal();
    Ok(gone)
}

async fn logout(app: web::Data<App>, req: HttpRequest) -> HttpResponse {
    let p = caller!(app, req, Permission::Read);
    match sign_out(&app, &req, &p).await {
        Ok(gone) => HttpResponse::Ok().cookie(gone).json(json!({"logged_out": true})),
        Err(resp) => resp,
    }
}

async fn me(app: web::Data<App>, req: HttpRequest) -> HttpResponse {
    let p = caller!(app, req, Permission::Read);
    let permissions: Vec<&str> = Permission::ALL.iter().filter(|x| p.allows(**x)).map(|x| x.as_str()).collect();
    HttpResponse::Ok().json(json!({
        "name": p.name(), "kind": p.kind(), "role": p.role().map(Role::as_str), "permissions": permissions,
    }))
}

async fn users(app: web::Data<App>, req: HttpRequest) -> HttpResponse {
    let p = caller!(app, req, Permission::Users);
    match app.store.users(&p.tenant.id).await {
        Ok(rows) => HttpResponse::Ok().json(json!({"users": rows})),
        Err(e) => unavailable(e),
    }
}

/// Whether `p` may give or take away `role`: only an owner handles owners and admins.
fn may_manage(p: &Principal, role: Role) -> bool {
    matches!(role, Role::Agent | Role::Viewer) || p.role() == Some(Role::Owner)
}

#[derive(Deserialize)]
struct NewUserBody {
    name: String,
    role: String,
    password: String,
}

async fn add_user(app: web::Data<App>, req: HttpRequest, body: web::Json<NewUserBody>) -> HttpResponse {
    let p = caller!(app, req, Permission::Users);
    let name = body.name.trim().to_string();
    let Some(role) = Role::parse(&body.role) else {
        return problem(StatusCode::BAD_REQUEST, "server.bad_role", "role must be owner, admin, agent or viewer");
    };
    if let Err(resp) = check_new_user(Some(&p), &name, role, &body.password) {
        record(&app, &p, "user.create", &name, "denied", json!({"role": role.as_str()})).await;
        return resp;
    }
    let password = body.password.clone();
    let Ok(Ok(hash)) = web::block(move || auth::hash_password(&password)).await else {
        return problem(StatusCode::INTERNAL_SERVER_ERROR, "server.hash_failed", "the password could not be hashed");
    };
    match app.store.user_named(&name).await {
        Ok(Some(_)) => return problem(StatusCode::CONFLICT, "server.user_exists", "a user with that name exists"),
        Ok(None) => {}
        Err(e) => return unavailable(e),
    }
    match app.store.create_user(&p.tenant.id, &name, role.as_str(), &hash, now_ms()).await {
        Ok(id) => {
            record(&app, &p, "user.create", &name, "ok", json!({"role": role.as_str()})).await;
            HttpResponse::Created().json(json!({"id": id, "name": name, "role": role.as_str()}))
        }
        Err(e) => unavailable(e),
    }
}

/// The rules a new user must meet: a name of 2–64 letters, digits, `.`, `_`, `-` or `@`, a
/// password of at least [`MIN_PASSWORD`] characters, and a role the caller may give.
pub fn check_new_user(p: Option<&Principal>, name: &str, role: Role, password: &str) -> Result<(), HttpResponse> {
    let name_ok = (2..=64).contains(&name.chars().count())
        && name.chars().all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if !name_ok {
        return Err(problem(
            StatusCode::BAD_REQUEST,
            "server.bad_user_name",
            "a name has 2 to 64 letters, digits, '.', '_', '-' or '@'",
        ));
    }
    if password.chars().count() < MIN_PASSWORD {
        return Err(problem(
            StatusCode::BAD_REQUEST,
            "server.weak_password",
            &format!("a password has at least {MIN_PASSWORD} characters"),
        ));
    }
    // `None`: the person at the server's console (`carewell users add`), who may make anyone.
    if p.is_some_and(|p| !may_manage(p, role)) {
        return Err(problem(StatusCode::FORBIDDEN, "server.forbidden", "only an owner makes owners and admins"));
    }
    Ok(())
}

#[derive(Deserialize)]
struct ChangeUserBody {
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    disabled: Option<bool>,
}

async fn change_user(
    app: web::Data<App>,
    req: HttpRequest,
    name: web::Path<String>,
    body: web::Json<ChangeUserBody>,
) -> HttpResponse {
    let p = caller!(app, req, Permission::Users);
    let user = match app.store.user_named(&name).await {
        // Another tenant's user is not found.
        Ok(Some(u)) if u.tenant == p.tenant.id.as_str() => u,
        Ok(_) => return problem(StatusCode::NOT_FOUND, "server.no_user", "no user with that name"),
        Err(e) => return unavailable(e),
    };
    let current = Role::parse(&user.role).unwrap_or(Role::Viewer);
    let new_role = match body.role.as_deref().map(Role::parse) {
        Some(None) => {
            return problem(StatusCode::BAD_REQUEST, "server.bad_role", "role must be owner, admin, agent or viewer");
        }
        Some(Some(r)) => Some(r),
        None => None,
    };
    if !may_manage(&p, current) || new_role.is_some_and(|r| !may_manage(&p, r)) {
        record(&app, &p, "user.change", &name, "denied", json!({})).await;
        return problem(StatusCode::FORBIDDEN, "server.forbidden", "only an owner changes owners and admins");
    }
    if body.password.as_ref().is_some_and(|pw| pw.chars().count() < MIN_PASSWORD) {
        return problem(
            StatusCode::BAD_REQUEST,
            "server.weak_password",
            &format!("a password has at least {MIN_PASSWORD} characters"),
        );
    }
    let hash = match body.password.clone() {
        Some(pw) => match web::block(move || auth::hash_password(&pw)).await {
            Ok(Ok(h)) => Some(h),
            _ => {
                return problem(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server.hash_failed",
                    "the password could not be hashed",
                );
            }
        },
        None => None,
    };
    let disabled = body.disabled.map(|d| d.then(now_ms));
    match app.store.update_user(&p.tenant.id, &name, new_role.map(Role::as_str), hash.as_deref(), disabled).await {
        Ok(_) => {
            let detail =
                json!({"role": new_role.map(Role::as_str), "password": hash.is_some(), "disabled": body.disabled});
            record(&app, &p, "user.change", &name, "ok", detail).await;
            HttpResponse::Ok().json(json!({"name": name.as_str(), "changed": true}))
        }
        Err(e) => unavailable(e),
    }
}

async fn keys(app: web::Data<App>, req: HttpRequest) -> HttpResponse {
    let p = caller!(app, req, Permission::Keys);
    match app.store.api_keys(&p.tenant.id).await {
        Ok(rows) => HttpResponse::Ok().json(json!({"keys": rows})),
        Err(e) => unavailable(e),
    }
}

#[derive(Deserialize)]
struct NewKeyBody {
    name: String,
    scopes: Vec<String>,
    #[serde(default)]
    per_minute: Option<i32>,
}

async fn add_key(app: web::Data<App>, req: HttpRequest, body: web::Json<NewKeyBody>) -> HttpResponse {
    let p = caller!(app, req, Permission::Keys);
    let name = body.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 80 {
        return problem(StatusCode::BAD_REQUEST, "server.bad_key_name", "give the key a name of 1 to 80 characters");
    }
    let mut scopes = Vec::new();
    for s in &body.scopes {
        let Some(perm) = Permission::parse(s) else {
            let all: Vec<&str> = Permission::ALL.iter().map(|p| p.as_str()).collect();
            return problem(
                StatusCode::BAD_REQUEST,
                "server.bad_scope",
                &format!("unknown scope {s:?}; scopes are {}", all.join(", ")),
            );
        };
        if !p.allows(perm) {
            record(&app, &p, "key.create", &name, "denied", json!({"scope": s})).await;
            return problem(StatusCode::FORBIDDEN, "server.forbidden", &format!("a key cannot have {s:?}: you do not"));
        }
        if !scopes.contains(&perm) {
            scopes.push(perm);
        }
    }
    if scopes.is_empty() {
        return problem(StatusCode::BAD_REQUEST, "server.bad_scope", "give the key at least one scope");
    }
    let per_minute = body.per_minute.unwrap_or(DEFAULT_KEY_PER_MINUTE).clamp(1, 100_000);
    let secret = format!("{KEY_PREFIX}{}", auth::new_secret());
    let scope_text = scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ");
    let key = NewApiKey {
        tenant: p.tenant.id.to_string(),
        name: name.clone(),
        scopes: scope_text.clone(),
        key_hash: secret_digest(&secret),
        per_minute,
        created_by: p.name(),
        created_at: now_ms(),
    };
    match app.store.create_api_key(key).await {
        Ok(id) => {
            record(
                &app,
                &p,
                "key.create",
                &id.to_string(),
                "ok",
                json!({"name": name, "scopes": scope_text, "per_minute": per_minute}),
            )
            .await;
            HttpResponse::Created().json(json!({
                "id": id, "name": name, "scopes": scope_text, "per_minute": per_minute, "key": secret,
                "note": "shown once: store it now; only its digest is kept",
            }))
        }
        Err(e) => unavailable(e),
    }
}

async fn revoke_key(app: web::Data<App>, req: HttpRequest, id: web::Path<String>) -> HttpResponse {
    let p = caller!(app, req, Permission::Keys);
    let Ok(id) = id.parse::<i64>() else { return problem(StatusCode::BAD_REQUEST, "server.bad_id", "give a key id") };
    match app.store.revoke_api_key(&p.tenant.id, id, now_ms()).await {
        Ok(true) => {
            record(&app, &p, "key.revoke", &id.to_string(), "ok", json!({})).await;
            HttpResponse::Ok().json(json!({"revoked": id}))
        }
        Ok(false) => problem(StatusCode::NOT_FOUND, "server.no_key", "no live key with that id"),
        Err(e) => unavailable(e),
    }
}

#[derive(Deserialize)]
struct AuditQuery {
    #[serde(default)]
    actor: Option<String>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    since: Option<i64>,
    #[serde(default)]
    until: Option<i64>,
    #[serde(default)]
    limit: Option<i64>,
}

async fn audit(app: web::Data<App>, req: HttpRequest, q: web::Query<AuditQuery>) -> HttpResponse {
    let p = caller!(app, req, Permission::Audit);
    let q = q.into_inner();
    let limit = q.limit.unwrap_or(200).clamp(1, 5000);
    let filter = AuditFilter { actor: q.actor, action: q.action, target: q.target, since: q.since, until: q.until };
    match app.store.audit_entries(&p.tenant.id, &filter, limit).await {
        Ok(rows) => HttpResponse::Ok().json(json!({"entries": rows})),
        Err(e) => unavailable(e),
    }
}
