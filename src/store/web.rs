//! Website chat sessions (table `web_sessions`): created for a site, kept alive by the visitor's
//! requests, closed after [`WEB_SESSION_IDLE_MS`] without one.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::schema::web_sessions;
use super::{Store, StoreError};

/// How long a session may stay idle before it is closed and its token refused: 30 minutes.
pub const WEB_SESSION_IDLE_MS: i64 = 30 * 60 * 1000;

/// A session as stored.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, serde::Serialize)]
#[diesel(table_name = web_sessions)]
pub struct WebSessionRow {
    /// The business whose site it is.
    pub tenant: String,
    /// The session id (a UUID), also the conversation's customer.
    pub id: String,
    /// The site's key.
    pub site: String,
    /// The page origin that created it.
    pub origin: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms of the visitor's latest request.
    pub last_seen_at: i64,
    /// Unix ms, once closed.
    pub closed_at: Option<i64>,
}

impl Store {
    /// Records a new session.
    pub async fn create_web_session(&self, session: &WebSessionRow) -> Result<(), StoreError> {
        with_conn!(self, |conn| {
            diesel::insert_into(web_sessions::table).values(session).execute(conn).await?;
            Ok(())
        })
    }

    /// The session `id` as of `now` (Unix ms): closed when it has been idle for
    /// [`WEB_SESSION_IDLE_MS`]; otherwise kept alive from `now` when the request is the
    /// visitor's `activity` (a message), left as it was when it is the browser's (reading
    /// replies). `None` when there is no such session.
    pub async fn web_session(&self, id: &str, now: i64, activity: bool) -> Result<Option<WebSessionRow>, StoreError> {
        let id = id.to_string();
        Ok(with_conn!(self, |conn| {
            diesel::update(web_sessions::table.find(&id))
                .filter(web_sessions::closed_at.is_null())
                .filter(web_sessions::last_seen_at.lt(now - WEB_SESSION_IDLE_MS))
                .set(web_sessions::closed_at.eq(Some(now)))
                .execute(conn)
                .await?;
            if activity {
                diesel::update(web_sessions::table.find(&id))
                    .filter(web_sessions::closed_at.is_null())
                    .set(web_sessions::last_seen_at.eq(now))
                    .execute(conn)
                    .await?;
            }
            web_sessions::table.find(&id).select(WebSessionRow::as_select()).first(conn).await.optional()?
        }))
    }

    /// Closes the session `id` at `now` (the visitor ended it); returns whether it was open.
    pub async fn close_web_session(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let id = id.to_string();
        Ok(with_conn!(self, |conn| {
            diesel::update(web_sessions::table.find(&id))
                .filter(web_sessions::closed_at.is_null())
                .set(web_sessions::closed_at.eq(Some(now)))
                .execute(conn)
                .await?
                > 0
        }))
    }
}

/// How long a "Continue on WhatsApp" code may be used: a day.
pub const WEB_JOIN_TTL_MS: i64 = 24 * 60 * 60 * 1000;

impl Store {
    /// Records `code` for the session `session` of `site` at `now` (Unix ms).
    pub async fn create_web_join(
        &self,
        tenant: &crate::tenant::TenantId,
        code: &str,
        session: &str,
        site: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        use super::schema::web_joins;
        let (code, session, site) = (code.to_string(), session.to_string(), site.to_string());
        with_conn!(self, |conn| {
            diesel::insert_into(web_joins::table)
                .values((
                    web_joins::tenant.eq(tenant.as_str()),
                    web_joins::code.eq(&code),
                    web_joins::session.eq(&session),
                    web_joins::site.eq(&site),
                    web_joins::created_at.eq(now),
                ))
                .execute(conn)
                .await?;
            Ok(())
        })
    }

    /// Takes `code` for the WhatsApp customer `customer` at `now` and, in the same
    /// transaction, queues `moved(session, site)` (the event that moves the website chat) in the
    /// chat's inbox. Returns the session and site: once per code and customer (the same customer
    /// taking it again, a repeated delivery, gets them again and queues nothing new), within
    /// [`WEB_JOIN_TTL_MS`]; `None` for an unknown, expired or someone else's code, or one of a
    /// site not in `sites` (the sites of the tenant whose number the code arrived on: a chat
    /// never moves to another business).
    pub async fn take_web_join<F>(
        &self,
        sites: Vec<String>,
        code: &str,
        customer: &str,
        now: i64,
        moved: F,
    ) -> Result<Option<(String, String)>, StoreError>
    where
        F: FnOnce(&str, &str) -> super::NewInbox + Send + 'static,
    {
        use super::schema::{inbox, web_joins};
        let (code, customer) = (code.to_string(), customer.to_string());
        with_conn!(self, |conn| {
            conn.transaction::<_, StoreError, _>(async move |c| {
                diesel::update(web_joins::table.find(&code))
                    .filter(web_joins::site.eq_any(&sites))
                    .filter(web_joins::joined_at.is_null())
                    .filter(web_joins::created_at.ge(now - WEB_JOIN_TTL_MS))
                    .set((web_joins::joined_by.eq(Some(&customer)), web_joins::joined_at.eq(Some(now))))
                    .execute(c)
                    .await?;
                let taken: Option<(String, String)> = web_joins::table
                    .find(&code)
                    .filter(web_joins::site.eq_any(&sites))
                    .filter(web_joins::joined_by.eq(Some(&customer)))
                    .select((web_joins::session, web_joins::site))
                    .first(c)
                    .await
                    .optional()?;
                if let Some((session, site)) = &taken {
                    let row = moved(session, site);
                    diesel::insert_into(inbox::table).values(&row).on_conflict_do_nothing().execute(c).await?;
                }
                Ok(taken)
            })
            .await
        })
    }
}
