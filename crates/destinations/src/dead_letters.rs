//! Reading `_elt_dead_letter` for `elt dead-letter list` and replay, in SQL that DuckDB and
//! PostgreSQL both accept: each SQL destination implements
//! [`DeadLetterStore`](elt_core::capability::DeadLetterStore) by running these through its
//! own [`SqlQueries`]. Writing dead letters is part of each destination's commit.

use elt_core::capability::{SqlQueries, StoredDeadLetter};
use elt_core::{ConfiguredStream, Result};

/// Up to `limit` dead letters of `connection` (of `stream` only, when given) in the
/// dead-letter table of dataset `ds` (quoted), newest first.
pub(crate) async fn list(
    sql: &mut dyn SqlQueries,
    ds: &str,
    connection: &str,
    stream: Option<&str>,
    limit: usize,
) -> Result<Vec<StoredDeadLetter>> {
    // Both databases take a bigint limit.
    let limit = limit.min(i64::MAX as usize);
    let query = format!(
        "SELECT CAST(id AS VARCHAR), stream, run_id, CAST(dead_at AS VARCHAR), reason,
                CAST(record AS VARCHAR)
         FROM {ds}._elt_dead_letter WHERE connection = $1 AND ($2 = '' OR stream = $2)
         ORDER BY dead_at DESC, stream, id LIMIT {limit}"
    );
    let params = [connection.to_owned(), stream.unwrap_or_default().to_owned()];
    let rows = sql.query_text(&query, &params).await?;
    let text = |row: &[Option<String>], i: usize| row.get(i).cloned().flatten().unwrap_or_default();
    Ok(rows
        .iter()
        .map(|r| StoredDeadLetter {
            id: text(r, 0),
            stream: text(r, 1),
            run_id: text(r, 2),
            dead_at: text(r, 3),
            reason: text(r, 4),
            record: text(r, 5),
        })
        .collect())
}

/// The cursor texts of the live rows of `table` (quoted) whose key columns, as text, equal
/// `key`; empty for a stream without a cursor or when the table does not exist yet.
/// `column` quotes a column name the way the destination names columns.
pub(crate) async fn live_cursors(
    sql: &mut dyn SqlQueries,
    table: &str,
    column: fn(&str) -> String,
    stream: &ConfiguredStream,
    key: &[String],
) -> Result<Vec<String>> {
    let Some(cursor) = &stream.cursor else {
        return Ok(Vec::new());
    };
    let live = stream
        .write_mode
        .live_rows()
        .map(|rows| format!(" AND {rows}"))
        .unwrap_or_default();
    let conditions: Vec<String> = stream
        .primary_key
        .iter()
        .enumerate()
        .map(|(i, k)| format!("CAST({} AS VARCHAR) = ${}", column(k), i + 1))
        .collect();
    let query = format!(
        "SELECT CAST({} AS VARCHAR) FROM {table} WHERE {}{live}",
        column(cursor),
        conditions.join(" AND ")
    );
    // No table yet: nothing stored to compete with.
    let Ok(rows) = sql.query_text(&query, key).await else {
        return Ok(Vec::new());
    };
    Ok(rows
        .into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .collect())
}
