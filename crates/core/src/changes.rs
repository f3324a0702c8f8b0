//! Change detection that every destination shares, computed on the Arrow batch before it
//! is staged: `_elt_row_hash` (history: has the row changed?) and `_elt_deleted` (does the
//! soft-delete column mark the row deleted?).
//!
//! The row hash is the MD5 of a canonical encoding of the row's values, defined here from
//! Arrow's memory layout (not from any database's text rendering), so it is the same in
//! every destination and across elt and database upgrades. Only non-NULL values enter it,
//! each with its column name, in column-name order: a new column that is NULL, or a column
//! order change, leaves the hash of an unchanged row unchanged. What it does not do: it
//! never decides what a change means; the destinations' SQL does.
//!
//! Also here: the metadata columns each write mode gives raw tables ([`meta_columns`]), so
//! every destination names them alike.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, StringArray, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use md5::{Digest, Md5};

use crate::WriteMode;
use crate::catalog::ConfiguredStream;
use crate::error::{Error, Result};

/// The staged column holding each row's hash (history only).
pub const ROW_HASH: &str = "_elt_row_hash";
/// The staged column saying whether the soft-delete column marks the row deleted.
pub const DELETED: &str = "_elt_deleted";

/// The type of a metadata column, which each destination maps to its own SQL type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaKind {
    /// A timestamp with time zone (UTC).
    Timestamp,
    /// A UUID.
    Uuid,
    /// A boolean.
    Boolean,
    /// Text.
    Text,
}

/// A metadata column of raw tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetaColumn {
    /// Its name (always `_elt_` something).
    pub name: &'static str,
    /// Its type.
    pub kind: MetaKind,
    /// Whether it may be NULL.
    pub nullable: bool,
}

const fn meta(name: &'static str, kind: MetaKind, nullable: bool) -> MetaColumn {
    MetaColumn {
        name,
        kind,
        nullable,
    }
}

/// The run's start time, the same on every row of the run.
pub const EXTRACTED_AT: &str = "_elt_extracted_at";
/// The run's id.
pub const RUN_ID: &str = "_elt_run_id";
/// Merge: when elt saw the row deleted in the source (NULL while it exists).
pub const DELETED_AT: &str = "_elt_deleted_at";
/// History: the run start from which the version holds.
pub const VALID_FROM: &str = "_elt_valid_from";
/// History: the run start at which the version stopped holding (NULL while current).
pub const VALID_TO: &str = "_elt_valid_to";
/// History: whether this is the key's current version.
pub const IS_CURRENT: &str = "_elt_is_current";

/// The metadata columns a raw table of `mode` carries after the source's columns.
pub fn meta_columns(mode: WriteMode) -> Vec<MetaColumn> {
    use MetaKind as K;
    let mut columns = vec![
        meta(EXTRACTED_AT, K::Timestamp, false),
        meta(RUN_ID, K::Uuid, false),
    ];
    match mode {
        WriteMode::Merge | WriteMode::Previous => {
            columns.push(meta(DELETED_AT, K::Timestamp, true))
        }
        WriteMode::History => columns.extend([
            meta(VALID_FROM, K::Timestamp, false),
            meta(VALID_TO, K::Timestamp, true),
            meta(IS_CURRENT, K::Boolean, false),
            meta(ROW_HASH, K::Text, false),
        ]),
        WriteMode::Append | WriteMode::Overwrite => {}
    }
    columns
}

/// The columns [`with_change_columns`] adds for `stream`: `_elt_deleted` (keyed modes)
/// and `_elt_row_hash` (history).
pub fn change_fields(stream: &ConfiguredStream) -> Vec<Field> {
    let mut fields = Vec::new();
    if stream.write_mode.is_keyed() {
        fields.push(Field::new(DELETED, DataType::Boolean, false));
    }
    if stream.write_mode == WriteMode::History {
        fields.push(Field::new(ROW_HASH, DataType::Utf8, false));
    }
    fields
}

/// The batch with the columns of [`change_fields`] appended.
pub fn with_change_columns(batch: RecordBatch, stream: &ConfiguredStream) -> Result<RecordBatch> {
    let fields = change_fields(stream);
    if fields.is_empty() {
        return Ok(batch);
    }
    let mut columns = batch.columns().to_vec();
    for field in &fields {
        columns.push(if field.name() == DELETED {
            deleted_flags(&batch, stream.deletes.soft_delete_column.as_deref())?
        } else {
            Arc::new(row_hashes(&batch)?) as ArrayRef
        });
    }
    let mut all: Vec<Field> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    all.extend(fields);
    RecordBatch::try_new(Arc::new(Schema::new(all)), columns)
        .map_err(|e| Error::bug("adding the change columns").caused_by(e))
}

/// Whether each row is marked deleted: the column is not NULL and not `false`; for the
/// change column `_elt_op` of cdc streams, whether it says `delete`.
fn deleted_flags(batch: &RecordBatch, column: Option<&str>) -> Result<ArrayRef> {
    let rows = batch.num_rows();
    let Some(name) = column else {
        return Ok(Arc::new(BooleanArray::from(vec![false; rows])));
    };
    let values = batch.column_by_name(name).ok_or_else(|| {
        Error::config(format!(
            "`soft_delete`: the stream has no column {name:?}; name one of its columns"
        ))
    })?;
    let flags: BooleanArray = match values.data_type() {
        DataType::Utf8 if name == crate::cdc::OP => values
            .as_string::<i32>()
            .iter()
            .map(|v| Some(v == Some(crate::cdc::DELETE)))
            .collect(),
        DataType::Boolean => values
            .as_boolean()
            .iter()
            .map(|v| Some(v.unwrap_or(false)))
            .collect(),
        _ => (0..rows).map(|i| Some(values.is_valid(i))).collect(),
    };
    Ok(Arc::new(flags))
}

/// The MD5 (32 hex digits) of each row's canonical encoding.
pub fn row_hashes(batch: &RecordBatch) -> Result<StringArray> {
    let rows = batch.num_rows();
    let mut encoded: Vec<Vec<u8>> = vec![Vec::new(); rows];
    let schema = batch.schema();
    let mut order: Vec<usize> = (0..schema.fields().len()).collect();
    order.sort_by(|a, b| schema.field(*a).name().cmp(schema.field(*b).name()));
    for index in order {
        let name = schema.field(index).name().as_bytes();
        let column = batch.column(index);
        // Fixed-width values are read straight from the buffer (what `encode` does, once
        // per column instead of once per value).
        let data = column.to_data();
        let fixed = column
            .data_type()
            .primitive_width()
            .filter(|_| column.data_type().is_primitive())
            .map(|width| (data.buffers()[0].as_slice(), width, data.offset()));
        for (row, out) in encoded.iter_mut().enumerate() {
            if column.is_null(row) {
                continue;
            }
            out.extend_from_slice(&(name.len() as u64).to_le_bytes());
            out.extend_from_slice(name);
            if let Some((values, width, offset)) = fixed {
                let start = (offset + row) * width;
                out.extend_from_slice(&values[start..start + width]);
                continue;
            }
            encode(column.as_ref(), row, out).map_err(|why| {
                Error::data(format!(
                    "column {}: cannot hash a value of Arrow type {} ({why})",
                    schema.field(index).name(),
                    column.data_type()
                ))
            })?;
        }
    }
    let mut hashes = StringBuilder::with_capacity(rows, rows * 32);
    for bytes in &encoded {
        hashes.append_value(hex(&Md5::digest(bytes)));
    }
    Ok(hashes.finish())
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

/// Appends the canonical encoding of the non-NULL value at `row`: fixed-width values as
/// their little-endian bytes, variable-width ones length-prefixed, nested ones element by
/// element with a NULL marker.
fn encode(array: &dyn Array, row: usize, out: &mut Vec<u8>) -> Result<(), String> {
    let with_len = |out: &mut Vec<u8>, bytes: &[u8]| {
        out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        out.extend_from_slice(bytes);
    };
    match array.data_type() {
        DataType::Boolean => out.push(array.as_boolean().value(row) as u8),
        DataType::Utf8 => with_len(out, array.as_string::<i32>().value(row).as_bytes()),
        DataType::LargeUtf8 => with_len(out, array.as_string::<i64>().value(row).as_bytes()),
        DataType::Utf8View => with_len(out, array.as_string_view().value(row).as_bytes()),
        DataType::Binary => with_len(out, array.as_binary::<i32>().value(row)),
        DataType::LargeBinary => with_len(out, array.as_binary::<i64>().value(row)),
        DataType::BinaryView => with_len(out, array.as_binary_view().value(row)),
        DataType::FixedSizeBinary(_) => {
            out.extend_from_slice(array.as_fixed_size_binary().value(row))
        }
        DataType::List(_) => encode_all(array.as_list::<i32>().value(row).as_ref(), out)?,
        DataType::LargeList(_) => encode_all(array.as_list::<i64>().value(row).as_ref(), out)?,
        DataType::Struct(_) => {
            for child in array.as_struct().columns() {
                encode_nullable(child.as_ref(), row, out)?;
            }
        }
        DataType::Null => {}
        t if t.is_primitive() => {
            let width = t.primitive_width().ok_or("no fixed width")?;
            let data = array.to_data();
            let start = (data.offset() + row) * width;
            out.extend_from_slice(&data.buffers()[0].as_slice()[start..start + width]);
        }
        other => return Err(format!("{other} is not supported")),
    }
    Ok(())
}

fn encode_all(array: &dyn Array, out: &mut Vec<u8>) -> Result<(), String> {
    out.extend_from_slice(&(array.len() as u64).to_le_bytes());
    (0..array.len()).try_for_each(|i| encode_nullable(array, i, out))
}

fn encode_nullable(array: &dyn Array, row: usize, out: &mut Vec<u8>) -> Result<(), String> {
    if array.is_null(row) {
        out.push(0);
        return Ok(());
    }
    out.push(1);
    encode(array, row, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int32Array, Int64Array, ListArray};
    use arrow::datatypes::Int32Type;

    fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
        RecordBatch::try_from_iter(columns).unwrap()
    }

    fn hashes(b: &RecordBatch) -> Vec<String> {
        row_hashes(b)
            .unwrap()
            .iter()
            .map(|h| h.unwrap().to_owned())
            .collect()
    }

    #[test]
    fn equal_rows_hash_equal_and_any_change_shows() {
        let b = batch(vec![
            (
                "id",
                Arc::new(Int64Array::from(vec![1, 1, 1, 2])) as ArrayRef,
            ),
            (
                "name",
                Arc::new(StringArray::from(vec![
                    Some("a"),
                    Some("a"),
                    None,
                    Some("a"),
                ])),
            ),
        ]);
        let h = hashes(&b);
        assert_eq!(h[0], h[1]);
        assert_ne!(h[0], h[2], "a value turning NULL is a change");
        assert_ne!(h[0], h[3]);
        assert_eq!(h[0].len(), 32);
    }

    #[test]
    fn column_order_and_new_null_columns_do_not_matter() {
        let id: ArrayRef = Arc::new(Int64Array::from(vec![7]));
        let name: ArrayRef = Arc::new(StringArray::from(vec!["x"]));
        let a = batch(vec![("id", id.clone()), ("name", name.clone())]);
        let b = batch(vec![
            ("name", name),
            ("added", Arc::new(Int32Array::from(vec![None]))),
            ("id", id),
        ]);
        assert_eq!(hashes(&a), hashes(&b));
    }

    #[test]
    fn values_do_not_bleed_across_columns_or_list_elements() {
        let a = batch(vec![
            ("a", Arc::new(StringArray::from(vec!["xy"])) as ArrayRef),
            ("b", Arc::new(StringArray::from(vec![""]))),
        ]);
        let b = batch(vec![
            ("a", Arc::new(StringArray::from(vec!["x"])) as ArrayRef),
            ("b", Arc::new(StringArray::from(vec!["y"]))),
        ]);
        assert_ne!(hashes(&a), hashes(&b));
        let lists = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
            Some(vec![Some(1), None]),
            Some(vec![Some(1)]),
            Some(vec![None, Some(1)]),
        ]);
        let h = hashes(&batch(vec![("l", Arc::new(lists) as ArrayRef)]));
        assert_ne!(h[0], h[1]);
        assert_ne!(h[0], h[2]);
    }

    #[test]
    fn a_sliced_batch_hashes_like_the_whole() {
        let b = batch(vec![(
            "id",
            Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef,
        )]);
        assert_eq!(hashes(&b)[1..], hashes(&b.slice(1, 2))[..]);
    }
}
