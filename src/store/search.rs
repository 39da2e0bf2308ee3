//! Transcript search: the turns matching a text, a customer number, a flow and a time range,
//! newest first. A search reads the turns (it is not a figure the commits keep); the time range
//! and the limit bound what it reads.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::schema::turns;
use super::{Store, StoreError, TurnRow, lower};

/// What to search for; every part given must match.
#[derive(Debug, Clone, Default)]
pub struct TurnSearch {
    /// Words in the turn's record (the customer's message or the replies), any case. The
    /// caller checks the match against the words themselves: the record also holds names
    /// of fields.
    pub text: Option<String>,
    /// Digits of the customer's number (any part of it).
    pub number: Option<String>,
    /// The turn's flow.
    pub flow: Option<String>,
    /// Unix ms, from (included).
    pub since: Option<i64>,
    /// Unix ms, until (excluded).
    pub until: Option<i64>,
}

/// `s` with LIKE's wildcards (and the escape character) escaped by `\`.
fn like_escaped(s: &str) -> String {
    s.chars().fold(String::with_capacity(s.len()), |mut out, c| {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
        out
    })
}

impl Store {
    /// `tenant`'s turns matching `search`, newest first, at most `limit`.
    pub async fn search_turns(
        &self,
        tenant: &crate::tenant::TenantId,
        search: &TurnSearch,
        limit: i64,
    ) -> Result<Vec<TurnRow>, StoreError> {
        use super::schema::conversations;
        let tenant = tenant.as_str().to_string();
        Ok(with_tenant!(self, tenant, |conn| {
            // The tenant's conversations first (one indexed read), then their turns.
            let ids: Vec<String> = conversations::table
                .filter(conversations::tenant.eq(&tenant))
                .select(conversations::id)
                .load(conn)
                .await?;
            let mut q = turns::table
                .filter(turns::conversation_id.eq_any(ids))
                .select(TurnRow::as_select())
                .order((turns::created_at.desc(), turns::id.desc()))
                .limit(limit)
                .into_boxed();
            if let Some(t) = search.text.as_deref().filter(|t| !t.is_empty()) {
                q = q.filter(lower(turns::record).like(format!("%{}%", like_escaped(&t.to_lowercase()))).escape('\\'));
            }
            if let Some(n) = search.number.as_deref().filter(|n| !n.is_empty()) {
                q = q.filter(turns::conversation_id.like(format!("%:%{}%", like_escaped(n))).escape('\\'));
            }
            if let Some(f) = &search.flow {
                q = q.filter(turns::flow.eq(f.clone()));
            }
            if let Some(s) = search.since {
                q = q.filter(turns::created_at.ge(s));
            }
            if let Some(u) = search.until {
                q = q.filter(turns::created_at.lt(u));
            }
            q.load(conn).await?
        }))
    }
}
