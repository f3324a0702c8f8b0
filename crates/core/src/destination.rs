//! The destination contract, and the factory that registers a destination type.
//!
//! A destination opens a [`DestinationSession`] per sync run. A destination with one writer
//! at a time (DuckDB) takes its lock when opening; one that takes concurrent writers
//! (PostgreSQL) leases each stream when writing it. Either way an error of kind `Locked`
//! names the holder, and every commit is fenced by the lock: a run that lost it commits
//! nothing. Holding a lock also proves that the `running` rows of `_elt_runs` it covers
//! belong to a dead or stopped process, so they are marked `abandoned`. The session loads
//! each stream's batches into raw tables and commits each checkpoint's state in the same
//! transaction as the rows it covers, so a crash at any instant leaves the old data with
//! the old state or the new data with the new state.

use async_trait::async_trait;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::catalog::ConfiguredStream;
use crate::error::Result;
use crate::message::Message;
use crate::reconcile::{Key, KeyRange, RangeDigest};
use crate::source::{ConnectorConfig, cannot_reconcile, parse_config};
use crate::state::{StateMap, StreamState};

/// What every row of one run is stamped with.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// The run id (a UUID v7: sortable by start time).
    pub run_id: String,
    /// The connection's name.
    pub connection: String,
    /// When the run started, in microseconds since the Unix epoch (UTC); the value of
    /// `_elt_extracted_at`.
    pub started_at_us: i64,
}

/// What a session did with one stream.
#[derive(Debug, Clone, Default)]
pub struct WriteSummary {
    /// Rows committed into the raw table (for merge and history: rows that changed it).
    pub rows_loaded: u64,
    /// Rows received from the source and committed, whatever the write mode made of them:
    /// with the dead letters, every record the source extracted.
    pub rows_received: u64,
    /// The last state committed, if any.
    pub state: Option<StreamState>,
    /// Seconds spent loading and committing (excluding time waiting for the source).
    pub load_secs: f64,
}

/// How a stream's schema differs from its raw table (the `_elt_` columns left aside).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum SchemaChange {
    /// The raw table does not exist yet.
    NewTable,
    /// The source sends a column the table lacks.
    AddedColumn {
        /// The column.
        column: String,
        /// Its type in the destination.
        column_type: String,
    },
    /// The table has a column the source no longer sends (new rows would hold NULL).
    RemovedColumn {
        /// The column.
        column: String,
    },
    /// A column's type grew in a way the table can follow in place (a wider integer,
    /// `double` for `float`, a wider decimal).
    Widened {
        /// The column.
        column: String,
        /// Its type in the table.
        table_type: String,
        /// The wider type.
        source_type: String,
    },
    /// A column's type differs, and the table cannot follow in place.
    TypeChanged {
        /// The column.
        column: String,
        /// Its type in the table.
        table_type: String,
        /// The type the source's values need.
        source_type: String,
    },
}

impl std::fmt::Display for SchemaChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SchemaChange::NewTable => write!(f, "new table"),
            SchemaChange::AddedColumn {
                column,
                column_type,
            } => {
                write!(f, "new column {column} {column_type}")
            }
            SchemaChange::RemovedColumn { column } => {
                write!(f, "column {column} no longer sent (kept, NULL in new rows)")
            }
            SchemaChange::Widened {
                column,
                table_type,
                source_type,
            } => write!(
                f,
                "column {column} widens from {table_type} to {source_type}"
            ),
            SchemaChange::TypeChanged {
                column,
                table_type,
                source_type,
            } => write!(
                f,
                "column {column} changes type from {table_type} to {source_type}"
            ),
        }
    }
}

/// The outcome of one stream in one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Under way.
    Running,
    /// Completed and committed.
    Succeeded,
    /// Failed; what was committed before the failure stays.
    Failed,
    /// Its process stopped (was killed or crashed) before it ended; the next run of the
    /// connection found the `running` row and closed it. What it committed stays.
    Abandoned,
}

impl RunStatus {
    /// The text stored in `_elt_runs.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Abandoned => "abandoned",
        }
    }

    /// The status stored as `text`, if it is one.
    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Running,
            Self::Succeeded,
            Self::Failed,
            Self::Abandoned,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// One row of `_elt_runs`: a stream in a run.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    /// The run id.
    pub run_id: String,
    /// The connection's name.
    pub connection: String,
    /// The stream's name.
    pub stream: String,
    /// Start, microseconds since the epoch.
    pub started_at_us: i64,
    /// End, microseconds since the epoch, once ended.
    pub ended_at_us: Option<i64>,
    /// The outcome so far.
    pub status: RunStatus,
    /// Rows the source sent.
    pub rows_read: u64,
    /// Rows committed into the raw table.
    pub rows_loaded: u64,
    /// The watermark before the run.
    pub watermark_before: Option<String>,
    /// The watermark after the run.
    pub watermark_after: Option<String>,
    /// Seconds the source spent producing (including waiting on the destination).
    pub extract_secs: f64,
    /// Seconds the destination spent loading and committing.
    pub load_secs: f64,
    /// The error, when failed.
    pub error: Option<String>,
}

/// A destination of raw tables.
#[async_trait]
pub trait Destination: Send + Sync {
    /// A cheap health check: can we open and write?
    async fn check(&self) -> Result<()>;

    /// Where and how the destination connects, without any secret (a file path, or
    /// `db:5432/warehouse as elt (tls verify-full)`), for `elt check` and the run summary;
    /// no I/O.
    fn endpoint(&self) -> Result<Option<String>> {
        Ok(None)
    }

    /// A session that only reads (`elt state show`, `runs`, `plan`, `test`, `dead-letter
    /// list`): where the destination has a writer lock it takes none and creates nothing,
    /// so monitoring never stands in a scheduled sync's way. By default, [`Self::open`].
    async fn open_reader(
        &self,
        connection: &str,
        dataset: &str,
    ) -> Result<Box<dyn DestinationSession>> {
        self.open(connection, dataset).await
    }

    /// Opens a session for one run of `connection`, writing into `dataset` (a schema).
    /// A single-writer destination takes its lock here and returns an error of kind
    /// `Locked` naming the holder when another run has it.
    async fn open(&self, connection: &str, dataset: &str) -> Result<Box<dyn DestinationSession>>;
}

/// One run's use of a destination. Dropping it releases the lock.
#[async_trait]
pub trait DestinationSession: Send {
    /// The committed state of every stream of the connection.
    async fn state(&mut self) -> Result<StateMap>;

    /// Loads one stream from `messages` until [`Message::Complete`] or the channel closes.
    /// Commits at checkpoints (overwrite: once, at `Complete`). When the channel closes
    /// without `Complete` (the source failed), rolls back what is uncommitted. Returns what
    /// was committed, also when it fails. A destination with per-stream locks takes the
    /// stream's lock first (an error of kind `Locked` when another worker holds it).
    async fn write(
        &mut self,
        run: &RunInfo,
        stream: &ConfiguredStream,
        messages: mpsc::Receiver<Message>,
    ) -> (WriteSummary, Result<()>);

    /// Inserts or updates the `_elt_runs` row of `record.run_id` and `record.stream`.
    async fn record_run(&mut self, record: &RunRecord) -> Result<()>;

    /// Forgets the state of one stream, or of all of them; returns how many were removed.
    async fn reset_state(&mut self, stream: Option<&str>) -> Result<usize>;

    /// The connection's most recent `_elt_runs` rows, newest first: the streams of the
    /// last `limit` runs.
    async fn runs(&mut self, limit: usize) -> Result<Vec<RunRecord>>;

    /// Hard-delete detection (see [`crate::reconcile`]): the digest of each key range of
    /// the live rows of `stream`'s table (merge: not marked deleted; history: current).
    /// Destinations that cannot answer keep these defaults, errors.
    async fn key_digests(
        &mut self,
        stream: &ConfiguredStream,
        ranges: &[KeyRange],
    ) -> Result<Vec<RangeDigest>> {
        let _ = ranges;
        Err(cannot_reconcile(stream))
    }

    /// The live keys in `range`.
    async fn keys_in_range(
        &mut self,
        stream: &ConfiguredStream,
        range: &KeyRange,
    ) -> Result<Vec<Key>> {
        let _ = range;
        Err(cannot_reconcile(stream))
    }

    /// How many live keys `range` holds, and up to `parts - 1` of them that cut it into
    /// `parts` ranges of about equal size, in key order.
    async fn split_range(
        &mut self,
        stream: &ConfiguredStream,
        range: &KeyRange,
        parts: usize,
    ) -> Result<(u64, Vec<Key>)> {
        let _ = (range, parts);
        Err(cannot_reconcile(stream))
    }

    /// Marks `deleted` keys deleted as run `run` (merge: `_elt_deleted_at`, or removed with
    /// `on_delete = "remove"`; history: the current version closes) and records the
    /// reconciliation, in one transaction. Returns the rows changed.
    async fn finish_reconcile(
        &mut self,
        run: &RunInfo,
        stream: &ConfiguredStream,
        deleted: Vec<Key>,
    ) -> Result<u64> {
        let _ = (run, deleted);
        Err(cannot_reconcile(stream))
    }

    /// Succeeded runs of `stream` since its last reconciliation (all of them when never).
    async fn runs_since_reconcile(&mut self, stream: &ConfiguredStream) -> Result<u64> {
        Err(cannot_reconcile(stream))
    }

    /// How `stream`'s schema differs from its raw table, changing nothing (for schema
    /// contracts and `elt plan`). Destinations that cannot tell keep this default, an error.
    async fn schema_changes(&mut self, stream: &ConfiguredStream) -> Result<Vec<SchemaChange>> {
        Err(crate::Error::config(format!(
            "stream {}: this destination type cannot compare schemas; use `schema_contract = \"evolve\"`",
            stream.name()
        )))
    }

    /// A read-only query for data tests: `sql` (SQL both DuckDB and PostgreSQL accept, with
    /// `$1`, `$2` ... bound to `params` as text, and every selected value cast to text by
    /// the SQL itself); one vector per row. Destinations without SQL keep this default, an
    /// error.
    async fn query_text(
        &mut self,
        sql: &str,
        params: &[String],
    ) -> Result<Vec<Vec<Option<String>>>> {
        let _ = (sql, params);
        Err(crate::Error::config(
            "this destination type cannot run data tests; remove `tests` from the connection",
        ))
    }
}

type BuildDestination =
    Box<dyn Fn(&serde_json::Value) -> Result<Box<dyn Destination>> + Send + Sync>;

/// A registered destination type.
pub struct DestinationFactory {
    /// The `type` in the config, such as `duckdb`.
    pub kind: &'static str,
    /// One line for `elt connectors`.
    pub description: &'static str,
    spec: fn() -> serde_json::Value,
    build: BuildDestination,
}

impl DestinationFactory {
    /// Registers a destination type whose config is `C`; `build` must do no I/O.
    pub fn new<C: ConnectorConfig + 'static>(
        kind: &'static str,
        description: &'static str,
        build: fn(C) -> Result<Box<dyn Destination>>,
    ) -> Self {
        Self {
            kind,
            description,
            spec: crate::source::config_schema::<C>,
            build: Box::new(move |value| build(parse_config::<C>(value)?)),
        }
    }

    /// The JSON Schema of the config.
    pub fn spec(&self) -> serde_json::Value {
        (self.spec)()
    }

    /// Parses, validates and builds, without I/O.
    pub fn build(&self, config: &serde_json::Value) -> Result<Box<dyn Destination>> {
        (self.build)(config)
    }
}

impl std::fmt::Debug for DestinationFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DestinationFactory")
            .field("kind", &self.kind)
            .finish()
    }
}
