//! PostgreSQL row-level security, the second wall between tenants
//! (`migrations/postgres/*_row_level_security`): the store's reads for one tenant run in a
//! transaction that sets `carewell.tenant` and takes the role `carewell_tenant`, both with
//! `SET LOCAL` semantics (they end with the transaction, never outlive it on a pooled
//! connection), so the tables' policies hide every other tenant's rows even from a query that
//! forgot its own filter. See [`with_tenant!`](crate::store) in the store's module.

use diesel::sql_types::Text;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::StoreError;

/// Whether the wall can be raised on this database: the role `carewell_tenant` exists and the
/// connecting user may take it (the migration makes it when the user has CREATEROLE).
pub(crate) async fn available(conn: &mut AsyncPgConnection) -> Result<bool, StoreError> {
    #[derive(diesel::QueryableByName)]
    struct On {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        on: bool,
    }
    let row: On = diesel::sql_query(
        "SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'carewell_tenant') \
         THEN pg_has_role(current_user, 'carewell_tenant', 'MEMBER') ELSE false END AS on",
    )
    .get_result(conn)
    .await?;
    Ok(row.on)
}

/// Inside a transaction: acts as `tenant` until it ends (one round trip). Nothing when the wall
/// is not `on`.
pub(crate) async fn enter(conn: &mut AsyncPgConnection, tenant: &str, on: bool) -> Result<(), StoreError> {
    if on {
        diesel::sql_query(
            "SELECT set_config('carewell.tenant', $1, true), set_config('role', 'carewell_tenant', true)",
        )
        .bind::<Text, _>(tenant)
        .execute(conn)
        .await?;
    }
    Ok(())
}
