//! Arrow types to DuckDB column types.
//!
//! Every Arrow type a source can emit is either mapped here or refused with an error that
//! names the column and the type; nothing reaches DuckDB's appender unchecked (its type
//! gaps have ended in panics in the past).

use elt_core::arrow::datatypes::{DataType, Field, IntervalUnit, TimeUnit};
use elt_core::catalog::{is_json_field, is_uuid_field};
use elt_core::{Error, Result, quote_ident};

/// Where a column type is used: staging tables keep JSON as text (what the appender
/// writes), raw tables give it DuckDB's JSON type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// A temporary table the appender writes to.
    Staging,
    /// A raw table users query.
    Raw,
}

/// Whether the appender gets this column as text (and DuckDB casts it on the way into the
/// raw table): intervals, whose NULLs DuckDB's Arrow appender (duckdb 1.10506) drops.
pub fn staged_as_text(field: &Field) -> bool {
    matches!(
        field.data_type(),
        DataType::Interval(_) | DataType::Duration(_)
    )
}

/// The DuckDB type of `field`.
pub fn column_type(field: &Field, usage: Use) -> Result<String> {
    if usage == Use::Staging && staged_as_text(field) {
        return Ok("VARCHAR".to_owned());
    }
    if is_json_field(field) && usage == Use::Raw {
        return Ok("JSON".to_owned());
    }
    if is_uuid_field(field) {
        return Ok("UUID".to_owned());
    }
    sql_type(field.data_type()).map_err(|why| {
        Error::data(format!(
            "column {} has Arrow type {}, which the DuckDB destination cannot store ({why})",
            field.name(),
            field.data_type()
        ))
    })
}

fn sql_type(data_type: &DataType) -> Result<String, String> {
    use DataType as D;
    let name = match data_type {
        D::Null => "VARCHAR",
        D::Boolean => "BOOLEAN",
        D::Int8 => "TINYINT",
        D::Int16 => "SMALLINT",
        D::Int32 => "INTEGER",
        D::Int64 => "BIGINT",
        D::UInt8 => "UTINYINT",
        D::UInt16 => "USMALLINT",
        D::UInt32 => "UINTEGER",
        D::UInt64 => "UBIGINT",
        D::Float32 => "FLOAT",
        D::Float64 => "DOUBLE",
        D::Decimal32(p, s) | D::Decimal64(p, s) | D::Decimal128(p, s) => {
            if *s < 0 || *s as u8 > *p {
                return Err(format!("scale {s} outside 0..={p}"));
            }
            return Ok(format!("DECIMAL({p},{s})"));
        }
        D::Decimal256(..) => return Err("decimals wider than 38 digits; emit them as text".into()),
        D::Utf8 | D::LargeUtf8 | D::Utf8View => "VARCHAR",
        D::Binary | D::LargeBinary | D::BinaryView | D::FixedSizeBinary(_) => "BLOB",
        D::Date32 | D::Date64 => "DATE",
        D::Time32(_) | D::Time64(_) => "TIME",
        D::Timestamp(_, Some(_)) => "TIMESTAMPTZ",
        D::Timestamp(TimeUnit::Second, None) => "TIMESTAMP_S",
        D::Timestamp(TimeUnit::Millisecond, None) => "TIMESTAMP_MS",
        D::Timestamp(TimeUnit::Microsecond, None) => "TIMESTAMP",
        D::Timestamp(TimeUnit::Nanosecond, None) => "TIMESTAMP_NS",
        D::Interval(IntervalUnit::MonthDayNano) | D::Duration(_) => "INTERVAL",
        D::List(item) | D::LargeList(item) | D::FixedSizeList(item, _) => {
            return Ok(format!("{}[]", sql_type(item.data_type())?));
        }
        D::Struct(fields) => {
            let members = fields
                .iter()
                .map(|f| {
                    Ok(format!(
                        "{} {}",
                        quote_ident(f.name()),
                        sql_type(f.data_type())?
                    ))
                })
                .collect::<Result<Vec<_>, String>>()?;
            return Ok(format!("STRUCT({})", members.join(", ")));
        }
        D::Map(entries, _) => match entries.data_type() {
            D::Struct(kv) if kv.len() == 2 => {
                return Ok(format!(
                    "MAP({}, {})",
                    sql_type(kv[0].data_type())?,
                    sql_type(kv[1].data_type())?
                ));
            }
            _ => return Err("a map without key and value fields".into()),
        },
        other => return Err(format!("no mapping for {other}; emit it as text")),
    };
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use elt_core::catalog::json_field;
    use std::sync::Arc;

    #[test]
    fn maps_nested_and_refuses_unknown_types() {
        let list = DataType::List(Arc::new(Field::new("item", DataType::Int64, true)));
        assert_eq!(
            column_type(&Field::new("l", list, true), Use::Raw).unwrap(),
            "BIGINT[]"
        );
        assert_eq!(
            column_type(&json_field("j", true), Use::Raw).unwrap(),
            "JSON"
        );
        assert_eq!(
            column_type(&json_field("j", true), Use::Staging).unwrap(),
            "VARCHAR"
        );
        let wide = Field::new("big", DataType::Decimal256(60, 0), true);
        let err = column_type(&wide, Use::Raw).unwrap_err().to_string();
        assert!(
            err.contains("column big") && err.contains("38 digits"),
            "{err}"
        );
        let float16 = Field::new("h", DataType::Float16, true);
        assert!(column_type(&float16, Use::Raw).is_err());
    }
}
