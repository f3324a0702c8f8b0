//! The `[connections.NAME]` section of `elt.toml`: which source feeds which destination,
//! the dataset, limits and data tests, and each stream's sync and write modes, keys,
//! schema contract and JSON Schema. Parsing only; the planner checks the streams against
//! the source's catalog.

use std::path::Path;

use elt_core::{Error, OnDelete, Result, SyncMode, WriteMode};
use serde::Deserialize;

/// A connection as configured: which source feeds which destination, and how.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Connection {
    /// The name of a `[sources.NAME]` table.
    pub source: String,
    /// The name of a `[destinations.NAME]` table.
    pub destination: String,
    /// The schema (DuckDB, PostgreSQL) the raw tables go into.
    #[serde(default = "default_dataset")]
    pub dataset: String,
    /// The streams to sync and how; every stream the source offers, with defaults, when
    /// omitted.
    #[serde(default)]
    pub streams: Option<Vec<StreamConfig>>,
    /// Batches buffered between source and destination, 1 to 1024 (backpressure: memory
    /// stays bounded by this many batches).
    #[serde(default = "default_channel_batches")]
    pub channel_batches: usize,
    /// Retries of a stream after a transient error, with exponential backoff, resuming from
    /// the last committed checkpoint.
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// Data tests of the raw tables (`[[connections.NAME.tests]]`), run by `elt test`.
    #[serde(default)]
    pub tests: Vec<crate::datatests::StreamTests>,
    /// Run the data tests after every sync; a failing test makes the run fail.
    #[serde(default)]
    pub test_after_sync: bool,
    /// Record a profile of every column a sync loaded in `_elt_profiles` (streams with a
    /// `distribution_drift` test are profiled anyway).
    #[serde(default)]
    pub profile: bool,
    /// What a sync does when a stream's schema no longer matches its raw table, for streams
    /// that do not set their own.
    #[serde(default)]
    pub schema_contract: SchemaContract,
    /// The project's `hash_salt` (a secret), for streams that hash columns.
    #[serde(skip)]
    pub hash_salt: Option<elt_core::Secret>,
    /// The connection's name (its key in `[connections]`).
    #[serde(skip)]
    pub name: String,
}

/// What a sync does when a stream's schema no longer matches its raw table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SchemaContract {
    /// Add the new columns (nullable); a column whose type changed fails the stream.
    #[default]
    Evolve,
    /// Fail the stream on any change (a new, removed or retyped column) before reading
    /// anything: its data and state stay as they were.
    Freeze,
    /// Keep the table as it is: a row with a value in a new or retyped column goes to
    /// `_elt_dead_letter`, the others are loaded without that column.
    DiscardRow,
    /// Keep the table as it is: load every row, without the values of new or retyped
    /// columns.
    DiscardValue,
}

impl SchemaContract {
    /// The name used in `elt.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Evolve => "evolve",
            Self::Freeze => "freeze",
            Self::DiscardRow => "discard_row",
            Self::DiscardValue => "discard_value",
        }
    }
}

impl StreamConfig {
    /// Reads and checks the JSON Schema file, relative to `dir`; `at` names the option.
    pub(super) fn load_json_schema(&mut self, dir: &Path, at: &str) -> Result<()> {
        let Some(path) = &self.json_schema_path else {
            return Ok(());
        };
        let path = dir.join(path);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error::config(format!("{at}: cannot read {}: {e}", path.display())))?;
        let schema: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::config(format!("{at}: {} is not JSON: {e}", path.display())))?;
        jsonschema::validator_for(&schema).map_err(|e| {
            Error::config(format!(
                "{at}: {} is not a valid JSON Schema: {e}",
                path.display()
            ))
        })?;
        self.json_schema = Some(schema);
        Ok(())
    }
}

impl Connection {
    /// The configuration of stream `name`, when the connection lists it.
    pub fn stream_config(&self, name: &str) -> Option<&StreamConfig> {
        self.streams.iter().flatten().find(|s| s.name == name)
    }

    /// The schema contract of stream `name`: its own, else the connection's.
    pub fn contract_of(&self, name: &str) -> SchemaContract {
        self.streams
            .iter()
            .flatten()
            .find(|s| s.name == name)
            .and_then(|s| s.schema_contract)
            .unwrap_or(self.schema_contract)
    }
}

/// How one stream of a connection is synced.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamConfig {
    /// The stream's name in the source.
    pub name: String,
    /// `incremental`, `full_refresh` or `cdc` (changes from the source's log: postgres);
    /// incremental when the stream has a cursor.
    #[serde(default)]
    pub sync: Option<SyncMode>,
    /// `merge`, `append`, `overwrite`, `history` or `previous`; merge for incremental
    /// streams with a primary key.
    #[serde(default)]
    pub write: Option<WriteMode>,
    /// Write mode previous: the columns whose prior value (`<column>_previous`) and change
    /// time (`<column>_changed_at`) the table keeps.
    #[serde(default)]
    pub previous_columns: Option<Vec<String>>,
    /// The cursor column; the source's first candidate (such as `updated_at`) by default.
    #[serde(default)]
    pub cursor: Option<String>,
    /// The primary key, overriding the discovered one.
    #[serde(default)]
    pub primary_key: Option<Vec<String>>,
    /// `evolve`, `freeze`, `discard_row` or `discard_value`: what a sync does when the
    /// schema changed; the connection's `schema_contract` when unset.
    #[serde(default)]
    pub schema_contract: Option<SchemaContract>,
    /// A JSON Schema file every record must pass (relative to `elt.toml`); failing records
    /// go to `_elt_dead_letter` with the reasons.
    #[serde(default)]
    pub json_schema_path: Option<String>,
    /// The JSON Schema read from `json_schema_path` when the project loads.
    #[serde(skip)]
    pub json_schema: Option<serde_json::Value>,
    /// The raw table's name; the normalized stream name by default.
    #[serde(default)]
    pub table: Option<String>,
    /// Which of the source's columns the stream reads: `{ include = [...] }` or
    /// `{ exclude = [...] }`. Excluded columns are left out of the source's query (SQL
    /// sources) or dropped as soon as a batch is read (others), so they never reach a
    /// check, a dead letter or the destination. Key, cursor and soft-delete columns cannot
    /// be left out.
    #[serde(default)]
    pub columns: Option<ColumnSelection>,
    /// Text or integer columns whose values are replaced by the hex SHA-256 of the
    /// project's `hash_salt` followed by the value, before any check, dead letter or write.
    /// Equal values keep equal hashes, so a hashed key still joins.
    #[serde(default)]
    pub hash: Option<Vec<String>>,
    /// A column marking rows deleted in the source (deleted when not NULL and not false),
    /// such as `deleted_at` or `is_deleted`; merge and history only.
    #[serde(default)]
    pub soft_delete: Option<String>,
    /// What a merge does with a deleted row: `mark` (set `_elt_deleted_at`, the default)
    /// or `remove`.
    #[serde(default)]
    pub on_delete: Option<OnDelete>,
    /// Look for rows deleted in the source (hard deletes) by comparing primary keys, at
    /// least once every this many runs (1: every run); merge and history only. `elt sync
    /// --reconcile-deletes` does it on demand.
    #[serde(default)]
    pub reconcile_deletes_every: Option<u32>,
    /// Connections a first load or full refresh reads the stream on at once (1 to 16), in
    /// primary key ranges of one snapshot; sources that cannot refuse it.
    #[serde(default)]
    pub parallelism: Option<usize>,
    /// `sync = "cdc"`: the replication slot the stream reads through;
    /// `elt_<connection>_<table>` by default.
    #[serde(default)]
    pub cdc_slot: Option<String>,
    /// `sync = "cdc"`: the publication of the stream's table; the slot's name by default.
    #[serde(default)]
    pub cdc_publication: Option<String>,
    /// Time partitions of the raw table (destinations that partition tables):
    /// `{ column = "created_at", granularity = "day" }` or `"month"`, UTC.
    #[serde(default)]
    pub partition_by: Option<elt_core::partitions::PartitionBy>,
}

fn default_dataset() -> String {
    "raw".to_owned()
}
fn default_channel_batches() -> usize {
    4
}
fn default_max_retries() -> u32 {
    3
}

/// The `columns` option of a stream: one of the two lists.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnSelection {
    /// Only these columns.
    #[serde(default)]
    pub include: Option<Vec<String>>,
    /// Every column but these.
    #[serde(default)]
    pub exclude: Option<Vec<String>>,
}

impl ColumnSelection {
    /// Whether the selection reads `column` (the plan refuses a selection with both lists
    /// or neither).
    pub fn keeps(&self, column: &str) -> bool {
        match (&self.include, &self.exclude) {
            (Some(list), _) => list.iter().any(|c| c == column),
            (None, Some(list)) => !list.iter().any(|c| c == column),
            (None, None) => true,
        }
    }
}
