//! Opening the DuckDB file (for writing, or for reading only without creating anything)
//! and the bookkeeping tables' DDL. No loading and no session state.

use std::path::Path;

use duckdb::Connection;
use elt_core::{Error, Result};

use super::config::DuckDbConfig;
use super::db::db_error;

/// How a connection opens the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    /// Creating the file and its directory when missing; takes DuckDB's writer lock.
    ReadWrite,
    /// An existing file, read-only: creates nothing and takes no writer lock.
    ReadOnly,
}

/// Opens the database file with the configured limits, in UTC: for writing (creating it
/// when missing), or read-only.
pub(super) fn connect(config: &DuckDbConfig, access: Access) -> Result<Connection> {
    let path = Path::new(&config.path);
    if access == Access::ReadWrite
        && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::config(format!(
                "cannot create the directory of `path` {}",
                dir.display()
            ))
            .caused_by(e)
        })?;
    }
    let mut settings = duckdb::Config::default();
    if access == Access::ReadOnly {
        settings = settings
            .access_mode(duckdb::AccessMode::ReadOnly)
            .map_err(|e| db_error("opening read-only", e))?;
    }
    let threads = config.threads.unwrap_or_else(default_threads);
    settings = settings
        .threads(i64::from(threads))
        .map_err(|e| db_error("setting threads", e))?;
    if let Some(limit) = &config.memory_limit {
        settings = settings
            .max_memory(limit)
            .map_err(|e| db_error("setting memory_limit", e))?;
    }
    let conn =
        Connection::open_with_flags(path, settings).map_err(|e| open_error(&config.path, e))?;
    // With the ICU extension (the prebuilt library has it) TIMESTAMPTZ casts follow the
    // session's zone, so pin it to UTC. A build without ICU has no such setting and
    // already works in UTC.
    let _ = conn.execute_batch("SET TimeZone = 'UTC'");
    Ok(conn)
}

pub(super) fn open_error(path: &str, err: duckdb::Error) -> Error {
    let text = err.to_string();
    if text.contains("Could not set lock") || text.contains("Conflicting lock") {
        let holder = text
            .split_once("(PID ")
            .and_then(|(_, rest)| rest.split_once(')'))
            .map(|(pid, _)| format!(" (PID {pid})"))
            .unwrap_or_default();
        return Error::locked(format!(
            "the DuckDB file {path} is in use by another process{holder}; DuckDB allows one writer \
             per file, so wait for that run to finish"
        ));
    }
    Error::permanent(format!("cannot open the DuckDB file {path}")).caused_by(err)
}

/// The dataset's bookkeeping tables (`ds` quoted), created when missing.
pub(super) fn bookkeeping_ddl(ds: &str) -> String {
    format!(
        "CREATE SCHEMA IF NOT EXISTS {ds};
                 CREATE TABLE IF NOT EXISTS {ds}._elt_state (
                     connection VARCHAR NOT NULL, stream VARCHAR NOT NULL, state JSON NOT NULL,
                     run_id VARCHAR, committed_at TIMESTAMPTZ NOT NULL);
                 CREATE TABLE IF NOT EXISTS {ds}._elt_runs (
                     run_id VARCHAR NOT NULL, connection VARCHAR NOT NULL, stream VARCHAR NOT NULL,
                     started_at TIMESTAMPTZ NOT NULL, ended_at TIMESTAMPTZ, status VARCHAR NOT NULL,
                     rows_read BIGINT NOT NULL, rows_loaded BIGINT NOT NULL,
                     watermark_before VARCHAR, watermark_after VARCHAR,
                     extract_secs DOUBLE NOT NULL, load_secs DOUBLE NOT NULL, error VARCHAR);
                 CREATE TABLE IF NOT EXISTS {ds}._elt_reconciliations (
                     run_id UUID NOT NULL, connection VARCHAR NOT NULL, stream VARCHAR NOT NULL,
                     reconciled_at TIMESTAMPTZ NOT NULL, rows_deleted BIGINT NOT NULL);
                 CREATE TABLE IF NOT EXISTS {ds}._elt_dead_letter (
                     id UUID NOT NULL, run_id VARCHAR NOT NULL, connection VARCHAR NOT NULL,
                     stream VARCHAR NOT NULL, reason VARCHAR NOT NULL, record JSON NOT NULL,
                     dead_at TIMESTAMPTZ NOT NULL);
                 CREATE TABLE IF NOT EXISTS {ds}._elt_test_results (
                     run_id VARCHAR NOT NULL, connection VARCHAR NOT NULL, stream VARCHAR NOT NULL,
                     test VARCHAR NOT NULL, severity VARCHAR NOT NULL, passed BOOLEAN NOT NULL,
                     failing_rows BIGINT NOT NULL, samples JSON NOT NULL, observed DOUBLE,
                     detail VARCHAR, tested_at TIMESTAMPTZ NOT NULL);
                 CREATE TABLE IF NOT EXISTS {ds}._elt_profiles (
                     run_id VARCHAR NOT NULL, connection VARCHAR NOT NULL, stream VARCHAR NOT NULL,
                     column_name VARCHAR NOT NULL, rows BIGINT NOT NULL, nulls BIGINT NOT NULL,
                     distinct_count BIGINT, min_value VARCHAR, max_value VARCHAR, mean DOUBLE,
                     profiled_at TIMESTAMPTZ NOT NULL);
                 CREATE TABLE IF NOT EXISTS {ds}._elt_windows (
                     connection VARCHAR NOT NULL, stream VARCHAR NOT NULL,
                     window_from VARCHAR NOT NULL, window_to VARCHAR NOT NULL,
                     run_id VARCHAR NOT NULL, rows BIGINT NOT NULL,
                     committed_at TIMESTAMPTZ NOT NULL);"
    )
}

/// `elt check`: the file opens (read-only, when it exists), or its directory can be made
/// and written; creates nothing.
pub(super) fn check(config: &DuckDbConfig) -> Result<()> {
    let path = Path::new(&config.path);
    if path.exists() {
        let conn = connect(config, Access::ReadOnly)?;
        return conn
            .execute_batch("SELECT 1")
            .map_err(|e| db_error("reading the file", e));
    }
    let existing = path
        .ancestors()
        .skip(1)
        .find(|a| a.as_os_str().is_empty() || a.exists());
    let dir = match existing {
        Some(a) if a.as_os_str().is_empty() => Path::new("."),
        Some(a) => a,
        None => Path::new("/"),
    };
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() && !m.permissions().readonly() => Ok(()),
        _ => Err(Error::config(format!(
            "`path` {}: {} is not a directory elt can write in",
            config.path,
            dir.display()
        ))),
    }
}

/// A connection to read `ds` (quoted) through without writing or creating anything: the
/// file read-only when it holds the dataset's bookkeeping tables; otherwise (no file yet,
/// or a dataset never synced) an empty in-memory database with those tables, so a reader
/// sees no state, no runs and new tables.
pub(super) fn reader(config: &DuckDbConfig, ds: &str) -> Result<Connection> {
    if Path::new(&config.path).exists() {
        let conn = connect(config, Access::ReadOnly)?;
        let synced = conn
            .prepare(&format!("SELECT 1 FROM {ds}._elt_state LIMIT 0"))
            .is_ok();
        if synced {
            return Ok(conn);
        }
    }
    let conn = Connection::open_in_memory().map_err(|e| db_error("opening an empty reader", e))?;
    let _ = conn.execute_batch("SET TimeZone = 'UTC'");
    conn.execute_batch(&bookkeeping_ddl(ds))
        .map_err(|e| db_error("creating the bookkeeping tables", e))?;
    Ok(conn)
}

/// DuckDB's worker threads when `threads` is unset: half the cores, at least one. A sync
/// spends the other half reading and decoding (and, on one machine, the source database
/// its own); DuckDB's default of every core made a 1M-row load 9% slower on 2 cores and
/// burned 18% more CPU in lock contention (docs/benchmarks.md).
fn default_threads() -> u32 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    u32::try_from(cores / 2).unwrap_or(u32::MAX).max(1)
}
