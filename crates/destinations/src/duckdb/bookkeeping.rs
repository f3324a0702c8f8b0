//! What a commit writes beside the rows, in the same transaction: the stream's state in
//! `_elt_state`, and its dead letters in `_elt_dead_letter` (new ones inserted, replayed
//! ones deleted).

use duckdb::{Connection, params};
use elt_core::{Result, RunInfo, StreamState, quote_ident};

use super::db::db_error;

/// Inserts dead letters of `stream` into `_elt_dead_letter` and deletes the `replayed`
/// ones, in the open transaction.
pub(super) fn write_dead_letters(
    conn: &Connection,
    dataset: &str,
    (run, stream): (&RunInfo, &str),
    dead: &[elt_core::DeadLetter],
    replayed: &[String],
) -> Result<()> {
    let table = format!("{}._elt_dead_letter", quote_ident(dataset));
    let failed = |e| db_error("writing dead letters", e);
    if !dead.is_empty() {
        let sql = format!("INSERT INTO {table} VALUES (uuid(), ?, ?, ?, ?, ?, now())");
        let mut insert = conn.prepare(&sql).map_err(failed)?;
        for d in dead {
            insert
                .execute(params![
                    run.run_id,
                    run.connection,
                    stream,
                    d.reason,
                    d.record
                ])
                .map_err(failed)?;
        }
    }
    if !replayed.is_empty() {
        let sql = format!("DELETE FROM {table} WHERE id = CAST(? AS UUID)");
        let mut delete = conn.prepare(&sql).map_err(failed)?;
        for id in replayed {
            delete.execute(params![id]).map_err(failed)?;
        }
    }
    Ok(())
}

/// Replaces the state of one stream; part of the caller's transaction.
pub(super) fn write_state(
    conn: &Connection,
    dataset: &str,
    run: &RunInfo,
    stream: &str,
    state: &StreamState,
) -> Result<()> {
    let table = format!("{}._elt_state", quote_ident(dataset));
    conn.execute(
        &format!("DELETE FROM {table} WHERE connection = ? AND stream = ?"),
        params![run.connection, stream],
    )
    .and_then(|_| {
        conn.execute(
            &format!("INSERT INTO {table} VALUES (?, ?, ?, ?, now())"),
            params![run.connection, stream, state.to_json(), run.run_id],
        )
    })
    .map(drop)
    .map_err(|e| db_error("writing the state", e))
}
