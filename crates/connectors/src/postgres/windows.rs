//! Backfill windows on the source: cut points for `elt backfill plan --by N-rows`, from
//! the planner's statistics (the cursor column's histogram in `pg_stats`, equal-population
//! buckets, and the table's estimated row count in `pg_class.reltuples`; no row of the
//! table is read; without statistics it says to run `ANALYZE` rather than guess), and the
//! window digests of `elt reconcile` (one query per window, `elt_postgres::window_digest`).
//!
//! What it does not do: read a window's rows (that is `read`, which honours the stream's
//! backfill window).

use elt_core::window_digest::{DigestColumn, WindowDigest, cursor_bound};
use elt_core::windows::{CursorKind, Window};
use elt_core::{ConfiguredStream, Error, Result, quote_ident};
use elt_postgres::window_digest::digest_query;
use sqlx::Row;

use super::config::PostgresConfig;
use super::conn::{IdleConnection, target};

/// Cut points of the cursor about `rows` rows apart, in canonical window text.
pub async fn cut_points(
    config: &PostgresConfig,
    idle: &IdleConnection,
    stream: &ConfiguredStream,
    rows: u64,
) -> Result<Option<Vec<String>>> {
    let field = elt_core::windows::cursor_field(stream)?;
    let cursor = field.name().as_str();
    let (array, text) = match (CursorKind::of(field.data_type()), field.data_type()) {
        (Some(CursorKind::Int), _) => ("numeric[]", "b::text"),
        (Some(CursorKind::Date), _) => ("date[]", "to_char(b, 'YYYY-MM-DD')"),
        (
            Some(CursorKind::Timestamp),
            elt_core::arrow::datatypes::DataType::Timestamp(_, Some(_)),
        ) => (
            "timestamptz[]",
            "to_char(b AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
        ),
        (Some(CursorKind::Timestamp), _) => (
            "timestamp[]",
            "to_char(b, 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
        ),
        (None, _) => return Ok(None),
    };
    let (schema, table) = schema_and_table(stream);
    let target = target(config)?;
    let mut conn = idle.take_or(target.connect()).await?;
    // The bounds arrive as text in the server's form for the type, then are parsed as an
    // array of that type and written out canonically.
    let sql = format!(
        "SELECT (SELECT reltuples::float8 FROM pg_class WHERE oid = to_regclass(quote_ident($1) \
         || '.' || quote_ident($2))), \
         ARRAY(SELECT {text} FROM unnest((SELECT histogram_bounds::text FROM pg_stats \
         WHERE schemaname = $1 AND tablename = $2 AND attname = $3 \
         ORDER BY inherited DESC LIMIT 1)::{array}) AS b)"
    );
    let row = sqlx::query(&sql)
        .bind(schema)
        .bind(table)
        .bind(cursor)
        .fetch_one(&mut conn)
        .await
        .map_err(|e| target.error("reading the cursor's statistics", e))?;
    idle.put(conn).await;
    let total: Option<f64> = row.get(0);
    let bounds: Vec<String> = row.get(1);
    if bounds.len() < 2 || total.is_none_or(|t| t <= 0.0) {
        return Err(Error::config(format!(
            "stream {}: the source keeps no statistics for {cursor} yet, which --by N-rows \
             sizes windows from: run `ANALYZE {schema}.{table}` on the source, or use --by \
             day|week|month",
            stream.name()
        )));
    }
    Ok(Some(pick(&bounds, total.unwrap_or(0.0), rows)))
}

/// The digest of each window over `columns`, one query per window on one connection.
pub async fn digests(
    config: &PostgresConfig,
    idle: &IdleConnection,
    stream: &ConfiguredStream,
    columns: &[DigestColumn],
    windows: &[Window],
) -> Result<Vec<WindowDigest>> {
    let (field, bound) = cursor_bound(stream)?;
    let (schema, table) = schema_and_table(stream);
    let table = format!("{}.{}", quote_ident(schema), quote_ident(table));
    let sql = digest_query(
        &table,
        (field.name(), bound),
        columns,
        str::to_owned,
        "true",
    );
    let target = target(config)?;
    let mut conn = idle.take_or(target.connect()).await?;
    let digests = elt_postgres::window_digest::run(&mut conn, &sql, windows)
        .await
        .map_err(|e| target.error("digesting the windows", e))?;
    idle.put(conn).await;
    Ok(digests)
}

/// The source table of a stream named `schema.table`.
fn schema_and_table(stream: &ConfiguredStream) -> (&str, &str) {
    stream
        .name()
        .split_once('.')
        .unwrap_or(("public", stream.name()))
}

/// Every k-th histogram bound, k buckets holding about `rows` rows (the caller keeps
/// those inside the range: `elt_core::windows::from_cut_points`).
fn pick(bounds: &[String], total: f64, rows: u64) -> Vec<String> {
    let per_bucket = total / (bounds.len() - 1) as f64;
    let step = ((rows as f64 / per_bucket).round() as usize).max(1);
    bounds.iter().step_by(step).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kth_bound_is_a_cut() {
        let bounds: Vec<String> = (0..=10).map(|i| (i * 100).to_string()).collect();
        // 10 buckets of 1,000 rows: 2,000 rows a window is every second bound.
        let cuts = pick(&bounds, 10_000.0, 2_000);
        assert_eq!(cuts, ["0", "200", "400", "600", "800", "1000"]);
        assert_eq!(pick(&bounds, 10_000.0, 1).len(), 11);
    }
}
