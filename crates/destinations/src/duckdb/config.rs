//! Configuration of the `duckdb` destination.

use elt_core::{ConnectorConfig, Error, Result, bounds};
use schemars::JsonSchema;
use serde::Deserialize;

/// A DuckDB database file.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DuckDbConfig {
    /// The database file; created when missing. A relative path is relative to the
    /// directory of `elt.toml`.
    pub path: String,
    /// DuckDB's memory limit, such as `"1GB"`. The default keeps a sync's memory flat as
    /// tables grow; DuckDB spills to disk beyond it.
    #[serde(default = "default_memory_limit")]
    pub memory_limit: Option<String>,
    /// Worker threads DuckDB may use; half the machine's cores (at least 1) when unset, as
    /// reading and decoding the source need the rest.
    #[serde(default)]
    pub threads: Option<u32>,
    /// Commit at a checkpoint once this many rows are uncommitted. DuckDB writes large
    /// commits straight into the file and small ones through its write-ahead log, so larger
    /// commits load several times faster; a crash re-reads at most this many rows.
    #[serde(default = "default_commit_rows")]
    pub commit_rows: u64,
    /// Commit at a checkpoint once the last commit is this many seconds old.
    #[serde(default = "default_commit_interval_secs")]
    pub commit_interval_secs: u64,
}

fn default_memory_limit() -> Option<String> {
    Some("128MB".to_owned())
}
fn default_commit_rows() -> u64 {
    500_000
}
fn default_commit_interval_secs() -> u64 {
    60
}

impl ConnectorConfig for DuckDbConfig {
    fn validate(&self) -> Result<()> {
        if self.path.trim().is_empty() || self.path == ":memory:" {
            return Err(Error::config(
                "`path` must name a database file (an in-memory database would lose the data and the state)",
            ));
        }
        if let Some(limit) = &self.memory_limit {
            let ok = limit.trim_end_matches(|c: char| c.is_ascii_alphabetic() || c == ' ');
            if ok.is_empty() || ok.parse::<f64>().is_err() {
                return Err(Error::config(format!(
                    "`memory_limit` is {limit:?}; expected a size such as \"512MB\" or \"2GB\""
                )));
            }
        }
        if self.commit_rows == 0 {
            return Err(Error::config("`commit_rows` must be at least 1"));
        }
        if self.threads == Some(0) {
            return Err(Error::config("`threads` must be at least 1"));
        }
        bounds::check_secs("commit_interval_secs", self.commit_interval_secs)?;
        Ok(())
    }
}
