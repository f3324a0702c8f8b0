//! Decoding rows into Arrow builders, and the text forms of dates, times and decimals.
//!
//! Decimals, dates and times arrive as text (see `types.rs`) and are parsed here exactly.
//! MySQL's zero dates (`0000-00-00`, `2024-00-10`) have no calendar value: they become NULL
//! and are counted, so the read can report them. Any other value that does not parse is an
//! error naming the column, never a silent NULL.

use elt_core::arrow::array::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, FixedSizeBinaryBuilder,
    Float32Builder, Float64Builder, Int8Builder, Int16Builder, Int32Builder, Int64Builder,
    IntervalMonthDayNanoBuilder, StringBuilder, TimestampMicrosecondBuilder, UInt8Builder,
    UInt16Builder, UInt32Builder, UInt64Builder,
};
use elt_core::arrow::compute::kernels::cast_utils::parse_decimal;
use elt_core::arrow::datatypes::{Decimal128Type, IntervalMonthDayNano};
use elt_core::batch::RowBatcher;
use elt_core::{Error, Result};
use sqlx::Row;
use sqlx::mysql::MySqlRow;

use super::types::{Column, Kind};

/// Appends one row to `out` (column `i` of the row is column `i` of `columns`), counting
/// zero dates per column in `zero_dates`.
pub fn append_row(
    row: &MySqlRow,
    columns: &[Column],
    out: &mut RowBatcher,
    zero_dates: &mut [u64],
) -> Result<()> {
    for (i, column) in columns.iter().enumerate() {
        append_value(row, i, column, out, &mut zero_dates[i])
            .map_err(|e| Error::data(format!("column {}: {e}", column.name)))?;
    }
    Ok(())
}

type ValueResult = std::result::Result<(), String>;

fn get<'r, T>(row: &'r MySqlRow, i: usize) -> std::result::Result<Option<T>, String>
where
    T: sqlx::Decode<'r, sqlx::MySql> + sqlx::Type<sqlx::MySql>,
{
    row.try_get::<Option<T>, _>(i).map_err(|e| e.to_string())
}

/// Text and bytes without sqlx's type check, which refuses text under a binary collation
/// (`utf8mb4_bin`) and MySQL's JSON type; the select list decides what arrives, and text is
/// still checked to be UTF-8.
fn get_unchecked<'r, T>(row: &'r MySqlRow, i: usize) -> std::result::Result<Option<T>, String>
where
    T: sqlx::Decode<'r, sqlx::MySql>,
{
    row.try_get_unchecked::<Option<T>, _>(i)
        .map_err(|e| e.to_string())
}

fn append_value(
    row: &MySqlRow,
    i: usize,
    column: &Column,
    out: &mut RowBatcher,
    zero_dates: &mut u64,
) -> ValueResult {
    match column.kind {
        Kind::Int {
            bytes,
            unsigned: false,
        } => {
            let v = get::<i64>(row, i)?;
            match bytes {
                1 => out
                    .column::<Int8Builder>(i)
                    .append_option(v.map(|v| v as i8)),
                2 => out
                    .column::<Int16Builder>(i)
                    .append_option(v.map(|v| v as i16)),
                3 | 4 => out
                    .column::<Int32Builder>(i)
                    .append_option(v.map(|v| v as i32)),
                _ => out.column::<Int64Builder>(i).append_option(v),
            }
        }
        Kind::Int {
            bytes,
            unsigned: true,
        } => {
            let v = get::<u64>(row, i)?;
            match bytes {
                1 => out
                    .column::<UInt8Builder>(i)
                    .append_option(v.map(|v| v as u8)),
                2 => out
                    .column::<UInt16Builder>(i)
                    .append_option(v.map(|v| v as u16)),
                3 | 4 => out
                    .column::<UInt32Builder>(i)
                    .append_option(v.map(|v| v as u32)),
                _ => out.column::<UInt64Builder>(i).append_option(v),
            }
        }
        Kind::Year => {
            let v = get::<i64>(row, i)?;
            out.column::<Int16Builder>(i)
                .append_option(v.map(|v| v as i16));
        }
        Kind::Bool => {
            let v = get::<u64>(row, i)?;
            out.column::<BooleanBuilder>(i)
                .append_option(v.map(|v| v != 0));
        }
        Kind::Bits => {
            let v = get::<u64>(row, i)?;
            out.column::<UInt64Builder>(i).append_option(v);
        }
        Kind::Float => {
            let v = get::<f32>(row, i)?;
            out.column::<Float32Builder>(i).append_option(v);
        }
        Kind::Double => {
            let v = get::<f64>(row, i)?;
            out.column::<Float64Builder>(i).append_option(v);
        }
        Kind::Decimal { precision, scale } => {
            let v = get_unchecked::<&str>(row, i)?
                .map(|text| {
                    parse_decimal::<Decimal128Type>(text, precision, scale)
                        .map_err(|e| format!("decimal {text:?}: {e}"))
                })
                .transpose()?;
            out.column::<Decimal128Builder>(i).append_option(v);
        }
        Kind::Text | Kind::Json => {
            let v = get_unchecked::<&str>(row, i)?;
            out.column::<StringBuilder>(i).append_option(v);
        }
        Kind::Binary => {
            let v = get_unchecked::<&[u8]>(row, i)?;
            out.column::<BinaryBuilder>(i).append_option(v);
        }
        Kind::Date => {
            let v = temporal(get_unchecked::<&str>(row, i)?, parse_date, zero_dates)?;
            out.column::<Date32Builder>(i).append_option(v);
        }
        Kind::DateTime | Kind::Timestamp => {
            let v = temporal(get_unchecked::<&str>(row, i)?, parse_datetime, zero_dates)?;
            out.column::<TimestampMicrosecondBuilder>(i)
                .append_option(v);
        }
        Kind::Time => {
            let v = get_unchecked::<&str>(row, i)?
                .map(|text| {
                    parse_time(text)
                        .and_then(|micros| micros.checked_mul(1000))
                        .ok_or_else(|| format!("time {text:?} does not parse"))
                })
                .transpose()?;
            out.column::<IntervalMonthDayNanoBuilder>(i)
                .append_option(v.map(|nanos| IntervalMonthDayNano::new(0, 0, nanos)));
        }
        Kind::Uuid => {
            let v = get_unchecked::<&str>(row, i)?;
            let builder = out.column::<FixedSizeBinaryBuilder>(i);
            match v {
                None => builder.append_null(),
                Some(text) => {
                    let bytes =
                        parse_uuid(text).ok_or_else(|| format!("uuid {text:?} does not parse"))?;
                    builder.append_value(bytes).map_err(|e| e.to_string())?;
                }
            }
        }
    }
    Ok(())
}

/// A date or datetime text: its value, None for NULL and for zero dates (counted).
fn temporal<T: Copy>(
    text: Option<&str>,
    parse: fn(&str) -> Option<T>,
    zero_dates: &mut u64,
) -> std::result::Result<Option<T>, String> {
    let Some(text) = text else {
        return Ok(None);
    };
    match parse(text) {
        Some(v) => Ok(Some(v)),
        None if is_zero_date(text) => {
            *zero_dates += 1;
            Ok(None)
        }
        None => Err(format!("{text:?} is not a date or time")),
    }
}

/// Whether `text` has a zero year, month or day (`0000-00-00`, `2024-00-00 ...`).
fn is_zero_date(text: &str) -> bool {
    let parts: Vec<&str> = text.get(..10).unwrap_or("").split('-').collect();
    parts.len() == 3 && parts.iter().any(|p| p.bytes().all(|b| b == b'0'))
}

fn digits(text: &str) -> Option<u32> {
    (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

/// `YYYY-MM-DD` as days since 1970-01-01.
pub fn parse_date(text: &str) -> Option<i32> {
    let mut parts = text.splitn(3, '-');
    let year = digits(parts.next()?)?;
    let month = digits(parts.next()?)?;
    let day = digits(parts.next()?)?;
    let date = chrono::NaiveDate::from_ymd_opt(year as i32, month, day)?;
    Some((date - chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?).num_days() as i32)
}

/// `HH:MM:SS[.ffffff]` (hours may exceed 24 and be negative for `time`) as microseconds.
fn parse_clock(text: &str) -> Option<i64> {
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let mut parts = whole.splitn(3, ':');
    let hours = i64::from(digits(parts.next()?)?);
    let minutes = i64::from(digits(parts.next()?)?);
    let seconds = i64::from(digits(parts.next()?)?);
    if minutes > 59 || seconds > 59 || fraction.len() > 6 {
        return None;
    }
    let micros = if fraction.is_empty() {
        0
    } else {
        i64::from(digits(fraction)?) * 10_i64.pow(6 - fraction.len() as u32)
    };
    // Checked: a server could send any number of hours.
    let total = hours
        .checked_mul(3_600_000_000)?
        .checked_add((minutes * 60 + seconds) * 1_000_000 + micros)?;
    Some(if negative { -total } else { total })
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff]` as microseconds since the epoch.
pub fn parse_datetime(text: &str) -> Option<i64> {
    let (date, clock) = text.split_once([' ', 'T'])?;
    let clock = parse_clock(clock).filter(|c| (0..86_400_000_000).contains(c))?;
    i64::from(parse_date(date)?)
        .checked_mul(86_400_000_000)?
        .checked_add(clock)
}

/// A `time` value (`-838:59:59.000000` to `838:59:59.000000`) as microseconds.
pub fn parse_time(text: &str) -> Option<i64> {
    parse_clock(text)
}

fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    let hex: Vec<u8> = text.bytes().filter(|b| *b != b'-').collect();
    if hex.len() != 32 {
        return None;
    }
    let mut bytes = [0_u8; 16];
    for (i, pair) in hex.chunks(2).enumerate() {
        bytes[i] = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times_parse_exactly() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("1969-12-31"), Some(-1));
        assert_eq!(parse_date("2024-02-29"), Some(19_782));
        assert_eq!(parse_date("9999-12-31"), Some(2_932_896));
        assert_eq!(parse_date("0000-00-00"), None);
        assert!(is_zero_date("0000-00-00"));
        assert!(is_zero_date("2024-00-10 00:00:00"));
        assert!(!is_zero_date("2024-13-10"));
        assert_eq!(parse_datetime("1970-01-01 00:00:00"), Some(0));
        assert_eq!(parse_datetime("1969-12-31 23:59:59.999999"), Some(-1));
        assert_eq!(
            parse_datetime("2038-01-19 03:14:08.5"),
            Some(2_147_483_648_500_000)
        );
        assert_eq!(parse_datetime("2024-01-01 24:00:00"), None);
        assert_eq!(parse_time("838:59:59"), Some(3_020_399_000_000));
        assert_eq!(parse_time("-838:59:59.000001"), Some(-3_020_399_000_001));
        assert_eq!(parse_time("-00:00:01"), Some(-1_000_000));
        assert_eq!(parse_time("12:60:00"), None);
        assert_eq!(
            parse_uuid("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11").map(|b| b[0]),
            Some(0xa0)
        );
    }
}
