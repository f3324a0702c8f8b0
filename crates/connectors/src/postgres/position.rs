//! Keyset positions: which columns order an incremental read, and how a row's cursor and
//! key become state JSON (and text for `set_config`) in the source's own precision.

use elt_core::StreamState;
use elt_core::arrow::array::{Array, ArrayRef, AsArray};
use elt_core::arrow::datatypes::{
    DataType, Date32Type, Int16Type, Int32Type, Int64Type, TimeUnit, TimestampMicrosecondType,
};
use elt_core::arrow::record_batch::RecordBatch;
use elt_core::state::timestamp_cursor;

use super::types::Column;

/// The keyset of an ordered read: the cursor column and the key columns (indexes into the
/// table's columns).
pub struct Keyset<'a> {
    /// The cursor column.
    pub cursor: (usize, &'a Column),
    /// The primary key columns.
    pub key: Vec<(usize, &'a Column)>,
}

/// A state value as the text `set_config` takes.
pub fn json_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The keyset position of a batch's last row.
pub fn last_row_state(batch: &RecordBatch, ks: &Keyset<'_>) -> Option<StreamState> {
    let row = batch.num_rows().checked_sub(1)?;
    let cursor = json_value(batch.column(ks.cursor.0), row)?;
    let key = ks
        .key
        .iter()
        .map(|(i, _)| json_value(batch.column(*i), row))
        .collect::<Option<Vec<_>>>()?;
    Some(StreamState::at(cursor, key))
}

/// One value in state form: integers as numbers, timestamps as RFC 3339 with
/// microseconds, everything else as PostgreSQL-parsable text. None for NULL.
fn json_value(array: &ArrayRef, row: usize) -> Option<serde_json::Value> {
    if array.is_null(row) {
        return None;
    }
    Some(match array.data_type() {
        DataType::Int16 => array.as_primitive::<Int16Type>().value(row).into(),
        DataType::Int32 => array.as_primitive::<Int32Type>().value(row).into(),
        DataType::Int64 => array.as_primitive::<Int64Type>().value(row).into(),
        DataType::Utf8 => array.as_string::<i32>().value(row).into(),
        DataType::Date32 => match array.as_primitive::<Date32Type>().value(row) {
            i32::MAX => "infinity".into(),
            d if d == -i32::MAX => "-infinity".into(),
            d => chrono::NaiveDate::from_num_days_from_ce_opt(d + 719_163)?
                .to_string()
                .into(),
        },
        DataType::Timestamp(TimeUnit::Microsecond, zone) => {
            match array.as_primitive::<TimestampMicrosecondType>().value(row) {
                i64::MAX => "infinity".into(),
                t if t == -i64::MAX => "-infinity".into(),
                t if zone.is_some() => timestamp_cursor(t),
                t => chrono::DateTime::from_timestamp_micros(t)?
                    .naive_utc()
                    .format("%Y-%m-%dT%H:%M:%S%.6f")
                    .to_string()
                    .into(),
            }
        }
        DataType::FixedSizeBinary(16) => {
            let b = array.as_fixed_size_binary().value(row);
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            format!(
                "{}-{}-{}-{}-{}",
                &hex[..8],
                &hex[8..12],
                &hex[12..16],
                &hex[16..20],
                &hex[20..]
            )
            .into()
        }
        _ => elt_core::arrow::util::display::array_value_to_string(array, row)
            .ok()?
            .into(),
    })
}
