//! The `duckdb` destination: raw typed tables in one DuckDB database file.
//!
//! What it writes: one table per stream in the connection's dataset (a DuckDB schema),
//! with the stream's columns (JSON columns as DuckDB `JSON`) plus `_elt_extracted_at`
//! (the run's start, UTC) and `_elt_run_id`, and the columns of the write mode (merge:
//! `_elt_deleted_at`; history: `_elt_valid_from`, `_elt_valid_to`, `_elt_is_current`,
//! `_elt_row_hash`); `_elt_state` (one row per connection and stream), `_elt_runs` (one row
//! per run and stream) and `_elt_reconciliations` (one row per hard-delete check) beside
//! them.
//!
//! How it loads: batches go through DuckDB's Arrow appender into a temporary staging
//! table, never row by row. At each checkpoint, in one transaction, the staged rows move
//! into the raw table (append; merge by primary key where the highest cursor wins and
//! duplicates within a load collapse to one; history, which versions each changed row, see
//! `keyed.rs`) and the stream's state is written. Overwrite
//! builds a new table over the whole read and swaps it in with the state in one
//! transaction, so readers never see a half table. A table gains columns the source adds;
//! a column whose type changed is an error until the stream is rebuilt with
//! `--full-refresh`. Hard-delete detection reads and marks live keys in `keys.rs`.
//!
//! Locking: DuckDB lets one process write a file at a time, and a session keeps the file
//! open for the whole run, so two runs can never interleave commits; the second one gets an
//! error of kind `Locked` naming the holder's PID. The operating system drops the lock when
//! a process dies, so a killed run leaves no stale lock.
//!
//! Readers: a writing session publishes the dataset's bookkeeping to a snapshot file
//! beside the database when a stream's run starts and ends and after test results
//! (`snapshot.rs`), which
//! `open_published` reads, so `elt ui` and `elt runs` see a sync's runs while it holds the
//! file.
//!
//! Limits: one writer per file (run streams of one file one process at a time); Arrow
//! types without a DuckDB mapping (Decimal256, Float16, unions) are refused by name.

mod batches;
mod bookkeeping;
mod config;
mod connect;
mod db;
mod key_ranges;
mod keys;
mod load;
mod quality;
mod queries;
mod run_log;
mod session;
mod snapshot;
mod tables;
mod types;
mod windows;

use async_trait::async_trait;
use elt_core::{Destination, DestinationFactory, DestinationSession, Result};

pub use config::DuckDbConfig;
pub use session::DuckDbSession;

/// Registers the `duckdb` destination type.
pub fn factory() -> DestinationFactory {
    DestinationFactory::new(
        "duckdb",
        "Raw typed tables in a DuckDB database file, loaded through the Arrow appender",
        |config: DuckDbConfig| Ok(Box::new(DuckDbDestination { config })),
    )
}

/// The `duckdb` destination.
#[derive(Debug)]
pub struct DuckDbDestination {
    config: DuckDbConfig,
}

impl DuckDbDestination {
    /// A destination for `config` (already validated).
    pub fn new(config: DuckDbConfig) -> Self {
        Self { config }
    }
}

#[async_trait]
impl Destination for DuckDbDestination {
    fn endpoint(&self) -> Result<Option<String>> {
        Ok(Some(self.config.path.clone()))
    }

    async fn check(&self) -> Result<()> {
        let config = self.config.clone();
        db::run_blocking(move || connect::check(&config)).await
    }

    async fn open(&self, connection: &str, dataset: &str) -> Result<Box<dyn DestinationSession>> {
        let session = DuckDbSession::open(self.config.clone(), connection, dataset).await?;
        Ok(Box::new(session))
    }

    async fn open_reader(
        &self,
        connection: &str,
        dataset: &str,
    ) -> Result<Box<dyn DestinationSession>> {
        let session = DuckDbSession::open_reader(self.config.clone(), connection, dataset).await?;
        Ok(Box::new(session))
    }

    async fn open_published(
        &self,
        connection: &str,
        dataset: &str,
    ) -> Result<Box<dyn DestinationSession>> {
        let snapshot = snapshot::path(&self.config.path, dataset);
        let config = match snapshot.exists() {
            true => DuckDbConfig {
                path: snapshot.to_string_lossy().into_owned(),
                ..self.config.clone()
            },
            false => self.config.clone(),
        };
        let session = DuckDbSession::open_reader(config, connection, dataset).await?;
        Ok(Box::new(session))
    }
}
