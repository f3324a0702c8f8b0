//! What a destination may offer beyond loading rows with their state. Each capability is
//! a trait; a session hands out the ones it has through the accessors of
//! [`DestinationSession`](crate::DestinationSession), `None` by default. The runner asks
//! for a capability where a command needs it and fails with [`missing`] when the
//! destination lacks it: `elt runs` on a destination without a run log, data tests on one
//! without SQL. Nothing falls back silently.
//!
//! What it does not hold: how any destination implements them (`elt-destinations`).

use async_trait::async_trait;
use serde::Serialize;

use crate::catalog::ConfiguredStream;
use crate::destination::RunInfo;
use crate::error::{Error, Result};
use crate::reconcile::{Key, KeyRange, RangeDigest};

/// The error of a command that needs `capability` (for example "a run log (`_elt_runs`)")
/// of a destination that lacks it, naming what to do instead.
pub fn missing(capability: &str, needed_by: &str) -> Error {
    Error::config(format!(
        "this destination type has no {capability}, which {needed_by} needs; use a DuckDB or \
         PostgreSQL destination for it"
    ))
}

/// The log of runs in `_elt_runs`: one row per run and stream.
#[async_trait]
pub trait RunLog: Send {
    /// Inserts or updates the row of `record.run_id` and `record.stream`.
    async fn record_run(&mut self, record: &RunRecord) -> Result<()>;

    /// The connection's most recent rows, newest first: the streams of the last `limit`
    /// runs.
    async fn runs(&mut self, limit: usize) -> Result<Vec<RunRecord>>;
}

/// One data test's result, as `_elt_test_results` keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct TestResult {
    /// The stream tested.
    pub stream: String,
    /// The test, such as `unique(id)`.
    pub test: String,
    /// `error` or `warn`.
    pub severity: String,
    /// Whether it passed.
    pub passed: bool,
    /// Rows (or values) that fail it.
    pub failing_rows: u64,
    /// Up to five failing rows or values, as text.
    pub samples: Vec<String>,
    /// The measured value of a measuring test.
    pub observed: Option<f64>,
    /// What was measured and expected.
    pub detail: Option<String>,
}

/// The history of data test results, `_elt_test_results`: one row per test and test run,
/// for dashboards and for tests that compare with earlier runs.
#[async_trait]
pub trait TestResultLog: Send {
    /// Appends the results of one test run: the sync's run id after a sync, `elt test`'s
    /// own otherwise.
    async fn record_test_results(&mut self, run_id: &str, results: &[TestResult]) -> Result<()>;

    /// The connection's newest `limit` results, newest first (`elt ui`'s history).
    async fn test_history(&mut self, limit: usize) -> Result<Vec<RecordedTest>>;
}

/// A data test's result as recorded, with its test run.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedTest {
    /// The sync's run id, or `elt test`'s own.
    pub run_id: String,
    /// When it was recorded, in microseconds since the Unix epoch.
    pub tested_at_us: i64,
    /// The result.
    pub result: TestResult,
}

/// What one column of a run's loaded rows looked like, as `_elt_profiles` keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnProfile {
    /// The stream.
    pub stream: String,
    /// The column.
    pub column: String,
    /// Rows profiled (those the run loaded).
    pub rows: u64,
    /// Of them, rows where the column is NULL.
    pub nulls: u64,
    /// Distinct non-NULL values (None for types that cannot be compared).
    pub distinct: Option<u64>,
    /// The smallest value, as text (orderable types).
    pub min: Option<String>,
    /// The largest value, as text (orderable types).
    pub max: Option<String>,
    /// The mean (numeric types).
    pub mean: Option<f64>,
}

/// Column profiles per run, `_elt_profiles`, for tests that compare a run's data with
/// earlier runs' (`distribution_drift`).
#[async_trait]
pub trait ProfileLog: Send {
    /// Appends the profiles of run `run_id`.
    async fn record_profiles(&mut self, run_id: &str, profiles: &[ColumnProfile]) -> Result<()>;
}

/// A backfill window as `_elt_windows` records it: committed with its rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CompletedWindow {
    /// The stream.
    pub stream: String,
    /// The window, `[from, to)`.
    #[serde(flatten)]
    pub window: crate::windows::Window,
    /// The run that loaded it (the last one, when it was loaded again with `--force`).
    pub run_id: String,
    /// Rows the source sent for it.
    pub rows: u64,
}

/// The completed backfill windows of a connection's streams, `_elt_windows`: the interval
/// state of `elt backfill`, one row per window, each inserted in the transaction of the
/// window's rows, so windows loaded at once by several workers never overwrite each other's
/// record (a stream's `_elt_state` row would have to be read and rewritten by each).
/// Resetting a stream's state forgets its windows too.
#[async_trait]
pub trait WindowLog: Send {
    /// The completed windows of `stream` (of every stream without one), in any order.
    async fn windows(&mut self, stream: Option<&str>) -> Result<Vec<CompletedWindow>>;

    /// The digest of each of `windows` of `stream` over `columns`
    /// ([`crate::window_digest`]), over the table's live rows, in the destination's SQL.
    async fn digests(
        &mut self,
        stream: &crate::ConfiguredStream,
        columns: &[crate::window_digest::DigestColumn],
        windows: &[crate::windows::Window],
    ) -> Result<Vec<crate::window_digest::WindowDigest>>;

    /// The windows of `stream` being loaded now under a live lease, with their holders
    /// (destinations that lease windows; a single-writer file has no such record).
    async fn leased(&mut self, stream: &str) -> Result<Vec<(crate::windows::Window, String)>> {
        let _ = stream;
        Ok(Vec::new())
    }
}

/// One dead letter as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredDeadLetter {
    /// Its id (a UUID).
    pub id: String,
    /// The stream it belongs to.
    pub stream: String,
    /// The run that dead-lettered it.
    pub run_id: String,
    /// When, as the destination prints a timestamp.
    pub dead_at: String,
    /// Why it could not be loaded.
    pub reason: String,
    /// The record, as JSON text.
    pub record: String,
}

/// The dead letters of a connection, readable for listing and replay (a replay writes
/// through [`DestinationSession::write`](crate::DestinationSession::write) with
/// `Message::Replayed`).
#[async_trait]
pub trait DeadLetterStore: Send {
    /// Up to `limit` dead letters of the connection (of `stream` only, when given), newest
    /// first.
    async fn list(&mut self, stream: Option<&str>, limit: usize) -> Result<Vec<StoredDeadLetter>>;

    /// The cursor values, as text, of the live rows of `stream`'s table whose key is `key`
    /// (the key columns' values as text, in key order): what a replayed record competes
    /// with. Empty when the table does not exist yet.
    async fn live_cursors(
        &mut self,
        stream: &ConfiguredStream,
        key: &[String],
    ) -> Result<Vec<String>>;
}

/// Hard-delete detection (see [`crate::reconcile`]) on the destination's side.
#[async_trait]
pub trait KeyDigests: Send {
    /// The digest of each key range of the live rows of `stream`'s table (merge: not
    /// marked deleted; history: current).
    async fn key_digests(
        &mut self,
        stream: &ConfiguredStream,
        ranges: &[KeyRange],
    ) -> Result<Vec<RangeDigest>>;

    /// The live keys in `range`.
    async fn keys_in_range(
        &mut self,
        stream: &ConfiguredStream,
        range: &KeyRange,
    ) -> Result<Vec<Key>>;

    /// How many live keys `range` holds, and up to `parts - 1` of them that cut it into
    /// `parts` ranges of about equal size, in key order.
    async fn split_range(
        &mut self,
        stream: &ConfiguredStream,
        range: &KeyRange,
        parts: usize,
    ) -> Result<(u64, Vec<Key>)>;

    /// Marks `deleted` keys deleted as run `run` (merge: `_elt_deleted_at`, or removed with
    /// `on_delete = "remove"`; history: the current version closes) and records the
    /// reconciliation, in one transaction. Returns the rows changed.
    async fn finish_reconcile(
        &mut self,
        run: &RunInfo,
        stream: &ConfiguredStream,
        deleted: Vec<Key>,
    ) -> Result<u64>;

    /// Succeeded runs of `stream` since its last reconciliation (all of them when never).
    async fn runs_since_reconcile(&mut self, stream: &ConfiguredStream) -> Result<u64>;
}

/// How a stream's schema compares with its raw table (schema contracts, `elt plan`).
#[async_trait]
pub trait SchemaCompare: Send {
    /// How `stream`'s schema differs from its raw table, changing nothing.
    async fn schema_changes(&mut self, stream: &ConfiguredStream) -> Result<Vec<SchemaChange>>;
}

/// Read-only SQL over the raw tables, for data tests.
#[async_trait]
pub trait SqlQueries: Send {
    /// Runs `sql` (SQL both DuckDB and PostgreSQL accept, with `$1`, `$2` ... bound to
    /// `params` as text, and every selected value cast to text by the SQL itself); one
    /// vector per row.
    async fn query_text(
        &mut self,
        sql: &str,
        params: &[String],
    ) -> Result<Vec<Vec<Option<String>>>>;
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
