//! Kafka messages as rows of a topic's stream: the value's columns (the JSON object's
//! fields checked by `crate::json_rows`, or one `value` column of text or bytes), then
//! `_elt_key`, `_elt_partition`, `_elt_offset`, `_elt_timestamp`, `_elt_headers` and
//! `_elt_tombstone`. A message whose value or key cannot be put in the row is a dead letter
//! that names its partition and offset; nothing is dropped. What it does not do: fetch
//! messages or decide where a batch ends (`read.rs`).

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use elt_core::arrow::array::{
    ArrayRef, BinaryArray, BooleanArray, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use elt_core::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use elt_core::batch::{FlushPolicy, JsonBatcher};
use elt_core::catalog::json_field;
use elt_core::{DeadLetter, Error, Result};
use elt_kafka::rskafka::record::RecordAndOffset;
use serde_json::{Map, Value};

use super::config::{KeyFormat, ValueFormat};
use crate::json_rows::Normalizer;

/// The message key (text, or base64 with `key_format = "base64"`).
pub const KEY: &str = "_elt_key";
/// The partition the message was read from.
pub const PARTITION: &str = "_elt_partition";
/// The message's offset in its partition.
pub const OFFSET: &str = "_elt_offset";
/// The message's timestamp (create or log-append time, as the topic keeps it).
pub const TIMESTAMP: &str = "_elt_timestamp";
/// The message's headers as a JSON object (a value that is not UTF-8 as `{"base64": …}`).
pub const HEADERS: &str = "_elt_headers";
/// Whether the message is a tombstone (a key with no value: the key was deleted).
pub const TOMBSTONE: &str = "_elt_tombstone";
/// The one value column of `format = "text"` and `"bytes"`.
pub const VALUE: &str = "value";

/// The metadata columns every topic's stream ends with.
pub fn metadata_fields() -> Vec<Field> {
    vec![
        Field::new(KEY, DataType::Utf8, true),
        Field::new(PARTITION, DataType::Int32, false),
        Field::new(OFFSET, DataType::Int64, false),
        Field::new(
            TIMESTAMP,
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        json_field(HEADERS, true),
        Field::new(TOMBSTONE, DataType::Boolean, false),
    ]
}

/// The value columns of a raw (`text`, `bytes`) format.
pub fn raw_value_fields(format: ValueFormat) -> Vec<Field> {
    match format {
        ValueFormat::Json => Vec::new(),
        ValueFormat::Text => vec![Field::new(VALUE, DataType::Utf8, true)],
        ValueFormat::Bytes => vec![Field::new(VALUE, DataType::Binary, true)],
    }
}

/// Rows of one stream waiting to become a batch.
pub struct Rows {
    schema: SchemaRef,
    /// The value columns' part of the schema.
    value_schema: SchemaRef,
    format: ValueFormat,
    key_format: KeyFormat,
    /// The stream is written by key (merge): a message without one cannot be.
    keyed: bool,
    normalizer: Normalizer,
    json: Vec<Map<String, Value>>,
    raw: Vec<Option<Vec<u8>>>,
    keys: Vec<Option<String>>,
    partitions: Vec<i32>,
    offsets: Vec<i64>,
    timestamps: Vec<i64>,
    headers: Vec<Option<String>>,
    tombstones: Vec<bool>,
}

impl Rows {
    /// Rows of `schema` (the value columns, then [`metadata_fields`]); `keyed` when the
    /// stream is written by key.
    pub fn new(schema: SchemaRef, format: ValueFormat, key_format: KeyFormat, keyed: bool) -> Self {
        let values = schema.fields().len() - metadata_fields().len();
        let value_schema = Arc::new(Schema::new(schema.fields()[..values].to_vec()));
        Self {
            normalizer: Normalizer::new(value_schema.clone(), "the source's `schemas`"),
            schema,
            value_schema,
            format,
            key_format,
            keyed,
            json: Vec::new(),
            raw: Vec::new(),
            keys: Vec::new(),
            partitions: Vec::new(),
            offsets: Vec::new(),
            timestamps: Vec::new(),
            headers: Vec::new(),
            tombstones: Vec::new(),
        }
    }

    /// Rows waiting.
    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    /// Adds one message of `partition` as a row, or returns it as a dead letter.
    pub fn push(&mut self, partition: i32, message: RecordAndOffset) -> Option<DeadLetter> {
        let RecordAndOffset { record, offset } = message;
        let at = |why: &str| format!("partition {partition}, offset {offset}: {why}");
        // The message as it came, for a dead letter: its raw value and metadata.
        let raw = |why: &str, key: Option<String>| {
            let value = record.value.as_deref();
            dead_letter(partition, offset, at(why), key, value, Map::new())
        };
        let key = match (record.key.as_deref(), self.key_format) {
            (None, _) => None,
            (Some(bytes), KeyFormat::Base64) => Some(BASE64.encode(bytes)),
            (Some(bytes), KeyFormat::Text) => match std::str::from_utf8(bytes) {
                Ok(text) => Some(text.to_owned()),
                Err(_) => {
                    let why = "the key is not UTF-8 text; set `key_format = \"base64\"`";
                    return Some(raw(why, None));
                }
            },
        };
        if key.is_none() && self.keyed {
            let why = "the message has no key, and the stream is written by key (`write`); \
                       give every message a key, or write the stream with `write = \"append\"`";
            return Some(raw(why, None));
        }
        let tombstone = record.value.is_none();
        let not_text = record
            .value
            .as_deref()
            .is_some_and(|v| std::str::from_utf8(v).is_err());
        match self.format {
            ValueFormat::Json => {
                let value = match json_value(record.value.as_deref()) {
                    Ok(value) => value,
                    Err(why) => return Some(raw(&why, key)),
                };
                match self.normalizer.row(value, &[]) {
                    Ok(row) => self.json.push(row),
                    // A field that does not fit: the value's fields go with the letter, so
                    // a replay decodes them into the stream's columns.
                    Err(dead) => {
                        return Some(match serde_json::from_str(&dead.record) {
                            Ok(Value::Object(fields)) => {
                                let reason = at(&dead.reason);
                                dead_letter(partition, offset, reason, key, None, fields)
                            }
                            _ => raw(&dead.reason, key),
                        });
                    }
                }
            }
            ValueFormat::Text if not_text => {
                let why = "the value is not UTF-8 text; set `format = \"bytes\"`";
                return Some(raw(why, key));
            }
            ValueFormat::Text | ValueFormat::Bytes => self.raw.push(record.value),
        }
        self.keys.push(key);
        self.partitions.push(partition);
        self.offsets.push(offset);
        self.timestamps.push(record.timestamp.timestamp_micros());
        self.headers.push(headers_json(&record.headers));
        self.tombstones.push(tombstone);
        None
    }

    /// The waiting rows as one batch (None when there are none).
    pub fn take_batch(&mut self) -> Result<Option<RecordBatch>> {
        if self.len() == 0 {
            return Ok(None);
        }
        let rows = self.len();
        let mut columns: Vec<ArrayRef> = match self.format {
            ValueFormat::Json => {
                let json = std::mem::take(&mut self.json);
                let mut batcher =
                    JsonBatcher::new(self.value_schema.clone(), FlushPolicy::rows(rows))?;
                let mut batches = batcher.push_values(&json)?;
                batches.extend(batcher.flush()?);
                let [batch] = <[RecordBatch; 1]>::try_from(batches)
                    .map_err(|_| Error::bug("the JSON values did not make one batch"))?;
                batch.columns().to_vec()
            }
            ValueFormat::Text => {
                let raw = std::mem::take(&mut self.raw);
                let text = raw.iter().map(|v| {
                    v.as_deref()
                        .map(|b| std::str::from_utf8(b).unwrap_or_default())
                });
                vec![Arc::new(text.collect::<StringArray>())]
            }
            ValueFormat::Bytes => {
                let raw = std::mem::take(&mut self.raw);
                vec![Arc::new(
                    raw.iter().map(|v| v.as_deref()).collect::<BinaryArray>(),
                )]
            }
        };
        columns.push(Arc::new(StringArray::from(std::mem::take(&mut self.keys))));
        columns.push(Arc::new(Int32Array::from(std::mem::take(
            &mut self.partitions,
        ))));
        columns.push(Arc::new(Int64Array::from(std::mem::take(
            &mut self.offsets,
        ))));
        columns.push(Arc::new(
            TimestampMicrosecondArray::from(std::mem::take(&mut self.timestamps))
                .with_timezone("UTC"),
        ));
        columns.push(Arc::new(StringArray::from(std::mem::take(
            &mut self.headers,
        ))));
        columns.push(Arc::new(BooleanArray::from(std::mem::take(
            &mut self.tombstones,
        ))));
        RecordBatch::try_new(self.schema.clone(), columns)
            .map(Some)
            .map_err(|e| Error::bug(format!("building a batch of Kafka messages: {e}")))
    }
}

/// A dead letter of the message at `partition`/`offset`: the value's `fields` (so a
/// replay decodes them into the stream's columns) or its `raw` value as text (base64 when
/// it is not UTF-8) under `_elt_raw_value`, and its metadata.
fn dead_letter(
    partition: i32,
    offset: i64,
    reason: String,
    key: Option<String>,
    raw: Option<&[u8]>,
    fields: Map<String, Value>,
) -> DeadLetter {
    let mut record = fields;
    if let Some(bytes) = raw {
        let raw = match std::str::from_utf8(bytes) {
            Ok(text) => Value::String(text.to_owned()),
            Err(_) => serde_json::json!({ "base64": BASE64.encode(bytes) }),
        };
        record.insert("_elt_raw_value".into(), raw);
    }
    record.insert(KEY.into(), key.map_or(Value::Null, Value::String));
    record.insert(PARTITION.into(), partition.into());
    record.insert(OFFSET.into(), offset.into());
    DeadLetter {
        reason,
        record: Value::Object(record).to_string(),
    }
}

/// The JSON object of a value; a tombstone is an empty object (every column NULL).
fn json_value(value: Option<&[u8]>) -> std::result::Result<Value, String> {
    let Some(bytes) = value else {
        return Ok(Value::Object(Map::new()));
    };
    serde_json::from_slice(bytes).map_err(|e| format!("the value is not JSON ({e})"))
}

/// Headers as a JSON object; None when there are none.
fn headers_json(headers: &std::collections::BTreeMap<String, Vec<u8>>) -> Option<String> {
    if headers.is_empty() {
        return None;
    }
    let object: Map<String, Value> = headers
        .iter()
        .map(|(name, bytes)| {
            let value = match std::str::from_utf8(bytes) {
                Ok(text) => Value::String(text.to_owned()),
                Err(_) => serde_json::json!({ "base64": BASE64.encode(bytes) }),
            };
            (name.clone(), value)
        })
        .collect();
    Some(Value::Object(object).to_string())
}
