//! The readers' copy of a dataset's bookkeeping, `<path>.<dataset>.snapshot`: DuckDB lets
//! no other process open a file while a sync writes it, so a writing session publishes,
//! when a stream's run starts and ends (its `_elt_runs` row is written), after test results are
//! recorded, after a state reset and after a write outside a run (a dead-letter replay), a
//! small DuckDB file with the dataset's
//! `_elt_state`, `_elt_runs`, `_elt_reconciliations`, the newest [`KEEP_ROWS`] rows of
//! `_elt_dead_letter` and `_elt_test_results`, and each raw table's columns (no rows).
//! `elt ui`, `elt runs`, `elt state show` and `elt dead-letter list` read it while the file
//! is locked (and the UI always, so it never takes a lock a sync would wait for).
//!
//! It is written beside the file under another name and renamed over the last one, so a
//! reader sees one whole snapshot. What it is not: a copy of the data (data tests, `elt
//! reconcile` and loads never read it), or kept in step with a run's commits in between
//! (a stream shows as `running` from its start, with its numbers when it ends). Each publish costs a new file of about 0.8 MB
//! and its fsyncs (about 14 ms, docs/benchmarks.md).

use std::path::PathBuf;

use duckdb::Connection;
use elt_core::{Result, quote_ident};

use super::db::db_error;

/// Rows of the dead-letter and test-result tables a snapshot keeps (the newest).
pub(super) const KEEP_ROWS: usize = 10_000;

/// Where the snapshot of `dataset` in the file `path` is.
pub(super) fn path(path: &str, dataset: &str) -> PathBuf {
    PathBuf::from(format!("{path}.{dataset}.snapshot"))
}

/// Writes the snapshot of `dataset` through the writing connection `conn`.
pub(super) fn publish(conn: &Connection, file: &str, dataset: &str) -> Result<()> {
    let target = path(file, dataset);
    let mut temporary = target.clone().into_os_string();
    temporary.push(format!(".{}.tmp", std::process::id()));
    let temporary = PathBuf::from(temporary);
    let _ = std::fs::remove_file(&temporary);
    let literal = temporary.to_string_lossy().replace('\'', "''");
    conn.execute_batch(&format!("ATTACH '{literal}' AS _elt_snapshot"))
        .map_err(|e| db_error("creating the readers' snapshot", e))?;
    let copied = copy(conn, dataset);
    let detached = conn.execute_batch("DETACH _elt_snapshot");
    let done = copied.and(detached.map_err(|e| db_error("closing the readers' snapshot", e)));
    let done = done.and_then(|()| {
        std::fs::rename(&temporary, &target).map_err(|e| {
            elt_core::Error::permanent(format!("cannot rename {}", temporary.display()))
                .caused_by(e)
        })
    });
    if done.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    done
}

/// The tables, inside the attached `_elt_snapshot`.
fn copy(conn: &Connection, dataset: &str) -> Result<()> {
    let ds = quote_ident(dataset);
    let mut sql = format!("CREATE SCHEMA _elt_snapshot.{ds};");
    for table in [
        "_elt_state",
        "_elt_runs",
        "_elt_reconciliations",
        "_elt_windows",
    ] {
        sql.push_str(&format!(
            "CREATE TABLE _elt_snapshot.{ds}.{table} AS SELECT * FROM {ds}.{table};"
        ));
    }
    for (table, newest) in [
        ("_elt_dead_letter", "dead_at"),
        ("_elt_test_results", "tested_at"),
    ] {
        sql.push_str(&format!(
            "CREATE TABLE _elt_snapshot.{ds}.{table} AS SELECT * FROM {ds}.{table} \
             ORDER BY {newest} DESC LIMIT {KEEP_ROWS};"
        ));
    }
    sql.push_str(&format!(
        "CREATE TABLE _elt_snapshot.{ds}._elt_profiles AS SELECT * FROM {ds}._elt_profiles LIMIT 0;"
    ));
    let mut stmt = conn
        .prepare(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ? \
             AND table_catalog = current_database() AND table_type = 'BASE TABLE' \
             AND table_name NOT LIKE '\\_elt\\_%' ESCAPE '\\'",
        )
        .map_err(|e| db_error("listing the tables for the readers' snapshot", e))?;
    let tables = stmt
        .query_map([dataset], |row| row.get::<_, String>(0))
        .and_then(|rows| rows.collect::<duckdb::Result<Vec<_>>>())
        .map_err(|e| db_error("listing the tables for the readers' snapshot", e))?;
    for table in tables {
        let t = quote_ident(&table);
        sql.push_str(&format!(
            "CREATE TABLE _elt_snapshot.{ds}.{t} AS SELECT * FROM {ds}.{t} LIMIT 0;"
        ));
    }
    conn.execute_batch(&sql)
        .map_err(|e| db_error("writing the readers' snapshot", e))
}
