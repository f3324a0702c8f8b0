//! The `kafka` source: each topic is a stream whose rows are its messages, read partition
//! by partition up to the end each partition had when the read started (the high
//! watermark, or the last stable offset under transactions, read committed), so a sync
//! ends on its own and suits cron.
//!
//! Columns: the value's fields (a JSON object's, declared in `schemas` or inferred from a
//! sample of messages; fields outside the schema go to `_extra`), or one `value` column
//! with `format = "text"` or `"bytes"`; then `_elt_key`, `_elt_partition`, `_elt_offset`,
//! `_elt_timestamp`, `_elt_headers` and `_elt_tombstone`.
//!
//! Checkpoints: the state's cursor is the next offset to read of every partition (an
//! offset names the next message, not the last one read), committed by the destination
//! with the rows before it, so a crash or kill repeats and skips nothing. A partition new
//! since the last run starts at `start` (earliest by default). The consumer group's offsets
//! are neither read nor written: they are not this state.
//!
//! Streams are append-only event logs: by default appended; `write = "merge"` keeps the
//! latest message per `_elt_key`, and a tombstone (a key without a value) deletes the key
//! (`_elt_tombstone` is the merge's delete marker). Limits: no `--backfill-from`; a
//! message that moved partitions (the topic's partition count grew) orders by offset only
//! within its partition.

mod config;
mod discover;
mod read;
mod rows;

use async_trait::async_trait;
use elt_core::{Catalog, ConfiguredStream, Emitter, Result, Source, SourceFactory, StreamState};

pub use config::{KafkaConfig, KeyFormat, StartAt, ValueFormat};
pub use rows::{HEADERS, KEY, OFFSET, PARTITION, TIMESTAMP, TOMBSTONE, VALUE};

/// Registers the `kafka` source type.
pub fn factory() -> SourceFactory {
    SourceFactory::new(
        "kafka",
        "Kafka topics: every message once, offsets committed with the rows",
        |config: KafkaConfig| Ok(Box::new(KafkaSource { config })),
    )
}

/// Reads topics of one Kafka cluster.
pub struct KafkaSource {
    config: KafkaConfig,
}

#[async_trait]
impl Source for KafkaSource {
    async fn check(&self) -> Result<()> {
        let client = self.config.brokers().connect().await?;
        discover::topics(&self.config, &client).await.map(|_| ())
    }

    fn endpoint(&self) -> Result<Option<String>> {
        Ok(Some(self.config.brokers().endpoint()))
    }

    async fn discover(&self) -> Result<Catalog> {
        let client = self.config.brokers().connect().await?;
        discover::catalog(&self.config, &client).await
    }

    async fn read(
        &self,
        stream: &ConfiguredStream,
        state: Option<StreamState>,
        out: &mut Emitter,
    ) -> Result<()> {
        read::read(&self.config, stream, state, out).await
    }
}
