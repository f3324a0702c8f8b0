//! The server-side objects of a cdc stream: its publication (of the one table) and its
//! logical replication slot (`pgoutput`), created when missing, moved forward only to a
//! position the destination has committed, and dropped on request. Every name is bound or
//! quoted; nothing here reads changes.

use elt_core::cdc::{CdcNames, format_lsn};
use elt_core::{Error, Result, quote_ident};
use sqlx::Row;
use sqlx::postgres::PgConnection;

use super::super::conn::Target;

/// What the server says of a slot.
#[derive(Debug, Clone)]
pub struct SlotStatus {
    /// Changes committed before this are consumed (never read again).
    pub confirmed: u64,
    /// WAL bytes the slot keeps on the server's disk.
    pub retained_bytes: i64,
    /// WAL bytes written since `confirmed`.
    pub behind_bytes: i64,
}

/// Makes sure publication `names.publication` publishes `table` (schema-qualified, quoted):
/// creates it when missing; refuses one that exists without the table, naming the fix.
pub async fn ensure_publication(
    conn: &mut PgConnection,
    target: &Target,
    names: &CdcNames,
    schema: &str,
    table: &str,
) -> Result<()> {
    let failed = |e| target.error("looking up the publication", e);
    let exists: Option<bool> = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_publication_tables WHERE pubname = $1 \
         AND schemaname = $2 AND tablename = $3) FROM pg_publication WHERE pubname = $1",
    )
    .bind(&names.publication)
    .bind(schema)
    .bind(table)
    .fetch_optional(&mut *conn)
    .await
    .map_err(failed)?;
    let qualified = format!("{}.{}", quote_ident(schema), quote_ident(table));
    match exists {
        Some(true) => Ok(()),
        Some(false) => Err(Error::config(format!(
            "publication {} exists but does not publish {qualified}; run `ALTER PUBLICATION \
             {} ADD TABLE {qualified}` or set `cdc_publication` to another name",
            names.publication,
            quote_ident(&names.publication)
        ))),
        None => {
            let sql = format!(
                "CREATE PUBLICATION {} FOR TABLE {qualified}",
                quote_ident(&names.publication)
            );
            sqlx::query(&sql)
                .execute(&mut *conn)
                .await
                .map(drop)
                .map_err(|e| creating(target, "publication", &names.publication, e))
        }
    }
}

/// The slot's status, None when it does not exist in this database.
pub async fn status(
    conn: &mut PgConnection,
    target: &Target,
    slot: &str,
) -> Result<Option<SlotStatus>> {
    let row = sqlx::query(
        "SELECT (confirmed_flush_lsn - '0/0'::pg_lsn)::bigint, \
         (pg_current_wal_lsn() - restart_lsn)::bigint, \
         (pg_current_wal_lsn() - confirmed_flush_lsn)::bigint FROM pg_replication_slots \
         WHERE slot_name = $1 AND database = current_database()",
    )
    .bind(slot)
    .fetch_optional(&mut *conn)
    .await
    .map_err(|e| target.error("looking up the replication slot", e))?;
    Ok(row.map(|row| SlotStatus {
        confirmed: row.get::<Option<i64>, _>(0).unwrap_or(0) as u64,
        retained_bytes: row.get::<Option<i64>, _>(1).unwrap_or(0),
        behind_bytes: row.get::<Option<i64>, _>(2).unwrap_or(0),
    }))
}

/// Creates the slot anew (dropping one of that name first: without a position in the
/// destination, what it kept is of no use) and returns its consistent point.
pub async fn recreate(conn: &mut PgConnection, target: &Target, slot: &str) -> Result<u64> {
    drop_slot(conn, target, slot).await?;
    sqlx::query_scalar::<_, i64>(
        "SELECT (lsn - '0/0'::pg_lsn)::bigint FROM \
         pg_create_logical_replication_slot($1, 'pgoutput')",
    )
    .bind(slot)
    .fetch_one(&mut *conn)
    .await
    .map(|lsn| lsn as u64)
    .map_err(|e| creating(target, "replication slot", slot, e))
}

/// Marks every change before `lsn` consumed, so the server can free the WAL before it.
/// Only ever called with a position the destination has committed.
pub async fn advance(conn: &mut PgConnection, target: &Target, slot: &str, lsn: u64) -> Result<()> {
    sqlx::query("SELECT pg_replication_slot_advance($1, $2::pg_lsn)")
        .bind(slot)
        .bind(format_lsn(lsn))
        .execute(&mut *conn)
        .await
        .map(drop)
        .map_err(|e| target.error("advancing the replication slot", e))
}

/// Drops the slot if it exists (an active one is an error that names its process).
pub async fn drop_slot(conn: &mut PgConnection, target: &Target, slot: &str) -> Result<()> {
    sqlx::query(
        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
         WHERE slot_name = $1 AND database = current_database()",
    )
    .bind(slot)
    .execute(&mut *conn)
    .await
    .map(drop)
    .map_err(|e| target.error("dropping the replication slot", e))
}

/// Drops the publication if it exists; whether it did.
pub async fn drop_publication(
    conn: &mut PgConnection,
    target: &Target,
    publication: &str,
) -> Result<bool> {
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)")
            .bind(publication)
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| target.error("looking up the publication", e))?;
    if exists {
        let sql = format!("DROP PUBLICATION IF EXISTS {}", quote_ident(publication));
        sqlx::query(&sql)
            .execute(&mut *conn)
            .await
            .map_err(|e| target.error("dropping the publication", e))?;
    }
    Ok(exists)
}

/// A failure to create a slot or publication, with what usually fixes it.
fn creating(target: &Target, what: &str, name: &str, e: sqlx::Error) -> Error {
    let code = e
        .as_database_error()
        .and_then(|d| d.code())
        .map(|c| c.to_string());
    let hint = match code.as_deref() {
        // wal_level below logical
        Some("55000") => {
            "; set `wal_level = logical` on the server (ALTER SYSTEM SET wal_level = logical) \
             and restart it"
        }
        Some("42501") => {
            "; the user needs the REPLICATION attribute (ALTER ROLE ... REPLICATION) and to own \
             the table for a publication, or a superuser must create it"
        }
        Some("53400") => "; the server has no free slot: raise `max_replication_slots`",
        _ => "",
    };
    Error::config(format!(
        "cannot create {what} {name}: {}{hint}",
        target.error("creating", e).message()
    ))
}
