//! The key ranges of a parallel read and their progress, as the stream's state keeps them
//! (`ranges` beside the usual fields): which parts of the primary key's range exist, the
//! last key each part has sent, which are done, and the cursor's upper bound of an
//! incremental first load.
//!
//! Part `i` holds the keys `from <= key < to` (an absent bound is open), so the parts
//! cover every integer key, including keys inserted outside the range seen when splitting.
//! What it does not do: read anything (`parallel.rs`).

use elt_core::{Error, Result, StreamState};
use serde::{Deserialize, Serialize};

/// The state field that holds the ranges.
const FIELD: &str = "ranges";

/// The parts of a parallel read and how far each got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ranges {
    /// The cursor's upper bound (PostgreSQL's text form) an incremental read goes up to;
    /// None for a full refresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upper: Option<String>,
    /// The parts, in key order.
    pub parts: Vec<Part>,
}

/// One part: a half-open range of the key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Part {
    /// The lowest key of the part; open below when None.
    pub from: Option<i64>,
    /// The key the next part starts at; open above when None.
    pub to: Option<i64>,
    /// The last key sent, when the part is read in key order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<i64>,
    /// Whether every row of the part was sent.
    #[serde(default)]
    pub done: bool,
}

impl Ranges {
    /// `parts` parts of about equal width over the keys `min..=max` (fewer when there are
    /// fewer keys), the first open below and the last open above.
    pub fn split(min: i64, max: i64, parts: usize, upper: Option<String>) -> Self {
        let (min, max) = (i128::from(min), i128::from(max.max(min)));
        let keys = (max - min + 1).unsigned_abs();
        let count = (parts.max(1) as u128).min(keys);
        let width = keys.div_ceil(count) as i128;
        let bounds: Vec<i64> = (1..count as i128)
            .map(|i| i64::try_from(min + i * width).unwrap_or(i64::MAX))
            .collect();
        let parts = (0..count as usize)
            .map(|i| Part {
                from: i.checked_sub(1).map(|j| bounds[j]),
                to: bounds.get(i).copied(),
                after: None,
                done: false,
            })
            .collect();
        Self { upper, parts }
    }

    /// The ranges a killed parallel read left in `state`, if it left any.
    pub fn of(state: &StreamState) -> Result<Option<Self>> {
        let Some(value) = state.extra.get(FIELD) else {
            return Ok(None);
        };
        serde_json::from_value(value.clone())
            .map(Some)
            .map_err(|e| {
                Error::permanent(format!(
                    "the stream's state holds key ranges elt cannot read ({e}); run once with \
                 --full-refresh to start over"
                ))
            })
    }

    /// The state of a read in progress: these ranges and no cursor yet.
    pub fn state(&self) -> StreamState {
        let mut state = StreamState::empty();
        let value = serde_json::to_value(self).unwrap_or_default();
        state.extra.insert(FIELD.to_owned(), value);
        state
    }

    /// Whether every part is done.
    pub fn is_done(&self) -> bool {
        self.parts.iter().all(|p| p.done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds(r: &Ranges) -> Vec<(Option<i64>, Option<i64>)> {
        r.parts.iter().map(|p| (p.from, p.to)).collect()
    }

    #[test]
    fn splits_into_equal_open_ended_parts() {
        let r = Ranges::split(1, 100, 4, None);
        assert_eq!(
            bounds(&r),
            vec![
                (None, Some(26)),
                (Some(26), Some(51)),
                (Some(51), Some(76)),
                (Some(76), None)
            ]
        );
    }

    #[test]
    fn never_makes_more_parts_than_keys_nor_overflows() {
        assert_eq!(
            bounds(&Ranges::split(7, 8, 4, None)),
            vec![(None, Some(8)), (Some(8), None)]
        );
        assert_eq!(bounds(&Ranges::split(5, 5, 4, None)), vec![(None, None)]);
        let wide = Ranges::split(i64::MIN, i64::MAX, 3, None);
        assert_eq!(wide.parts.len(), 3);
        assert!(wide.parts.windows(2).all(|w| w[0].to == w[1].from));
    }

    #[test]
    fn round_trips_through_the_state() {
        let mut r = Ranges::split(1, 10, 2, Some("2024-01-01 00:00:00+00".into()));
        r.parts[0].after = Some(3);
        r.parts[1].done = true;
        let state = r.state();
        assert_eq!(state.cursor, None);
        assert_eq!(Ranges::of(&state).unwrap(), Some(r.clone()));
        assert!(!r.is_done());
        assert_eq!(Ranges::of(&StreamState::empty()).unwrap(), None);
    }
}
