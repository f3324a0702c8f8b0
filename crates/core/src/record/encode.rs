//! Arrow rows to exact JSON records (the table in the module doc).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Number, Value};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{
    DataType, Date32Type, Field, Float16Type, Float32Type, Float64Type, Int8Type, Int16Type,
    Int32Type, Int64Type, IntervalMonthDayNanoType, IntervalUnit, Time32MillisecondType,
    Time32SecondType, Time64MicrosecondType, Time64NanosecondType, TimeUnit,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow::util::display::array_value_to_string;

use crate::catalog::{UUID_EXTENSION, is_json_field};
use crate::error::{Error, Result};

/// Each row of `batch` as a JSON object with every column (NULLs as `null`).
pub fn encode(batch: &RecordBatch) -> Result<Vec<Value>> {
    let schema = batch.schema();
    let mut rows = vec![Map::new(); batch.num_rows()];
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        for (row, record) in rows.iter_mut().enumerate() {
            record.insert(field.name().clone(), value(field, column.as_ref(), row)?);
        }
    }
    Ok(rows.into_iter().map(Value::Object).collect())
}

/// One value of `column` (of `field`) at `row`.
fn value(field: &Field, column: &dyn Array, row: usize) -> Result<Value> {
    if column.is_null(row) {
        return Ok(Value::Null);
    }
    Ok(match column.data_type() {
        DataType::Boolean => Value::Bool(column.as_boolean().value(row)),
        DataType::Int8 => column.as_primitive::<Int8Type>().value(row).into(),
        DataType::Int16 => column.as_primitive::<Int16Type>().value(row).into(),
        DataType::Int32 => column.as_primitive::<Int32Type>().value(row).into(),
        DataType::Int64 => column.as_primitive::<Int64Type>().value(row).into(),
        DataType::UInt8 => column.as_primitive::<UInt8Type>().value(row).into(),
        DataType::UInt16 => column.as_primitive::<UInt16Type>().value(row).into(),
        DataType::UInt32 => column.as_primitive::<UInt32Type>().value(row).into(),
        DataType::UInt64 => column.as_primitive::<UInt64Type>().value(row).into(),
        DataType::Float16 => float(column.as_primitive::<Float16Type>().value(row).to_f64()),
        DataType::Float32 => float(f64::from(column.as_primitive::<Float32Type>().value(row))),
        DataType::Float64 => float(column.as_primitive::<Float64Type>().value(row)),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let text = array_value_to_string(column, row).map_err(render)?;
            match is_json_field(field) {
                true => serde_json::from_str(&text).unwrap_or(Value::String(text)),
                false => Value::String(text),
            }
        }
        DataType::Binary => Value::String(BASE64.encode(column.as_binary::<i32>().value(row))),
        DataType::LargeBinary => Value::String(BASE64.encode(column.as_binary::<i64>().value(row))),
        DataType::FixedSizeBinary(_) => {
            let bytes = column.as_fixed_size_binary().value(row);
            match field.extension_type_name() == Some(UUID_EXTENSION) && bytes.len() == 16 {
                true => Value::String(uuid_text(bytes)),
                false => Value::String(BASE64.encode(bytes)),
            }
        }
        DataType::Date32 => {
            let days = column.as_primitive::<Date32Type>().value(row);
            match days {
                i32::MAX => "infinity".into(),
                d if d == -i32::MAX => "-infinity".into(),
                d => d
                    .checked_add(719_163)
                    .and_then(chrono::NaiveDate::from_num_days_from_ce_opt)
                    .filter(|date| (0..=9999).contains(&chrono::Datelike::year(date)))
                    .map_or(Value::from(d), |date| date.to_string().into()),
            }
        }
        DataType::Timestamp(unit, zone) => {
            let raw = match unit {
                TimeUnit::Second => column.as_primitive::<TimestampSecondType>().value(row),
                TimeUnit::Millisecond => {
                    column.as_primitive::<TimestampMillisecondType>().value(row)
                }
                TimeUnit::Microsecond => {
                    column.as_primitive::<TimestampMicrosecondType>().value(row)
                }
                TimeUnit::Nanosecond => column.as_primitive::<TimestampNanosecondType>().value(row),
            };
            timestamp(raw, *unit, zone.is_some())
        }
        DataType::Time32(TimeUnit::Second) => {
            time(i64::from(column.as_primitive::<Time32SecondType>().value(row)) * 1_000_000_000)
        }
        DataType::Time32(_) => {
            time(i64::from(column.as_primitive::<Time32MillisecondType>().value(row)) * 1_000_000)
        }
        DataType::Time64(TimeUnit::Microsecond) => {
            time(column.as_primitive::<Time64MicrosecondType>().value(row) * 1_000)
        }
        DataType::Time64(_) => time(column.as_primitive::<Time64NanosecondType>().value(row)),
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            let v = column.as_primitive::<IntervalMonthDayNanoType>().value(row);
            let sign = if v.nanoseconds < 0 { "-" } else { "" };
            let nanos = v.nanoseconds.unsigned_abs();
            format!(
                "P{}M{}DT{sign}{}.{:09}S",
                v.months,
                v.days,
                nanos / 1_000_000_000,
                nanos % 1_000_000_000
            )
            .into()
        }
        DataType::List(item) | DataType::LargeList(item) => {
            let values = match column.data_type() {
                DataType::List(_) => column.as_list::<i32>().value(row),
                _ => column.as_list::<i64>().value(row),
            };
            Value::Array(
                (0..values.len())
                    .map(|i| value(item, values.as_ref(), i))
                    .collect::<Result<_>>()?,
            )
        }
        DataType::Struct(fields) => {
            let parts = column.as_struct();
            let mut object = Map::new();
            for (i, inner) in fields.iter().enumerate() {
                object.insert(
                    inner.name().clone(),
                    value(inner, parts.column(i).as_ref(), row)?,
                );
            }
            Value::Object(object)
        }
        // Decimals (every digit) and anything else, as Arrow prints it.
        _ => Value::String(array_value_to_string(column, row).map_err(render)?),
    })
}

fn render(e: arrow::error::ArrowError) -> Error {
    Error::bug("rendering a record as JSON").caused_by(e)
}

fn float(x: f64) -> Value {
    match Number::from_f64(x) {
        Some(n) => Value::Number(n),
        None if x.is_nan() => "NaN".into(),
        None if x > 0.0 => "Infinity".into(),
        None => "-Infinity".into(),
    }
}

/// 16 bytes as a UUID's hyphenated lower-case text.
pub fn uuid_text(b: &[u8]) -> String {
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Nanoseconds since midnight as `HH:MM:SS.fffffffff`.
fn time(nanos: i64) -> Value {
    let secs = nanos.div_euclid(1_000_000_000);
    format!(
        "{:02}:{:02}:{:02}.{:09}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        nanos.rem_euclid(1_000_000_000)
    )
    .into()
}

fn timestamp(raw: i64, unit: TimeUnit, zoned: bool) -> Value {
    match raw {
        i64::MAX => return "infinity".into(),
        r if r == -i64::MAX => return "-infinity".into(),
        _ => {}
    }
    let per_sec: i64 = match unit {
        TimeUnit::Second => 1,
        TimeUnit::Millisecond => 1_000,
        TimeUnit::Microsecond => 1_000_000,
        TimeUnit::Nanosecond => 1_000_000_000,
    };
    let nanos = raw.rem_euclid(per_sec) * (1_000_000_000 / per_sec);
    let at = chrono::DateTime::from_timestamp(raw.div_euclid(per_sec), nanos as u32)
        .filter(|t| (0..=9999).contains(&chrono::Datelike::year(t)));
    match at {
        Some(t) if zoned => t.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string().into(),
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.9f").to_string().into(),
        None => raw.into(),
    }
}
