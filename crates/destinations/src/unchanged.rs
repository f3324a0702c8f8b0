//! cdc streams: values the source did not send because they did not change (PostgreSQL's
//! unchanged TOASTed values; `_elt_unchanged` names their columns) are filled before a
//! merge, from the latest earlier change of the same key among the rows being loaded that
//! sent the value, else from the key's stored row. So a large value an update did not touch
//! keeps what the table holds and never becomes NULL. The SQL is the same text in DuckDB
//! and PostgreSQL; each destination runs it in its own transaction. Nothing here runs SQL.

use elt_core::ConfiguredStream;
use elt_core::cdc::{LSN, UNCHANGED, fillable_columns, unchanged_marker};

/// The statements that fill unsent values of `stream` in `rows` (the stage, or a table
/// appended to directly), looking back in `rows` and, when given, in the `stored` table.
/// `key` holds the quoted key columns; `quote` quotes a column as the destination names
/// it. Empty for streams that are not cdc.
pub fn fill_statements(
    stream: &ConfiguredStream,
    rows: &str,
    stored: Option<&str>,
    key: &[String],
    quote: impl Fn(&str) -> String,
) -> Vec<String> {
    let (lsn, unchanged) = (quote(LSN), quote(UNCHANGED));
    let same = |other: &str| -> String {
        let pairs: Vec<_> = key.iter().map(|k| format!("{other}.{k} = s.{k}")).collect();
        pairs.join(" AND ")
    };
    fillable_columns(stream)
        .iter()
        .map(|name| {
            let (column, marker) = (quote(name), literal(&unchanged_marker(name)));
            let from_stored = stored
                .map(|table| {
                    format!(
                        " UNION ALL SELECT t.{column}, -1 FROM {table} AS t WHERE {}",
                        same("t")
                    )
                })
                .unwrap_or_default();
            format!(
                "UPDATE {rows} AS s SET {column} = (SELECT v FROM (SELECT p.{column} AS v, \
                 p.{lsn} AS o FROM {rows} AS p WHERE {} AND p.{lsn} < s.{lsn} AND \
                 (p.{unchanged} IS NULL OR strpos(p.{unchanged}, {marker}) = 0){from_stored}) \
                 AS earlier ORDER BY o DESC LIMIT 1) WHERE strpos(s.{unchanged}, {marker}) > 0",
                same("p")
            )
        })
        .collect()
}

/// A query counting the rows of `rows` with an unsent value: the fill runs only when it
/// is not 0.
pub fn count_unsent(rows: &str, quote: impl Fn(&str) -> String) -> String {
    format!(
        "SELECT count(*) FROM {rows} WHERE {} IS NOT NULL",
        quote(UNCHANGED)
    )
}

/// A SQL string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}
