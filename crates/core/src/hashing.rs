//! Hashing columns before anything is written (`hash = [...]` on a stream): each value
//! becomes the lower-case hex SHA-256 of the project's salt followed by the value's text
//! (text as is, integers in decimal), so equal values still join while the value itself
//! never leaves the run. Used by the emitter on every batch and on the records of dead
//! letters a source sends; NULL stays NULL.
//!
//! What it does not do: choose the columns or check their types (the planner allows text
//! and integer columns only), or keep the salt anywhere but in memory.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, StringArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The columns to hash and the salt.
#[derive(Clone)]
pub struct Hasher {
    columns: Vec<String>,
    /// SHA-256 with the salt already absorbed: each value continues from a copy.
    salted: Sha256,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher")
            .field("columns", &self.columns)
            .field("salt", &"***")
            .finish()
    }
}

impl Hasher {
    /// Hashes `columns` with `salt`.
    pub fn new(columns: Vec<String>, salt: &str) -> Self {
        Self {
            columns,
            salted: Sha256::new_with_prefix(salt.as_bytes()),
        }
    }

    /// Whether `column` is hashed.
    pub fn hashes(&self, column: &str) -> bool {
        self.columns.iter().any(|c| c == column)
    }

    /// The hex digest of `text`.
    pub fn digest(&self, text: &str) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut hasher = self.salted.clone();
        hasher.update(text.as_bytes());
        let mut hex = String::with_capacity(64);
        for byte in hasher.finalize() {
            hex.push(char::from(HEX[usize::from(byte >> 4)]));
            hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
        hex
    }

    /// `array` (text or integers) as the digests of its values' text.
    pub fn column(&self, array: &ArrayRef) -> Result<ArrayRef> {
        let text = cast(array, &DataType::Utf8)
            .map_err(|e| Error::bug(format!("hashing a column: {e}")))?;
        let text = text
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| Error::bug("hashing a column: not text after the cast"))?;
        let hashed: StringArray = text.iter().map(|v| v.map(|v| self.digest(v))).collect();
        Ok(Arc::new(hashed))
    }

    /// A record (JSON text) with the values of the hashed fields replaced by their digests;
    /// a record that is not a JSON object stays as it is.
    pub fn record(&self, record: &str) -> String {
        let Ok(serde_json::Value::Object(mut object)) = serde_json::from_str(record) else {
            return record.to_owned();
        };
        for (name, value) in object.iter_mut() {
            if !self.hashes(name) || value.is_null() {
                continue;
            }
            let text = match &*value {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            *value = serde_json::Value::String(self.digest(&text));
        }
        serde_json::Value::Object(object).to_string()
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::Int64Array;

    use super::*;

    #[test]
    fn digests_are_salted_sha256_of_the_text_and_null_stays_null() {
        let hasher = Hasher::new(vec!["email".into(), "id".into()], "pepper");
        // sha256("pepper" || "a@b.c"), from Python's hashlib
        let expected = "0430ccee28a2ef77a5405f545d9fdcd5f34a6a949517df97fd8722289ffa1f33";
        assert_eq!(hasher.digest("a@b.c"), expected);
        assert_ne!(
            hasher.digest("a@b.c"),
            Hasher::new(vec![], "salt").digest("a@b.c")
        );
        let ids: ArrayRef = Arc::new(Int64Array::from(vec![Some(7), None]));
        let hashed = hasher.column(&ids).unwrap();
        let hashed = hashed.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(hashed.value(0), hasher.digest("7"));
        assert!(hashed.is_null(1));
        let record = hasher.record(r#"{"id":7,"email":"a@b.c","name":"x"}"#);
        assert!(record.contains(&hasher.digest("7")) && record.contains(&hasher.digest("a@b.c")));
        assert!(record.contains(r#""name":"x""#) && !record.contains("a@b.c\""));
    }
}
