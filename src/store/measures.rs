//! What the store can say about itself, for the load generator and `/health`: the database's
//! size, PostgreSQL's activity counters and sessions, and the queues' counts.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::schema::{inbox, outbox, turns};
use super::{OutboxStatus, Pools, Store, StoreError};

impl Store {
    /// The database's size in bytes (SQLite: pages × page size; PostgreSQL: `pg_database_size`).
    pub async fn database_bytes(&self) -> Result<i64, StoreError> {
        #[derive(QueryableByName)]
        struct Size {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            bytes: i64,
        }
        let sql = match self.pools {
            Pools::Sqlite(_) => "SELECT page_count * page_size AS bytes FROM pragma_page_count(), pragma_page_size()",
            Pools::Postgres(_) => "SELECT pg_database_size(current_database())::BIGINT AS bytes",
        };
        with_conn!(self, |conn| {
            let s: Size = diesel::sql_query(sql).get_result(conn).await?;
            Ok(s.bytes)
        })
    }

    /// PostgreSQL's activity counters for this database (`pg_stat_database` and
    /// `pg_stat_user_tables`): transactions committed and rolled back, and rows inserted and
    /// updated per table (`"<table>.ins"`, `"<table>.upd"`); empty on SQLite. For the load
    /// generator's transactions-per-message figure.
    pub async fn activity_counters(&self) -> Result<std::collections::BTreeMap<String, i64>, StoreError> {
        #[derive(QueryableByName)]
        struct Counter {
            #[diesel(sql_type = diesel::sql_types::Text)]
            name: String,
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            value: i64,
        }
        let Pools::Postgres(pool) = &self.pools else { return Ok(Default::default()) };
        let mut conn = pool.get().await.map_err(|e| StoreError::Pool(e.to_string()))?;
        let rows: Vec<Counter> = diesel::sql_query(
            "SELECT 'xact_commit' AS name, xact_commit::BIGINT AS value FROM pg_stat_database WHERE datname = current_database() \
             UNION ALL SELECT 'xact_rollback', xact_rollback::BIGINT FROM pg_stat_database WHERE datname = current_database() \
             UNION ALL SELECT relname || '.ins', n_tup_ins::BIGINT FROM pg_stat_user_tables \
             UNION ALL SELECT relname || '.upd', n_tup_upd::BIGINT FROM pg_stat_user_tables",
        )
        .load(&mut *conn)
        .await?;
        Ok(rows.into_iter().map(|c| (c.name, c.value)).collect())
    }

    /// The operating-system process ids of PostgreSQL's sessions on this database (every
    /// process's connections), for a load test on the same machine to read their CPU time; empty
    /// on SQLite.
    pub async fn database_session_pids(&self) -> Result<Vec<i32>, StoreError> {
        #[derive(QueryableByName)]
        struct Pid {
            #[diesel(sql_type = diesel::sql_types::Integer)]
            pid: i32,
        }
        let Pools::Postgres(pool) = &self.pools else { return Ok(vec![]) };
        let mut conn = pool.get().await.map_err(|e| StoreError::Pool(e.to_string()))?;
        let pids: Vec<Pid> = diesel::sql_query("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
            .load(&mut *conn)
            .await?;
        Ok(pids.into_iter().map(|p| p.pid).collect())
    }

    /// Counts rows: (inbox, unprocessed inbox, turns, pending outbox, dead outbox).
    pub async fn counts(&self) -> Result<(i64, i64, i64, i64, i64), StoreError> {
        with_conn!(self, |conn| {
            let inbox_n: i64 = inbox::table.count().get_result(conn).await?;
            let pending: i64 = inbox::table.filter(inbox::processed_at.is_null()).count().get_result(conn).await?;
            let turns_n: i64 = turns::table.count().get_result(conn).await?;
            let out_pending: i64 = outbox::table
                .filter(outbox::status.eq(OutboxStatus::Pending.as_str()))
                .count()
                .get_result(conn)
                .await?;
            let dead: i64 =
                outbox::table.filter(outbox::status.eq(OutboxStatus::Dead.as_str())).count().get_result(conn).await?;
            Ok((inbox_n, pending, turns_n, out_pending, dead))
        })
    }

    /// Outbox rows in the dead letter.
    pub async fn dead_letter_count(&self) -> Result<i64, StoreError> {
        with_conn!(self, |conn| {
            Ok(outbox::table.filter(outbox::status.eq(OutboxStatus::Dead.as_str())).count().get_result(conn).await?)
        })
    }
}
