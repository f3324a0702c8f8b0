//! `${VAR}` and `${VAR:-default}` in every string of `elt.toml`, expanded from the
//! environment when the project loads: paths, dataset names, stream options, manifest
//! `vars`. `$$` is a literal `$`, and any other `$` stays as written. Secrets are the
//! exception: they keep their text and resolve only when a connector connects, so their
//! values never enter the loaded project. An unset variable without a default is a config
//! error that names the key and the variable.

use std::collections::BTreeSet;

use elt_core::{Error, Result};

/// Expands every string of `value`, found at key path `at`, except the `secrets`' paths.
fn expand(value: &mut toml::Value, at: &str, secrets: &BTreeSet<String>) -> Result<()> {
    match value {
        toml::Value::String(text) if text.contains('$') && !secrets.contains(at) => {
            *text = elt_core::secret::expand(text, |name| std::env::var(name).ok())
                .map_err(|e| Error::config(format!("`{at}`: {}", e.message())))?;
        }
        toml::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                expand(item, &format!("{at}[{i}]"), secrets)?;
            }
        }
        toml::Value::Table(table) => expand_table(table, at, secrets)?,
        _ => {}
    }
    Ok(())
}

/// [`expand`] for every value of `table`, found at key path `at`.
pub(super) fn expand_table(
    table: &mut toml::Table,
    at: &str,
    secrets: &BTreeSet<String>,
) -> Result<()> {
    for (key, item) in table.iter_mut() {
        expand(item, &format!("{at}.{key}"), secrets)?;
    }
    Ok(())
}

/// The project's `[connections]` with their strings expanded, when any of them names a
/// variable (None when none does, so the file is read as written, with line numbers in
/// its errors).
pub(super) fn expanded_connections(text: &str) -> Option<Result<toml::Table>> {
    let mut document: toml::Table = toml::from_str(text).ok()?;
    let connections = document.get_mut("connections")?;
    let before = connections.clone();
    if let Err(e) = expand(connections, "connections", &BTreeSet::new()) {
        return Some(Err(e));
    }
    (*connections != before).then_some(Ok(document))
}
