//! Binary values of each PostgreSQL type (the `COPY ... (FORMAT binary)` encodings) into
//! typed Arrow builders: integers, floats, numeric to Decimal128, text, JSON and JSONB,
//! bytea, dates and times (PostgreSQL's 2000 epoch, ±infinity kept), intervals, UUIDs and
//! one-dimensional arrays.

use std::sync::Arc;

use elt_core::arrow::array::builder::NullBufferBuilder;
use elt_core::arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder,
    FixedSizeBinaryBuilder, Float32Builder, Float64Builder, Int16Builder, Int32Builder,
    Int64Builder, IntervalMonthDayNanoBuilder, ListArray, StringBuilder, Time64MicrosecondBuilder,
    TimestampMicrosecondBuilder,
};
use elt_core::arrow::buffer::OffsetBuffer;
use elt_core::arrow::datatypes::{IntervalMonthDayNano, SchemaRef};

use super::types::Kind;

/// Microseconds from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_US: i64 = 946_684_800_000_000;
/// Days from 1970-01-01 to 2000-01-01.
const PG_EPOCH_DAYS: i32 = 10_957;

/// A typed builder per column kind.
pub enum Builder {
    Bool(BooleanBuilder),
    Int16(Int16Builder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Float32(Float32Builder),
    Float64(Float64Builder),
    Decimal(Decimal128Builder, i8),
    Text(StringBuilder, bool),
    NumericText(StringBuilder),
    Bytea(BinaryBuilder),
    Date(Date32Builder),
    Time(Time64MicrosecondBuilder),
    Timestamp(TimestampMicrosecondBuilder),
    Interval(IntervalMonthDayNanoBuilder),
    Uuid(FixedSizeBinaryBuilder),
    List {
        item: Box<Builder>,
        offsets: Vec<i32>,
        nulls: NullBufferBuilder,
        field: Arc<elt_core::arrow::datatypes::Field>,
    },
}

fn be<const N: usize>(bytes: &[u8]) -> Result<[u8; N], String> {
    bytes
        .try_into()
        .map_err(|_| format!("expected {N} bytes, got {}", bytes.len()))
}

/// One builder per column of `schema`, whose first columns are of `kinds`.
pub fn builders(schema: &SchemaRef, kinds: &[Kind]) -> Vec<Builder> {
    kinds
        .iter()
        .zip(schema.fields())
        .map(|(k, f)| Builder::new(k, f.data_type()))
        .collect()
}

impl Builder {
    /// A builder for a column of `kind` with Arrow type `data_type`.
    pub fn new(kind: &Kind, data_type: &elt_core::arrow::datatypes::DataType) -> Self {
        match kind {
            Kind::Bool => Self::Bool(BooleanBuilder::new()),
            Kind::Int16 => Self::Int16(Int16Builder::new()),
            Kind::Int32 => Self::Int32(Int32Builder::new()),
            Kind::Int64 => Self::Int64(Int64Builder::new()),
            Kind::Float32 => Self::Float32(Float32Builder::new()),
            Kind::Float64 => Self::Float64(Float64Builder::new()),
            Kind::Decimal { scale, .. } => Self::Decimal(
                Decimal128Builder::new().with_data_type(data_type.clone()),
                *scale,
            ),
            Kind::Text | Kind::Json => Self::Text(StringBuilder::new(), false),
            Kind::Jsonb => Self::Text(StringBuilder::new(), true),
            Kind::NumericText => Self::NumericText(StringBuilder::new()),
            Kind::Bytea => Self::Bytea(BinaryBuilder::new()),
            Kind::Date => Self::Date(Date32Builder::new()),
            Kind::Time => Self::Time(Time64MicrosecondBuilder::new()),
            Kind::Timestamp | Kind::TimestampTz => Self::Timestamp(
                TimestampMicrosecondBuilder::new().with_data_type(data_type.clone()),
            ),
            Kind::Interval => Self::Interval(IntervalMonthDayNanoBuilder::new()),
            Kind::Uuid => Self::Uuid(FixedSizeBinaryBuilder::new(16)),
            Kind::List(item) => {
                let elt_core::arrow::datatypes::DataType::List(field) = data_type else {
                    unreachable!("a list kind always has a list type")
                };
                Self::List {
                    item: Box::new(Self::new(item, field.data_type())),
                    offsets: vec![0],
                    nulls: NullBufferBuilder::new(0),
                    field: field.clone(),
                }
            }
        }
    }

    /// Appends a NULL.
    pub fn append_null(&mut self) {
        match self {
            Self::Bool(b) => b.append_null(),
            Self::Int16(b) => b.append_null(),
            Self::Int32(b) => b.append_null(),
            Self::Int64(b) => b.append_null(),
            Self::Float32(b) => b.append_null(),
            Self::Float64(b) => b.append_null(),
            Self::Decimal(b, _) => b.append_null(),
            Self::Text(b, _) | Self::NumericText(b) => b.append_null(),
            Self::Bytea(b) => b.append_null(),
            Self::Date(b) => b.append_null(),
            Self::Time(b) => b.append_null(),
            Self::Timestamp(b) => b.append_null(),
            Self::Interval(b) => b.append_null(),
            Self::Uuid(b) => b.append_null(),
            Self::List { offsets, nulls, .. } => {
                offsets.push(*offsets.last().unwrap_or(&0));
                nulls.append_null();
            }
        }
    }

    /// Appends one binary value; the error says what was wrong with it.
    pub fn append(&mut self, v: &[u8]) -> Result<(), String> {
        match self {
            Self::Bool(b) => b.append_value(be::<1>(v)?[0] != 0),
            Self::Int16(b) => b.append_value(i16::from_be_bytes(be(v)?)),
            Self::Int32(b) => b.append_value(i32::from_be_bytes(be(v)?)),
            Self::Int64(b) => b.append_value(i64::from_be_bytes(be(v)?)),
            Self::Float32(b) => b.append_value(f32::from_be_bytes(be(v)?)),
            Self::Float64(b) => b.append_value(f64::from_be_bytes(be(v)?)),
            Self::Decimal(b, scale) => b.append_value(super::numeric::to_i128(v, *scale)?),
            Self::Text(b, jsonb) => {
                let body = if *jsonb {
                    v.get(1..).ok_or("empty jsonb value")?
                } else {
                    v
                };
                b.append_value(
                    std::str::from_utf8(body).map_err(|e| format!("invalid UTF-8: {e}"))?,
                );
            }
            Self::NumericText(b) => b.append_value(super::numeric::to_text(v)?),
            Self::Bytea(b) => b.append_value(v),
            Self::Date(b) => b.append_value(match i32::from_be_bytes(be(v)?) {
                // PostgreSQL's ±infinity become DuckDB's.
                i32::MAX => i32::MAX,
                i32::MIN => -i32::MAX,
                days => days.checked_add(PG_EPOCH_DAYS).ok_or_else(|| {
                    format!("the date {days} days after 2000-01-01 does not fit a 32-bit day count")
                })?,
            }),
            Self::Time(b) => b.append_value(i64::from_be_bytes(be(v)?)),
            Self::Timestamp(b) => b.append_value(timestamp(i64::from_be_bytes(be(v)?))?),
            Self::Interval(b) => {
                let v = be::<16>(v)?;
                let micros = i64::from_be_bytes(be(&v[..8])?);
                let days = i32::from_be_bytes(be(&v[8..12])?);
                let months = i32::from_be_bytes(be(&v[12..])?);
                let nanos = micros.checked_mul(1000).ok_or_else(|| {
                    format!(
                        "the interval {months} months {days} days {} hours has a time part beyond Arrow's ±2562047 hours (nanoseconds in 64 bits); \
                         select it as text (`col::text`) in a view, or keep its hours below that",
                        micros / 3_600_000_000
                    )
                })?;
                b.append_value(IntervalMonthDayNano::new(months, days, nanos));
            }
            Self::Uuid(b) => b.append_value(v).map_err(|e| e.to_string())?,
            Self::List {
                item,
                offsets,
                nulls,
                ..
            } => {
                let count = decode_array(v, item)?;
                offsets.push(offsets.last().unwrap_or(&0) + count);
                nulls.append_non_null();
            }
        }
        Ok(())
    }

    /// Hands over the column built so far.
    pub fn finish(&mut self) -> ArrayRef {
        match self {
            Self::Bool(b) => Arc::new(b.finish()),
            Self::Int16(b) => Arc::new(b.finish()),
            Self::Int32(b) => Arc::new(b.finish()),
            Self::Int64(b) => Arc::new(b.finish()),
            Self::Float32(b) => Arc::new(b.finish()),
            Self::Float64(b) => Arc::new(b.finish()),
            Self::Decimal(b, _) => Arc::new(b.finish()),
            Self::Text(b, _) | Self::NumericText(b) => Arc::new(b.finish()),
            Self::Bytea(b) => Arc::new(b.finish()),
            Self::Date(b) => Arc::new(b.finish()),
            Self::Time(b) => Arc::new(b.finish()),
            Self::Timestamp(b) => Arc::new(b.finish()),
            Self::Interval(b) => Arc::new(b.finish()),
            Self::Uuid(b) => Arc::new(b.finish()),
            Self::List {
                item,
                offsets,
                nulls,
                field,
            } => {
                let values = item.finish();
                let offsets = OffsetBuffer::new(std::mem::replace(offsets, vec![0]).into());
                Arc::new(ListArray::new(
                    field.clone(),
                    offsets,
                    values,
                    nulls.finish(),
                ))
            }
        }
    }
}

/// Microseconds since 2000 to microseconds since 1970; ±infinity kept. PostgreSQL reaches
/// the year 294276, Arrow's microseconds (and DuckDB) 294247-01-10: later instants are
/// an error, never a wrapped value.
fn timestamp(pg_micros: i64) -> Result<i64, String> {
    match pg_micros {
        i64::MAX => Ok(i64::MAX),
        i64::MIN => Ok(-i64::MAX),
        micros => micros.checked_add(PG_EPOCH_US).ok_or_else(|| {
            format!(
                "the timestamp {} years after 2000 is after 294247-01-10, the last instant Arrow and DuckDB hold in microseconds; \
                 select it as text (`col::text`) in a view",
                micros / 31_556_952_000_000
            )
        }),
    }
}

/// Decodes a one-dimensional binary array into `item`; returns the element count.
fn decode_array(v: &[u8], item: &mut Builder) -> Result<i32, String> {
    let word = |at: usize| {
        v.get(at..at + 4)
            .map(|b| i32::from_be_bytes(b.try_into().unwrap_or_default()))
    };
    let ndim = word(0).ok_or("truncated array")?;
    match ndim {
        0 => return Ok(0),
        1 => {}
        n => {
            return Err(format!(
                "{n}-dimensional arrays are not supported; select the column as text or JSON in a view"
            ));
        }
    }
    let count = word(12).ok_or("truncated array")?;
    let mut at = 20;
    for _ in 0..count {
        let len = word(at).ok_or("truncated array")?;
        at += 4;
        if len < 0 {
            item.append_null();
        } else {
            let end = at + len as usize;
            item.append(v.get(at..end).ok_or("truncated array element")?)?;
            at = end;
        }
    }
    Ok(count)
}
