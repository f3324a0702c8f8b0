//! Hard-delete detection for sources without change data capture: the shapes that a
//! reconciliation exchanges with a source and a destination about one stream's primary
//! keys.
//!
//! Keys travel as text (one string per key column), ranges are half-open `[from, to)` in
//! the key's order (text in byte order), and a range's digest is its key count plus the
//! sum, as decimal text, of the first 60 bits (15 hex digits) of the MD5 of each key's
//! text: the key columns cast to text and joined by U+001F. Equal on both sides exactly
//! when the same keys are there (up to hash collisions). Only key columns whose text form
//! PostgreSQL and DuckDB agree on can be compared this way: integers, text, UUIDs and dates
//! ([`check_key_types`]).
//!
//! What is not here: the SQL of each database, which lives beside the code that runs it
//! (`elt_postgres::key_ranges`, the DuckDB destination's `key_ranges.rs`), and the
//! algorithm that descends into differing ranges (the runner).

use arrow::datatypes::DataType;

use crate::catalog::{ConfiguredStream, is_uuid_field};
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

/// The raw-table rows that count as present in the source: merge rows not marked deleted,
/// history's current versions. Other write modes cannot be reconciled.
pub fn live_rows(stream: &ConfiguredStream) -> Result<&'static str> {
    stream.write_mode.live_rows().ok_or_else(|| {
        Error::config(format!(
            "stream {}: reconciling deletes needs write mode merge, previous or history, not {}",
            stream.name(),
            stream.write_mode
        ))
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_points_take_evenly_spaced_keys() {
        let sample: Vec<Key> = (0..100).map(|i| vec![i.to_string()]).collect();
        let cuts = cut_points(sample, 4);
        assert_eq!(
            cuts,
            [vec!["25".to_owned()], vec!["50".into()], vec!["75".into()]]
        );
        assert!(cut_points(vec![vec!["only".into()]], 4).is_empty());
    }
}
