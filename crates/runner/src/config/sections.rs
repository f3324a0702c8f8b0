//! Building the connectors of the `[sources]` and `[destinations]` sections: each table's
//! `type` found in the registry, its options handed to that type's factory, and errors that
//! name the section, the connector and the key.

use std::collections::BTreeMap;
use std::path::Path;

use elt_core::{Error, Result};

use super::expand::expand_table;

/// Builds every connector of one section (`sources` or `destinations`): its `type`, its
/// options checked by the factory that `find` returns for that type, its secrets noted.
pub(super) fn build_section<T, B>(
    shown: &impl std::fmt::Display,
    section: &str,
    tables: BTreeMap<String, toml::Table>,
    dir: &Path,
    secrets: &mut Vec<(String, elt_core::Secret)>,
    known: Vec<&str>,
    find: impl Fn(&str) -> Option<(serde_json::Value, B)>,
) -> Result<BTreeMap<String, T>>
where
    B: Fn(&serde_json::Value) -> Result<T>,
{
    let mut built = BTreeMap::new();
    for (name, mut table) in tables {
        let at = format!("{section}.{name}");
        let kind = take_type(shown, &at, &mut table)?;
        let (spec, build) =
            find(&kind).ok_or_else(|| unknown_type(shown, section, &name, &kind, known.clone()))?;
        let mut found = Vec::new();
        crate::spec_secrets::collect_secrets(&spec, &to_json(shown, &at, &table)?, &at, &mut found);
        let secret_paths = found.iter().map(|(path, _)| path.clone()).collect();
        expand_table(&mut table, &at, &secret_paths)
            .map_err(|e| Error::config(format!("{shown}: {}", e.message())))?;
        anchor_paths(&mut table, dir);
        let options = to_json(shown, &at, &table)?;
        secrets.extend(found);
        let connector = build(&options).map_err(|e| within(shown, section, &name, e))?;
        built.insert(name, connector);
    }
    Ok(built)
}

pub(super) fn names<V>(map: &BTreeMap<String, V>) -> String {
    if map.is_empty() {
        "none".to_owned()
    } else {
        map.keys().cloned().collect::<Vec<_>>().join(", ")
    }
}

pub(super) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub(super) fn within(
    shown: &impl std::fmt::Display,
    section: &str,
    name: &str,
    err: Error,
) -> Error {
    let message = err.message().trim_start_matches('`');
    let joined = if err.message().starts_with('`') {
        format!("`{section}.{name}.{message}")
    } else {
        format!("`{section}.{name}`: {message}")
    };
    Error::new(err.kind(), format!("{shown}: {joined}"))
}

fn unknown_type(
    shown: &impl std::fmt::Display,
    section: &str,
    name: &str,
    kind: &str,
    known: Vec<&str>,
) -> Error {
    Error::config(format!(
        "{shown}: `{section}.{name}.type`: unknown type {kind:?}; known types: {}",
        known.join(", ")
    ))
}

/// Takes `type` out of the connector table at `at`.
fn take_type(shown: &impl std::fmt::Display, at: &str, table: &mut toml::Table) -> Result<String> {
    match table.remove("type") {
        Some(toml::Value::String(kind)) => Ok(kind),
        Some(other) => Err(Error::config(format!(
            "{shown}: `{at}.type`: expected a string, found {}",
            other.type_str()
        ))),
        None => Err(Error::config(format!("{shown}: `{at}`: missing `type`"))),
    }
}

/// Anchors a relative `path` (or `*_path`, such as `manifest_path`) at the project
/// directory.
fn anchor_paths(table: &mut toml::Table, dir: &Path) {
    for (key, value) in table.iter_mut() {
        if let toml::Value::String(p) = value
            && (key == "path" || key.ends_with("_path"))
            && Path::new(p.as_str()).is_relative()
            && !dir.as_os_str().is_empty()
        {
            *p = dir.join(&*p).to_string_lossy().into_owned();
        }
    }
}

fn to_json(
    shown: &impl std::fmt::Display,
    at: &str,
    table: &toml::Table,
) -> Result<serde_json::Value> {
    serde_json::to_value(table).map_err(|e| Error::config(format!("{shown}: `{at}`: {e}")))
}
