//! Bound values of a MySQL read: each value from state or the command line is checked in
//! Rust and put in the form MySQL casts exactly, then bound as text; and the WHERE clause
//! they belong to.

use elt_core::arrow::compute::kernels::cast_utils::parse_decimal;
use elt_core::arrow::datatypes::Decimal128Type;
use elt_core::{Error, Result};

use super::types::{Column, Kind};
use super::values::{parse_date, parse_datetime};

/// A query under construction: its WHERE conditions and their bound values, in order.
#[derive(Default)]
pub struct Filter {
    pub conditions: Vec<String>,
    pub binds: Vec<String>,
}

impl Filter {
    pub fn push(&mut self, condition: String, bind: String) {
        self.conditions.push(condition);
        self.binds.push(bind);
    }

    pub fn sql(&self) -> String {
        if self.conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.conditions.join(" AND "))
        }
    }
}

/// A value for `column` from state or the command line, checked and put in the form
/// MySQL casts exactly: integers and decimals as digits, dates as `YYYY-MM-DD`, times as
/// `YYYY-MM-DD HH:MM:SS.ffffff` in UTC, text as it is. `what` names its origin in errors.
pub fn param(column: &Column, text: &str, what: &str) -> Result<String> {
    let fix = if what.starts_with("the saved") {
        "; reset the stream with `elt state reset`"
    } else {
        ""
    };
    let bad = |expected: &str| {
        Error::config(format!(
            "{what} for column {} is {text:?}, not {expected}{fix}",
            column.name
        ))
    };
    Ok(match column.kind {
        Kind::Int { unsigned: true, .. } => text
            .parse::<u64>()
            .map_err(|_| bad("an unsigned integer"))?
            .to_string(),
        Kind::Int { .. } | Kind::Year => text
            .parse::<i64>()
            .map_err(|_| bad("an integer"))?
            .to_string(),
        Kind::Decimal { precision, scale } => {
            parse_decimal::<Decimal128Type>(text, precision, scale)
                .map_err(|_| bad("a decimal"))?;
            text.to_owned()
        }
        Kind::Date => chrono::NaiveDate::parse_from_str(text.get(..10).unwrap_or(text), "%Y-%m-%d")
            .map_err(|_| bad("a date (YYYY-MM-DD)"))?
            .to_string(),
        Kind::DateTime | Kind::Timestamp => {
            let micros = chrono::DateTime::parse_from_rfc3339(text)
                .map(|t| t.timestamp_micros())
                .ok()
                .or_else(|| parse_datetime(text))
                .or_else(|| parse_date(text).map(|d| i64::from(d) * 86_400_000_000))
                .ok_or_else(|| {
                    bad("a date and time (YYYY-MM-DD HH:MM:SS[.ffffff], or RFC 3339)")
                })?;
            chrono::DateTime::from_timestamp_micros(micros)
                .ok_or_else(|| bad("a date and time in range"))?
                .format("%Y-%m-%d %H:%M:%S%.6f")
                .to_string()
        }
        _ => text.to_owned(),
    })
}
