//! Backfill windows in DuckDB: a window's load first deletes the raw table's rows whose
//! cursor lies in the window, and its commit records the window in `_elt_windows`, both in
//! the transaction of the window's rows; [`WindowLog`] reads the records back and digests
//! windows for `elt reconcile`.
//!
//! What it does not do: queue windows (DuckDB has one writer per file: concurrent window
//! runs wait on the file lock with `--wait-for-lock`) or decide which windows to run
//! (`elt_runner::backfill`).

use async_trait::async_trait;
use duckdb::{Connection, params};
use elt_core::capability::{CompletedWindow, WindowLog};
use elt_core::window_digest::{DigestColumn, DigestKind, WindowDigest, cursor_bound, live_rows};
use elt_core::windows::Window;
use elt_core::{ConfiguredStream, Result, RunInfo, quote_ident};

use super::db::db_error;
use super::session::DuckDbSession;

/// Deletes the rows of `table` whose cursor lies in `window`, in the open transaction;
/// returns how many.
pub(super) fn clear_window(
    conn: &Connection,
    table: &str,
    stream: &ConfiguredStream,
    window: &Window,
) -> Result<u64> {
    let (cursor, ty) = cursor_bound(stream)?;
    let c = quote_ident(cursor.name());
    let sql = format!("DELETE FROM {table} WHERE {c} >= CAST(? AS {ty}) AND {c} < CAST(? AS {ty})");
    conn.execute(&sql, params![window.from, window.to])
        .map(|n| n as u64)
        .map_err(|e| db_error("deleting the window's earlier rows", e))
}

/// Records `window` of `stream` as completed by `run` with `rows`, in the open transaction.
pub(super) fn write_window(
    conn: &Connection,
    dataset: &str,
    (run, stream): (&RunInfo, &str),
    window: &Window,
    rows: u64,
) -> Result<()> {
    let table = format!("{}._elt_windows", quote_ident(dataset));
    conn.execute(
        &format!(
            "DELETE FROM {table} WHERE connection = ? AND stream = ? AND window_from = ? \
             AND window_to = ?"
        ),
        params![run.connection, stream, window.from, window.to],
    )
    .and_then(|_| {
        conn.execute(
            &format!("INSERT INTO {table} VALUES (?, ?, ?, ?, ?, ?, now())"),
            params![
                run.connection,
                stream,
                window.from,
                window.to,
                run.run_id,
                i64::try_from(rows).unwrap_or(i64::MAX)
            ],
        )
    })
    .map(drop)
    .map_err(|e| db_error("recording the completed window", e))
}

/// `SELECT count, checksum` of the live rows of `table` in the window `[?, ?)`: the DuckDB
/// spelling of `elt_postgres::window_digest::digest_query`.
fn digest_query(
    table: &str,
    stream: &ConfiguredStream,
    columns: &[DigestColumn],
) -> Result<String> {
    let (cursor, ty) = cursor_bound(stream)?;
    let parts: Vec<String> = columns
        .iter()
        .map(|c| {
            let text = format!("CAST({} AS VARCHAR)", quote_ident(&c.name));
            let text = match c.kind {
                DigestKind::Text => text,
                DigestKind::Micros => {
                    format!("CAST(epoch_us({}) AS VARCHAR)", quote_ident(&c.name))
                }
                DigestKind::Decimal => format!(
                    "CASE WHEN strpos({text}, '.') > 0 THEN rtrim(rtrim({text}, '0'), '.') \
                     ELSE {text} END"
                ),
            };
            format!("coalesce({text}, chr(30))")
        })
        .collect();
    let prefix = format!(
        "substr(md5(concat_ws(chr(31), {})), 1, 15)",
        parts.join(", ")
    );
    let c = quote_ident(cursor.name());
    Ok(format!(
        "SELECT count(*), CAST(coalesce(sum(('0x' || {prefix})::BIGINT), 0) AS VARCHAR) \
         FROM {table} WHERE {c} >= CAST(? AS {ty}) AND {c} < CAST(? AS {ty}) AND {}",
        live_rows(stream)
    ))
}

#[async_trait]
impl WindowLog for DuckDbSession {
    async fn digests(
        &mut self,
        stream: &ConfiguredStream,
        columns: &[DigestColumn],
        windows: &[Window],
    ) -> Result<Vec<WindowDigest>> {
        let table = format!(
            "{}.{}",
            quote_ident(&self.dataset),
            quote_ident(&stream.table)
        );
        let sql = digest_query(&table, stream, columns)?;
        let windows = windows.to_vec();
        self.with_conn(move |conn| {
            let digest = |e| db_error("digesting the windows", e);
            let mut stmt = conn.prepare(&sql).map_err(digest)?;
            windows
                .iter()
                .map(|w| {
                    stmt.query_row(params![w.from, w.to], |row| {
                        Ok(WindowDigest {
                            rows: row.get::<_, i64>(0)?.max(0) as u64,
                            checksum: row.get(1)?,
                        })
                    })
                    .map_err(digest)
                })
                .collect()
        })
        .await
    }

    async fn windows(&mut self, stream: Option<&str>) -> Result<Vec<CompletedWindow>> {
        let sql = format!(
            "SELECT stream, window_from, window_to, run_id, rows FROM {}._elt_windows
             WHERE connection = ? AND (CAST(? AS VARCHAR) IS NULL OR stream = ?)",
            quote_ident(&self.dataset)
        );
        let (connection, stream) = (self.connection.clone(), stream.map(str::to_owned));
        let dataset = self.dataset.clone();
        self.with_conn(move |conn| {
            let read = |e| db_error("reading the completed windows", e);
            // A file (or a published snapshot) written before elt kept windows has none.
            let kept: i64 = conn
                .query_row(
                    "SELECT count(*) FROM information_schema.tables \
                     WHERE table_schema = ? AND table_name = '_elt_windows'",
                    params![dataset],
                    |row| row.get(0),
                )
                .map_err(read)?;
            if kept == 0 {
                return Ok(Vec::new());
            }
            let mut stmt = conn.prepare(&sql).map_err(read)?;
            let rows = stmt
                .query_map(params![connection, stream, stream], |row| {
                    Ok(CompletedWindow {
                        stream: row.get(0)?,
                        window: Window {
                            from: row.get(1)?,
                            to: row.get(2)?,
                        },
                        run_id: row.get(3)?,
                        rows: row.get::<_, i64>(4)?.max(0) as u64,
                    })
                })
                .map_err(read)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(read)
        })
        .await
    }
}
