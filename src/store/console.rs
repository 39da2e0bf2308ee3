//! The operators' console's tables: users, their sessions, API keys and the audit trail. Secrets
//! are never stored: a password as its argon2id hash (made by the caller), a session token and an
//! API key as the SHA-256 of their text ([`secret_digest`]).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use sha2::Digest;

use super::schema::{api_keys, audit_log, sessions, users};
use super::{Store, StoreError};
use crate::tenant::TenantId;

/// The SHA-256 of a session token or API key, in hex: what the tables keep of it. The secrets
/// are 256 random bits, so a fast digest is enough (no password stretching needed).
pub fn secret_digest(secret: &str) -> String {
    hex::encode(sha2::Sha256::digest(secret.as_bytes()))
}

/// A person who logs in to the console.
#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = users)]
pub struct UserRow {
    /// Id.
    pub id: i64,
    /// Login name (unique).
    pub name: String,
    /// `owner`, `admin`, `agent` or `viewer`.
    pub role: String,
    /// The argon2id hash in PHC string form.
    #[serde(skip)]
    pub password_hash: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms, when the account was disabled (it can no longer log in).
    pub disabled_at: Option<i64>,
    /// The business the user works for.
    pub tenant: String,
}

/// An API key as stored (never the key itself).
#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = api_keys)]
pub struct ApiKeyRow {
    /// Id.
    pub id: i64,
    /// What it is for ("ERP callbacks").
    pub name: String,
    /// Its scopes, space-separated.
    pub scopes: String,
    /// SHA-256 of the key.
    #[serde(skip)]
    pub key_hash: String,
    /// Requests per minute it may make.
    pub per_minute: i32,
    /// Who created it.
    pub created_by: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms of its last accepted request.
    pub last_used_at: Option<i64>,
    /// Unix ms, once revoked (it is refused from then on).
    pub revoked_at: Option<i64>,
    /// The business the key acts for.
    pub tenant: String,
}

/// An API key to store.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = api_keys)]
pub struct NewApiKey {
    /// The business the key acts for.
    pub tenant: String,
    /// What it is for.
    pub name: String,
    /// Space-separated scopes.
    pub scopes: String,
    /// SHA-256 of the key.
    pub key_hash: String,
    /// Requests per minute.
    pub per_minute: i32,
    /// Who created it.
    pub created_by: String,
    /// Unix ms.
    pub created_at: i64,
}

/// One entry of the audit trail.
#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = audit_log)]
pub struct AuditRow {
    /// Id.
    pub id: i64,
    /// Unix ms.
    pub at: i64,
    /// Who: a user's name, a key's `key:<id> <name>`, or `break-glass`.
    pub actor: String,
    /// `user`, `key`, `break_glass` or `anonymous` (a failed login).
    pub actor_kind: String,
    /// What, `<area>.<verb>`: `conversation.takeover`, `key.create`, `login.failed`…
    pub action: String,
    /// What it was done to: a conversation id, a user's name, a key id, a customer number.
    pub target: String,
    /// `ok`, `denied` or `failed`.
    pub outcome: String,
    /// The client's address, when known.
    pub address: Option<String>,
    /// Details as JSON (a reply's length, a note, the scopes of a key); never a secret.
    pub detail: String,
}

/// An entry to add to the audit trail.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = audit_log)]
pub struct NewAudit {
    /// The business the action was on.
    pub tenant: String,
    /// Unix ms.
    pub at: i64,
    /// Who.
    pub actor: String,
    /// Kind of actor.
    pub actor_kind: String,
    /// What.
    pub action: String,
    /// To what.
    pub target: String,
    /// `ok`, `denied`, `failed`.
    pub outcome: String,
    /// From where.
    pub address: Option<String>,
    /// JSON details.
    pub detail: String,
}

/// Which audit entries to list; every field given must match.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct AuditFilter {
    /// Exact actor.
    pub actor: Option<String>,
    /// Exact action, or a prefix ending in `.` (`conversation.`).
    pub action: Option<String>,
    /// Exact target.
    pub target: Option<String>,
    /// From this Unix ms.
    pub since: Option<i64>,
    /// Before this Unix ms.
    pub until: Option<i64>,
}

impl Store {
    /// Creates a user of `tenant`. Errors: the name is taken (names are unique across tenants, so
    /// that a login names one user) (a unique violation, as a database error).
    pub async fn create_user(
        &self,
        tenant: &TenantId,
        name: &str,
        role: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<i64, StoreError> {
        Ok(with_conn!(self, |conn| {
            diesel::insert_into(users::table)
                .values((
                    users::tenant.eq(tenant.as_str()),
                    users::name.eq(name),
                    users::role.eq(role),
                    users::password_hash.eq(password_hash),
                    users::created_at.eq(now),
                ))
                .returning(users::id)
                .get_result::<i64>(conn)
                .await?
        }))
    }

    /// The user with this login name, of whichever tenant (names are unique across tenants).
    pub async fn user_named(&self, name: &str) -> Result<Option<UserRow>, StoreError> {
        Ok(with_conn!(self, |conn| {
            users::table.filter(users::name.eq(name)).select(UserRow::as_select()).first(conn).await.optional()?
        }))
    }

    /// Every user of `tenant`, by name.
    pub async fn users(&self, tenant: &TenantId) -> Result<Vec<UserRow>, StoreError> {
        Ok(with_tenant!(self, tenant, |conn| {
            users::table
                .filter(users::tenant.eq(tenant.as_str()))
                .select(UserRow::as_select())
                .order(users::name)
                .load(conn)
                .await?
        }))
    }

    /// Changes `tenant`'s user's role, password hash or disabled time (each when given); a disabled
    /// user's sessions end. Returns whether the user exists.
    pub async fn update_user(
        &self,
        tenant: &TenantId,
        name: &str,
        role: Option<&str>,
        password_hash: Option<&str>,
        disabled_at: Option<Option<i64>>,
    ) -> Result<bool, StoreError> {
        let Some(user) = self.user_named(name).await?.filter(|u| u.tenant == tenant.as_str()) else {
            return Ok(false);
        };
        with_conn!(self, |conn| {
            if let Some(r) = role {
                diesel::update(users::table.find(user.id)).set(users::role.eq(r)).execute(conn).await?;
            }
            if let Some(h) = password_hash {
                diesel::update(users::table.find(user.id)).set(users::password_hash.eq(h)).execute(conn).await?;
            }
            if let Some(d) = disabled_at {
                diesel::update(users::table.find(user.id)).set(users::disabled_at.eq(d)).execute(conn).await?;
            }
            if disabled_at.flatten().is_some() || password_hash.is_some() {
                diesel::delete(sessions::table.filter(sessions::user_id.eq(user.id))).execute(conn).await?;
            }
        });
        Ok(true)
    }

    /// Starts a session for `user_id`, kept as the digest of its token.
    pub async fn create_session(
        &self,
        tenant: &TenantId,
        token_hash: &str,
        user_id: i64,
        address: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        with_conn!(self, |conn| {
            diesel::insert_into(sessions::table)
                .values((
                    sessions::tenant.eq(tenant.as_str()),
                    sessions::token_hash.eq(token_hash),
                    sessions::user_id.eq(user_id),
                    sessions::created_at.eq(now),
                    sessions::last_seen_at.eq(now),
                    sessions::address.eq(address),
                ))
                .execute(conn)
                .await?;
        });
        Ok(())
    }

    /// The user of a live session: one seen within `idle_ms` whose user is not disabled. Marks
    /// it seen now; a session idle longer is ended. `None` when there is no such session.
    pub async fn session_user(&self, token_hash: &str, idle_ms: i64, now: i64) -> Result<Option<UserRow>, StoreError> {
        Ok(with_conn!(self, |conn| {
            let found: Option<(i64, UserRow)> = sessions::table
                .inner_join(users::table)
                .filter(sessions::token_hash.eq(token_hash))
                .select((sessions::last_seen_at, UserRow::as_select()))
                .first(conn)
                .await
                .optional()?;
            match found {
                Some((seen, user)) if now - seen <= idle_ms && user.disabled_at.is_none() => {
                    diesel::update(sessions::table.find(token_hash))
                        .set(sessions::last_seen_at.eq(now))
                        .execute(conn)
                        .await?;
                    Some(user)
                }
                Some(_) => {
                    diesel::delete(sessions::table.find(token_hash)).execute(conn).await?;
                    None
                }
                None => None,
            }
        }))
    }

    /// Ends a session (logout). Returns whether there was one.
    pub async fn end_session(&self, token_hash: &str) -> Result<bool, StoreError> {
        Ok(with_conn!(self, |conn| diesel::delete(sessions::table.find(token_hash)).execute(conn).await? > 0))
    }

    /// Stores an API key; returns its id.
    pub async fn create_api_key(&self, key: NewApiKey) -> Result<i64, StoreError> {
        Ok(with_conn!(self, |conn| {
            diesel::insert_into(api_keys::table).values(&key).returning(api_keys::id).get_result::<i64>(conn).await?
        }))
    }

    /// The unrevoked key with this digest, marked used now.
    pub async fn use_api_key(&self, key_hash: &str, now: i64) -> Result<Option<ApiKeyRow>, StoreError> {
        Ok(with_conn!(self, |conn| {
            let key: Option<ApiKeyRow> = api_keys::table
                .filter(api_keys::key_hash.eq(key_hash))
                .filter(api_keys::revoked_at.is_null())
                .select(ApiKeyRow::as_select())
                .first(conn)
                .await
                .optional()?;
            if let Some(k) = &key {
                diesel::update(api_keys::table.find(k.id)).set(api_keys::last_used_at.eq(now)).execute(conn).await?;
            }
            key
        }))
    }

    /// Every key of `tenant`, newest first (revoked ones included, with their time).
    pub async fn api_keys(&self, tenant: &TenantId) -> Result<Vec<ApiKeyRow>, StoreError> {
        Ok(with_tenant!(self, tenant, |conn| {
            api_keys::table
                .filter(api_keys::tenant.eq(tenant.as_str()))
                .select(ApiKeyRow::as_select())
                .order(api_keys::id.desc())
                .load(conn)
                .await?
        }))
    }

    /// Revokes a key of `tenant`. Returns whether an unrevoked key of `tenant` with that id
    /// existed.
    pub async fn revoke_api_key(&self, tenant: &TenantId, id: i64, now: i64) -> Result<bool, StoreError> {
        Ok(with_conn!(self, |conn| {
            diesel::update(
                api_keys::table
                    .find(id)
                    .filter(api_keys::revoked_at.is_null())
                    .filter(api_keys::tenant.eq(tenant.as_str())),
            )
            .set(api_keys::revoked_at.eq(now))
            .execute(conn)
            .await?
                > 0
        }))
    }

    /// Adds an entry to the audit trail.
    pub async fn audit(&self, entry: NewAudit) -> Result<(), StoreError> {
        with_conn!(self, |conn| {
            diesel::insert_into(audit_log::table).values(&entry).execute(conn).await?;
        });
        Ok(())
    }

    /// `tenant`'s audit entries matching `filter`, newest first, at most `limit`.
    pub async fn audit_entries(
        &self,
        tenant: &TenantId,
        filter: &AuditFilter,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError> {
        Ok(with_tenant!(self, tenant, |conn| {
            let mut q = audit_log::table
                .filter(audit_log::tenant.eq(tenant.as_str().to_string()))
                .select(AuditRow::as_select())
                .order(audit_log::id.desc())
                .limit(limit)
                .into_boxed();
            if let Some(a) = &filter.actor {
                q = q.filter(audit_log::actor.eq(a.clone()));
            }
            match filter.action.as_deref() {
                Some(prefix) if prefix.ends_with('.') => q = q.filter(audit_log::action.like(format!("{prefix}%"))),
                Some(a) => q = q.filter(audit_log::action.eq(a.to_string())),
                None => {}
            }
            if let Some(t) = &filter.target {
                q = q.filter(audit_log::target.eq(t.clone()));
            }
            if let Some(s) = filter.since {
                q = q.filter(audit_log::at.ge(s));
            }
            if let Some(u) = filter.until {
                q = q.filter(audit_log::at.lt(u));
            }
            q.load(conn).await?
        }))
    }

    /// Failed logins since `since` (Unix ms) from `address` or for `name`: what the login rate
    /// limit counts, across every process.
    pub async fn login_failures(&self, address: Option<&str>, name: &str, since: i64) -> Result<i64, StoreError> {
        Ok(with_conn!(self, |conn| {
            let base = audit_log::table.filter(audit_log::action.eq("login.failed")).filter(audit_log::at.ge(since));
            let by_name: i64 = base.filter(audit_log::target.eq(name)).count().get_result(conn).await?;
            let by_address: i64 = match address {
                Some(a) => {
                    audit_log::table
                        .filter(audit_log::action.eq("login.failed"))
                        .filter(audit_log::at.ge(since))
                        .filter(audit_log::address.eq(a))
                        .count()
                        .get_result(conn)
                        .await?
                }
                None => 0,
            };
            by_name.max(by_address)
        }))
    }
}

impl Store {
    /// `tenant`'s dashboard counts of the days `from` to `to` (`YYYY-MM-DD`, both included),
    /// each summed over its shards: (day, flow, metric, n), by day.
    pub async fn daily_counts(
        &self,
        tenant: &TenantId,
        from: &str,
        to: &str,
    ) -> Result<Vec<(String, String, String, i64)>, StoreError> {
        use super::schema::daily_counts as d;
        let rows: Vec<(String, String, String, i64)> = with_tenant!(self, tenant, |conn| {
            d::table
                .filter(d::tenant.eq(tenant.as_str()))
                .filter(d::day.ge(from))
                .filter(d::day.le(to))
                .select((d::day, d::flow, d::metric, d::n))
                .load(conn)
                .await?
        });
        let mut summed: std::collections::BTreeMap<(String, String, String), i64> = Default::default();
        for (day, flow, metric, n) in rows {
            *summed.entry((day, flow, metric)).or_default() += n;
        }
        Ok(summed.into_iter().map(|((day, flow, metric), n)| (day, flow, metric, n)).collect())
    }
}
