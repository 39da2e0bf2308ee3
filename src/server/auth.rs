//! Who is calling the admin API, and what they may do.
//!
//! Three ways in, tried in order:
//! 1. the console's session cookie ([`SESSION_COOKIE`]), set by `POST /admin/login` for a user
//!    (owner, admin, agent or viewer; password checked against its argon2id hash);
//! 2. `Authorization: Bearer cwk_…`, an API key with scopes and a rate limit of its own;
//! 3. `Authorization: Bearer $ADMIN_TOKEN`, the break-glass key (every permission), only when
//!    `ADMIN_TOKEN` is set (off by default).
//!
//! Each route asks for one [`Permission`]; a caller without it gets 403, an unknown caller 401.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{Value, json};

use super::problem;
use crate::pipeline::App;
use crate::store::{NewAudit, now_ms, secret_digest};

/// The console's session cookie.
pub const SESSION_COOKIE: &str = "carewell_session";
/// What an API key starts with, so it is told from the break-glass token at a glance.
pub const KEY_PREFIX: &str = "cwk_";

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, including other owners and admins.
    Owner,
    /// Everything but managing owners.
    Admin,
    /// Reads, takes conversations over, replies, releases and resolves hand-offs.
    Agent,
    /// Reads only.
    Viewer,
}

impl Role {
    /// Every role, strongest first.
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Agent, Role::Viewer];

    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Agent => "agent",
            Role::Viewer => "viewer",
        }
    }

    /// From its stored name; `None` for anything else.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether the role carries `p`.
    pub fn allows(self, p: Permission) -> bool {
        match self {
            Role::Owner | Role::Admin => true,
            Role::Agent => matches!(p, Permission::Read | Permission::Act | Permission::Knowledge),
            Role::Viewer => p == Permission::Read,
        }
    }
}

/// What a route needs. An API key's scopes are these names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Read conversations, hand-offs, the outbox, the quarantine.
    Read,
    /// Take over, reply, release, resolve.
    Act,
    /// Re-drive dead outbox rows.
    Operate,
    /// Create and revoke API keys.
    Keys,
    /// Create and change users.
    Users,
    /// Export or erase what is held about a customer.
    Privacy,
    /// Read the audit trail.
    Audit,
    /// Change the knowledge base and review what it answered (agents too: they know the answers).
    Knowledge,
}

impl Permission {
    /// Every permission.
    pub const ALL: [Permission; 8] = [
        Permission::Read,
        Permission::Act,
        Permission::Operate,
        Permission::Keys,
        Permission::Users,
        Permission::Privacy,
        Permission::Audit,
        Permission::Knowledge,
    ];

    /// Its scope name.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::Act => "act",
            Permission::Operate => "operate",
            Permission::Keys => "keys",
            Permission::Users => "users",
            Permission::Privacy => "privacy",
            Permission::Audit => "audit",
            Permission::Knowledge => "knowledge",
        }
    }

    /// From a scope name; `None` for anything else.
    pub fn parse(s: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Actor {
    /// A logged-in user.
    User {
        /// Id.
        id: i64,
        /// Login name.
        name: String,
        /// Role.
        role: Role,
    },
    /// An API key.
    Key {
        /// Id.
        id: i64,
        /// Its name.
        name: String,
        /// Its scopes.
        scopes: Vec<Permission>,
    },
    /// The break-glass `ADMIN_TOKEN`.
    BreakGlass,
}

/// A caller, with the address the request came from and the business it acts for (its
/// user's or key's tenant; the break-glass token's own).
#[derive(Debug, Clone)]
pub struct Principal {
    /// Who.
    pub actor: Actor,
    /// The client's address, when known.
    pub address: Option<String>,
    /// The business every one of its requests is about: resources of another are not found.
    pub tenant: std::sync::Arc<crate::pipeline::Tenant>,
}

impl Principal {
    /// How the audit trail and the conversation name them: a user's name, `key:<id> <name>`,
    /// `break-glass`.
    pub fn name(&self) -> String {
        match &self.actor {
            Actor::User { name, .. } => name.clone(),
            Actor::Key { id, name, .. } => format!("key:{id} {name}"),
            Actor::BreakGlass => "break-glass".into(),
        }
    }

    /// `user`, `key` or `break_glass`.
    pub fn kind(&self) -> &'static str {
        match self.actor {
            Actor::User { .. } => "user",
            Actor::Key { .. } => "key",
            Actor::BreakGlass => "break_glass",
        }
    }

    /// Whether the caller may do `p`.
    pub fn allows(&self, p: Permission) -> bool {
        match &self.actor {
            Actor::User { role, .. } => role.allows(p),
            Actor::Key { scopes, .. } => scopes.contains(&p),
            Actor::BreakGlass => true,
        }
    }

    /// The user's role, for a user.
    pub fn role(&self) -> Option<Role> {
        match self.actor {
            Actor::User { role, .. } => Some(role),
            Actor::BreakGlass => Some(Role::Owner),
            Actor::Key { .. } => None,
        }
    }
}

fn unauthorized() -> HttpResponse {
    problem(
        StatusCode::UNAUTHORIZED,
        "server.admin_unauthorized",
        "log in at POST /admin/login, or send Authorization: Bearer <API key>",
    )
}

/// The session token of the request's cookie, if any.
pub fn session_token(req: &HttpRequest) -> Option<String> {
    req.cookie(SESSION_COOKIE).map(|c| c.value().to_string()).filter(|v| !v.is_empty())
}

/// Works out who is calling (see the module doc). Errors: 429 when the address sends too many
/// admin requests or the key exceeds its rate, 401 when nobody is recognised, 503 when the
/// store cannot answer.
pub async fn authenticate(app: &App, req: &HttpRequest) -> Result<Principal, HttpResponse> {
    let ip = super::client_ip(req, app.settings.trusted_proxy_header.as_deref());
    if let Some(ip) = ip {
        if app.limits.admin.check_key(&ip).is_err() {
            return Err(problem(
                StatusCode::TOO_MANY_REQUESTS,
                "server.rate_limited",
                "too many admin requests; slow down",
            ));
        }
    }
    identify(app, req).await
}

/// [`authenticate`] without the per-address limit, for pages that poll (the inspector); an API
/// key still has its own limit.
pub async fn identify(app: &App, req: &HttpRequest) -> Result<Principal, HttpResponse> {
    let ip = super::client_ip(req, app.settings.trusted_proxy_header.as_deref());
    let address = ip.map(|i| i.to_string());
    let unavailable = |e: crate::store::StoreError| problem(StatusCode::SERVICE_UNAVAILABLE, e.code(), &e.to_string());
    if let Some(token) = session_token(req) {
        let idle = i64::try_from(app.settings.session_idle.as_millis()).unwrap_or(i64::MAX);
        if let Some(user) = app.store.session_user(&secret_digest(&token), idle, now_ms()).await.map_err(unavailable)? {
            let Some(role) = Role::parse(&user.role) else { return Err(unauthorized()) };
            let tenant = served(app, &user.tenant)?;
            return Ok(Principal { actor: Actor::User { id: user.id, name: user.name, role }, address, tenant });
        }
    }
    let bearer = req
        .headers()
        .get("Authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or_default();
    if bearer.starts_with(KEY_PREFIX) {
        let Some(key) = app.store.use_api_key(&secret_digest(bearer), now_ms()).await.map_err(unavailable)? else {
            return Err(unauthorized());
        };
        if !app.limits.key_allows(key.id, key.per_minute) {
            return Err(problem(
                StatusCode::TOO_MANY_REQUESTS,
                "server.key_rate_limited",
                &format!("API key {} may make {} requests a minute; slow down", key.id, key.per_minute),
            ));
        }
        let scopes = key.scopes.split_whitespace().filter_map(Permission::parse).collect();
        let tenant = served(app, &key.tenant)?;
        return Ok(Principal { actor: Actor::Key { id: key.id, name: key.name, scopes }, address, tenant });
    }
    // A break-glass token is one tenant's (`ADMIN_TOKEN` for a single business).
    let holder = app.tenants.all().iter().find(|t| {
        t.admin_token.as_deref().is_some_and(|token| !bearer.is_empty() && super::admin::same_secret(bearer, token))
    });
    match holder {
        Some(tenant) => Ok(Principal { actor: Actor::BreakGlass, address, tenant: tenant.clone() }),
        None => Err(unauthorized()),
    }
}

/// The tenant a user or key row names, if this process serves it (a tenant removed from
/// `TENANTS_DIR` leaves its users unable to log in: 401).
fn served(app: &App, tenant: &str) -> Result<std::sync::Arc<crate::pipeline::Tenant>, HttpResponse> {
    crate::tenant::TenantId::parse(tenant).ok().and_then(|id| app.tenants.get(&id)).ok_or_else(unauthorized)
}

/// 403 unless `p` allows `permission`.
pub fn require(p: &Principal, permission: Permission) -> Result<(), HttpResponse> {
    if p.allows(permission) {
        return Ok(());
    }
    Err(problem(
        StatusCode::FORBIDDEN,
        "server.forbidden",
        &format!("{} may not do this: it needs the {:?} permission", p.name(), permission.as_str()),
    ))
}

/// Adds an entry to the audit trail; a failure to record is logged, never hidden from the
/// caller's result (the change itself is done or refused on its own).
pub async fn record(app: &App, p: &Principal, action: &str, target: &str, outcome: &str, detail: Value) {
    let entry = NewAudit {
        tenant: p.tenant.id.to_string(),
        at: now_ms(),
        actor: p.name(),
        actor_kind: p.kind().into(),
        action: action.into(),
        target: target.into(),
        outcome: outcome.into(),
        address: p.address.clone(),
        detail: detail.to_string(),
    };
    if let Err(e) = app.store.audit(entry).await {
        tracing::error!(code = e.code(), error = %e, action, target, "the audit trail could not record an admin action");
    }
}

/// Authenticates and checks `permission` in one go; for the handlers' first line.
pub async fn caller(app: &App, req: &HttpRequest, permission: Permission) -> Result<Principal, HttpResponse> {
    let p = authenticate(app, req).await?;
    if let Err(resp) = require(&p, permission) {
        record(app, &p, "access.denied", req.path(), "denied", json!({"needs": permission.as_str()})).await;
        return Err(resp);
    }
    Ok(p)
}

/// Hashes a password with argon2id (the crate's defaults, OWASP's recommended parameters), salted
/// with 128 random bits, as a PHC string. Slow on purpose: call it off the async threads.
pub fn hash_password(password: &str) -> Result<String, String> {
    use argon2::PasswordHasher;
    let salt = uuid::Uuid::new_v4();
    argon2::Argon2::default()
        .hash_password_with_salt(password.as_bytes(), salt.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `password` matches the PHC string `hash`; false for a malformed hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    use argon2::PasswordVerifier;
    argon2::Argon2::default().verify_password(password.as_bytes(), hash).is_ok()
}

/// A new random secret (256 bits from the system's generator, through two v4 UUIDs), hex.
pub fn new_secret() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

/// The smallest acceptable password length.
pub const MIN_PASSWORD: usize = 12;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_carry_what_they_should() {
        assert!(Role::Owner.allows(Permission::Users) && Role::Admin.allows(Permission::Keys));
        assert!(Role::Agent.allows(Permission::Act) && !Role::Agent.allows(Permission::Operate));
        assert!(Role::Viewer.allows(Permission::Read) && !Role::Viewer.allows(Permission::Act));
        assert_eq!(Role::parse("agent"), Some(Role::Agent));
        assert_eq!(Permission::parse("privacy"), Some(Permission::Privacy));
        assert_eq!(Permission::parse("root"), None);
    }

    #[test]
    fn a_password_hash_verifies_only_its_password() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterY", &h));
        assert!(!verify_password("x", "not a hash"));
        assert_ne!(new_secret(), new_secret());
        assert_eq!(new_secret().len(), 64);
    }
}
