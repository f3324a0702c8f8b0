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
use tokio::sync::mpsc;

use crate::capability::{
    DeadLetterStore, KeyDigests, ProfileLog, RunLog, SchemaCompare, SqlQueries, TestResultLog,
    WindowLog,
};
use crate::catalog::ConfiguredStream;
use crate::error::Result;
use crate::message::Message;
use crate::source::{ConnectorConfig, parse_config};
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
    /// Seconds each commit took (its staged rows' move, state and dead letters included),
    /// in order; failed commits are not in it.
    pub commit_secs: Vec<f64>,
    /// Seconds each batch took to load (staged or written), in order.
    pub batch_secs: Vec<f64>,
    /// What the load tells the user about committed work (such as the earlier rows a
    /// backfill window replaced), for the stream's notes.
    pub notes: Vec<String>,
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

    /// A session that reads the run records, state, dead letters and test results (and the
    /// tables' columns, not their rows) that the last writer published, without ever
    /// waiting for or blocking a writer, also while a sync runs: what `elt ui` reads, and
    /// what `elt runs`, `state show` and `dead-letter list` fall back to while a sync holds
    /// a single-writer file. By default, [`Self::open_reader`] (destinations whose readers
    /// never wait for writers).
    async fn open_published(
        &self,
        connection: &str,
        dataset: &str,
    ) -> Result<Box<dyn DestinationSession>> {
        self.open_reader(connection, dataset).await
    }

    /// Opens a session for one run of `connection`, writing into `dataset` (a schema).
    /// A single-writer destination takes its lock here and returns an error of kind
    /// `Locked` naming the holder when another run has it.
    async fn open(&self, connection: &str, dataset: &str) -> Result<Box<dyn DestinationSession>>;
}

/// One run's use of a destination: what every destination does, loading rows with their
/// state. What a destination may offer beyond that (a run log, dead letters, reconciling
/// keys, comparing schemas, SQL for data tests) it hands out through the accessors at the
/// end, each `None` by default; see [`crate::capability`]. Dropping a session releases its
/// lock.
#[async_trait]
pub trait DestinationSession: Send {
    /// The committed state of every stream of the connection.
    async fn state(&mut self) -> Result<StateMap>;

    /// Loads one stream from `messages` until [`Message::Complete`] or the channel closes.
    /// Commits at checkpoints (overwrite: once, at `Complete`). When the channel closes
    /// without `Complete` (the source failed), rolls back what is uncommitted. Returns what
    /// was committed, also when it fails. A destination with per-stream locks takes the
    /// stream's lock first (an error of kind `Locked` when another worker holds it).
    /// Destinations in this workspace do it with the shared load driver
    /// (`elt_destinations::driver`).
    async fn write(
        &mut self,
        run: &RunInfo,
        stream: &ConfiguredStream,
        messages: mpsc::Receiver<Message>,
    ) -> (WriteSummary, Result<()>);

    /// Forgets the state of one stream, or of all of them; returns how many were removed.
    async fn reset_state(&mut self, stream: Option<&str>) -> Result<usize>;

    /// The `_elt_runs` log of runs, if the destination keeps one.
    fn run_log(&mut self) -> Option<&mut dyn RunLog> {
        None
    }

    /// The `_elt_dead_letter` table, if the destination keeps one readable.
    fn dead_letters(&mut self) -> Option<&mut dyn DeadLetterStore> {
        None
    }

    /// Digests of live keys, for hard-delete detection, if the destination can compute them.
    fn key_digests(&mut self) -> Option<&mut dyn KeyDigests> {
        None
    }

    /// A comparison of a stream's schema with its raw table, if the destination can tell.
    fn schemas(&mut self) -> Option<&mut dyn SchemaCompare> {
        None
    }

    /// Read-only SQL over the raw tables (data tests), if the destination speaks SQL.
    fn sql(&mut self) -> Option<&mut dyn SqlQueries> {
        None
    }

    /// The `_elt_test_results` history of data tests, if the destination keeps one.
    fn test_results(&mut self) -> Option<&mut dyn TestResultLog> {
        None
    }

    /// The `_elt_profiles` of loaded columns, if the destination keeps them.
    fn profiles(&mut self) -> Option<&mut dyn ProfileLog> {
        None
    }

    /// The `_elt_windows` of completed backfill windows, if the destination loads windows.
    fn windows(&mut self) -> Option<&mut dyn WindowLog> {
        None
    }

    /// Whether the destination splits a stream's table into the time partitions of its
    /// `partition_by` ([`crate::partitions`]); a stream with `partition_by` is refused
    /// before it is read by one that does not.
    fn partitions_tables(&self) -> bool {
        false
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
