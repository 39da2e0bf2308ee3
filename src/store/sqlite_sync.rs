//! SQLite's hot-path calls as plain synchronous functions, run by the group commit of
//! [`super::sqlite_batch`] (each inside its own savepoint of a batch's transaction).
//!
//! diesel's SQLite connection is synchronous; diesel_async wraps it by sending each statement to
//! tokio's blocking pool, and every trip costs two thread wake-ups. Here a call's statements run
//! together, and many calls share one trip and one transaction (measured in BENCHMARKS.md).

use diesel::prelude::*;
use diesel::result::Error as DieselError;

use std::marker::PhantomData;

use super::schema::{inbox, lookup_snapshots, outbox};
use super::sqlite_statements as S;
use super::{Claim, NewInbox, OutboxRow, OutboxStatus, TurnCommit, now_ms};

/// A turn's writes, inside the caller's transaction; `Err(RollbackTransaction)` when the version
/// or lease no longer holds.
fn write_turn(c: &mut SqliteConnection, commit: &TurnCommit) -> QueryResult<Vec<i64>> {
    let now = now_ms();
    let n = S::CommitState {
        state: &commit.state,
        version: commit.expected_version + 1,
        updated_at: now,
        wake_at: commit.wake_at,
        last_inbound_at: commit.last_inbound_at.or(commit.previous_inbound_at),
        id: &commit.conversation_id,
        expected_version: commit.expected_version,
        owner: &commit.owner,
        _rows: PhantomData,
    }
    .execute(c)?;
    if n != 1 {
        return Err(DieselError::RollbackTransaction);
    }
    S::MarkProcessed { processed_at: now, id: commit.inbox_id, _rows: PhantomData }.execute(c)?;
    S::InsertTurn::of(&commit.turn).execute(c)?;
    if let Some(snapshot) = &commit.lookup_snapshot {
        diesel::insert_into(lookup_snapshots::table)
            .values((
                lookup_snapshots::tenant.eq(commit.tenant.as_str()),
                lookup_snapshots::hash.eq(&snapshot.hash),
                lookup_snapshots::body.eq(&snapshot.body),
                lookup_snapshots::created_at.eq(now),
            ))
            .on_conflict((lookup_snapshots::tenant, lookup_snapshots::hash))
            .do_nothing()
            .execute(c)?;
    }
    let shard = crate::stats::shard_of(&commit.conversation_id);
    for k in &commit.counts {
        S::AddCount {
            tenant: commit.tenant.as_str(),
            day: &k.day,
            flow: &k.flow,
            metric: &k.metric,
            shard,
            n: k.n,
            _rows: PhantomData,
        }
        .execute(c)?;
    }
    // No `ON CONFLICT`: an effect whose key is already queued means two turns made the same
    // key, and the turn fails (and is retried, then set aside) rather than lose its effect.
    let mut ids = Vec::with_capacity(commit.outbox.len());
    for row in &commit.outbox {
        ids.push(S::InsertOutbox::of(commit.tenant.as_str(), row).get_result::<S::Id>(c)?.id);
    }
    Ok(ids)
}

/// Inserts inbox rows; returns the dedup keys that were new.
pub fn insert_inbox(c: &mut SqliteConnection, rows: &[NewInbox]) -> QueryResult<Vec<String>> {
    let mut fresh = Vec::new();
    for row in rows {
        if S::InsertInbox::of(row).execute(c)? == 1 {
            fresh.push(row.dedup_key.clone());
        }
    }
    Ok(fresh)
}

/// [`insert_inbox`] for one conversation's rows, then takes its lease for the worker when a row
/// was new, the conversation exists, its lease is free or ended and no earlier row of it is
/// pending; returns the new keys and, with the lease, the conversation and its first new row.
pub fn insert_inbox_and_lease(
    c: &mut SqliteConnection,
    rows: &[NewInbox],
    conversation_id: &str,
    owner: &str,
    until_ms: i64,
) -> QueryResult<super::Stored<String>> {
    let fresh = insert_inbox(c, rows)?;
    let Some(first_key) = fresh.first() else { return Ok((fresh, None)) };
    let first: super::InboxRow =
        inbox::table.filter(inbox::dedup_key.eq(first_key)).select(super::InboxRow::as_select()).first(c)?;
    let earlier: i64 = inbox::table
        .filter(inbox::conversation_id.eq(conversation_id))
        .filter(inbox::processed_at.is_null())
        .filter(inbox::id.lt(first.id))
        .count()
        .get_result(c)?;
    if earlier > 0 {
        return Ok((fresh, None));
    }
    let leased: Option<super::ConversationRow> =
        S::TakeFreeLease { owner, until_ms, id: conversation_id, now_ms: now_ms(), _rows: PhantomData }
            .get_result(c)
            .optional()?;
    Ok((fresh, leased.map(|conv| (conv, first))))
}

fn next_inbox(c: &mut SqliteConnection, conversation_id: &str) -> QueryResult<Option<super::InboxRow>> {
    inbox::table
        .filter(inbox::conversation_id.eq(conversation_id))
        .filter(inbox::processed_at.is_null())
        .order(inbox::id)
        .select(super::InboxRow::as_select())
        .first(c)
        .optional()
}

/// Takes the lease of an existing conversation if it is free, expired or already `owner`'s, and
/// returns the conversation; `None` when another live owner holds it (or it does not exist).
fn take_lease(
    c: &mut SqliteConnection,
    conversation_id: &str,
    owner: &str,
    now: i64,
    until_ms: i64,
) -> QueryResult<Option<super::ConversationRow>> {
    S::TakeLease { owner, until_ms, id: conversation_id, now_ms: now, same_owner: owner, _rows: PhantomData }
        .get_result(c)
        .optional()
}

/// Takes an existing conversation's lease, loads it, and reads its oldest pending inbox row.
pub fn lease_load_next(
    c: &mut SqliteConnection,
    conversation_id: &str,
    owner: &str,
    until_ms: i64,
) -> QueryResult<Option<(super::ConversationRow, Option<super::InboxRow>)>> {
    match take_lease(c, conversation_id, owner, now_ms(), until_ms)? {
        Some(conv) => Ok(Some((conv, next_inbox(c, conversation_id)?))),
        None => Ok(None),
    }
}

/// Commits a turn, then reads the conversation's next pending row; with none left, gives the
/// lease back, all in the caller's transaction. Returns the next row, whether the lease was
/// released and the queued outbox rows' ids; `Err(RollbackTransaction)` when the version or
/// lease no longer held.
pub fn commit_and_next(c: &mut SqliteConnection, commit: &TurnCommit) -> QueryResult<super::Committed> {
    super::holds::apply_sqlite(c, commit.tenant.as_str(), &commit.conversation_id, &commit.holds, super::now_ms())?;
    let outbox_ids = write_turn(c, commit)?;
    let next = next_inbox(c, &commit.conversation_id)?;
    if next.is_none() {
        S::ReleaseLease { id: &commit.conversation_id, owner: &commit.owner, _rows: PhantomData }.execute(c)?;
    }
    let released = next.is_none();
    Ok(super::Committed { next, released, outbox_ids })
}

/// Claims due pending outbox rows for `owner` by moving their next attempt to `until_ms`,
/// counting an attempt and taking each row's next fencing token; returns the claims.
pub fn claim_outbox_rows(
    c: &mut SqliteConnection,
    ids: &[i64],
    now: i64,
    until_ms: i64,
    owner: &str,
) -> QueryResult<Vec<Claim>> {
    let rows: Vec<(i64, i64, i32)> = diesel::update(outbox::table)
        .filter(outbox::id.eq_any(ids))
        .filter(outbox::status.eq(OutboxStatus::Pending.as_str()))
        .filter(outbox::next_attempt_at.le(now))
        .set((
            outbox::next_attempt_at.eq(until_ms),
            outbox::claim_owner.eq(Some(owner)),
            outbox::claim_token.eq(outbox::claim_token + 1),
            outbox::attempts.eq(outbox::attempts + 1),
        ))
        .returning((outbox::id, outbox::claim_token, outbox::attempts))
        .get_results(c)?;
    Ok(rows.into_iter().map(|(id, token, attempt)| Claim { id, token, attempt }).collect())
}

/// Marks outbox rows sent with their results, each only while its claim holds; returns the ids
/// marked.
pub fn outbox_sent_many(c: &mut SqliteConnection, sent: &[(Claim, String)]) -> QueryResult<Vec<i64>> {
    let now = now_ms();
    let mut marked = Vec::with_capacity(sent.len());
    for (claim, result) in sent {
        let n = S::MarkSent { result, updated_at: now, id: claim.id, claim_token: claim.token, _rows: PhantomData }
            .execute(c)?;
        if n == 1 {
            marked.push(claim.id);
        }
    }
    Ok(marked)
}

/// Extends claims until `until_ms`, each only while it holds; returns the ids extended.
pub fn extend_claims(c: &mut SqliteConnection, claims: &[Claim], until_ms: i64) -> QueryResult<Vec<i64>> {
    let mut extended = Vec::with_capacity(claims.len());
    for claim in claims {
        let n = diesel::update(super::outbox_queue::under_claim(*claim))
            .set(outbox::next_attempt_at.eq(until_ms))
            .execute(c)?;
        if n == 1 {
            extended.push(claim.id);
        }
    }
    Ok(extended)
}

/// Creates the conversation if it is new, then takes its lease if it is free, expired or already
/// `owner`'s; returns whether `owner` holds it.
#[allow(clippy::too_many_arguments)]
pub fn acquire_lease(
    c: &mut SqliteConnection,
    tenant: &str,
    conversation_id: &str,
    customer: &str,
    phone_number_id: &str,
    initial_state: &str,
    owner: &str,
    now: i64,
    until_ms: i64,
) -> QueryResult<bool> {
    S::CreateConversation {
        tenant,
        id: conversation_id,
        customer,
        phone_number_id,
        state: initial_state,
        created_at: now,
        updated_at: now,
        _rows: PhantomData,
    }
    .execute(c)?;
    Ok(take_lease(c, conversation_id, owner, now, until_ms)?.is_some())
}

/// Pending outbox rows of some conversations, in queue order (at most `limit`): one query per
/// conversation, which SQLite answers from `outbox_conversation`. With `IN (…)` of two or more its
/// planner (which has no statistics) walks every pending row in id order instead, thousands of
/// rows after a burst.
pub fn pending_outbox_of(
    c: &mut SqliteConnection,
    conversation_ids: &[String],
    limit: i64,
) -> QueryResult<Vec<OutboxRow>> {
    let mut rows: Vec<OutboxRow> = Vec::new();
    for id in conversation_ids {
        rows.extend(
            outbox::table
                .filter(outbox::conversation_id.eq(id))
                .filter(outbox::status.eq(OutboxStatus::Pending.as_str()))
                .order(outbox::id)
                .limit(limit)
                .select(OutboxRow::as_select())
                .load::<OutboxRow>(c)?,
        );
    }
    rows.sort_unstable_by_key(|r| r.id);
    rows.truncate(limit.max(0) as usize);
    Ok(rows)
}
