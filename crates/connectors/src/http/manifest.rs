//! The declarative manifest of an API: its base URL, default headers and rate limit, and
//! its streams (path, parameters, where the records are, key, cursor, incremental
//! parameter, paginator, schema, parent). Manifests are TOML; shipped ones live in
//! `specs/http/` and are compiled in.
//!
//! Loading checks everything that can be checked without a request: unknown keys, JSON
//! pointers, placeholders without a value, parents that do not exist.

use std::collections::BTreeMap;

use elt_core::{Error, Result};
use serde::Deserialize;

/// The manifests shipped with elt: name and TOML text.
pub const SHIPPED: &[(&str, &str)] =
    &[("github", include_str!("../../../../specs/http/github.toml"))];

/// A shipped manifest's text.
pub fn shipped(name: &str) -> Option<&'static str> {
    SHIPPED.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// An API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Requests go to paths under this URL (the source's `base_url` replaces it).
    #[serde(default)]
    pub base_url: Option<String>,
    /// Headers sent with every request (never credentials: those go in the source's `auth`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The API's rate limit, when it documents one.
    #[serde(default)]
    pub requests_per_second: Option<u32>,
    /// The API's rate limit per minute.
    #[serde(default)]
    pub requests_per_minute: Option<u32>,
    /// The streams.
    pub streams: Vec<StreamSpec>,
}

/// One stream of an API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSpec {
    /// The stream name.
    pub name: String,
    /// The path under `base_url`; `{name}` placeholders take the source's `vars` (and, for
    /// a child stream, the parent's field).
    pub path: String,
    /// Query parameters of every request (placeholders allowed).
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// A JSON pointer to the records in a response (`/items`); the whole body when empty.
    #[serde(default)]
    pub records: String,
    /// The primary key fields.
    #[serde(default)]
    pub primary_key: Vec<String>,
    /// The cursor field (`updated_at`); incremental syncs start after its saved value.
    #[serde(default)]
    pub cursor: Option<String>,
    /// The query parameter that asks the API for records from a cursor value on; without
    /// it, incremental syncs read every page and keep the records past the watermark.
    #[serde(default)]
    pub cursor_param: Option<String>,
    /// The API returns records in ascending order of the cursor (and `cursor_param`, if
    /// set, keeps those from a value on, inclusive). Then a killed or failed sync resumes
    /// from its last committed cursor; otherwise it reads its window again from the first
    /// page, since a page position shifts when records change in between.
    #[serde(default)]
    pub sorted_by_cursor: bool,
    /// How pages follow one another.
    #[serde(default)]
    pub paginator: Paginator,
    /// A JSON Schema of the records (`type = "object"` with `properties`); inferred from
    /// the first page when absent.
    #[serde(default)]
    pub schema: Option<serde_json::Value>,
    /// Makes this a child stream: one set of requests per record of the parent stream.
    #[serde(default)]
    pub parent: Option<ParentSpec>,
}

/// A child stream's parent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParentSpec {
    /// The parent stream.
    pub stream: String,
    /// The parent record's field whose value fills the placeholder.
    pub field: String,
    /// The placeholder it fills; each child record also gets this field.
    pub var: String,
}

/// How pages follow one another, and when they stop.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Paginator {
    /// One request.
    #[default]
    None,
    /// `?offset=N&limit=L`; stops after a page with fewer than `limit` records.
    Offset {
        /// The page size.
        limit: u64,
        /// The parameter of the page size.
        #[serde(default = "limit_param")]
        limit_param: String,
        /// The parameter of the offset.
        #[serde(default = "offset_param")]
        offset_param: String,
    },
    /// `?page=N&per_page=S`; stops after a page with fewer than `size` records.
    PageNumber {
        /// The page size.
        size: u64,
        /// The parameter of the page number.
        #[serde(default = "page_param")]
        page_param: String,
        /// The parameter of the page size (not sent when empty).
        #[serde(default)]
        size_param: String,
        /// The first page's number.
        #[serde(default = "one")]
        start: u64,
    },
    /// A token in the body (`path`, a JSON pointer) sent back as `param`; stops when the
    /// token is missing, null or empty.
    CursorToken {
        /// Where the next token is in the body.
        path: String,
        /// The query parameter it goes in.
        param: String,
    },
    /// The next page's URL in the body (`path`, a JSON pointer); stops when missing, null
    /// or empty.
    NextUrl {
        /// Where the next URL is in the body.
        path: String,
    },
    /// The `Link` header's `rel="next"` URL (RFC 8288); stops when there is none.
    LinkHeader,
}

fn limit_param() -> String {
    "limit".into()
}
fn offset_param() -> String {
    "offset".into()
}
fn page_param() -> String {
    "page".into()
}
fn one() -> u64 {
    1
}

impl Manifest {
    /// Parses and checks a manifest; `origin` names it in errors, `vars` are the source's.
    pub fn parse(text: &str, origin: &str, vars: &BTreeMap<String, String>) -> Result<Self> {
        let manifest: Manifest = toml::from_str(text)
            .map_err(|e| Error::config(format!("manifest {origin}: {}", e.to_string().trim())))?;
        let bad = |message: String| Error::config(format!("manifest {origin}: {message}"));
        if manifest.streams.is_empty() {
            return Err(bad("no `streams`".into()));
        }
        for (i, stream) in manifest.streams.iter().enumerate() {
            let at = format!("stream {}", stream.name);
            if manifest.streams[..i].iter().any(|s| s.name == stream.name) {
                return Err(bad(format!("{at} is defined twice")));
            }
            for pointer in [Some(&stream.records), paginator_pointer(&stream.paginator)]
                .into_iter()
                .flatten()
            {
                if !pointer.is_empty() && !pointer.starts_with('/') {
                    return Err(bad(format!(
                        "{at}: {pointer:?} is not a JSON pointer (write `/items`, or \"\" for the whole body)"
                    )));
                }
            }
            let parent_var = match &stream.parent {
                Some(parent) => {
                    let found = manifest.streams.iter().find(|s| s.name == parent.stream);
                    match found {
                        None => {
                            return Err(bad(format!(
                                "{at}: parent stream {} does not exist",
                                parent.stream
                            )));
                        }
                        Some(p) if p.parent.is_some() => {
                            return Err(bad(format!(
                                "{at}: parent {} is itself a child stream; one level only",
                                parent.stream
                            )));
                        }
                        Some(_) => Some(parent.var.as_str()),
                    }
                }
                None => None,
            };
            let texts = std::iter::once(&stream.path).chain(stream.params.values());
            for text in texts {
                for name in placeholders(text) {
                    if !vars.contains_key(name) && Some(name) != parent_var {
                        return Err(bad(format!(
                            "{at}: placeholder {{{name}}} has no value; set `vars.{name}` in the source"
                        )));
                    }
                }
            }
            if stream.sorted_by_cursor && stream.cursor.is_none() {
                return Err(bad(format!(
                    "{at}: `sorted_by_cursor` needs `cursor` (the field the records are sorted by)"
                )));
            }
            if let Some(schema) = &stream.schema
                && schema
                    .get("properties")
                    .and_then(|p| p.as_object())
                    .is_none()
            {
                return Err(bad(format!(
                    "{at}: `schema` needs `properties` (a table of fields)"
                )));
            }
        }
        Ok(manifest)
    }

    /// The stream named `name`.
    pub fn stream(&self, name: &str) -> Result<&StreamSpec> {
        self.streams
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| Error::config(format!("the manifest has no stream {name}")))
    }
}

fn paginator_pointer(paginator: &Paginator) -> Option<&String> {
    match paginator {
        Paginator::CursorToken { path, .. } | Paginator::NextUrl { path } => Some(path),
        _ => None,
    }
}

/// The `{name}` placeholders of a text.
pub fn placeholders(text: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        names.push(&rest[start + 1..start + len]);
        rest = &rest[start + len + 1..];
    }
    names
}

/// `text` with each `{name}` replaced by `escape(value)`.
pub fn fill(text: &str, values: &BTreeMap<String, String>, escape: fn(&str) -> String) -> String {
    let mut out = text.to_owned();
    for name in placeholders(text) {
        if let Some(value) = values.get(name) {
            out = out.replace(&format!("{{{name}}}"), &escape(value));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_manifests_parse_and_placeholders_are_checked() {
        let vars: BTreeMap<String, String> = [
            ("owner".to_owned(), "o".to_owned()),
            ("repo".to_owned(), "r".to_owned()),
        ]
        .into();
        for (name, text) in SHIPPED {
            Manifest::parse(text, name, &vars).unwrap();
        }
        let err =
            Manifest::parse(shipped("github").unwrap(), "github", &BTreeMap::new()).unwrap_err();
        assert!(err.message().contains("vars.owner"), "{err}");
        assert_eq!(placeholders("/r/{a}/x/{b}"), ["a", "b"]);
        assert_eq!(
            fill(
                "/r/{a}",
                &[("a".to_owned(), "x y".to_owned())].into(),
                |v| v.replace(' ', "%20")
            ),
            "/r/x%20y"
        );
    }
}
