//! What a source offers ([`Catalog`] of [`StreamDescriptor`]s) and what a sync runs
//! ([`ConfiguredStream`]: a stream with its chosen sync mode, write mode, cursor, key and
//! destination table).
//!
//! Schemas are Arrow schemas. A string column that holds JSON text is marked with the
//! canonical Arrow extension name `arrow.json` (see [`json_field`]) so destinations can
//! give it a JSON type.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, SchemaRef};
use serde::{Deserialize, Serialize};

/// The Arrow extension name that marks a Utf8 column holding JSON documents.
pub const JSON_EXTENSION: &str = "arrow.json";

/// A nullable or non-nullable Utf8 field marked as JSON.
pub fn json_field(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
        .with_metadata([("ARROW:extension:name".to_owned(), JSON_EXTENSION.to_owned())].into())
}

/// The Arrow extension name of UUIDs (stored as `FixedSizeBinary(16)`).
pub const UUID_EXTENSION: &str = "arrow.uuid";

/// A UUID field: 16 bytes marked with the canonical `arrow.uuid` extension.
pub fn uuid_field(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::FixedSizeBinary(16), nullable)
        .with_metadata([("ARROW:extension:name".to_owned(), UUID_EXTENSION.to_owned())].into())
}

/// Whether a field was marked by [`uuid_field`].
pub fn is_uuid_field(field: &Field) -> bool {
    field.extension_type_name() == Some(UUID_EXTENSION)
        && field.data_type() == &DataType::FixedSizeBinary(16)
}

/// Whether a field was marked by [`json_field`].
pub fn is_json_field(field: &Field) -> bool {
    field.extension_type_name() == Some(JSON_EXTENSION)
}

/// How a stream is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    /// Every row, every run.
    FullRefresh,
    /// Rows whose cursor is past the saved watermark.
    Incremental,
    /// Change data capture: a snapshot, then every insert, update and delete from the
    /// source's log.
    Cdc,
}

/// How a stream's rows land in its raw table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WriteMode {
    /// Replace the table; readers see the old or the new table, never a half one.
    Overwrite,
    /// Add the rows.
    Append,
    /// Upsert by primary key; the row with the highest cursor wins.
    Merge,
    /// Slowly changing dimension type 2: every change of a row (by primary key) closes its
    /// current version and adds a new one.
    History,
    /// Slowly changing dimension type 3: a merge that keeps, for the stream's
    /// `previous_columns`, the prior value in `<column>_previous` and the run start at which
    /// it changed in `<column>_changed_at`.
    Previous,
}

impl WriteMode {
    /// Whether rows are written by primary key (merge, history, previous).
    pub fn is_keyed(self) -> bool {
        matches!(self, Self::Merge | Self::History | Self::Previous)
    }

    /// Whether the table keeps one row per key with `_elt_deleted_at` (merge, previous).
    pub fn is_merge(self) -> bool {
        matches!(self, Self::Merge | Self::Previous)
    }

    /// The condition that keeps a raw table's live rows: not marked deleted (merge,
    /// previous), the current version (history); None where every row is live.
    pub fn live_rows(self) -> Option<&'static str> {
        match self {
            Self::Merge | Self::Previous => Some("_elt_deleted_at IS NULL"),
            Self::History => Some("_elt_is_current"),
            Self::Append | Self::Overwrite => None,
        }
    }
}

impl std::fmt::Display for SyncMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::FullRefresh => "full_refresh",
            Self::Incremental => "incremental",
            Self::Cdc => "cdc",
        })
    }
}

impl std::fmt::Display for WriteMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Overwrite => "overwrite",
            Self::Append => "append",
            Self::Merge => "merge",
            Self::History => "history",
            Self::Previous => "previous",
        })
    }
}

/// One stream a source can read.
#[derive(Debug, Clone)]
pub struct StreamDescriptor {
    /// The source's name for the stream, such as `orders` or `public.orders`.
    pub name: String,
    /// The Arrow schema of every batch the stream emits.
    pub schema: SchemaRef,
    /// Columns of the primary key, empty when the stream has none.
    pub primary_key: Vec<String>,
    /// Columns usable as an incremental cursor, best first (such as `updated_at`).
    pub cursor_candidates: Vec<String>,
    /// The source only ever adds rows to the stream (an event log, such as a Kafka
    /// topic): by default it is read incrementally and appended, key or no key.
    pub append_only: bool,
    /// A column that marks a row as the deletion of its key (a Kafka tombstone): keyed
    /// write modes treat it as their soft-delete column unless `soft_delete` names one.
    pub delete_marker: Option<String>,
}

impl StreamDescriptor {
    /// The sync modes this stream supports: incremental needs a cursor candidate.
    pub fn supported_sync_modes(&self) -> Vec<SyncMode> {
        if self.cursor_candidates.is_empty() {
            vec![SyncMode::FullRefresh]
        } else {
            vec![SyncMode::FullRefresh, SyncMode::Incremental]
        }
    }
}

/// Everything a source offers.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// The streams, in the source's order.
    pub streams: Vec<StreamDescriptor>,
}

impl Catalog {
    /// The stream called `name`.
    pub fn stream(&self, name: &str) -> Option<&StreamDescriptor> {
        self.streams.iter().find(|s| s.name == name)
    }
}

/// A stream as one sync runs it.
#[derive(Debug, Clone)]
pub struct ConfiguredStream {
    /// The stream as discovered.
    pub stream: StreamDescriptor,
    /// How it is read in this run.
    pub sync_mode: SyncMode,
    /// How it is written in this run.
    pub write_mode: WriteMode,
    /// The cursor column for incremental reads and for "highest cursor wins" in merges.
    pub cursor: Option<String>,
    /// The primary key used by merges (the discovered one unless configured).
    pub primary_key: Vec<String>,
    /// The destination table name (normalized).
    pub table: String,
    /// A backfill: re-read this cursor window without moving the watermark.
    pub backfill: Option<Backfill>,
    /// How deletions in the source show in the raw table.
    pub deletes: Deletes,
    /// The schema the source discovered, when the stream reads only some of its columns
    /// (`columns` in elt.toml); [`Self::schema`] is then those columns, in this order.
    /// Sources that read SQL select only them; the emitter drops the others from what
    /// any other source builds.
    pub discovered: Option<SchemaRef>,
    /// Columns whose values are replaced by a salted SHA-256 before anything is written
    /// (`hash` in elt.toml; text in [`Self::schema`]).
    pub hashed: Vec<String>,
    /// Write mode previous: the columns whose prior value and change time the table keeps
    /// (`previous_columns` in elt.toml); empty otherwise.
    pub previous: Vec<String>,
    /// Connections a first load or full refresh reads the stream on at once, in key
    /// ranges of one snapshot (`parallelism` in elt.toml; 1 by default). Only sources
    /// whose [`Source::reads_in_parallel`](crate::Source::reads_in_parallel) is true
    /// accept more than 1.
    pub parallelism: usize,
    /// Change data capture: the slot and publication the stream reads through (set when
    /// the sync mode is [`SyncMode::Cdc`]).
    pub cdc: Option<crate::cdc::CdcNames>,
    /// The destination table's time partitions (`partition_by` in elt.toml), for
    /// destinations that partition tables.
    pub partition_by: Option<crate::partitions::PartitionBy>,
}

/// How a stream's deletions reach its raw table (merge and history write modes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deletes {
    /// A source column that marks a row deleted: a row is deleted when the column is not
    /// NULL and not `false` (such as `deleted_at` or `is_deleted`).
    pub soft_delete_column: Option<String>,
    /// What `merge` does with a deleted row; `history` always closes its current version.
    pub on_delete: OnDelete,
    /// Look for rows deleted in the source (hard deletes) after every this many runs.
    pub reconcile_every: Option<u32>,
}

/// What a `merge` does with a row deleted in the source.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum OnDelete {
    /// Keep the row and set `_elt_deleted_at` to the run's start time.
    #[default]
    Mark,
    /// Remove the row from the raw table.
    Remove,
}

/// A cursor window to re-read, in the cursor's text form (such as
/// `2024-01-01T00:00:00Z`): bounds inclusive for `--backfill-from`/`--backfill-to`; for a
/// window of `elt backfill` (`window`), `to` is excluded, the window's rows in the table
/// are replaced by the ones read, and the destination records the window as completed
/// with them (`_elt_windows`) instead of writing the stream's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backfill {
    /// The first cursor value to read.
    pub from: String,
    /// The last cursor value to read (the first one after it, for a window).
    pub to: String,
    /// A window of `elt backfill`: half-open, replacing, recorded.
    pub window: bool,
}

impl ConfiguredStream {
    /// The stream name.
    pub fn name(&self) -> &str {
        &self.stream.name
    }

    /// The window of `elt backfill` this run loads, if it is one.
    pub fn window(&self) -> Option<crate::windows::Window> {
        self.backfill
            .as_ref()
            .filter(|b| b.window)
            .map(|b| crate::windows::Window::new(&b.from, &b.to))
    }

    /// What a destination that takes concurrent writers leases: the stream, or one window
    /// of it (`orders [2024-01-01, 2024-01-02)`), so windows load at once.
    pub fn lease_name(&self) -> String {
        match self.window() {
            Some(window) => crate::windows::lease_name(self.name(), &window),
            None => self.name().to_owned(),
        }
    }

    /// The Arrow schema of the stream's batches.
    pub fn schema(&self) -> &SchemaRef {
        &self.stream.schema
    }

    /// The discovered columns the stream leaves out (`columns` in elt.toml).
    pub fn left_out_columns(&self) -> Vec<String> {
        left_out(self.source_schema(), self.schema())
    }

    /// The schema the source builds batches in: the discovered one (a superset of
    /// [`Self::schema`] when the stream selects columns).
    pub fn source_schema(&self) -> &SchemaRef {
        self.discovered.as_ref().unwrap_or(&self.stream.schema)
    }

    /// A configured stream with the defaults: incremental append for an append-only stream
    /// with a cursor candidate, incremental merge when the stream has both a primary key and
    /// a cursor candidate, full refresh with overwrite otherwise.
    pub fn with_defaults(stream: StreamDescriptor) -> Self {
        let cursor = stream.cursor_candidates.first().cloned();
        let primary_key = stream.primary_key.clone();
        let (sync_mode, write_mode) = match (&cursor, primary_key.is_empty()) {
            (Some(_), _) if stream.append_only => (SyncMode::Incremental, WriteMode::Append),
            (Some(_), false) => (SyncMode::Incremental, WriteMode::Merge),
            _ => (SyncMode::FullRefresh, WriteMode::Overwrite),
        };
        let table = crate::normalize_name(&stream.name);
        Self {
            stream,
            sync_mode,
            write_mode,
            cursor,
            primary_key,
            table,
            backfill: None,
            deletes: Deletes::default(),
            discovered: None,
            hashed: Vec::new(),
            previous: Vec::new(),
            parallelism: 1,
            cdc: None,
            partition_by: None,
        }
    }
}

/// A compact description of a schema for people and `--json`: name, type, nullability.
pub fn describe_schema(schema: &SchemaRef) -> Vec<serde_json::Value> {
    schema
        .fields()
        .iter()
        .map(|f| {
            let ty = if is_json_field(f) {
                "json".to_owned()
            } else {
                f.data_type().to_string()
            };
            serde_json::json!({ "name": f.name(), "type": ty, "nullable": f.is_nullable() })
        })
        .collect()
}

/// The names of the columns of `discovered` that `selected` leaves out.
pub fn left_out(discovered: &SchemaRef, selected: &SchemaRef) -> Vec<String> {
    discovered
        .fields()
        .iter()
        .filter(|f| selected.field_with_name(f.name()).is_err())
        .map(|f| f.name().clone())
        .collect()
}

/// Builds a schema reference from fields (a small convenience for connectors).
pub fn schema(fields: Vec<Field>) -> SchemaRef {
    Arc::new(arrow::datatypes::Schema::new(fields))
}
