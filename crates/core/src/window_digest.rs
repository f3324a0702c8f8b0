//! Window digests for `elt reconcile`: per backfill window, a row count and an
//! order-independent checksum that a source and a destination each compute in their own
//! SQL, so that no row leaves either database. The checksum is the sum of the first 60 bits
//! of the MD5 of each row's text; the text is the digested columns in one form both
//! databases print alike, joined by the unit separator, NULL as the record separator:
//!
//! - integers, booleans, dates and text: as the database prints them;
//! - timestamps: microseconds since the epoch (UTC);
//! - decimals: their digits without trailing fractional zeros (`12.50` and `12.5` agree).
//!
//! Columns of other types (floats, JSON, binary and UUIDs, lists, intervals, times) and hashed
//! columns are left out and named, so a report says what it could not compare.
//!
//! What it does not do: write the SQL (`elt_postgres::window_digest` and the DuckDB
//! destination do, each in its dialect) or pick the windows (`elt_runner::backfill`).

use arrow::datatypes::{DataType, Field};
use serde::Serialize;

use crate::catalog::{ConfiguredStream, is_json_field};
use crate::error::Result;
use crate::windows::CursorKind;

/// How one column enters a row's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestKind {
    /// As the database prints it.
    Text,
    /// Microseconds since the epoch.
    Micros,
    /// Digits without trailing fractional zeros.
    Decimal,
}

/// A column a window digest covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestColumn {
    /// The column's name in the stream.
    pub name: String,
    /// How it enters the row's text.
    pub kind: DigestKind,
}

/// One window's rows on one side.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WindowDigest {
    /// How many rows have their cursor in the window.
    pub rows: u64,
    /// The sum of their 60-bit row hashes, as decimal digits.
    pub checksum: String,
}

fn kind_of(field: &Field) -> Option<DigestKind> {
    match field.data_type() {
        _ if is_json_field(field) => None,
        t if t.is_integer() => Some(DigestKind::Text),
        DataType::Boolean | DataType::Date32 | DataType::Utf8 | DataType::LargeUtf8 => {
            Some(DigestKind::Text)
        }
        DataType::Timestamp(..) => Some(DigestKind::Micros),
        DataType::Decimal128(..) | DataType::Decimal256(..) => Some(DigestKind::Decimal),
        _ => None,
    }
}

/// The columns of `stream` a digest covers, and the names of those it leaves out.
pub fn digest_columns(stream: &ConfiguredStream) -> (Vec<DigestColumn>, Vec<String>) {
    let mut covered = Vec::new();
    let mut left_out = Vec::new();
    for field in stream.schema().fields() {
        let name = field.name().clone();
        match kind_of(field) {
            Some(kind) if !stream.hashed.contains(&name) => {
                covered.push(DigestColumn { name, kind })
            }
            _ => left_out.push(name),
        }
    }
    (covered, left_out)
}

/// The cursor column of `stream` and the SQL type its window bounds are cast to.
pub fn cursor_bound(stream: &ConfiguredStream) -> Result<(&Field, &'static str)> {
    let (field, kind) = crate::windows::cursor_kind(stream)?;
    let bound = match (kind, field.data_type()) {
        (CursorKind::Int, _) => "BIGINT",
        (CursorKind::Date, _) => "DATE",
        (CursorKind::Timestamp, DataType::Timestamp(_, Some(_))) => "TIMESTAMPTZ",
        (CursorKind::Timestamp, _) => "TIMESTAMP",
    };
    Ok((field, bound))
}

/// The condition on a raw table's rows that a window digest covers (the same SQL in
/// PostgreSQL and DuckDB): a merged table's rows not marked deleted.
pub fn live_rows(stream: &ConfiguredStream) -> String {
    match stream.write_mode {
        crate::WriteMode::Merge => format!("{} IS NULL", crate::changes::DELETED_AT),
        _ => "true".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{Schema, TimeUnit};

    #[test]
    fn floats_json_and_hashed_columns_are_left_out_by_name() {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new(
                "at",
                DataType::Timestamp(TimeUnit::Microsecond, None),
                false,
            ),
            Field::new("amount", DataType::Decimal128(12, 2), true),
            Field::new("ratio", DataType::Float64, true),
            crate::catalog::json_field("doc", true),
            Field::new("email", DataType::Utf8, true),
        ]);
        let mut stream = ConfiguredStream::with_defaults(crate::StreamDescriptor {
            name: "s".into(),
            schema: std::sync::Arc::new(schema),
            primary_key: vec![],
            cursor_candidates: vec![],
            append_only: false,
            delete_marker: None,
        });
        stream.hashed = vec!["email".into()];
        let (covered, left_out) = digest_columns(&stream);
        let kinds: Vec<_> = covered.iter().map(|c| (c.name.as_str(), c.kind)).collect();
        assert_eq!(
            kinds,
            [
                ("id", DigestKind::Text),
                ("at", DigestKind::Micros),
                ("amount", DigestKind::Decimal)
            ]
        );
        assert_eq!(left_out, ["ratio", "doc", "email"]);
        stream.cursor = Some("at".into());
        assert_eq!(cursor_bound(&stream).unwrap().1, "TIMESTAMP");
        stream.cursor = Some("email".into());
        assert!(cursor_bound(&stream).is_err());
    }
}
