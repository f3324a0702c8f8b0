//! Arrow types to PostgreSQL types, and names to PostgreSQL identifiers.
//!
//! Each column maps to a [`PgType`]; batches are first cast to that type's canonical Arrow
//! type (widening integers, microsecond time units), which `copy.rs` encodes. Types without
//! a lossless mapping (structs, maps, unions, wider decimals, nested lists) are refused by
//! name. Identifiers longer than PostgreSQL's 63 bytes are shortened deterministically: a
//! prefix and a hash of the whole name, so two long names never meet.

use std::sync::Arc;

use elt_core::arrow::datatypes::{DataType, Field, IntervalUnit, TimeUnit};
use elt_core::catalog::{is_json_field, is_uuid_field};
use elt_core::{Error, Result};

/// A column's PostgreSQL type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgType {
    /// boolean
    Bool,
    /// smallint (Int8, Int16, UInt8)
    Int16,
    /// integer (Int32, UInt16)
    Int32,
    /// bigint (Int64, UInt32)
    Int64,
    /// numeric(p, s) (decimals, and UInt64 as numeric(20, 0))
    Numeric { precision: u8, scale: i8 },
    /// real
    Float32,
    /// double precision
    Float64,
    /// text
    Text,
    /// jsonb (fields with the JSON extension type)
    Jsonb,
    /// bytea
    Bytea,
    /// uuid (fields with the UUID extension type)
    Uuid,
    /// date
    Date,
    /// time (microseconds)
    Time,
    /// timestamp without time zone (microseconds)
    Timestamp,
    /// timestamp with time zone (microseconds, stored as UTC)
    TimestampTz,
    /// interval
    Interval,
    /// a one-dimensional array
    Array(Box<PgType>),
}

impl PgType {
    /// The type of `field`, or a data error naming the column.
    pub fn of(field: &Field) -> Result<Self> {
        Self::of_type(field, false).map_err(|why| {
            Error::data(format!(
                "column {} has Arrow type {}, which the PostgreSQL destination cannot store \
                 ({why})",
                field.name(),
                field.data_type()
            ))
        })
    }

    fn of_type(field: &Field, in_list: bool) -> Result<Self, String> {
        use DataType as D;
        if is_json_field(field) {
            return Ok(Self::Jsonb);
        }
        if is_uuid_field(field) {
            return Ok(Self::Uuid);
        }
        Ok(match field.data_type() {
            D::Boolean => Self::Bool,
            D::Int8 | D::Int16 | D::UInt8 => Self::Int16,
            D::Int32 | D::UInt16 => Self::Int32,
            D::Int64 | D::UInt32 => Self::Int64,
            D::UInt64 => Self::Numeric {
                precision: 20,
                scale: 0,
            },
            D::Decimal32(p, s) | D::Decimal64(p, s) | D::Decimal128(p, s) => {
                if *s < 0 || *s as u8 > *p {
                    return Err(format!("scale {s} outside 0..={p}"));
                }
                Self::Numeric {
                    precision: *p,
                    scale: *s,
                }
            }
            D::Float32 => Self::Float32,
            D::Float64 => Self::Float64,
            D::Utf8 | D::LargeUtf8 | D::Utf8View => Self::Text,
            D::Binary | D::LargeBinary | D::BinaryView | D::FixedSizeBinary(_) => Self::Bytea,
            D::Date32 | D::Date64 => Self::Date,
            D::Time32(_) | D::Time64(TimeUnit::Microsecond) => Self::Time,
            D::Timestamp(TimeUnit::Nanosecond, _) | D::Time64(TimeUnit::Nanosecond) => {
                return Err("PostgreSQL keeps microseconds; emit microsecond values".into());
            }
            D::Timestamp(_, None) => Self::Timestamp,
            D::Timestamp(_, Some(_)) => Self::TimestampTz,
            D::Interval(IntervalUnit::MonthDayNano) => Self::Interval,
            D::List(item) | D::LargeList(item) if !in_list => {
                Self::Array(Box::new(Self::of_type(item, true)?))
            }
            D::List(_) | D::LargeList(_) => {
                return Err("lists of lists; emit them as JSON".into());
            }
            other => {
                return Err(format!(
                    "no PostgreSQL mapping for {other}; emit it as text or JSON"
                ));
            }
        })
    }

    /// The type in DDL.
    pub fn sql(&self) -> String {
        match self {
            Self::Bool => "boolean".into(),
            Self::Int16 => "smallint".into(),
            Self::Int32 => "integer".into(),
            Self::Int64 => "bigint".into(),
            Self::Numeric { precision, scale } => format!("numeric({precision},{scale})"),
            Self::Float32 => "real".into(),
            Self::Float64 => "double precision".into(),
            Self::Text => "text".into(),
            Self::Jsonb => "jsonb".into(),
            Self::Bytea => "bytea".into(),
            Self::Uuid => "uuid".into(),
            Self::Date => "date".into(),
            Self::Time => "time".into(),
            Self::Timestamp => "timestamp".into(),
            Self::TimestampTz => "timestamptz".into(),
            Self::Interval => "interval".into(),
            Self::Array(item) => format!("{}[]", item.sql()),
        }
    }

    /// The type as `format_type` prints it in the catalog, for comparing with an existing
    /// table.
    pub fn catalog_name(&self) -> String {
        match self {
            Self::Numeric { precision, scale } => format!("numeric({precision},{scale})"),
            Self::Time => "time without time zone".into(),
            Self::Timestamp => "timestamp without time zone".into(),
            Self::TimestampTz => "timestamp with time zone".into(),
            Self::Array(item) => format!("{}[]", item.catalog_name()),
            other => other.sql(),
        }
    }

    /// The OID of the type, for array headers.
    pub fn oid(&self) -> u32 {
        match self {
            Self::Bool => 16,
            Self::Int16 => 21,
            Self::Int32 => 23,
            Self::Int64 => 20,
            Self::Numeric { .. } => 1700,
            Self::Float32 => 700,
            Self::Float64 => 701,
            Self::Text => 25,
            Self::Jsonb => 3802,
            Self::Bytea => 17,
            Self::Uuid => 2950,
            Self::Date => 1082,
            Self::Time => 1083,
            Self::Timestamp => 1114,
            Self::TimestampTz => 1184,
            Self::Interval => 1186,
            // Arrays of arrays are refused in `of`; an array's OID is not needed.
            Self::Array(_) => 0,
        }
    }

    /// The Arrow type a column is cast to before encoding.
    pub fn canonical(&self, original: &DataType) -> DataType {
        match self {
            Self::Bool => DataType::Boolean,
            Self::Int16 => DataType::Int16,
            Self::Int32 => DataType::Int32,
            Self::Int64 => DataType::Int64,
            Self::Numeric { precision, scale } => DataType::Decimal128(*precision, *scale),
            Self::Float32 => DataType::Float32,
            Self::Float64 => DataType::Float64,
            Self::Text | Self::Jsonb => DataType::Utf8,
            Self::Bytea => DataType::Binary,
            Self::Uuid => DataType::FixedSizeBinary(16),
            Self::Date => DataType::Date32,
            Self::Time => DataType::Time64(TimeUnit::Microsecond),
            Self::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            Self::TimestampTz => match original {
                DataType::Timestamp(_, tz) => {
                    DataType::Timestamp(TimeUnit::Microsecond, tz.clone())
                }
                _ => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            },
            Self::Interval => DataType::Interval(IntervalUnit::MonthDayNano),
            Self::Array(item) => {
                let original_item = match original {
                    DataType::List(f) | DataType::LargeList(f) => f.data_type().clone(),
                    other => other.clone(),
                };
                DataType::List(Arc::new(Field::new(
                    "item",
                    item.canonical(&original_item),
                    true,
                )))
            }
        }
    }
}

/// PostgreSQL's identifier limit, in bytes.
const MAX_IDENT_BYTES: usize = 63;

/// `name` as a PostgreSQL identifier: unchanged when it fits in 63 bytes, else its first
/// bytes (on a character boundary), `_` and 8 hex digits of a hash of the whole name.
pub fn pg_name(name: &str) -> String {
    if name.len() <= MAX_IDENT_BYTES {
        return name.to_owned();
    }
    let mut cut = MAX_IDENT_BYTES - 9;
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}_{:08x}", &name[..cut], fnv1a(name.as_bytes()) as u32)
}

/// FNV-1a, 64 bits: stable across builds and platforms (unlike `DefaultHasher`).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_are_shortened_deterministically_and_distinctly() {
        assert_eq!(pg_name("orders"), "orders");
        let a = "a_very_long_column_name_that_goes_on_and_on_past_the_limit_number_one";
        let b = "a_very_long_column_name_that_goes_on_and_on_past_the_limit_number_two";
        assert!(pg_name(a).len() <= 63 && pg_name(b).len() <= 63);
        assert_ne!(pg_name(a), pg_name(b));
        assert_eq!(pg_name(a), pg_name(a));
        let unicode = "ä".repeat(40);
        assert!(pg_name(&unicode).len() <= 63);
        assert!(pg_name(&unicode).starts_with("ää"));
    }

    #[test]
    fn types_map_or_are_refused_by_name() {
        let field = Field::new("n", DataType::UInt64, true);
        assert_eq!(PgType::of(&field).unwrap().sql(), "numeric(20,0)");
        let list = Field::new_list("l", Field::new("item", DataType::Int8, true), true);
        assert_eq!(PgType::of(&list).unwrap().sql(), "smallint[]");
        let map = Field::new(
            "s",
            DataType::Struct(vec![Field::new("x", DataType::Int32, true)].into()),
            true,
        );
        let err = PgType::of(&map).unwrap_err().to_string();
        assert!(
            err.contains("column s") && err.contains("cannot store"),
            "{err}"
        );
    }
}
