//! Time-partitioned destination tables (`partition_by = { column, granularity }` on a
//! stream): the UTC calendar day or month a date or timestamp falls in, the partitions the
//! rows of a batch need, and the partitions a backfill window covers, wholly or in part.
//!
//! A timestamp with a time zone is partitioned by its UTC date; one without, by its own
//! date. What it does not do: create, fill or replace partitions; the destinations that
//! partition tables do that (PostgreSQL's declarative range partitions).

use std::collections::BTreeSet;

use arrow::array::{Array, ArrayRef, Date32Array, Date64Array, PrimitiveArray};
use arrow::datatypes::{ArrowPrimitiveType, DataType, TimeUnit};
use chrono::{Datelike, Months, NaiveDate};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::windows::Window;

/// How wide one partition is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    /// One UTC calendar day.
    Day,
    /// One UTC calendar month.
    Month,
}

/// A stream's `partition_by`: the date or timestamp column and the partitions' width.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionBy {
    /// The column whose value chooses a row's partition.
    pub column: String,
    /// `day` or `month`.
    pub granularity: Granularity,
}

/// One partition: the days `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Partition {
    /// Its first day.
    pub start: NaiveDate,
    /// The first day after it.
    pub end: NaiveDate,
}

impl Partition {
    /// The partition of `granularity` that `day` falls in.
    pub fn of(day: NaiveDate, granularity: Granularity) -> Self {
        let start = match granularity {
            Granularity::Day => day,
            Granularity::Month => day.with_day(1).expect("every month has a first day"),
        };
        let end = match granularity {
            Granularity::Day => start.succ_opt(),
            Granularity::Month => start.checked_add_months(Months::new(1)),
        };
        Self {
            start,
            end: end.unwrap_or(NaiveDate::MAX),
        }
    }

    /// Its name among its table's partitions: `20240115` for a day, `202401` for a month.
    pub fn suffix(&self, granularity: Granularity) -> String {
        match granularity {
            Granularity::Day => self.start.format("%Y%m%d").to_string(),
            Granularity::Month => self.start.format("%Y%m").to_string(),
        }
    }
}

/// Whether `data_type` can choose partitions (a date or a timestamp).
pub fn partitions_type(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Date32 | DataType::Date64 | DataType::Timestamp(..)
    )
}

/// The partitions the values of `column` fall in, and how many of them are NULL (a NULL
/// has no partition).
pub fn partitions_of(
    column: &ArrayRef,
    granularity: Granularity,
) -> Result<(BTreeSet<Partition>, usize)> {
    let days = days_of(column)?;
    let partitions = days
        .into_iter()
        .map(|day| Partition::of(day, granularity))
        .collect();
    Ok((partitions, column.null_count()))
}

/// The distinct days (UTC for timestamps with a zone) of the non-NULL values of `column`.
fn days_of(column: &ArrayRef) -> Result<BTreeSet<NaiveDate>> {
    const DAY_MS: i64 = 86_400_000;
    let any = column.as_any();
    let days: BTreeSet<i64> = match column.data_type() {
        DataType::Date32 => distinct(downcast::<Date32Array>(any)?, i64::from),
        DataType::Date64 => distinct(downcast::<Date64Array>(any)?, |ms| ms.div_euclid(DAY_MS)),
        DataType::Timestamp(unit, _) => {
            let per_day = match unit {
                TimeUnit::Second => 86_400,
                TimeUnit::Millisecond => DAY_MS,
                TimeUnit::Microsecond => DAY_MS * 1_000,
                TimeUnit::Nanosecond => DAY_MS * 1_000_000,
            };
            let values = arrow::compute::cast(column, &DataType::Int64)
                .map_err(|e| Error::bug("reading a partition column").caused_by(e))?;
            let values = downcast::<arrow::array::Int64Array>(values.as_any())?;
            distinct(values, |v| v.div_euclid(per_day))
        }
        other => {
            return Err(Error::config(format!(
                "a partition column must be a date or a timestamp, not {other}"
            )));
        }
    };
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("the epoch is a date");
    days.into_iter()
        .map(|d| {
            epoch
                .checked_add_signed(chrono::Duration::days(d))
                .ok_or_else(|| Error::data(format!("day {d} after 1970-01-01 is not a date")))
        })
        .collect()
}

fn downcast<T: 'static>(any: &dyn std::any::Any) -> Result<&T> {
    any.downcast_ref::<T>()
        .ok_or_else(|| Error::bug("a partition column's array does not match its type"))
}

fn distinct<T: ArrowPrimitiveType>(
    values: &PrimitiveArray<T>,
    day: impl Fn(T::Native) -> i64,
) -> BTreeSet<i64> {
    values.iter().flatten().map(day).collect()
}

/// The partitions a backfill window of canonical date or timestamp bounds touches, each
/// with whether the window covers all of it; None when the bounds are not dates or
/// timestamps (an integer cursor).
pub fn partitions_in(window: &Window, granularity: Granularity) -> Option<Vec<(Partition, bool)>> {
    let from = bound_day(&window.from)?;
    let (to, to_is_midnight) = (bound_day(&window.to)?, is_midnight(&window.to));
    // The window ends before `to`'s day unless it ends inside that day.
    let last = if to_is_midnight { to.pred_opt()? } else { to };
    let from_is_midnight = is_midnight(&window.from);
    let mut out = Vec::new();
    let mut at = Partition::of(from, granularity);
    while at.start <= last {
        let starts_inside = at.start > from || (at.start == from && from_is_midnight);
        let ends_inside = at.end < to || (at.end == to && to_is_midnight);
        out.push((at, starts_inside && ends_inside));
        at = Partition::of(at.end, granularity);
        if at.start == NaiveDate::MAX {
            break;
        }
    }
    Some(out)
}

/// The day of a canonical bound: `YYYY-MM-DD` or `YYYY-MM-DDT…Z`.
fn bound_day(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text.get(..10)?, "%Y-%m-%d").ok()
}

/// Whether a canonical bound is the start of its day.
fn is_midnight(text: &str) -> bool {
    text.len() == 10 || text[10..].trim_start_matches('T') == "00:00:00.000000Z"
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::TimestampMicrosecondArray;

    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn months_and_days_cover_a_value_by_its_utc_date() {
        let p = Partition::of(day("2024-02-29"), Granularity::Month);
        assert_eq!((p.start, p.end), (day("2024-02-01"), day("2024-03-01")));
        assert_eq!(p.suffix(Granularity::Month), "202402");
        let p = Partition::of(day("2024-12-31"), Granularity::Day);
        assert_eq!((p.start, p.end), (day("2024-12-31"), day("2025-01-01")));
        assert_eq!(p.suffix(Granularity::Day), "20241231");
        // 2024-01-31T23:59:59.999999Z and 2024-02-01T00:00:00Z, a NULL, and a day before 1970.
        let values = TimestampMicrosecondArray::from(vec![
            Some(1_706_745_599_999_999),
            Some(1_706_745_600_000_000),
            None,
            Some(-1),
        ])
        .with_timezone("+00:00");
        let column: ArrayRef = Arc::new(values);
        let (parts, nulls) = partitions_of(&column, Granularity::Month).unwrap();
        let starts: Vec<_> = parts.iter().map(|p| p.start.to_string()).collect();
        assert_eq!(starts, ["1969-12-01", "2024-01-01", "2024-02-01"]);
        assert_eq!(nulls, 1);
    }

    #[test]
    fn a_window_covers_whole_partitions_only_from_midnight_to_midnight() {
        let month = Window::new("2024-01-01T00:00:00.000000Z", "2024-02-01T00:00:00.000000Z");
        let days = partitions_in(&month, Granularity::Day).unwrap();
        assert_eq!(days.len(), 31);
        assert!(days.iter().all(|(_, whole)| *whole));
        let months = partitions_in(&month, Granularity::Month).unwrap();
        assert_eq!(months.len(), 1);
        assert!(months[0].1);
        let partial = Window::new("2024-01-15", "2024-03-01");
        let months = partitions_in(&partial, Granularity::Month).unwrap();
        let covered: Vec<_> = months
            .iter()
            .map(|(p, w)| (p.suffix(Granularity::Month), *w))
            .collect();
        assert_eq!(
            covered,
            [("202401".to_owned(), false), ("202402".to_owned(), true)]
        );
        let noon = Window::new("2024-01-01T12:00:00.000000Z", "2024-01-02T12:00:00.000000Z");
        let days = partitions_in(&noon, Granularity::Day).unwrap();
        assert_eq!(days.iter().filter(|(_, w)| *w).count(), 0);
        assert_eq!(days.len(), 2);
        assert!(partitions_in(&Window::new("1", "10"), Granularity::Day).is_none());
    }
}
