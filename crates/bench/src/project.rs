//! The project files the workloads sync with: written into the bench's temporary
//! directory, whose DuckDB paths are relative to it. Nothing here runs a sync.

use std::path::Path;

use anyhow::{Context, Result};

/// Writes `toml` as `dir/name`; returns the path, for `elt-bench sync PATH CONNECTION`.
pub fn write(dir: &Path, name: &str, toml: &str) -> Result<String> {
    let path = dir.join(name);
    std::fs::write(&path, toml).with_context(|| format!("writing {}", path.display()))?;
    Ok(path.to_string_lossy().into_owned())
}
