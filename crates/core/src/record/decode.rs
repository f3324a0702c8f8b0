//! JSON records to an Arrow batch of a given schema (the table in the module doc), for
//! replaying dead letters. A value that does not fit its column is an error naming both.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::Value;

use arrow::array::{
    ArrayRef, BinaryArray, BooleanArray, FixedSizeBinaryArray, IntervalMonthDayNanoArray,
    LargeBinaryArray, PrimitiveArray, RecordBatch, StringArray, new_null_array,
};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Date32Type, Field, Float32Type, Float64Type, Int8Type, Int16Type,
    Int32Type, Int64Type, IntervalMonthDayNano, IntervalUnit, Schema, SchemaRef, UInt8Type,
    UInt16Type, UInt32Type, UInt64Type,
};

use crate::batch::{FlushPolicy, JsonBatcher};
use crate::catalog::is_json_field;

type Decoded<T> = std::result::Result<T, String>;

/// `records` as one batch of `schema`; a field a record lacks is NULL.
pub fn decode(schema: &SchemaRef, records: &[Value]) -> Decoded<RecordBatch> {
    let columns = schema
        .fields()
        .iter()
        .map(|field| {
            let values: Vec<&Value> = records
                .iter()
                .map(|r| r.get(field.name()).unwrap_or(&Value::Null))
                .collect();
            column(field, &values).map_err(|why| format!("{}: {why}", field.name()))
        })
        .collect::<Decoded<Vec<ArrayRef>>>()?;
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| e.to_string())
}

fn column(field: &Field, values: &[&Value]) -> Decoded<ArrayRef> {
    if values.iter().all(|v| v.is_null()) {
        return Ok(new_null_array(field.data_type(), values.len()));
    }
    Ok(match field.data_type() {
        DataType::Boolean => Arc::new(BooleanArray::from(
            values
                .iter()
                .map(|v| nullable(v, boolean))
                .collect::<Decoded<Vec<_>>>()?,
        )),
        DataType::Int8 => integers::<Int8Type>(values)?,
        DataType::Int16 => integers::<Int16Type>(values)?,
        DataType::Int32 => integers::<Int32Type>(values)?,
        DataType::Int64 => integers::<Int64Type>(values)?,
        DataType::UInt8 => integers::<UInt8Type>(values)?,
        DataType::UInt16 => integers::<UInt16Type>(values)?,
        DataType::UInt32 => integers::<UInt32Type>(values)?,
        DataType::UInt64 => integers::<UInt64Type>(values)?,
        DataType::Float32 => floats::<Float32Type>(values, |x| x as f32)?,
        DataType::Float64 => floats::<Float64Type>(values, |x| x)?,
        // A JSON column's value is JSON text, a JSON string included (`"text"`).
        DataType::Utf8 if is_json_field(field) => Arc::new(StringArray::from(
            values
                .iter()
                .map(|v| (!v.is_null()).then(|| v.to_string()))
                .collect::<Vec<_>>(),
        )),
        DataType::Utf8 => Arc::new(StringArray::from(
            values.iter().map(|v| text_of(v)).collect::<Vec<_>>(),
        )),
        DataType::Binary | DataType::LargeBinary => {
            let bytes = values
                .iter()
                .map(|v| nullable(v, base64))
                .collect::<Decoded<Vec<_>>>()?;
            let refs: Vec<Option<&[u8]>> = bytes.iter().map(|b| b.as_deref()).collect();
            match field.data_type() {
                DataType::Binary => Arc::new(BinaryArray::from(refs)),
                _ => Arc::new(LargeBinaryArray::from(refs)),
            }
        }
        DataType::FixedSizeBinary(width) => {
            let bytes = values
                .iter()
                .map(|v| nullable(v, fixed))
                .collect::<Decoded<Vec<_>>>()?;
            Arc::new(
                FixedSizeBinaryArray::try_from_sparse_iter_with_size(bytes.into_iter(), *width)
                    .map_err(|e| e.to_string())?,
            )
        }
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            Arc::new(IntervalMonthDayNanoArray::from(
                values
                    .iter()
                    .map(|v| nullable(v, interval))
                    .collect::<Decoded<Vec<_>>>()?,
            ))
        }
        DataType::Date32 => Arc::new(PrimitiveArray::<Date32Type>::from(
            values
                .iter()
                .map(|v| temporal(v, field.data_type(), i64::from(i32::MAX)))
                .map(|r| r.map(|o| o.map(|x| x as i32)))
                .collect::<Decoded<Vec<_>>>()?,
        )),
        DataType::Timestamp(..) | DataType::Time32(_) | DataType::Time64(_) => {
            let raw = values
                .iter()
                .map(|v| temporal(v, field.data_type(), i64::MAX))
                .collect::<Decoded<Vec<_>>>()?;
            let raw: ArrayRef = Arc::new(PrimitiveArray::<Int64Type>::from(raw));
            let raw = match field.data_type() {
                DataType::Time32(_) => cast(&raw, &DataType::Int32)?,
                _ => raw,
            };
            cast(&raw, field.data_type())?
        }
        DataType::Decimal128(..) | DataType::Decimal256(..) => {
            let texts: ArrayRef = Arc::new(StringArray::from(
                values.iter().map(|v| text_of(v)).collect::<Vec<_>>(),
            ));
            cast(&texts, field.data_type())?
        }
        // Lists, structs and the rest: arrow-json's decoder, one column at a time.
        _ => nested(field, values)?,
    })
}

fn nullable<T>(v: &Value, parse: impl Fn(&Value) -> Decoded<T>) -> Decoded<Option<T>> {
    if v.is_null() {
        Ok(None)
    } else {
        parse(v).map(Some)
    }
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        // A number or boolean an API sent for a text column.
        other => Some(other.to_string()),
    }
}

fn boolean(v: &Value) -> Decoded<bool> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s == "true" || s == "false" => Ok(s == "true"),
        other => Err(format!("{other} is not a boolean")),
    }
}

fn integers<T: ArrowPrimitiveType>(values: &[&Value]) -> Decoded<ArrayRef>
where
    T::Native: TryFrom<i128>,
{
    let parsed = values
        .iter()
        .map(|v| {
            nullable(v, |v| {
                let text = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
                    other => return Err(format!("{other} is not an integer")),
                };
                text.parse::<i128>()
                    .ok()
                    .and_then(|n| T::Native::try_from(n).ok())
                    .ok_or_else(|| format!("{text} does not fit {}", T::DATA_TYPE))
            })
        })
        .collect::<Decoded<Vec<_>>>()?;
    Ok(Arc::new(PrimitiveArray::<T>::from_iter(parsed)))
}

fn floats<T: ArrowPrimitiveType>(
    values: &[&Value],
    to: impl Fn(f64) -> T::Native,
) -> Decoded<ArrayRef> {
    let parsed = values
        .iter()
        .map(|v| {
            nullable(v, |v| match v {
                Value::Number(n) => n.as_f64().ok_or_else(|| format!("{n} is not a number")),
                // "NaN", "Infinity", "-Infinity" (and Rust's other spellings).
                Value::String(s) => s
                    .parse::<f64>()
                    .map_err(|_| format!("{s:?} is not a number")),
                other => Err(format!("{other} is not a number")),
            })
            .map(|x| x.map(&to))
        })
        .collect::<Decoded<Vec<_>>>()?;
    Ok(Arc::new(PrimitiveArray::<T>::from_iter(parsed)))
}

fn base64(v: &Value) -> Decoded<Vec<u8>> {
    let text = v
        .as_str()
        .ok_or_else(|| format!("{v} is not base64 text"))?;
    BASE64
        .decode(text)
        .map_err(|e| format!("{text:?} is not base64: {e}"))
}

/// A UUID's text, or base64.
fn fixed(v: &Value) -> Decoded<Vec<u8>> {
    let text = v.as_str().ok_or_else(|| format!("{v} is not text"))?;
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    if hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return (0..16)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|e| e.to_string()))
            .collect();
    }
    base64(v)
}

/// `P{months}M{days}DT{seconds}.{nanos}S`, each part signed.
fn interval(v: &Value) -> Decoded<IntervalMonthDayNano> {
    let text = v
        .as_str()
        .ok_or_else(|| format!("{v} is not an interval"))?;
    let bad = || format!("{text:?} is not an interval (P1M2DT3.000000004S)");
    let rest = text.strip_prefix('P').ok_or_else(bad)?;
    let (months, rest) = rest.split_once('M').ok_or_else(bad)?;
    let (days, rest) = rest.split_once("DT").ok_or_else(bad)?;
    let secs = rest.strip_suffix('S').ok_or_else(bad)?;
    let (negative, secs) = match secs.strip_prefix('-') {
        Some(s) => (true, s),
        None => (false, secs),
    };
    let (whole, fraction) = secs.split_once('.').unwrap_or((secs, "0"));
    let fraction = format!("{fraction:0<9}");
    let nanos = whole
        .parse::<i64>()
        .ok()
        .and_then(|s| s.checked_mul(1_000_000_000))
        .and_then(|s| s.checked_add(fraction.get(..9)?.parse::<i64>().ok()?))
        .ok_or_else(bad)?;
    Ok(IntervalMonthDayNano::new(
        months.parse().map_err(|_| bad())?,
        days.parse().map_err(|_| bad())?,
        if negative { -nanos } else { nanos },
    ))
}

/// A date, timestamp or time as its raw count (days or time units since 1970, or since
/// midnight): ±`infinity` as ±`max`, a number as itself, text parsed by Arrow's cast.
fn temporal(v: &Value, to: &DataType, max: i64) -> Decoded<Option<i64>> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s == "infinity" => Ok(Some(max)),
        Value::String(s) if s == "-infinity" => Ok(Some(-max)),
        Value::Number(n) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| format!("{n} is not a count")),
        Value::String(s) => {
            let text: ArrayRef = Arc::new(StringArray::from(vec![s.as_str()]));
            let typed = cast(&text, to)?;
            let raw = cast(&typed, &DataType::Int64)?;
            Ok(Some(
                raw.as_any()
                    .downcast_ref::<PrimitiveArray<Int64Type>>()
                    .map_or(0, |a| a.value(0)),
            ))
        }
        other => Err(format!("{other} is not a {to}")),
    }
}

fn cast(array: &ArrayRef, to: &DataType) -> Decoded<ArrayRef> {
    let options = CastOptions {
        safe: false,
        ..Default::default()
    };
    cast_with_options(array, to, &options).map_err(|e| e.to_string())
}

fn nested(field: &Field, values: &[&Value]) -> Decoded<ArrayRef> {
    let schema = Arc::new(Schema::new(vec![field.clone()]));
    let rows: Vec<Value> = values
        .iter()
        .map(|v| serde_json::json!({ field.name(): v }))
        .collect();
    let mut batcher = JsonBatcher::new(schema, FlushPolicy::rows(rows.len().max(1)))
        .map_err(|e| e.to_string())?;
    let mut batches = batcher.push_values(&rows).map_err(|e| e.to_string())?;
    batches.extend(batcher.flush().map_err(|e| e.to_string())?);
    let arrays: Vec<ArrayRef> = batches.iter().map(|b| b.column(0).clone()).collect();
    let refs: Vec<&dyn arrow::array::Array> = arrays.iter().map(|a| a.as_ref()).collect();
    arrow::compute::concat(&refs).map_err(|e| e.to_string())
}
