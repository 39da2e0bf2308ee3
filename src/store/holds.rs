//! Places held in visit windows (table `slot_holds`): applied in a turn's commit, so the place a
//! customer is told they have is theirs exactly when the turn that told them is committed.
//!
//! Taking a place counts the window's live holds and takes the lowest free crew number, in the
//! commit's transaction: on PostgreSQL in one call of `carewell_apply_holds` (migration 000022)
//! after a transaction-scoped advisory lock on the window
//! (two processes racing for one window take turns; other windows are not held up), on SQLite
//! under its single writer. The unique `(window_start, crew)` index is a second wall. A refused
//! place undoes the whole commit ([`HoldRefused`]); the worker decides the turn again knowing
//! the window was just taken.

use diesel::result::Error as DieselError;
use diesel::{BoolExpressionMethods, ExpressionMethods, OptionalExtension, QueryDsl, QueryResult};

use super::schema::slot_holds;
use super::{Store, StoreError};
use crate::engine::capacity::HoldChange;

/// A live hold, as [`Store::live_holds`] reads it.
#[derive(Debug, Clone)]
pub struct LiveHold {
    /// The business whose crews it takes.
    pub tenant: String,
    /// The conversation holding it.
    pub conversation_id: String,
    /// The journey it was taken for.
    pub journey_id: String,
    /// The window, `YYYY-MM-DDTHH:MM:SS`.
    pub window: String,
    /// The ERP document it stands for, once written.
    pub erp_name: Option<String>,
    /// Unix ms when it lapses.
    pub expires_at: i64,
}

/// The commit was undone because the window's last place went to another conversation.
#[derive(Debug, thiserror::Error)]
#[error("store.hold_refused: the last place at {0} was taken by another conversation")]
pub struct HoldRefused(pub String);

/// The diesel error that carries a refusal out of a transaction (and rolls it back).
fn refused(window: &str) -> DieselError {
    DieselError::QueryBuilderError(Box::new(HoldRefused(window.to_string())))
}

/// The refused window, when `e` is a refusal (SQLite: raised by [`apply_sqlite`]; PostgreSQL:
/// by `carewell_apply_holds`, whose message is `store.hold_refused:<window>`).
pub(super) fn refused_window(e: &DieselError) -> Option<String> {
    match e {
        DieselError::QueryBuilderError(inner) => inner.downcast_ref::<HoldRefused>().map(|r| r.0.clone()),
        DieselError::DatabaseError(_, info) => info.message().strip_prefix("store.hold_refused:").map(str::to_string),
        _ => None,
    }
}

/// The lowest crew number not in `taken`.
fn free_crew(taken: &[i32]) -> i32 {
    (0..).find(|c| !taken.contains(c)).unwrap_or(0)
}

/// A new hold row.
#[derive(diesel::Insertable)]
#[diesel(table_name = slot_holds)]
struct NewHold<'a> {
    tenant: &'a str,
    conversation_id: &'a str,
    journey_id: &'a str,
    window_start: &'a str,
    crew: i32,
    expires_at: i64,
    erp_name: Option<&'a str>,
    created_at: i64,
}

impl<'a> NewHold<'a> {
    /// A hold in `window` on the lowest crew not in `taken`.
    #[allow(clippy::too_many_arguments)]
    fn place(
        tenant: &'a str,
        conversation_id: &'a str,
        journey_id: &'a str,
        window_start: &'a str,
        taken: &[i32],
        expires_at: i64,
        erp_name: Option<&'a str>,
        created_at: i64,
    ) -> Self {
        NewHold {
            tenant,
            conversation_id,
            journey_id,
            window_start,
            crew: free_crew(taken),
            expires_at,
            erp_name,
            created_at,
        }
    }
}

/// The same steps for SQLite's synchronous connection and PostgreSQL's asynchronous one: `$run`
/// turns a query into its result (`.execute(c)` or `.execute(c).await`). The caller has made
/// sure no other transaction takes places in the same windows meanwhile.
macro_rules! apply_changes {
    ($c:ident, $tenant:expr, $conversation:expr, $changes:expr, $now:expr, $run:ident) => {{
        let conversation: &str = $conversation;
        let tenant: &str = $tenant;
        // This business's holds of a window (each business has its own crews).
        let of_window =
            |window: &str| slot_holds::tenant.eq(tenant).and(slot_holds::window_start.eq(window.to_string()));
        for change in $changes {
            let mine = || slot_holds::conversation_id.eq(conversation);
            match change {
                HoldChange::Hold { journey, window, places, until_ms } => {
                    let existing: Option<String> = $run!(
                        slot_holds::table
                            .filter(mine())
                            .filter(slot_holds::journey_id.eq(journey))
                            .select(slot_holds::window_start)
                            .first($c)
                    )
                    .optional()?;
                    if existing.as_deref() == Some(window.as_str()) {
                        $run!(
                            diesel::update(slot_holds::table.filter(mine()).filter(slot_holds::journey_id.eq(journey)))
                                .set(slot_holds::expires_at.eq(until_ms))
                                .execute($c)
                        )?;
                        continue;
                    }
                    $run!(
                        diesel::delete(slot_holds::table.filter(mine()).filter(slot_holds::journey_id.eq(journey)))
                            .execute($c)
                    )?;
                    $run!(
                        diesel::delete(
                            slot_holds::table.filter(of_window(window)).filter(slot_holds::expires_at.le($now))
                        )
                        .execute($c)
                    )?;
                    let taken: Vec<i32> =
                        $run!(slot_holds::table.filter(of_window(window)).select(slot_holds::crew).load($c))?;
                    if taken.len() as u64 >= u64::from(*places) {
                        return Err(refused(window));
                    }
                    $run!(
                        diesel::insert_into(slot_holds::table)
                            .values(NewHold::place(
                                tenant,
                                conversation,
                                journey,
                                window,
                                &taken,
                                *until_ms,
                                None,
                                $now
                            ))
                            .execute($c)
                    )?;
                }
                HoldChange::Booked { journey, window, erp_name, until_ms } => {
                    // A booking moved: the hold of its earlier time goes.
                    $run!(
                        diesel::delete(
                            slot_holds::table
                                .filter(slot_holds::tenant.eq(tenant))
                                .filter(slot_holds::erp_name.eq(erp_name))
                                .filter(
                                    slot_holds::conversation_id.ne(conversation).or(slot_holds::journey_id.ne(journey))
                                ),
                        )
                        .execute($c)
                    )?;
                    let n = $run!(
                        diesel::update(slot_holds::table.filter(mine()).filter(slot_holds::journey_id.eq(journey)))
                            .set((slot_holds::erp_name.eq(erp_name), slot_holds::expires_at.eq(until_ms)))
                            .execute($c)
                    )?;
                    if n == 0 {
                        // The hold lapsed while the ERP wrote: the booking exists all the same.
                        let taken: Vec<i32> =
                            $run!(slot_holds::table.filter(of_window(window)).select(slot_holds::crew).load($c))?;
                        $run!(
                            diesel::insert_into(slot_holds::table)
                                .values(NewHold::place(
                                    tenant,
                                    conversation,
                                    journey,
                                    window,
                                    &taken,
                                    *until_ms,
                                    Some(erp_name.as_str()),
                                    $now
                                ))
                                .execute($c)
                        )?;
                    }
                }
                HoldChange::Release { journey } => {
                    $run!(
                        diesel::delete(
                            slot_holds::table
                                .filter(mine())
                                .filter(slot_holds::journey_id.eq(journey))
                                .filter(slot_holds::erp_name.is_null()),
                        )
                        .execute($c)
                    )?;
                }
            }
        }
        Ok::<(), DieselError>(())
    }};
}

macro_rules! sync_run {
    ($e:expr) => {
        $e
    };
}

/// Applies a turn's hold changes on SQLite, inside the commit's savepoint (SQLite's one writer
/// orders the takers). Errors: a refusal ([`refused_window`]) or a query failure; either undoes
/// the savepoint.
pub(super) fn apply_sqlite(
    c: &mut diesel::SqliteConnection,
    tenant: &str,
    conversation: &str,
    changes: &[HoldChange],
    now: i64,
) -> QueryResult<()> {
    use diesel::RunQueryDsl;
    apply_changes!(c, tenant, conversation, changes, now, sync_run)
}

/// PostgreSQL: locks windows for the rest of the transaction (`pg_advisory_xact_lock`, in the
/// given order: callers sort them) before their places are counted, so two transactions taking
/// a place in one window take turns. Calls `carewell_lock_windows` (migration 000022).
pub(super) struct LockWindows<'a> {
    pub tenants: Vec<&'a str>,
    pub windows: Vec<&'a str>,
}

impl<'a> LockWindows<'a> {
    /// The windows that `commits`' hold changes take a place in (their tenant's), sorted and once
    /// each.
    pub(super) fn of(commits: impl Iterator<Item = &'a super::TurnCommit>) -> Self {
        let mut pairs: Vec<(&str, &str)> = commits
            .flat_map(|c| {
                c.holds.iter().filter_map(move |ch| match ch {
                    HoldChange::Hold { window, .. } | HoldChange::Booked { window, .. } => {
                        Some((c.tenant.as_str(), window.as_str()))
                    }
                    HoldChange::Release { .. } => None,
                })
            })
            .collect();
        pairs.sort_unstable();
        pairs.dedup();
        LockWindows { tenants: pairs.iter().map(|p| p.0).collect(), windows: pairs.iter().map(|p| p.1).collect() }
    }
}

/// PostgreSQL: one commit's hold changes in one call (`carewell_apply_holds`, migration 000022,
/// the steps of `apply_changes!`), after [`LockWindows`] in the same transaction. A refused
/// place fails the statement with `store.hold_refused:<window>` ([`refused_window`]).
pub(super) struct ApplyHolds<'a> {
    tenant: &'a str,
    conversation: &'a str,
    now_ms: i64,
    kinds: Vec<&'static str>,
    journeys: Vec<&'a str>,
    windows: Vec<Option<&'a str>>,
    places: Vec<Option<i32>>,
    untils: Vec<Option<i64>>,
    erp_names: Vec<Option<&'a str>>,
}

impl<'a> ApplyHolds<'a> {
    /// The call for `commit`'s hold changes at `now_ms`.
    pub(super) fn new(commit: &'a super::TurnCommit, now_ms: i64) -> Self {
        let mut call = ApplyHolds {
            tenant: commit.tenant.as_str(),
            conversation: &commit.conversation_id,
            now_ms,
            kinds: vec![],
            journeys: vec![],
            windows: vec![],
            places: vec![],
            untils: vec![],
            erp_names: vec![],
        };
        for change in &commit.holds {
            let (kind, journey, window, places, until, erp) = match change {
                HoldChange::Hold { journey, window, places, until_ms } => (
                    "hold",
                    journey,
                    Some(window),
                    Some(i32::try_from(*places).unwrap_or(i32::MAX)),
                    Some(*until_ms),
                    None,
                ),
                HoldChange::Booked { journey, window, erp_name, until_ms } => {
                    ("booked", journey, Some(window), None, Some(*until_ms), Some(erp_name))
                }
                HoldChange::Release { journey } => ("release", journey, None, None, None, None),
            };
            call.kinds.push(kind);
            call.journeys.push(journey);
            call.windows.push(window.map(String::as_str));
            call.places.push(places);
            call.untils.push(until);
            call.erp_names.push(erp.map(String::as_str));
        }
        call
    }
}

/// Gives a statement type a static query id and makes it a query without rows.
macro_rules! fixed_call {
    ($name:ident) => {
        impl diesel::query_builder::QueryId for $name<'_> {
            type QueryId = $name<'static>;
            const HAS_STATIC_QUERY_ID: bool = true;
        }
        impl diesel::query_builder::Query for $name<'_> {
            type SqlType = diesel::sql_types::Untyped;
        }
    };
}
fixed_call!(LockWindows);
fixed_call!(ApplyHolds);

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for LockWindows<'_> {
    fn walk_ast<'b>(&'b self, mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>) -> QueryResult<()> {
        use diesel::sql_types::{Array, Text};
        out.push_sql("SELECT carewell_lock_windows(");
        out.push_bind_param::<Array<Text>, _>(&self.tenants)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.windows)?;
        out.push_sql(")");
        Ok(())
    }
}

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for ApplyHolds<'_> {
    fn walk_ast<'b>(&'b self, mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>) -> QueryResult<()> {
        use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text};
        out.push_sql("SELECT carewell_apply_holds(");
        out.push_bind_param::<Text, _>(&self.tenant)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&self.conversation)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, _>(&self.now_ms)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.kinds)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.journeys)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.windows)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Integer>>, _>(&self.places)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<BigInt>>, _>(&self.untils)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&self.erp_names)?;
        out.push_sql(")");
        Ok(())
    }
}

impl Store {
    /// Deletes the holds that no longer count at `now` (Unix ms): lapsed ones, and booked ones
    /// whose visit is past. Returns how many went. (A take in a window also clears that window's
    /// lapsed holds; this keeps the table small where nobody takes a place again.)
    pub async fn sweep_holds(&self, now: i64) -> Result<usize, StoreError> {
        use diesel_async::RunQueryDsl;
        Ok(with_conn!(self, |conn| {
            diesel::delete(slot_holds::table.filter(slot_holds::expires_at.le(now))).execute(conn).await?
        }))
    }

    /// `tenant`'s places held at `now` (Unix ms) by conversations other than `conversation_id`, and
    /// its own that stand for written bookings: what counts against the crews when this
    /// conversation chooses a time, as `(window, ERP document name)`.
    pub async fn held_places(
        &self,
        tenant: &crate::tenant::TenantId,
        conversation_id: &str,
        now: i64,
    ) -> Result<Vec<(String, Option<String>)>, StoreError> {
        use diesel_async::RunQueryDsl;
        let rows: Vec<(String, Option<String>)> = with_conn!(self, |conn| {
            slot_holds::table
                .filter(slot_holds::tenant.eq(tenant.as_str()))
                .filter(slot_holds::expires_at.gt(now))
                .filter(slot_holds::conversation_id.ne(conversation_id).or(slot_holds::erp_name.is_not_null()))
                .select((slot_holds::window_start, slot_holds::erp_name))
                .load(conn)
                .await?
        });
        Ok(rows)
    }

    /// Every hold live at `now` (Unix ms), of every tenant (each with its tenant).
    /// What [`crate::pipeline::App::held_places`] keeps for a moment and filters per
    /// conversation, so that the turns of one process share one read.
    pub async fn live_holds(&self, now: i64) -> Result<Vec<LiveHold>, StoreError> {
        use diesel_async::RunQueryDsl;
        let rows: Vec<(String, String, String, String, Option<String>, i64)> = with_conn!(self, |conn| {
            slot_holds::table
                .filter(slot_holds::expires_at.gt(now))
                .select((
                    slot_holds::tenant,
                    slot_holds::conversation_id,
                    slot_holds::journey_id,
                    slot_holds::window_start,
                    slot_holds::erp_name,
                    slot_holds::expires_at,
                ))
                .load(conn)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|(tenant, conversation_id, journey_id, window, erp_name, expires_at)| LiveHold {
                tenant,
                conversation_id,
                journey_id,
                window,
                erp_name,
                expires_at,
            })
            .collect())
    }

    /// `tenant`'s live holds of one window at `now`: `(conversation, crew, ERP document)`, by
    /// crew (for the admin API and tests).
    pub async fn window_holds(
        &self,
        tenant: &crate::tenant::TenantId,
        window: &str,
        now: i64,
    ) -> Result<Vec<(String, i32, Option<String>)>, StoreError> {
        use diesel_async::RunQueryDsl;
        Ok(with_conn!(self, |conn| {
            slot_holds::table
                .filter(slot_holds::tenant.eq(tenant.as_str()))
                .filter(slot_holds::window_start.eq(window))
                .filter(slot_holds::expires_at.gt(now))
                .order(slot_holds::crew)
                .select((slot_holds::conversation_id, slot_holds::crew, slot_holds::erp_name))
                .load(conn)
                .await?
        }))
    }
}
