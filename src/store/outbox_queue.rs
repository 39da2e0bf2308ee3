//! The outbox's rows and their claims: WhatsApp sends, ERP writes and events for another
//! conversation, queued in the same transaction as the turn that made them, then done by the
//! dispatcher (`pipeline::outbox`).
//!
//! A row is done under a claim ([`Claim`]): claiming moves its next attempt ahead, names the
//! claiming process, counts an attempt and takes the row's next fencing token. Every later change
//! (sent, retry, dead, extended, given back) is conditional on that token, so a process whose
//! claim expired (a slow ERP, a pause) finds out instead of overwriting what another process now
//! holds. Rows of one conversation and one kind leave in queue order: the due rows read for the
//! backlog are those with no earlier row of their conversation and kind still waiting.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::schema::{inbox, outbox};
use super::{Lane, NewInbox, Pools, Store, StoreError, now_ms, pg_statements, sqlite_sync};

/// What an outbox row does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutboxKind {
    /// A message to send through the WhatsApp Graph API.
    WhatsApp,
    /// A write to the ERP.
    Erp,
    /// An event for another conversation's inbox (a conversation moved to a new number).
    Inbox,
    /// A hand-off record to write (`store::NewHandoff`).
    Handoff,
    /// A signed POST to the team's hand-off webhook (`HANDOFF_WEBHOOK_URL`).
    Webhook,
    /// A question flagged for review to record (`store::NewFlag`).
    KnowledgeFlag,
    /// A reply to a website visitor, read by the widget (`channel::web`).
    Web,
}

impl OutboxKind {
    /// As stored in the `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxKind::WhatsApp => "whatsapp",
            OutboxKind::Erp => "erp",
            OutboxKind::Inbox => "inbox",
            OutboxKind::Handoff => "handoff",
            OutboxKind::Webhook => "webhook",
            OutboxKind::KnowledgeFlag => "knowledge_flag",
            OutboxKind::Web => "web",
        }
    }

    /// From the `kind` column; `None` for a kind this build does not know.
    pub fn parse(s: &str) -> Option<OutboxKind> {
        [
            OutboxKind::WhatsApp,
            OutboxKind::Erp,
            OutboxKind::Inbox,
            OutboxKind::Handoff,
            OutboxKind::Webhook,
            OutboxKind::KnowledgeFlag,
            OutboxKind::Web,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// Where an outbox row is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutboxStatus {
    /// Waiting to be done (or retried).
    Pending,
    /// Done: sent, written or delivered.
    Sent,
    /// Given up on after its attempts (the dead letter), or refused for good.
    Dead,
}

impl OutboxStatus {
    /// As stored in the `status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::Sent => "sent",
            OutboxStatus::Dead => "dead",
        }
    }

    /// From the `status` column.
    pub fn parse(s: &str) -> Option<OutboxStatus> {
        [OutboxStatus::Pending, OutboxStatus::Sent, OutboxStatus::Dead].into_iter().find(|k| k.as_str() == s)
    }
}

/// A new outbox row.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = outbox)]
pub struct NewOutbox {
    /// Conversation.
    pub conversation_id: String,
    /// [`OutboxKind::as_str`].
    pub kind: String,
    /// Unique: a commit whose key is already queued fails whole (an effect is never queued twice
    /// nor dropped).
    pub idempotency_key: String,
    /// JSON to send.
    pub payload: String,
    /// [`OutboxStatus::Pending`].
    pub status: String,
    /// Unix ms.
    pub next_attempt_at: i64,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
    /// The process that claims it as it is queued (see [`NewOutbox::claimed_by`]).
    pub claim_owner: Option<String>,
    /// 1 when claimed as it is queued, else 0.
    pub claim_token: i64,
    /// 1 when claimed as it is queued (the first attempt), else 0.
    pub attempts: i32,
}

impl NewOutbox {
    /// A pending row of `kind` for `conversation_id`, due now (`now`: Unix ms).
    pub fn pending(
        conversation_id: &str,
        kind: OutboxKind,
        idempotency_key: String,
        payload: String,
        now: i64,
    ) -> Self {
        NewOutbox {
            conversation_id: conversation_id.to_string(),
            kind: kind.as_str().to_string(),
            idempotency_key,
            payload,
            status: OutboxStatus::Pending.as_str().to_string(),
            next_attempt_at: now,
            created_at: now,
            updated_at: now,
            claim_owner: None,
            claim_token: 0,
            attempts: 0,
        }
    }

    /// The row claimed by `owner` until `until_ms` as it is queued: the process that made it
    /// does it at once (no read, no claim statement), and another process only after the claim
    /// runs out (a crash). Its claim is `Claim { id, token: 1, attempt: 1 }`.
    pub fn claimed_by(mut self, owner: &str, until_ms: i64) -> Self {
        self.claim_owner = Some(owner.to_string());
        self.claim_token = 1;
        self.attempts = 1;
        self.next_attempt_at = until_ms;
        self
    }

    /// The stored row it becomes under `id`, and its claim when it was claimed as queued.
    pub fn stored(&self, id: i64) -> (OutboxRow, Option<Claim>) {
        let row = OutboxRow {
            id,
            conversation_id: self.conversation_id.clone(),
            kind: self.kind.clone(),
            idempotency_key: self.idempotency_key.clone(),
            payload: self.payload.clone(),
            status: self.status.clone(),
            attempts: self.attempts,
            next_attempt_at: self.next_attempt_at,
            last_error: None,
            result: None,
            created_at: self.created_at,
            updated_at: self.updated_at,
            claim_owner: self.claim_owner.clone(),
            claim_token: self.claim_token,
        };
        let claim = self.claim_owner.is_some().then_some(Claim { id, token: self.claim_token, attempt: self.attempts });
        (row, claim)
    }
}

/// A stored outbox row.
#[derive(Debug, Clone, Queryable, Selectable, QueryableByName, serde::Serialize)]
#[diesel(table_name = outbox)]
pub struct OutboxRow {
    /// Id (queue order).
    pub id: i64,
    /// Conversation.
    pub conversation_id: String,
    /// [`OutboxKind::as_str`].
    pub kind: String,
    /// Idempotency key.
    pub idempotency_key: String,
    /// Payload JSON.
    pub payload: String,
    /// [`OutboxStatus::as_str`].
    pub status: String,
    /// Attempts started (claims taken; a claim given back unused does not count).
    pub attempts: i32,
    /// Unix ms.
    pub next_attempt_at: i64,
    /// Last failure.
    pub last_error: Option<String>,
    /// Result (wamid or ERP reference).
    pub result: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
    /// The process that claimed it last (its instance id).
    pub claim_owner: Option<String>,
    /// The fencing token of its last claim (see [`Claim`]).
    pub claim_token: i64,
}

impl OutboxRow {
    /// Its kind; `None` for a kind this build does not know.
    pub fn kind(&self) -> Option<OutboxKind> {
        OutboxKind::parse(&self.kind)
    }

    /// Its status.
    pub fn status(&self) -> Option<OutboxStatus> {
        OutboxStatus::parse(&self.status)
    }
}

/// A claim on an outbox row: the row and the fencing token its claim took. Holding a `Claim`
/// does not mean the row is still ours: every change made with it checks the token first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Claim {
    /// The row.
    pub id: i64,
    /// The token taken by the claim (the row's `claim_token`).
    pub token: i64,
    /// Which attempt this is (1 for the first).
    pub attempt: i32,
}

/// The outbox row of `claim`, only while the claim holds: same fencing token, still pending. Every
/// write a claim holder makes goes through it, so a holder whose claim ran out (and was taken
/// again) changes nothing.
pub(super) type UnderClaim = diesel::dsl::Filter<
    diesel::dsl::Filter<
        diesel::dsl::Filter<outbox::table, diesel::dsl::Eq<outbox::id, i64>>,
        diesel::dsl::Eq<outbox::claim_token, i64>,
    >,
    diesel::dsl::Eq<outbox::status, &'static str>,
>;

/// See [`UnderClaim`].
pub(super) fn under_claim(claim: Claim) -> UnderClaim {
    outbox::table
        .filter(outbox::id.eq(claim.id))
        .filter(outbox::claim_token.eq(claim.token))
        .filter(outbox::status.eq(OutboxStatus::Pending.as_str()))
}

/// At most this many rows of one conversation in one read of the due rows (see
/// [`Store::due_outbox`]), so a conversation with a long queue cannot fill a pass.
pub const DUE_PER_CONVERSATION: i64 = 16;

impl Store {
    /// Claims due outbox rows for `owner` in one statement, by moving their next attempt
    /// `lease_ms` ahead, counting an attempt and taking each row's next fencing token; returns
    /// the claims taken (another process may have taken some). `lane`: the lane of the pass
    /// (interactive replies, or the backlog's).
    pub async fn claim_outbox_rows(
        &self,
        ids: &[i64],
        now: i64,
        lease_ms: i64,
        owner: &str,
        lane: Lane,
    ) -> Result<Vec<Claim>, StoreError> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        if let Pools::Postgres(pool) = &self.pools {
            let mut conn = self.pg_conn(pool, lane).await?;
            let statement = pg_statements::ClaimOutbox { ids, now_ms: now, until_ms: now + lease_ms, owner };
            let claimed: Vec<pg_statements::ClaimedRow> = statement.load(&mut *conn).await?;
            return Ok(claimed
                .into_iter()
                .map(|c| Claim { id: c.id, token: c.claim_token, attempt: c.attempts })
                .collect());
        }
        let (ids, owner) = (ids.to_vec(), owner.to_string());
        Ok(self
            .sqlite_group(lane, move |c| sqlite_sync::claim_outbox_rows(c, &ids, now, now + lease_ms, &owner))
            .await??)
    }

    /// Gives claimed rows back, unattempted (they are due again at once and the attempt is not
    /// counted). Rows whose claim is no longer held are left alone.
    pub async fn unclaim_outbox_rows(&self, claims: &[Claim], now: i64) -> Result<(), StoreError> {
        for claim in claims {
            with_conn!(self, |conn| {
                diesel::update(under_claim(*claim))
                    .set((outbox::next_attempt_at.eq(now), outbox::attempts.eq(outbox::attempts - 1)))
                    .execute(conn)
                    .await?
            });
        }
        Ok(())
    }

    /// Extends claims until `until_ms`, in one statement; returns the ids whose claim is no
    /// longer held (another process took the row after this claim expired, or it is no longer
    /// pending).
    pub async fn extend_outbox_claims(&self, claims: &[Claim], until_ms: i64) -> Result<Vec<i64>, StoreError> {
        if claims.is_empty() {
            return Ok(vec![]);
        }
        let extended: std::collections::HashSet<i64> = match &self.pools {
            Pools::Postgres(pool) => {
                let mut conn = self.pg_conn(pool, Lane::Interactive).await?;
                let rows: Vec<pg_statements::ClaimedId> =
                    pg_statements::ExtendClaims::new(claims, until_ms).load(&mut *conn).await?;
                rows.into_iter().map(|r| r.id).collect()
            }
            Pools::Sqlite(_) => {
                let claims = claims.to_vec();
                self.sqlite_group(Lane::Interactive, move |c| sqlite_sync::extend_claims(c, &claims, until_ms))
                    .await??
                    .into_iter()
                    .collect()
            }
        };
        Ok(claims.iter().map(|c| c.id).filter(|id| !extended.contains(id)).collect())
    }

    /// `tenant`'s dead-lettered outbox rows, oldest first.
    pub async fn dead_outbox(
        &self,
        tenant: &crate::tenant::TenantId,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        Ok(with_tenant!(self, tenant, |conn| {
            outbox::table
                .filter(outbox::tenant.eq(tenant.as_str()))
                .filter(outbox::status.eq(OutboxStatus::Dead.as_str()))
                .order(outbox::id)
                .limit(limit)
                .select(OutboxRow::as_select())
                .load(conn)
                .await?
        }))
    }

    /// Puts `tenant`'s dead rows back in the queue with a fresh attempt count: one row, or all with
    /// `None`.
    /// Returns how many.
    pub async fn redrive(&self, tenant: &crate::tenant::TenantId, id: Option<i64>) -> Result<usize, StoreError> {
        with_tenant!(self, tenant, |conn| {
            let now = now_ms();
            let set = (
                outbox::status.eq(OutboxStatus::Pending.as_str()),
                outbox::attempts.eq(0),
                outbox::next_attempt_at.eq(now),
                outbox::updated_at.eq(now),
            );
            let dead = outbox::table
                .filter(outbox::tenant.eq(tenant.as_str()))
                .filter(outbox::status.eq(OutboxStatus::Dead.as_str()));
            let n = match id {
                Some(id) => diesel::update(dead.filter(outbox::id.eq(id))).set(set).execute(conn).await?,
                None => diesel::update(dead).set(set).execute(conn).await?,
            };
            Ok(n)
        })
    }

    /// An outbox row by id.
    pub async fn outbox_row(&self, id: i64) -> Result<Option<OutboxRow>, StoreError> {
        Ok(with_conn!(self, |conn| outbox::table
            .find(id)
            .select(OutboxRow::as_select())
            .first(conn)
            .await
            .optional()?))
    }

    /// The backlog's due rows at `now`, in queue order (at most `limit`): pending rows whose
    /// next attempt has come and that no earlier row of their conversation and kind waits in
    /// front of (a retry's wait, or another claim), at most [`DUE_PER_CONVERSATION`] of one
    /// conversation. Rows waiting for a retry are not read at all, so a backlog of them (an ERP
    /// outage) does not hide the rows behind it.
    pub async fn due_outbox(&self, now: i64, limit: i64) -> Result<Vec<OutboxRow>, StoreError> {
        // Numbered placeholders: PostgreSQL's syntax, which SQLite reads too.
        let body = "SELECT id, conversation_id, kind, idempotency_key, payload, status, attempts, next_attempt_at, \
             last_error, result, created_at, updated_at, claim_owner, claim_token FROM (SELECT o.*, row_number() \
             OVER (PARTITION BY o.conversation_id ORDER BY o.id) AS nth FROM outbox o WHERE o.status = 'pending' \
             AND o.next_attempt_at <= $1 AND NOT EXISTS (SELECT 1 FROM outbox e WHERE \
             e.conversation_id = o.conversation_id AND e.kind = o.kind AND e.status = 'pending' AND e.id < o.id \
             AND e.next_attempt_at > $1)) d WHERE nth <= $2 ORDER BY id LIMIT $3";
        Ok(with_conn!(self, |conn| {
            diesel::sql_query(body)
                .bind::<diesel::sql_types::BigInt, _>(now)
                .bind::<diesel::sql_types::BigInt, _>(DUE_PER_CONVERSATION)
                .bind::<diesel::sql_types::BigInt, _>(limit)
                .load::<OutboxRow>(conn)
                .await?
        }))
    }

    /// Pending outbox rows of some conversations, in queue order, due or not (at most `limit`).
    pub async fn pending_outbox_of(
        &self,
        conversation_ids: &[String],
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        if conversation_ids.is_empty() {
            return Ok(vec![]);
        }
        match &self.pools {
            Pools::Sqlite(main) => {
                // The reserved reader, and all the conversations' queries in one blocking trip.
                let pool = self.sqlite_interactive_reads.as_ref().unwrap_or(main);
                let mut conn = pool.get().await.map_err(|e| StoreError::Pool(e.to_string()))?;
                let ids = conversation_ids.to_vec();
                Ok(conn.spawn_blocking(move |c| sqlite_sync::pending_outbox_of(c, &ids, limit)).await?)
            }
            Pools::Postgres(pool) => {
                // A reserved connection while the pool has a queue.
                let mut conn = self.pg_conn(pool, Lane::Interactive).await?;
                Ok(outbox::table
                    .filter(outbox::status.eq(OutboxStatus::Pending.as_str()))
                    .filter(outbox::conversation_id.eq_any(conversation_ids))
                    .order(outbox::id)
                    .limit(limit)
                    .select(OutboxRow::as_select())
                    .load(&mut *conn)
                    .await?)
            }
        }
    }

    /// Marks sent outbox rows done with their results (wamids), in one statement (SQLite: one
    /// trip to the blocking pool), each only while its claim holds. Returns the ids whose claim
    /// no longer held (another process now holds the row and may send it again). `lane`: the
    /// lane of the pass that sent them.
    pub async fn outbox_sent_many(&self, sent: &[(Claim, String)], lane: Lane) -> Result<Vec<i64>, StoreError> {
        if sent.is_empty() {
            return Ok(vec![]);
        }
        let marked: Vec<i64> = match &self.pools {
            Pools::Sqlite(_) => {
                let rows = sent.to_vec();
                self.sqlite_group(lane, move |c| sqlite_sync::outbox_sent_many(c, &rows)).await??
            }
            Pools::Postgres(pool) => {
                let mut conn = self.pg_conn(pool, lane).await?;
                let rows: Vec<pg_statements::ClaimedId> =
                    pg_statements::MarkSent::new(sent, now_ms()).load(&mut *conn).await?;
                rows.into_iter().map(|r| r.id).collect()
            }
        };
        Ok(sent.iter().map(|(c, _)| c.id).filter(|id| !marked.contains(id)).collect())
    }

    /// Closes a row under `claim` with `status` and `result`, and queues the inbox event that
    /// tells its conversation, in one transaction (so an ERP answer is never lost between the
    /// two, nor told twice). Returns false, writing nothing, when the claim no longer holds.
    pub async fn outbox_done_with_event(
        &self,
        claim: Claim,
        result: &str,
        status: OutboxStatus,
        event: NewInbox,
    ) -> Result<bool, StoreError> {
        let r = result.to_string();
        with_conn!(self, |conn| {
            conn.transaction::<_, StoreError, _>(async move |c| {
                let n = diesel::update(under_claim(claim))
                    .set((
                        outbox::status.eq(status.as_str()),
                        outbox::result.eq(Some(&r)),
                        outbox::updated_at.eq(now_ms()),
                    ))
                    .execute(c)
                    .await?;
                if n == 0 {
                    return Ok(false);
                }
                diesel::insert_into(inbox::table)
                    .values(&event)
                    .on_conflict(inbox::dedup_key)
                    .do_nothing()
                    .execute(c)
                    .await?;
                Ok(true)
            })
            .await
        })
    }

    /// Schedules another attempt at a row under `claim`. Returns false when the claim no longer
    /// holds (nothing written).
    pub async fn outbox_retry(&self, claim: Claim, next_attempt_at: i64, error: &str) -> Result<bool, StoreError> {
        let e = error.to_string();
        let n = with_conn!(self, |conn| {
            diesel::update(under_claim(claim))
                .set((
                    outbox::next_attempt_at.eq(next_attempt_at),
                    outbox::last_error.eq(Some(&e)),
                    outbox::updated_at.eq(now_ms()),
                ))
                .execute(conn)
                .await?
        });
        Ok(n == 1)
    }

    /// Gives up on a row under `claim`: it stays visible with status `dead`. Returns false when
    /// the claim no longer holds (nothing written: a row another process sent stays sent).
    pub async fn outbox_dead(&self, claim: Claim, error: &str) -> Result<bool, StoreError> {
        let e = error.to_string();
        let n = with_conn!(self, |conn| {
            diesel::update(under_claim(claim))
                .set((
                    outbox::status.eq(OutboxStatus::Dead.as_str()),
                    outbox::last_error.eq(Some(&e)),
                    outbox::updated_at.eq(now_ms()),
                ))
                .execute(conn)
                .await?
        });
        Ok(n == 1)
    }

    /// `tenant`'s outbox rows of a conversation, in order, optionally only `kind` and after
    /// `after_id`.
    pub async fn outbox_of(
        &self,
        tenant: &crate::tenant::TenantId,
        conversation_id: &str,
        kind: Option<&str>,
        after_id: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let cid = conversation_id.to_string();
        let k = kind.map(String::from);
        Ok(with_conn!(self, |conn| {
            let mut q = outbox::table
                .filter(outbox::tenant.eq(tenant.as_str()))
                .filter(outbox::conversation_id.eq(&cid))
                .filter(outbox::id.gt(after_id))
                .order(outbox::id)
                .select(OutboxRow::as_select())
                .into_boxed();
            if let Some(k) = &k {
                q = q.filter(outbox::kind.eq(k.clone()));
            }
            q.load(conn).await?
        }))
    }

    /// The outbox backlog: pending rows and the creation time (Unix ms) of the oldest.
    pub async fn outbox_backlog(&self) -> Result<(i64, Option<i64>), StoreError> {
        with_conn!(self, |conn| {
            let n: i64 = outbox::table
                .filter(outbox::status.eq(OutboxStatus::Pending.as_str()))
                .count()
                .get_result(conn)
                .await?;
            let oldest: Option<i64> = outbox::table
                .filter(outbox::status.eq(OutboxStatus::Pending.as_str()))
                .select(diesel::dsl::min(outbox::created_at))
                .first(conn)
                .await?;
            Ok((n, oldest))
        })
    }
}
