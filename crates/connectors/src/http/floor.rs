//! Keyset positions of an incremental HTTP read and the floor below which it drops
//! records: the watermark (a strict keyset), a `start` or lookback (a cursor, inclusive), or
//! a sorted stream's resume point (a cursor, with the keys already committed at it). Also
//! how cursor values compare and how they go into a query parameter. No I/O.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use serde_json::{Value, json};

/// A keyset position: a record's cursor and primary key.
#[derive(Debug, Clone)]
pub struct Position {
    /// The cursor field's value.
    pub cursor: Value,
    /// The primary key's values, in key order.
    pub key: Vec<Value>,
}

/// Which records an incremental read keeps, and what it asks the API for.
#[derive(Debug, Clone)]
pub enum Floor {
    /// Every record.
    All,
    /// Records whose cursor is at or after this value (`start`, a lookback).
    From(Value),
    /// Records after this keyset position (the watermark).
    After(Position),
    /// A sorted stream's resume point: records after this cursor, and those at it whose
    /// key is not among the ones committed (all of them when that list was too long).
    Resume {
        from: Value,
        seen: Option<BTreeSet<String>>,
    },
}

/// The most keys at the newest cursor a resume point lists; past it, a rerun reads every
/// record at that cursor again (the merge absorbs them) rather than keep a large state.
pub const MAX_SEEN: usize = 1_000;

impl Floor {
    /// The value of the cursor parameter (the API's filters are inclusive).
    pub fn since(&self) -> Option<String> {
        match self {
            Floor::All => None,
            Floor::From(from) | Floor::Resume { from, .. } => Some(text(from)),
            Floor::After(w) => Some(text(&w.cursor)),
        }
    }

    /// Whether an incremental read keeps a record at `position`.
    pub fn keeps(&self, position: &Position) -> bool {
        match self {
            Floor::All => true,
            Floor::From(from) => compare(&position.cursor, from) != Ordering::Less,
            Floor::After(w) => compare_position(position, w) == Ordering::Greater,
            Floor::Resume { from, seen } => match compare(&position.cursor, from) {
                Ordering::Greater => true,
                Ordering::Equal => seen
                    .as_ref()
                    .is_none_or(|s| !s.contains(&Value::Array(position.key.clone()).to_string())),
                Ordering::Less => false,
            },
        }
    }
}

pub fn position_json(p: &Position) -> Value {
    json!({ "cursor": p.cursor, "key": p.key })
}

pub fn position_of(value: &Value) -> Option<Position> {
    Some(Position {
        cursor: value.get("cursor").filter(|c| !c.is_null())?.clone(),
        key: value["key"].as_array().cloned().unwrap_or_default(),
    })
}

/// `cursor` less `secs` seconds when it is an RFC 3339 time; itself otherwise.
pub fn lookback(cursor: &Value, secs: u64) -> String {
    let text = text(cursor);
    if secs == 0 {
        return text;
    }
    match chrono::DateTime::parse_from_rfc3339(&text) {
        Ok(t) => chrono::Duration::try_seconds(secs as i64)
            .and_then(|d| t.to_utc().checked_sub_signed(d))
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC)
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        Err(_) => text,
    }
}

/// A cursor value as a query parameter: a string as it is, anything else as JSON.
pub fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Orders two cursor or key values: instants when both are RFC 3339 times, numbers when
/// both are numbers, text otherwise.
pub fn compare(a: &Value, b: &Value) -> Ordering {
    if let (Value::Number(x), Value::Number(y)) = (a, b) {
        return match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => x
                .as_f64()
                .partial_cmp(&y.as_f64())
                .unwrap_or(Ordering::Equal),
        };
    }
    if let (Value::String(x), Value::String(y)) = (a, b) {
        if let (Ok(x), Ok(y)) = (
            chrono::DateTime::parse_from_rfc3339(x),
            chrono::DateTime::parse_from_rfc3339(y),
        ) {
            return x.cmp(&y);
        }
        return x.cmp(y);
    }
    a.to_string().cmp(&b.to_string())
}

pub fn compare_position(a: &Position, b: &Position) -> Ordering {
    compare(&a.cursor, &b.cursor).then_with(|| {
        a.key
            .iter()
            .zip(&b.key)
            .map(|(x, y)| compare(x, y))
            .find(|o| *o != Ordering::Equal)
            .unwrap_or(Ordering::Equal)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_order_by_time_then_key() {
        let p = |c: &str, k: i64| Position {
            cursor: json!(c),
            key: vec![json!(k)],
        };
        assert_eq!(
            compare_position(
                &p("2024-01-01T00:00:00Z", 2),
                &p("2024-01-01T01:00:00+01:00", 1)
            ),
            Ordering::Greater
        );
        assert_eq!(
            compare_position(&p("2024-01-01T00:00:01Z", 1), &p("2024-01-01T00:00:00Z", 9)),
            Ordering::Greater
        );
        assert_eq!(compare(&json!(10), &json!(9)), Ordering::Greater);
        assert_eq!(
            lookback(&json!("2024-01-01T00:00:00Z"), 60),
            "2023-12-31T23:59:00Z"
        );
    }

    #[test]
    fn a_resume_point_keeps_the_ties_not_yet_committed() {
        let p = |c: &str, k: i64| Position {
            cursor: json!(c),
            key: vec![json!(k)],
        };
        let at = "2024-01-01T00:00:05Z";
        let floor = |seen: Option<Vec<&str>>| Floor::Resume {
            from: json!(at),
            seen: seen.map(|s| s.into_iter().map(str::to_owned).collect()),
        };
        let listed = floor(Some(vec!["[10]"]));
        assert!(!listed.keeps(&p(at, 10)), "committed before the kill");
        assert!(listed.keeps(&p(at, 11)), "a tie on the next page");
        assert!(listed.keeps(&p(at, 3)), "a tie whatever its key");
        assert!(!listed.keeps(&p("2024-01-01T00:00:04Z", 99)));
        assert!(listed.keeps(&p("2024-01-01T00:00:06Z", 1)));
        assert!(
            floor(None).keeps(&p(at, 10)),
            "too many to list: read again"
        );
        assert_eq!(listed.since().as_deref(), Some(at));
    }
}
