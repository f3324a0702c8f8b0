//! JSON records as rows of an Arrow schema, for sources that receive JSON documents (the
//! `http` source's records, the `kafka` source's message values): the schema, declared as a
//! JSON Schema or inferred from sample records, and each record checked against it and put
//! in the form arrow-json decodes exactly.
//!
//! Objects and arrays are kept as JSON columns. Fields the schema does not name are not
//! dropped: they go, as one JSON object, to the `_extra` column. A value whose type does
//! not fit its column makes the record a dead letter, with a reason naming the field:
//! nothing is silently dropped or coerced. What it does not do: find records in a response
//! or a message (the sources do), or build batches (`elt_core::batch::JsonBatcher` does).

use std::sync::Arc;

use elt_core::DeadLetter;
use elt_core::arrow::datatypes::{DataType, Field, SchemaRef, TimeUnit};
use elt_core::catalog::{is_json_field, json_field};
use serde_json::{Map, Value};

/// The column that holds the fields a schema does not name.
pub const EXTRA: &str = "_extra";

pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The Arrow field of a JSON Schema property.
fn declared_field(name: &str, property: &Value) -> Field {
    let types: Vec<&str> = match &property["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let types: Vec<&str> = types.into_iter().filter(|t| *t != "null").collect();
    let format = property["format"].as_str().unwrap_or("");
    let data_type = match (types.as_slice(), format) {
        (["integer"], _) => DataType::Int64,
        (["number"] | ["integer", "number"] | ["number", "integer"], _) => DataType::Float64,
        (["boolean"], _) => DataType::Boolean,
        (["string"], "date-time") => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        (["string"], "date") => DataType::Date32,
        (["string"], _) => DataType::Utf8,
        _ => return json_field(name, true),
    };
    Field::new(name, data_type, true)
}

/// The fields of a declared JSON Schema (`properties`, in name order).
pub fn declared(schema: &Value) -> Vec<Field> {
    schema["properties"]
        .as_object()
        .map(|p| {
            p.iter()
                .map(|(name, prop)| declared_field(name, prop))
                .collect()
        })
        .unwrap_or_default()
}

/// Fields inferred from sample records: integers, numbers, booleans and strings where every
/// non-null value agrees; objects, arrays and mixed values as JSON.
pub fn inferred(records: &[Value]) -> Vec<Field> {
    let mut names: Vec<String> = Vec::new();
    for record in records {
        for name in record.as_object().into_iter().flat_map(|o| o.keys()) {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
    }
    names
        .into_iter()
        .map(|name| {
            let kinds: Vec<&'static str> = records
                .iter()
                .filter_map(|r| r.get(&name))
                .filter(|v| !v.is_null())
                .map(kind)
                .collect();
            let data_type = match kinds.first() {
                Some(first) if kinds.iter().all(|k| k == first) => match *first {
                    "an integer" => Some(DataType::Int64),
                    "a number" => Some(DataType::Float64),
                    "a boolean" => Some(DataType::Boolean),
                    "a string" => Some(DataType::Utf8),
                    _ => None,
                },
                _ if kinds
                    .iter()
                    .all(|k| matches!(*k, "an integer" | "a number"))
                    && !kinds.is_empty() =>
                {
                    Some(DataType::Float64)
                }
                // Never seen with a value: text, the type that holds most.
                None => Some(DataType::Utf8),
                _ => None,
            };
            match data_type {
                Some(t) => Field::new(&name, t, true),
                None => json_field(&name, true),
            }
        })
        .collect()
}

/// Checks records against a schema and puts them in the form arrow-json decodes exactly.
pub struct Normalizer {
    schema: SchemaRef,
    /// Where a user declares the schema, for the advice on a value that does not fit
    /// (`the manifest's schema`).
    declared_in: &'static str,
}

impl Normalizer {
    /// For `schema` (whose last column is [`EXTRA`]); `declared_in` says where a user
    /// declares it (`the manifest's schema`).
    pub fn new(schema: SchemaRef, declared_in: &'static str) -> Self {
        Self {
            schema,
            declared_in,
        }
    }

    /// One record as a row: JSON columns serialized, timestamps as microseconds, dates as
    /// days, unknown fields in `_extra`; `added` fields (a child's parent key) included. A
    /// record with a value that does not fit its column comes back as a dead letter, whole.
    pub fn row(
        &self,
        record: Value,
        added: &[(&str, &Value)],
    ) -> Result<Map<String, Value>, DeadLetter> {
        let Value::Object(mut fields) = record else {
            return Err(DeadLetter {
                reason: format!("a record is {}, not an object", kind(&record)),
                record: record.to_string(),
            });
        };
        for (name, value) in added {
            fields
                .entry(name.to_string())
                .or_insert_with(|| (*value).clone());
        }
        // Checked by reference first, so a record that does not fit is still whole.
        let columns = self.schema.fields();
        let mut converted: Vec<Option<Value>> = vec![None; columns.len()];
        for (i, field) in columns.iter().enumerate() {
            let Some(value) = fields.get(field.name()).filter(|v| !v.is_null()) else {
                continue;
            };
            if field.name() == EXTRA {
                continue;
            }
            match convert(field, value, self.declared_in) {
                Ok(new) => converted[i] = new,
                Err(why) => {
                    return Err(DeadLetter {
                        reason: format!("field {}: {why}", field.name()),
                        record: Value::Object(fields).to_string(),
                    });
                }
            }
        }
        let mut row = Map::new();
        for (field, new) in columns.iter().zip(converted) {
            if field.name() == EXTRA {
                continue;
            }
            match (fields.remove(field.name()), new) {
                (None | Some(Value::Null), _) => {}
                (Some(_), Some(new)) => {
                    row.insert(field.name().clone(), new);
                }
                (Some(value), None) => {
                    row.insert(field.name().clone(), value);
                }
            }
        }
        if !fields.is_empty() {
            row.insert(
                EXTRA.to_owned(),
                Value::String(Value::Object(fields).to_string()),
            );
        }
        Ok(row)
    }
}

/// The form of `value` that arrow-json decodes exactly into `field`: None when it already
/// is; an error when it does not fit.
fn convert(field: &Field, value: &Value, declared_in: &str) -> Result<Option<Value>, String> {
    if is_json_field(field) {
        return Ok(Some(Value::String(value.to_string())));
    }
    let fits = match (field.data_type(), value) {
        (DataType::Int64, Value::Number(n)) => n.is_i64(),
        (DataType::Float64, Value::Number(_)) => true,
        (DataType::Boolean, Value::Bool(_)) => true,
        (DataType::Utf8, Value::String(_)) => true,
        (DataType::Timestamp(..), Value::String(text)) => {
            return chrono::DateTime::parse_from_rfc3339(text)
                .map(|t| Some(Value::from(t.timestamp_micros())))
                .map_err(|_| format!("{text:?} is not an RFC 3339 date-time"));
        }
        (DataType::Date32, Value::String(text)) => {
            return chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map(|d| {
                    Some(Value::from(
                        d.signed_duration_since(chrono::NaiveDate::default())
                            .num_days(),
                    ))
                })
                .map_err(|_| format!("{text:?} is not a date (YYYY-MM-DD)"));
        }
        _ => false,
    };
    if fits {
        Ok(None)
    } else {
        Err(format!(
            "{} ({}) does not fit the schema's {} (declare it as an object or string in {declared_in}, or fix the source)",
            kind(value),
            truncate(&value.to_string()),
            field.data_type()
        ))
    }
}

fn truncate(text: &str) -> String {
    match text.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

/// A stream's schema: `fields`, the child key field, then `_extra`.
pub fn schema(mut fields: Vec<Field>, child_key: Option<Field>) -> SchemaRef {
    fields.retain(|f| f.name() != EXTRA);
    if let Some(key) = child_key {
        fields.retain(|f| f.name() != key.name());
        fields.insert(0, key);
    }
    fields.push(json_field(EXTRA, true));
    Arc::new(elt_core::arrow::datatypes::Schema::new(fields))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_are_checked_and_nothing_is_dropped() {
        let fields = declared(&json!({"properties": {
            "id": {"type": "integer"}, "at": {"type": "string", "format": "date-time"},
            "tags": {"type": "array"}, "name": {"type": ["string", "null"]}}}));
        let normalizer = Normalizer::new(schema(fields, None), "the manifest's schema");
        let row = normalizer
            .row(json!({"id": 1, "at": "1970-01-01T00:00:01Z", "tags": ["a"], "name": null, "new": {"x": 1}}), &[])
            .unwrap();
        assert_eq!(
            Value::Object(row),
            json!({"id": 1, "at": 1_000_000, "tags": "[\"a\"]", "_extra": "{\"new\":{\"x\":1}}"})
        );
        let err = normalizer.row(json!({"id": "7"}), &[]).unwrap_err().reason;
        assert!(
            err.contains("field id: a string (\"7\") does not fit"),
            "{err}"
        );
        let inferred = inferred(&[
            json!({"a": 1, "b": 1.5, "c": "x", "d": {"k": 1}}),
            json!({"a": null, "b": 2}),
        ]);
        let types: Vec<String> = inferred
            .iter()
            .map(|f| format!("{}", f.data_type()))
            .collect();
        assert_eq!(types, ["Int64", "Float64", "Utf8", "Utf8"]);
        assert!(is_json_field(&inferred[3]));
    }
}
