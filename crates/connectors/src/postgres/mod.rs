//! The `postgres` source: tables and views of PostgreSQL schemas.
//!
//! What it reads: every table, partitioned table, view, materialized view and foreign
//! table of the configured `schemas` that passes `include`/`exclude`, as stream
//! `schema.table`, with its primary key and cursor candidates (`updated_at` and similar).
//! Types map to Arrow natively (see `types.rs`); anything else is read as text, never a
//! panic.
//!
//! How it reads: one `COPY (SELECT ...) TO STDOUT (FORMAT binary)` per stream inside a
//! REPEATABLE READ, read-only transaction, decoded straight into Arrow builders and sent in
//! batches of `batch_rows`; never the whole table in memory. With `parallelism = N` a first
//! load or full refresh reads N ranges of an integer primary key on N connections that
//! share one exported snapshot.
//!
//! How it checkpoints: incremental reads go in keyset order `(cursor, primary key)` up to
//! the cursor's maximum taken in the same snapshot, with a checkpoint after every batch, so
//! rows sharing a timestamp across batches are neither skipped nor read twice and a killed
//! sync resumes after its last commit. The cursor is kept in its own precision
//! (microseconds). Rows with a NULL cursor are counted and reported by incremental reads
//! and loaded by full refreshes. A table without a primary key checkpoints only at its end.
//! `lookback_secs` re-reads a window before the watermark for late-committing writers.
//!
//! Limits: multi-dimensional arrays are refused with a clear error; money, inet, cidr,
//! macaddr, enums and other types are read as text, unbounded numerics as exact text.

mod cdc;
mod config;
mod conn;
pub mod copy;
mod discover;
mod keys;
mod numeric;
mod position;
mod read;
pub mod types;
mod values;
mod windows;

use async_trait::async_trait;
use elt_core::reconcile::{Key, KeyRange, RangeDigest};
use elt_core::{Catalog, ConfiguredStream, Emitter, Result, Source, SourceFactory, StreamState};

pub use config::PostgresConfig;
pub use elt_postgres::TlsMode;

/// Registers the `postgres` source type.
pub fn factory() -> SourceFactory {
    SourceFactory::new(
        "postgres",
        "PostgreSQL tables and views, read with binary COPY in consistent snapshots",
        |config: PostgresConfig| {
            Ok(Box::new(PostgresSource {
                config,
                idle: Default::default(),
            }))
        },
    )
}

/// The `postgres` source.
pub struct PostgresSource {
    config: PostgresConfig,
    idle: conn::IdleConnection,
}

#[async_trait]
impl Source for PostgresSource {
    fn endpoint(&self) -> Result<Option<String>> {
        conn::target(&self.config).map(|t| Some(t.describe()))
    }

    async fn check(&self) -> Result<()> {
        let target = conn::target(&self.config)?;
        let mut conn = target.connect().await?;
        sqlx::query("SELECT 1")
            .execute(&mut conn)
            .await
            .map(drop)
            .map_err(|e| target.error("running SELECT 1", e))
    }

    fn reads_in_parallel(&self) -> bool {
        true
    }

    fn reads_windows(&self) -> bool {
        true
    }

    fn reads_changes(&self) -> bool {
        true
    }

    async fn check_changes(&self, tables: &[String]) -> Result<Vec<String>> {
        let target = conn::target(&self.config)?;
        let mut conn = target.connect().await?;
        cdc::check::problems(&mut conn, &target, tables).await
    }

    async fn committed(
        &self,
        stream: &ConfiguredStream,
        state: &StreamState,
    ) -> Result<Option<u64>> {
        if stream.sync_mode != elt_core::SyncMode::Cdc {
            return Ok(None);
        }
        cdc::committed(&self.config, &self.idle, stream, state).await
    }

    async fn log_status(
        &self,
        stream: &ConfiguredStream,
    ) -> Result<Option<elt_core::cdc::LogStatus>> {
        cdc::log_status(&self.config, &self.idle, stream).await
    }

    async fn drop_changes(&self, stream: &ConfiguredStream) -> Result<Vec<String>> {
        cdc::drop_objects(&self.config, stream).await
    }

    async fn discover(&self) -> Result<Catalog> {
        let target = conn::target(&self.config)?;
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
        let read = if stream.sync_mode == elt_core::SyncMode::Cdc {
            cdc::read(&self.config, &self.idle, stream, state, out).await
        } else {
            read::read(&self.config, &self.idle, stream, state, out).await
        };
        read.map_err(|e| e.in_stream(stream.name()))
    }

    async fn cursor_cut_points(
        &self,
        stream: &ConfiguredStream,
        rows: u64,
    ) -> Result<Option<Vec<String>>> {
        windows::cut_points(&self.config, &self.idle, stream, rows).await
    }

    async fn window_digests(
        &self,
        stream: &ConfiguredStream,
        columns: &[elt_core::window_digest::DigestColumn],
        windows: &[elt_core::windows::Window],
    ) -> Result<Option<Vec<elt_core::window_digest::WindowDigest>>> {
        windows::digests(&self.config, &self.idle, stream, columns, windows)
            .await
            .map(Some)
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
