//! Rows of an Arrow batch as JSON records and back, exactly: what the JSON Schema check
//! validates, what a dead letter stores and what a replay decodes. Every value keeps its
//! exact value through the round trip, where JSON numbers alone would not:
//!
//! | Arrow type | JSON |
//! | --- | --- |
//! | integers, finite floats, booleans | numbers, booleans (64-bit integers exact) |
//! | NaN, ±infinity | `"NaN"`, `"Infinity"`, `"-Infinity"` |
//! | decimals | strings of every digit (`"12345678901234567890.0123456789"`) |
//! | dates, timestamps, times | ISO 8601 text (`"2024-02-29"`, `"…T12:34:56.000001Z"`); ±infinity as `"infinity"` / `"-infinity"`; outside the years 0 to 9999, the number of days or time units since 1970 |
//! | month-day-nano intervals | ISO 8601 durations, each part signed (`"P-10M3DT14706.789000000S"`) |
//! | binary | base64; UUIDs as their hyphenated text |
//! | JSON columns | the JSON value itself |
//! | lists, structs | arrays, objects |
//!
//! Decoding takes the stream's current schema, so a record dead-lettered under an older
//! schema decodes into the new one where its values fit. It also takes what an HTTP API
//! sent (numbers, RFC 3339 text). What it does not decode: lists of intervals or binary.

mod decode;
mod encode;

pub use decode::decode;
pub use encode::{encode, uuid_text};
