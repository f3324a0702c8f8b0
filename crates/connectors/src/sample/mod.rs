//! The `sample` source: a deterministic e-commerce data set generated in process, so that
//! elt can be tried, tested and benchmarked without any server.
//!
//! What it reads: three streams, `customers`, `products` and `orders`, each with primary
//! key `id` and cursor `updated_at` (UTC, microseconds). The same seed, counts and
//! `generation` always give the same rows; each generation after 0 updates about 1% of the
//! rows and adds 1% (see [`keyset`]).
//!
//! How it checkpoints: rows are produced in keyset order `(updated_at, id)`, and a
//! checkpoint holding the last row's `(updated_at, id)` follows every batch, so an
//! interrupted sync resumes exactly after the last committed batch, in full refreshes and
//! incremental reads alike.
//!
//! Limits: at most 100,000,000 base rows per stream and 100 generations.

mod config;
pub mod keyset;
mod tables;

use async_trait::async_trait;
use elt_core::batch::{FlushPolicy, RowBatcher};
use elt_core::state::{parse_timestamp_cursor, timestamp_cursor};
use elt_core::{
    Catalog, ConfiguredStream, Emitter, Error, Result, Source, SourceFactory, StreamDescriptor,
    StreamState, SyncMode,
};

pub use config::SampleConfig;
use keyset::Keyset;
use tables::Table;

/// Registers the `sample` source type.
pub fn factory() -> SourceFactory {
    SourceFactory::new(
        "sample",
        "A deterministic e-commerce data set (customers, products, orders) generated in process",
        |config: SampleConfig| Ok(Box::new(SampleSource { config })),
    )
}

/// The `sample` source.
#[derive(Debug)]
pub struct SampleSource {
    config: SampleConfig,
}

impl SampleSource {
    fn base_rows(&self, table: Table) -> u64 {
        match table {
            Table::Customers => self.config.customers,
            Table::Products => self.config.products,
            Table::Orders => self.config.orders,
        }
    }

    fn keyset(&self, table: Table) -> Keyset {
        Keyset::new(
            self.config.seed,
            table.salt(),
            self.base_rows(table),
            self.config.generation,
        )
    }
}

fn resume_position(state: Option<StreamState>) -> Result<Option<(i64, u64)>> {
    let Some(state) = state else { return Ok(None) };
    let Some(cursor) = &state.cursor else {
        return Ok(None);
    };
    let at = parse_timestamp_cursor(cursor)?;
    let id = state
        .key
        .as_deref()
        .and_then(|k| k.first())
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    Ok(Some((at, id)))
}

#[async_trait]
impl Source for SampleSource {
    async fn check(&self) -> Result<()> {
        Ok(())
    }

    async fn discover(&self) -> Result<Catalog> {
        let streams = Table::ALL
            .iter()
            .map(|t| StreamDescriptor {
                name: t.name().to_owned(),
                schema: t.schema(),
                primary_key: vec!["id".to_owned()],
                cursor_candidates: vec!["updated_at".to_owned()],
                append_only: false,
                delete_marker: None,
            })
            .collect();
        Ok(Catalog { streams })
    }

    async fn read(
        &self,
        stream: &ConfiguredStream,
        state: Option<StreamState>,
        out: &mut Emitter,
    ) -> Result<()> {
        let table = Table::ALL
            .into_iter()
            .find(|t| t.name() == stream.name())
            .ok_or_else(|| {
                Error::config(format!("the sample source has no stream {}", stream.name()))
            })?;
        if stream.sync_mode == SyncMode::Incremental
            && stream.cursor.as_deref() != Some("updated_at")
        {
            return Err(
                Error::config("the sample source's only cursor is `updated_at`")
                    .in_stream(stream.name()),
            );
        }
        let after = match stream.sync_mode {
            SyncMode::Incremental if stream.backfill.is_none() => {
                resume_position(state).map_err(|e| e.in_stream(stream.name()))?
            }
            _ => None,
        };
        let window = match &stream.backfill {
            Some(b) => {
                let at = |text: &str| {
                    parse_timestamp_cursor(&text.into()).map_err(|_| {
                        Error::config(format!(
                            "backfill bound {text:?} is not an RFC 3339 timestamp"
                        ))
                        .in_stream(stream.name())
                    })
                };
                Some((at(&b.from)?, at(&b.to)?))
            }
            None => None,
        };
        let keys = self.keyset(table);
        let counts = (self.config.customers, self.config.products);
        let mut rows = RowBatcher::new(
            out.schema().clone(),
            FlushPolicy::rows(self.config.batch_rows),
        );
        let mut last = (0, 0);
        let in_window = |&(id, version): &(u64, u32)| {
            window.is_none_or(|(from, to)| (from..=to).contains(&Keyset::updated_at(id, version)))
        };
        for (id, version) in keys.rows_after(after).filter(in_window) {
            table.append_row(&mut rows, &keys, id, version, counts);
            last = (id, version);
            if let Some(batch) = rows.end_row()? {
                out.batch(batch).await?;
                out.checkpoint(checkpoint(id, version)).await?;
                elt_core::failpoint::fail("sample.after_checkpoint")?;
            }
        }
        if let Some(batch) = rows.flush()? {
            out.batch(batch).await?;
            out.checkpoint(checkpoint(last.0, last.1)).await?;
        }
        Ok(())
    }
}

fn checkpoint(id: u64, version: u32) -> StreamState {
    StreamState::at(
        timestamp_cursor(Keyset::updated_at(id, version)),
        vec![id.into()],
    )
}
