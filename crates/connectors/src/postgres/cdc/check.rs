//! What `elt check` says about change data capture on a PostgreSQL server: each missing
//! setting or privilege with the statement that fixes it. Reads settings and catalogs only.

use elt_core::{Result, quote_ident};
use sqlx::Row;
use sqlx::postgres::PgConnection;

use super::super::conn::Target;

/// The problems that keep cdc streams of `tables` (`schema.table`) from working.
pub async fn problems(
    conn: &mut PgConnection,
    target: &Target,
    tables: &[String],
) -> Result<Vec<String>> {
    let failed = |e| target.error("checking change data capture", e);
    let row = sqlx::query(
        "SELECT current_setting('wal_level'), \
         (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user), \
         current_user::text, \
         current_setting('max_replication_slots')::int - (SELECT count(*) FROM pg_replication_slots)::int, \
         has_database_privilege(current_database(), 'CREATE'), current_database()::text",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(failed)?;
    let (wal_level, replication, user): (String, Option<bool>, String) =
        (row.get(0), row.get(1), row.get(2));
    let (free_slots, create, database): (i32, bool, String) = (row.get(3), row.get(4), row.get(5));
    let mut problems = Vec::new();
    if wal_level != "logical" {
        problems.push(format!(
            "wal_level is {wal_level}, not logical: run ALTER SYSTEM SET wal_level = logical; \
             and restart the server"
        ));
    }
    if replication != Some(true) {
        problems.push(format!(
            "user {user} may not create replication slots: run ALTER ROLE {} REPLICATION;",
            quote_ident(&user)
        ));
    }
    if free_slots < tables.len() as i32 {
        problems.push(format!(
            "max_replication_slots leaves {free_slots} free, and each cdc stream needs one: raise \
             it (ALTER SYSTEM SET max_replication_slots = ...;) and restart the server"
        ));
    }
    if !create {
        problems.push(format!(
            "user {user} may not create publications in database {database}: run GRANT CREATE \
             ON DATABASE {} TO {};",
            quote_ident(&database),
            quote_ident(&user)
        ));
    }
    for table in tables {
        let owner: Option<bool> = sqlx::query_scalar(
            "SELECT pg_has_role(c.relowner, 'USAGE') FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname || '.' || c.relname = $1",
        )
        .bind(table)
        .fetch_optional(&mut *conn)
        .await
        .map_err(failed)?;
        if owner == Some(false) {
            problems.push(format!(
                "user {user} does not own {table}, so it cannot publish it: have its owner run \
                 CREATE PUBLICATION ... FOR TABLE {table}; and name it in `cdc_publication`"
            ));
        }
    }
    Ok(problems)
}
