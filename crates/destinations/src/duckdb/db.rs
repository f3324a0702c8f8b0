//! The helpers every file of the DuckDB destination shares: running blocking work off the
//! async threads, wrapping DuckDB errors with what was being done, and short transactions.

use duckdb::Connection;
use elt_core::{Error, Result};

/// Runs blocking DuckDB work off the async threads, inside the caller's tracing span (so
/// its logs and the driver's commit spans keep their run and stream).
pub(super) async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(work))
        .await
        .map_err(|e| Error::bug("a DuckDB task panicked").caused_by(e))?
}

/// Wraps a DuckDB error with what was being done.
pub(super) fn db_error(doing: &str, err: duckdb::Error) -> Error {
    Error::permanent(format!("DuckDB failed {doing}")).caused_by(err)
}

/// Runs `work` in a transaction: committed when it succeeds, rolled back when it fails.
pub(super) fn in_transaction<T>(
    conn: &Connection,
    doing: &str,
    work: impl FnOnce() -> duckdb::Result<T>,
) -> Result<T> {
    conn.execute_batch("BEGIN TRANSACTION")
        .map_err(|e| db_error(doing, e))?;
    match work().and_then(|value| conn.execute_batch("COMMIT").map(|()| value)) {
        Ok(value) => Ok(value),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(db_error(doing, e))
        }
    }
}
