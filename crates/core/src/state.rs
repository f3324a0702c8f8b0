//! Per-stream state: small, versioned JSON that the destination stores in `_elt_state` in
//! the same transaction as the data it covers.
//!
//! A state says where the next incremental read starts: the cursor value of the last
//! committed row in the source's own representation and precision (a timestamp as an
//! RFC 3339 string with microseconds, an integer as a number; never a float), and the
//! primary key of that row, so that a keyset `(cursor, key)` resumes exactly after it.
//! Connectors may keep more under `extra`; the runner reads only `cursor` (as the
//! watermark it reports).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The state format version this build writes and reads.
pub const STATE_VERSION: u32 = 1;

/// The saved position of one stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamState {
    /// Format version, [`STATE_VERSION`].
    pub v: u32,
    /// The cursor value of the last committed row, in the source's representation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<serde_json::Value>,
    /// The primary key of the last committed row, to break ties between equal cursors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Vec<serde_json::Value>>,
    /// Anything else the connector needs (a page token, a file offset).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// The state of every stream of a connection, by stream name.
pub type StateMap = BTreeMap<String, StreamState>;

impl StreamState {
    /// A state at `cursor` with the tie-breaking `key`.
    pub fn at(cursor: serde_json::Value, key: Vec<serde_json::Value>) -> Self {
        Self {
            v: STATE_VERSION,
            cursor: Some(cursor),
            key: Some(key),
            extra: Default::default(),
        }
    }

    /// A state with no position: the next read starts from the beginning.
    pub fn empty() -> Self {
        Self {
            v: STATE_VERSION,
            cursor: None,
            key: None,
            extra: Default::default(),
        }
    }

    /// The watermark as text for summaries and `_elt_runs`.
    pub fn watermark(&self) -> Option<String> {
        self.cursor.as_ref().map(|c| match c {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }

    /// Parses a stored state, refusing versions this build does not know.
    pub fn from_json(text: &str) -> Result<Self> {
        let state: Self = serde_json::from_str(text)
            .map_err(|e| Error::bug(format!("stored state is not valid: {e}")))?;
        if state.v != STATE_VERSION {
            return Err(Error::config(format!(
                "stored state has version {} but this elt reads version {STATE_VERSION}; \
                 upgrade elt, or reset the stream with `elt state reset`",
                state.v
            )));
        }
        Ok(state)
    }

    /// The JSON text stored in the destination.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a state always serializes")
    }
}

/// A timestamp cursor (microseconds since the epoch, UTC) as state JSON: RFC 3339 with
/// exactly six fractional digits, so it sorts as text and keeps full precision.
pub fn timestamp_cursor(micros: i64) -> serde_json::Value {
    match chrono::DateTime::from_timestamp_micros(micros) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string().into(),
        None => micros.into(),
    }
}

/// Reads a cursor written by [`timestamp_cursor`] back to microseconds.
pub fn parse_timestamp_cursor(value: &serde_json::Value) -> Result<i64> {
    let parsed = match value {
        serde_json::Value::String(text) => chrono::DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| t.timestamp_micros()),
        serde_json::Value::Number(n) => n.as_i64(),
        _ => None,
    };
    parsed.ok_or_else(|| {
        Error::config(format!(
            "stored cursor {value} is not a timestamp; reset the stream with `elt state reset`"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_unknown_versions() {
        let state = StreamState::at("2024-01-01T00:00:00.000001Z".into(), vec![42.into()]);
        let text = state.to_json();
        assert_eq!(
            text,
            r#"{"v":1,"cursor":"2024-01-01T00:00:00.000001Z","key":[42]}"#
        );
        assert_eq!(StreamState::from_json(&text).unwrap(), state);
        assert_eq!(
            state.watermark().as_deref(),
            Some("2024-01-01T00:00:00.000001Z")
        );
        assert!(StreamState::from_json(r#"{"v":2}"#).is_err());
    }

    #[test]
    fn timestamp_cursors_keep_microseconds_before_1970_and_after_2038() {
        for micros in [0, 1, -1, -2_208_988_800_000_001, 4_102_444_800_123_456] {
            let value = timestamp_cursor(micros);
            assert_eq!(parse_timestamp_cursor(&value).unwrap(), micros, "{value}");
        }
        assert_eq!(
            timestamp_cursor(1),
            serde_json::json!("1970-01-01T00:00:00.000001Z")
        );
    }
}
