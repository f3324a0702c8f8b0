//! Backfill windows: the half-open cursor ranges `[from, to)` that `elt backfill` cuts a
//! stream's history into, and the set of completed ones, merged where they overlap or
//! touch, with its holes.
//!
//! Bounds travel as text in one canonical form per cursor type, so that equal values are
//! equal strings and the text sorts like the value: a timestamp as RFC 3339 UTC with six
//! fractional digits (the form of [`crate::state::timestamp_cursor`]), a date as
//! `YYYY-MM-DD`, an integer as its decimal digits (compared as a number).
//!
//! What it does not do: read or write anything. The runner plans windows
//! (`elt_runner::backfill`), sources read one through [`crate::Backfill`], destinations
//! record each completed one with its rows (`_elt_windows`).

use arrow::datatypes::DataType;
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};

use crate::error::{Error, Result};

mod set;
pub use set::WindowSet;

/// The cursor types windows can cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CursorKind {
    /// Any integer type.
    Int,
    /// A date.
    Date,
    /// A timestamp, with or without time zone (read as UTC).
    Timestamp,
}

impl CursorKind {
    /// The kind of a cursor column's Arrow type, if windows can cut it.
    pub fn of(data_type: &DataType) -> Option<Self> {
        match data_type {
            t if t.is_integer() => Some(Self::Int),
            DataType::Date32 | DataType::Date64 => Some(Self::Date),
            DataType::Timestamp(..) => Some(Self::Timestamp),
            _ => None,
        }
    }
}

/// How `elt backfill plan` cuts a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Calendar days (UTC).
    Day,
    /// ISO weeks, from Monday (UTC).
    Week,
    /// Calendar months (UTC).
    Month,
    /// About this many rows per window, from the source's statistics.
    Rows(u64),
}

impl std::str::FromStr for Step {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, String> {
        match text {
            "day" => Ok(Self::Day),
            "week" => Ok(Self::Week),
            "month" => Ok(Self::Month),
            other => match other.strip_suffix("-rows").unwrap_or(other).parse::<u64>() {
                Ok(n) if n > 0 => Ok(Self::Rows(n)),
                _ => Err(format!(
                    "`{other}` is not a window size; use day, week, month or N-rows (such as 100000-rows)"
                )),
            },
        }
    }
}

/// One window, `from` included, `to` excluded, in canonical text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Window {
    /// The first cursor value in the window.
    pub from: String,
    /// The first cursor value after it.
    pub to: String,
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}, {})", self.from, self.to)
    }
}

impl Window {
    /// The window `[from, to)`.
    pub fn new(from: impl Into<String>, to: impl Into<String>) -> Self {
        Self {
            from: from.into(),
            to: to.into(),
        }
    }

    /// Whether the two windows share a value.
    pub fn overlaps(&self, other: &Window) -> bool {
        bound(&self.from) < bound(&other.to) && bound(&other.from) < bound(&self.to)
    }
}

/// Windows sort by their bounds as values (integers as numbers).
impl Ord for Window {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (bound(&self.from), bound(&self.to)).cmp(&(bound(&other.from), bound(&other.to)))
    }
}

impl PartialOrd for Window {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// The cursor column of `stream`, which windows cut, or a config error naming the fix.
pub fn cursor_field(stream: &crate::ConfiguredStream) -> Result<&arrow::datatypes::Field> {
    let name = stream.name();
    let cursor = stream.cursor.as_deref().ok_or_else(|| {
        Error::config(format!(
            "stream {name} has no cursor, which backfill windows cut: set `cursor = \"COLUMN\"` \
             on the stream in the connection's `streams`"
        ))
    })?;
    stream.schema().field_with_name(cursor).map_err(|_| {
        Error::config(format!(
            "stream {name}: cursor {cursor} is not one of its columns"
        ))
    })
}

/// The cursor column of `stream` and the kind of its values, or why windows cannot cut it.
pub fn cursor_kind(
    stream: &crate::ConfiguredStream,
) -> Result<(&arrow::datatypes::Field, CursorKind)> {
    let field = cursor_field(stream)?;
    let kind = CursorKind::of(field.data_type()).ok_or_else(|| {
        Error::config(format!(
            "stream {}: cursor {} is a {}; windows cut integers, dates and timestamps",
            stream.name(),
            field.name(),
            field.data_type()
        ))
    })?;
    Ok((field, kind))
}

/// The name of `window`'s lease (destinations with concurrent writers):
/// `orders [2024-01-01, 2024-01-02)`.
pub fn lease_name(stream: &str, window: &Window) -> String {
    format!("{stream} {window}")
}

/// The window of a lease named by [`lease_name`] for `stream`, if it is one.
pub fn from_lease_name(stream: &str, lease: &str) -> Option<Window> {
    let inner = lease
        .strip_prefix(stream)?
        .strip_prefix(" [")?
        .strip_suffix(')')?;
    let (from, to) = inner.split_once(", ")?;
    Some(Window::new(from, to))
}

/// A bound as it compares: integers as numbers, the canonical text forms as text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Bound {
    Int(i128),
    Text(String),
}

pub(crate) fn bound(text: &str) -> Bound {
    text.parse::<i128>()
        .map_or_else(|_| Bound::Text(text.to_owned()), Bound::Int)
}

/// Parses a bound given on the command line into its canonical text: a timestamp as RFC
/// 3339 (an offset, or none for UTC) or a date (midnight UTC); a date as `YYYY-MM-DD`; an
/// integer as digits. `option` names the flag in the error.
pub fn canonical(kind: CursorKind, text: &str, option: &str) -> Result<String> {
    let text = text.trim();
    let bad = |what: &str| {
        Error::config(format!(
            "{option} `{text}` is not {what}; the stream's cursor is a {kind:?}"
        ))
    };
    match kind {
        CursorKind::Int => text
            .parse::<i64>()
            .map(|n| n.to_string())
            .map_err(|_| bad("an integer")),
        CursorKind::Date => NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map(|d| d.format("%Y-%m-%d").to_string())
            .map_err(|_| bad("a date (YYYY-MM-DD)")),
        CursorKind::Timestamp => parse_timestamp(text)
            .map(timestamp_text)
            .ok_or_else(|| bad("a timestamp (RFC 3339, or YYYY-MM-DD for midnight UTC)")),
    }
}

fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Some(Utc.from_utc_datetime(&t));
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .map(|d| Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight exists")))
}

fn timestamp_text(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// The window `[from, to)` of canonical bounds, refused when it is empty.
pub fn range(from: &str, to: &str) -> Result<Window> {
    if bound(from) >= bound(to) {
        return Err(Error::config(format!(
            "--from {from} is not before --to {to}: the range is empty"
        )));
    }
    Ok(Window::new(from, to))
}

/// Cuts `[from, to)` (canonical bounds of `kind`) at every calendar boundary of `step`
/// (UTC): the first and last windows may be partial. `Step::Rows` is cut by the caller
/// from the source's statistics ([`from_cut_points`]).
pub fn calendar(kind: CursorKind, from: &str, to: &str, step: Step) -> Result<Vec<Window>> {
    let parse = |text: &str| match kind {
        CursorKind::Timestamp => parse_timestamp(text),
        CursorKind::Date => parse_timestamp(text),
        CursorKind::Int => None,
    };
    let (Some(start), Some(end)) = (parse(from), parse(to)) else {
        return Err(Error::config(format!(
            "--by {step:?} cuts dates and timestamps; this cursor is a {kind:?}: use --by N-rows"
        )));
    };
    range(from, to)?;
    let text = |t: DateTime<Utc>| match kind {
        CursorKind::Date => t.format("%Y-%m-%d").to_string(),
        _ => timestamp_text(t),
    };
    let mut cuts = vec![start];
    let mut at = next_boundary(start, step)?;
    while at < end {
        cuts.push(at);
        at = next_boundary(at, step)?;
    }
    cuts.push(end);
    Ok(cuts
        .windows(2)
        .map(|pair| Window {
            from: text(pair[0]),
            to: text(pair[1]),
        })
        .collect())
}

/// The first boundary of `step` after `t`.
fn next_boundary(t: DateTime<Utc>, step: Step) -> Result<DateTime<Utc>> {
    let day = t.date_naive();
    let next = match step {
        Step::Day => day.succ_opt(),
        Step::Week => {
            let monday = day - Duration::days(i64::from(day.weekday().num_days_from_monday()));
            monday.checked_add_signed(Duration::days(7))
        }
        Step::Month => {
            let (y, m) = if day.month() == 12 {
                (day.year() + 1, 1)
            } else {
                (day.year(), day.month() + 1)
            };
            NaiveDate::from_ymd_opt(y, m, 1)
        }
        Step::Rows(_) => None,
    };
    next.and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| Utc.from_utc_datetime(&d))
        .ok_or_else(|| Error::config("the range runs past the calendar's end"))
}

/// Windows from sorted cut points inside `(from, to)`: `[from, c1), [c1, c2), …, [cn, to)`.
/// Cut points outside the range or repeated are dropped.
pub fn from_cut_points(from: &str, to: &str, cuts: &[String]) -> Vec<Window> {
    let (lo, hi) = (bound(from), bound(to));
    let mut points = vec![from.to_owned()];
    for cut in cuts {
        let b = bound(cut);
        if b > lo && b < hi && bound(points.last().expect("not empty")) < b {
            points.push(cut.clone());
        }
    }
    points.push(to.to_owned());
    points
        .windows(2)
        .map(|pair| Window {
            from: pair[0].clone(),
            to: pair[1].clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(from: &str, to: &str) -> Window {
        Window::new(from, to)
    }

    #[test]
    fn calendar_windows_cut_at_utc_boundaries_with_partial_ends() {
        let ts = CursorKind::Timestamp;
        let from = canonical(ts, "2024-01-30T12:00:00+02:00", "--from").unwrap();
        assert_eq!(from, "2024-01-30T10:00:00.000000Z");
        let to = canonical(ts, "2024-02-02", "--to").unwrap();
        let days = calendar(ts, &from, &to, Step::Day).unwrap();
        assert_eq!(days.len(), 3);
        assert_eq!(days[0].to, "2024-01-31T00:00:00.000000Z");
        assert_eq!(days[2], w("2024-02-01T00:00:00.000000Z", &to));
        let months = calendar(CursorKind::Date, "2023-11-15", "2024-03-01", Step::Month).unwrap();
        let starts: Vec<_> = months.iter().map(|w| w.from.as_str()).collect();
        assert_eq!(
            starts,
            ["2023-11-15", "2023-12-01", "2024-01-01", "2024-02-01"]
        );
        // 2024-01-03 is a Wednesday: the next week starts on Monday the 8th.
        let weeks = calendar(CursorKind::Date, "2024-01-03", "2024-01-20", Step::Week).unwrap();
        assert_eq!(weeks[0], w("2024-01-03", "2024-01-08"));
        assert_eq!(weeks.len(), 3);
        assert!(calendar(ts, &to, &from, Step::Day).is_err());
        assert!(calendar(CursorKind::Int, "1", "9", Step::Day).is_err());
        assert!(canonical(CursorKind::Int, "1.5", "--from").is_err());
        assert_eq!("250000-rows".parse::<Step>(), Ok(Step::Rows(250000)));
        assert!("fortnight".parse::<Step>().is_err());
    }
}
