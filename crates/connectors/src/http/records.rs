//! Records: finding them in a response body (a JSON pointer to an array or an object). What
//! the stream's schema is and how each record is checked against it is `crate::json_rows`.

use serde_json::Value;

use crate::json_rows::kind;

/// The records of a response body at `pointer` (a JSON pointer; the body when empty). An
/// object there is one record; null or missing is none.
pub fn extract(body: &Value, pointer: &str) -> Result<Vec<Value>, String> {
    let found = if pointer.is_empty() {
        Some(body)
    } else {
        body.pointer(pointer)
    };
    match found {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => Ok(items.clone()),
        Some(object @ Value::Object(_)) => Ok(vec![object.clone()]),
        Some(other) => Err(format!(
            "the records at {pointer:?} are {}, not an array of objects",
            kind(other)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_are_found_at_the_pointer() {
        assert_eq!(
            extract(&json!({"items": [1, 2]}), "/items").unwrap().len(),
            2
        );
        assert_eq!(
            extract(&json!({"item": {"a": 1}}), "/item").unwrap().len(),
            1
        );
        assert!(extract(&json!({"items": 3}), "/items").is_err());
    }
}
