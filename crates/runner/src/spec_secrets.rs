//! Finds the options of a connector's config that its spec marks as secrets (`writeOnly`,
//! or a `$ref` to `Secret`), at any depth: `auth.token` inside a tagged `auth` table as
//! well as a top-level `url`. `elt validate` and `sync` check their environment variables
//! before anything is opened. It resolves nothing and reads no environment itself.

use serde_json::Value;

use elt_core::Secret;

/// The secrets among `options` (a connector's table, as JSON) under `spec`, each with its
/// path from `at` (`sources.api` gives `sources.api.auth.token`).
pub fn collect_secrets(spec: &Value, options: &Value, at: &str, out: &mut Vec<(String, Secret)>) {
    let start = out.len();
    walk(spec, spec, options, at, out);
    // A key that several alternatives of a `oneOf` share is found once per alternative.
    let mut seen = std::collections::BTreeSet::new();
    let mut i = start;
    while i < out.len() {
        if seen.insert(out[i].0.clone()) {
            i += 1;
        } else {
            out.remove(i);
        }
    }
}

fn is_secret(schema: &Value) -> bool {
    schema.get("writeOnly").and_then(Value::as_bool) == Some(true)
        || schema
            .get("$ref")
            .and_then(Value::as_str)
            .is_some_and(|r| r.ends_with("/Secret"))
}

/// `schema` and, through `$ref`, `anyOf`, `oneOf` and `allOf`, every schema it may be.
fn alternatives<'a>(root: &'a Value, schema: &'a Value) -> Vec<&'a Value> {
    let mut all = vec![schema];
    let mut i = 0;
    while let Some(s) = all.get(i).copied() {
        i += 1;
        if let Some(target) = s
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix("#/$defs/"))
            .and_then(|name| root.get("$defs")?.get(name))
        {
            all.push(target);
        }
        for key in ["anyOf", "oneOf", "allOf"] {
            all.extend(s.get(key).and_then(Value::as_array).into_iter().flatten());
        }
    }
    all
}

fn walk(root: &Value, schema: &Value, value: &Value, at: &str, out: &mut Vec<(String, Secret)>) {
    let schemas = alternatives(root, schema);
    if schemas.iter().any(|s| is_secret(s)) {
        if let Some(text) = value.as_str() {
            out.push((at.to_owned(), Secret::new(text)));
        }
        return;
    }
    match value {
        Value::Object(fields) => {
            for (key, inner) in fields {
                for property in schemas.iter().filter_map(|s| s.get("properties")?.get(key)) {
                    walk(root, property, inner, &format!("{at}.{key}"), out);
                }
            }
        }
        Value::Array(items) => {
            for item in schemas.iter().filter_map(|s| s.get("items")) {
                for (n, inner) in items.iter().enumerate() {
                    walk(root, item, inner, &format!("{at}[{n}]"), out);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn finds_secrets_at_any_depth_once() {
        let spec = json!({
            "properties": {
                "url": { "$ref": "#/$defs/Secret" },
                "name": { "type": "string" },
                "auth": { "anyOf": [{ "$ref": "#/$defs/Auth" }, { "type": "null" }] }
            },
            "$defs": {
                "Secret": { "type": "string", "writeOnly": true },
                "Auth": { "oneOf": [
                    { "properties": { "kind": { "const": "bearer" }, "token": { "$ref": "#/$defs/Secret" } } },
                    { "properties": { "kind": { "const": "basic" }, "password": { "$ref": "#/$defs/Secret" } } },
                    { "properties": { "kind": { "const": "other" }, "token": { "$ref": "#/$defs/Secret" } } }
                ] }
            }
        });
        let options =
            json!({ "url": "u", "name": "n", "auth": { "kind": "bearer", "token": "${T}" } });
        let mut out = Vec::new();
        super::collect_secrets(&spec, &options, "sources.api", &mut out);
        let paths: Vec<&str> = out.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["sources.api.auth.token", "sources.api.url"]);
    }
}
