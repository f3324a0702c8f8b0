//! The `mysql` source: tables and views of MySQL and MariaDB databases.
//!
//! What it reads: every base table and view of the configured `databases` (the URL's
//! database by default) that passes `include`/`exclude`, as stream `database.table`, with
//! its primary key and cursor candidates (`updated_at` and similar). Types map to Arrow
//! losslessly (see `types.rs`): integers keep width and sign, decimals stay exact,
//! `datetime` has no zone and `timestamp` is UTC; anything unknown is read as text.
//!
//! How it reads: one SELECT per stream inside a `START TRANSACTION WITH CONSISTENT
//! SNAPSHOT, READ ONLY` (InnoDB; MyISAM tables have no snapshot), streamed by the driver
//! row by row into batches of `batch_rows`; never the whole table in memory. A slow
//! destination pauses the read for up to `stall_timeout_secs`.
//!
//! How it checkpoints: as the `postgres` source does. Incremental reads go in keyset order
//! `(cursor, primary key)` up to the cursor's maximum in the same snapshot, with a
//! checkpoint after every batch, so rows sharing a timestamp across batches are neither
//! skipped nor read twice and a killed sync resumes after its last commit. Rows with a
//! NULL cursor are reported by incremental reads and loaded by full refreshes.
//! `lookback_secs` re-reads a window before a date or time watermark.
//!
//! Hard deletes: `keys.rs` answers a reconciliation's key-range questions as the
//! `postgres` source does. Limits: zero dates (`0000-00-00`) are loaded as NULL and
//! reported.

mod config;
mod conn;
mod discover;
mod keys;
mod params;
mod read;
mod types;
mod values;

use async_trait::async_trait;
use elt_core::reconcile::{Key, KeyRange, RangeDigest};
use elt_core::{Catalog, ConfiguredStream, Emitter, Result, Source, SourceFactory, StreamState};
use sqlx::Executor;

pub use config::MysqlConfig;

/// Registers the `mysql` source type.
pub fn factory() -> SourceFactory {
    SourceFactory::new(
        "mysql",
        "MySQL and MariaDB tables and views, read in consistent snapshots",
        |config: MysqlConfig| {
            Ok(Box::new(MysqlSource {
                config,
                idle: Default::default(),
            }))
        },
    )
}

/// The `mysql` source.
pub struct MysqlSource {
    config: MysqlConfig,
    idle: conn::IdleConnection,
}

#[async_trait]
impl Source for MysqlSource {
    fn reads_windows(&self) -> bool {
        true
    }

    fn endpoint(&self) -> Result<Option<String>> {
        conn::Target::new(&self.config).map(|t| Some(t.describe()))
    }

    async fn check(&self) -> Result<()> {
        let target = conn::Target::new(&self.config)?;
        let mut conn = target.connect().await?;
        conn.execute("SELECT 1")
            .await
            .map(drop)
            .map_err(|e| target.error("running SELECT 1", e))
    }

    async fn discover(&self) -> Result<Catalog> {
        let target = conn::Target::new(&self.config)?;
        let mut conn = self.idle.take_or(target.connect()).await?;
        let tables = discover::tables(&mut conn, &target, &self.config, None).await?;
        self.idle.put(conn).await;
        let streams = tables.iter().map(discover::Table::descriptor).collect();
        Ok(Catalog { streams })
    }

    async fn read(
        &self,
        stream: &ConfiguredStream,
        state: Option<StreamState>,
        out: &mut Emitter,
    ) -> Result<()> {
        read::read(&self.config, &self.idle, stream, state, out)
            .await
            .map_err(|e| e.in_stream(stream.name()))
    }

    async fn key_digests(
        &self,
        stream: &ConfiguredStream,
        ranges: &[KeyRange],
    ) -> Result<Vec<RangeDigest>> {
        keys::digests(&self.config, &self.idle, stream, ranges).await
    }

    async fn keys_in_range(&self, stream: &ConfiguredStream, range: &KeyRange) -> Result<Vec<Key>> {
        keys::keys(&self.config, &self.idle, stream, range).await
    }
}
