//! Hard-delete detection for sources without change data capture: the shapes that a
//! reconciliation exchanges with a source and a destination about one stream's primary
//! keys, and the SQL pieces both sides build their answers from.
//!
//! Keys travel as text (one string per key column), ranges are half-open `[from, to)` in
//! the key's order, and a range's digest is its key count plus the sum of a 60-bit prefix
//! of the MD5 of each key's text: equal on both sides exactly when the same keys are there
//! (up to hash collisions). Only key columns whose text form PostgreSQL and DuckDB agree
//! on can be compared this way: integers, text, UUIDs and dates ([`check_key_types`]). The
//! algorithm that descends into differing ranges lives in the runner; nothing here runs SQL.

use arrow::datatypes::DataType;

use crate::catalog::{ConfiguredStream, WriteMode, is_uuid_field};
use crate::error::{Error, Result};

/// One key: the text of each key column, in key order.
pub type Key = Vec<String>;

/// Keys from `from` (inclusive) to `to` (exclusive); an open end when None.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyRange {
    /// The first key of the range, if bounded below.
    pub from: Option<Key>,
    /// The first key after the range, if bounded above.
    pub to: Option<Key>,
}

/// How many keys a range holds and a hash of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeDigest {
    /// The number of keys.
    pub keys: u64,
    /// The sum of the keys' hashes, as decimal text.
    pub hash: String,
}

/// The key of every row in `[from, to)` of one range's predicate, and the values to bind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeSql {
    /// The condition (`true` for an unbounded range).
    pub predicate: String,
    /// The values of `$first`, `$first + 1`, … in order.
    pub params: Vec<String>,
}

/// A key column as both sides' SQL sees it.
#[derive(Debug, Clone)]
pub struct KeyColumn {
    /// The quoted column name.
    pub quoted: String,
    /// The column's SQL type, to cast bound text to.
    pub sql_type: String,
    /// Whether it is text: compared in byte order (PostgreSQL needs `COLLATE "C"`).
    pub is_text: bool,
}

/// The raw-table rows that count as present in the source: merge rows not marked deleted,
/// history's current versions. Other write modes cannot be reconciled.
pub fn live_rows(stream: &ConfiguredStream) -> Result<&'static str> {
    match stream.write_mode {
        WriteMode::Merge => Ok("_elt_deleted_at IS NULL"),
        WriteMode::History => Ok("_elt_is_current"),
        mode => Err(Error::config(format!(
            "stream {}: reconciling deletes needs write mode merge or history, not {mode}",
            stream.name()
        ))),
    }
}

/// Keys a split samples from a range: enough for even cuts, few enough to sort at once.
pub const SPLIT_SAMPLE: usize = 4_096;

/// Up to `parts - 1` cut points taken evenly from `sample` (keys in key order, distinct):
/// the boundaries need not be exact quantiles, only increasing.
pub fn cut_points(sample: Vec<Key>, parts: usize) -> Vec<Key> {
    let len = sample.len();
    if len < 2 || parts < 2 {
        return Vec::new();
    }
    let wanted: Vec<usize> = (1..parts)
        .map(|i| i * len / parts)
        .filter(|&i| i > 0)
        .collect();
    let mut cuts: Vec<Key> = Vec::new();
    for (i, key) in sample.into_iter().enumerate() {
        if wanted.contains(&i) && cuts.last() != Some(&key) {
            cuts.push(key);
        }
    }
    cuts
}

/// Refuses key columns whose text form differs between databases.
pub fn check_key_types(stream: &ConfiguredStream) -> Result<()> {
    if stream.primary_key.is_empty() {
        return Err(Error::config(format!(
            "stream {}: reconciling deletes needs a primary key; set `primary_key`",
            stream.name()
        )));
    }
    for name in &stream.primary_key {
        let field = stream.schema().field_with_name(name).map_err(|_| {
            Error::config(format!(
                "stream {}: key column {name} is not in the stream",
                stream.name()
            ))
        })?;
        let comparable = is_uuid_field(field)
            || matches!(
                field.data_type(),
                DataType::Int8
                    | DataType::Int16
                    | DataType::Int32
                    | DataType::Int64
                    | DataType::UInt8
                    | DataType::UInt16
                    | DataType::UInt32
                    | DataType::UInt64
                    | DataType::Utf8
                    | DataType::LargeUtf8
                    | DataType::Date32
            );
        if !comparable {
            return Err(Error::config(format!(
                "stream {}: key column {name} is {}; reconciling deletes supports integer, text, \
                 UUID and date keys. Turn off `reconcile_deletes_every` for this stream",
                stream.name(),
                field.data_type()
            )));
        }
    }
    Ok(())
}

/// Where a digest is computed: the SQL differs only in turning hex into an integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL (`('x' || hex)::bit(60)::bigint`).
    Postgres,
    /// DuckDB (`('0x' || hex)::BIGINT`).
    DuckDb,
}

/// The select list of a range digest: the key count, and the sum of the first 60 bits of
/// each key text's MD5, as text. Both dialects give equal values for equal keys.
pub fn digest_list(columns: &[KeyColumn], dialect: Dialect) -> String {
    let prefix = format!("substr(md5({}), 1, 15)", key_text(columns));
    let number = match dialect {
        Dialect::Postgres => format!("('x' || {prefix})::bit(60)::bigint"),
        Dialect::DuckDb => format!("('0x' || {prefix})::BIGINT"),
    };
    format!("count(*), CAST(coalesce(sum({number}), 0) AS VARCHAR)")
}

/// The text of a row's key: its columns as text joined by the unit separator.
pub fn key_text(columns: &[KeyColumn]) -> String {
    let parts: Vec<String> = columns
        .iter()
        .map(|c| format!("CAST({} AS VARCHAR)", c.quoted))
        .collect();
    format!("concat_ws(chr(31), {})", parts.join(", "))
}

/// `(k1, k2, …) OP (CAST($n AS t1), …)` for OP `>=` or `<`. PostgreSQL gets a row-value
/// comparison (which its indexes serve), text in byte order (`COLLATE "C"`); DuckDB, whose
/// optimizer cannot compare rows in a range, gets it spelled out:
/// `k1 > v1 OR (k1 = v1 AND (k2 OP v2))` and so on.
fn compare(columns: &[KeyColumn], op: &str, first_param: usize, dialect: Dialect) -> String {
    let value = |i: usize, c: &KeyColumn| format!("CAST(${} AS {})", first_param + i, c.sql_type);
    if dialect == Dialect::Postgres {
        let collation = |c: &KeyColumn| if c.is_text { " COLLATE \"C\"" } else { "" };
        let left: Vec<String> = columns
            .iter()
            .map(|c| format!("{}{}", c.quoted, collation(c)))
            .collect();
        let right: Vec<String> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{}{}", value(i, c), collation(c)))
            .collect();
        return format!("({}) {op} ({})", left.join(", "), right.join(", "));
    }
    let strict = if op == ">=" { ">" } else { "<" };
    let last = columns.len() - 1;
    let mut expression = format!(
        "{} {op} {}",
        columns[last].quoted,
        value(last, &columns[last])
    );
    for (i, c) in columns.iter().enumerate().rev().skip(1) {
        let v = value(i, c);
        expression = format!(
            "({q} {strict} {v} OR ({q} = {v} AND {expression}))",
            q = c.quoted
        );
    }
    expression
}

/// The predicate selecting `range` in `dialect`, with parameters numbered from
/// `first_param`.
pub fn range_sql(
    columns: &[KeyColumn],
    range: &KeyRange,
    first_param: usize,
    dialect: Dialect,
) -> RangeSql {
    let mut conditions = Vec::new();
    let mut params = Vec::new();
    if let Some(from) = &range.from {
        conditions.push(compare(columns, ">=", first_param + params.len(), dialect));
        params.extend(from.iter().cloned());
    }
    if let Some(to) = &range.to {
        conditions.push(compare(columns, "<", first_param + params.len(), dialect));
        params.extend(to.iter().cloned());
    }
    RangeSql {
        predicate: if conditions.is_empty() {
            "true".to_owned()
        } else {
            conditions.join(" AND ")
        },
        params,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_compare_row_values_with_numbered_casts() {
        let columns = [
            KeyColumn {
                quoted: "\"a\"".into(),
                sql_type: "bigint".into(),
                is_text: false,
            },
            KeyColumn {
                quoted: "\"b\"".into(),
                sql_type: "text".into(),
                is_text: true,
            },
        ];
        let range = KeyRange {
            from: Some(vec!["1".into(), "x".into()]),
            to: Some(vec!["2".into(), "y".into()]),
        };
        let sql = range_sql(&columns, &range, 3, Dialect::Postgres);
        assert_eq!(
            sql.predicate,
            "(\"a\", \"b\" COLLATE \"C\") >= (CAST($3 AS bigint), CAST($4 AS text) COLLATE \"C\") \
             AND (\"a\", \"b\" COLLATE \"C\") < (CAST($5 AS bigint), CAST($6 AS text) COLLATE \"C\")"
        );
        assert_eq!(sql.params, ["1", "x", "2", "y"]);
        let sample: Vec<Key> = (0..100).map(|i| vec![i.to_string()]).collect();
        let cuts = cut_points(sample, 4);
        assert_eq!(
            cuts,
            [vec!["25".to_owned()], vec!["50".into()], vec!["75".into()]]
        );
        assert!(cut_points(vec![vec!["only".into()]], 4).is_empty());
        assert_eq!(
            range_sql(&columns, &KeyRange::default(), 1, Dialect::DuckDb).predicate,
            "true"
        );
        let below = KeyRange {
            from: None,
            to: range.to.clone(),
        };
        assert_eq!(
            range_sql(&columns, &below, 1, Dialect::DuckDb).predicate,
            "(\"a\" < CAST($1 AS bigint) OR (\"a\" = CAST($1 AS bigint) AND \"b\" < CAST($2 AS text)))"
        );
    }
}
