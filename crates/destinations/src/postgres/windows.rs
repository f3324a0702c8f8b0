//! Backfill windows in PostgreSQL: a window's load first deletes the raw table's rows whose
//! cursor lies in the window, and its commit records the window in `_elt_windows`, both in
//! the transaction of the window's rows; [`WindowLog`] reads the records back and digests
//! windows for `elt reconcile`.
//!
//! What it does not do: lease the window (`lock.rs`, through
//! `ConfiguredStream::lease_name`) or decide which windows to run (`elt_runner::backfill`).

use async_trait::async_trait;
use elt_core::capability::{CompletedWindow, WindowLog};
use elt_core::window_digest::{DigestColumn, WindowDigest, cursor_bound, live_rows};
use elt_core::windows::{Window, from_lease_name};
use elt_core::{ConfiguredStream, Result, RunInfo, quote_ident};
use elt_postgres::window_digest::digest_query;
use sqlx::Row;

use super::session::PgSession;
use super::types::pg_name;

/// Deletes the rows of raw table `table` (quoted) whose cursor lies in `window`, in the
/// open transaction; returns how many.
pub(super) async fn clear_window(
    session: &mut PgSession,
    table: &str,
    stream: &ConfiguredStream,
    window: &Window,
) -> Result<u64> {
    let (cursor, ty) = cursor_bound(stream)?;
    let column = quote_ident(&pg_name(cursor.name()));
    let sql = format!("DELETE FROM {table} WHERE {column} >= $1::{ty} AND {column} < $2::{ty}");
    sqlx::query(&sql)
        .bind(window.from.clone())
        .bind(window.to.clone())
        .execute(&mut session.conn)
        .await
        .map(|done| done.rows_affected())
        .map_err(|e| session.error("deleting the window's earlier rows", e))
}

/// The quoted cursor column a window's load indexes the raw table on, once: clearing a
/// window and digesting it then read only the window, not the whole table (DuckDB needs
/// no index: its zone maps skip the rest). None for loads that are not windows.
pub(super) fn window_cursor_index(stream: &ConfiguredStream) -> Result<Option<String>> {
    if stream.window().is_none() {
        return Ok(None);
    }
    let (cursor, _) = cursor_bound(stream)?;
    Ok(Some(quote_ident(&pg_name(cursor.name()))))
}

/// Records `window` of `stream` as completed by `run` with `rows`, in the open transaction.
pub(super) async fn write_window(
    session: &mut PgSession,
    (run, stream): (&RunInfo, &str),
    window: &Window,
    rows: u64,
) -> Result<()> {
    let sql = format!(
        "INSERT INTO {}._elt_windows VALUES ($1, $2, $3, $4, $5, $6, now())
         ON CONFLICT (connection, stream, window_from, window_to) DO UPDATE SET
             run_id = EXCLUDED.run_id, rows = EXCLUDED.rows, committed_at = EXCLUDED.committed_at",
        session.ds
    );
    sqlx::query(&sql)
        .bind(run.connection.clone())
        .bind(stream.to_owned())
        .bind(window.from.clone())
        .bind(window.to.clone())
        .bind(run.run_id.clone())
        .bind(i64::try_from(rows).unwrap_or(i64::MAX))
        .execute(&mut session.conn)
        .await
        .map(drop)
        .map_err(|e| session.error("recording the completed window", e))
}

#[async_trait]
impl WindowLog for PgSession {
    async fn windows(&mut self, stream: Option<&str>) -> Result<Vec<CompletedWindow>> {
        let sql = format!(
            "SELECT stream, window_from, window_to, run_id, rows FROM {}._elt_windows
             WHERE connection = $1 AND ($2::text IS NULL OR stream = $2)",
            self.ds
        );
        let rows = sqlx::query(&sql)
            .bind(self.connection.clone())
            .bind(stream.map(str::to_owned))
            .fetch_all(&mut self.conn)
            .await
            .map_err(|e| self.error("reading the completed windows", e))?;
        Ok(rows
            .iter()
            .map(|row| CompletedWindow {
                stream: row.get(0),
                window: Window {
                    from: row.get(1),
                    to: row.get(2),
                },
                run_id: row.get(3),
                rows: row.get::<i64, _>(4).max(0) as u64,
            })
            .collect())
    }

    async fn digests(
        &mut self,
        stream: &ConfiguredStream,
        columns: &[DigestColumn],
        windows: &[Window],
    ) -> Result<Vec<WindowDigest>> {
        let (cursor, bound) = cursor_bound(stream)?;
        let table = format!("{}.{}", self.ds, quote_ident(&pg_name(&stream.table)));
        let live = live_rows(stream);
        let names = |name: &str| pg_name(name);
        let sql = digest_query(&table, (cursor.name(), bound), columns, names, &live);
        elt_postgres::window_digest::run(&mut self.conn, &sql, windows)
            .await
            .map_err(|e| self.error("digesting the windows", e))
    }

    async fn leased(&mut self, stream: &str) -> Result<Vec<(Window, String)>> {
        let sql = format!(
            "SELECT stream, holder FROM {}._elt_locks
             WHERE connection = $1 AND expires_at > clock_timestamp()",
            self.ds
        );
        let rows: Vec<(String, String)> = sqlx::query_as(&sql)
            .bind(self.connection.clone())
            .fetch_all(&mut self.conn)
            .await
            .map_err(|e| self.error("reading the window leases", e))?;
        Ok(rows
            .into_iter()
            .filter_map(|(lease, holder)| Some((from_lease_name(stream, &lease)?, holder)))
            .collect())
    }
}
