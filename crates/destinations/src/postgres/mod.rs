//! The `postgres` destination: raw typed tables in a PostgreSQL schema, loaded by binary
//! COPY, for teams whose warehouse is PostgreSQL or who run many `elt` workers at once.
//!
//! What it writes: one table per stream in the connection's dataset (a schema), with the
//! stream's columns (see `types.rs` for the type mapping; names over 63 bytes shortened
//! deterministically) plus `_elt_extracted_at` (the run's start), `_elt_run_id` and the
//! columns of the write mode (see `elt_core::changes::meta_columns`), and beside them
//! `_elt_state`, `_elt_runs`, `_elt_locks` and `_elt_reconciliations`.
//!
//! How it loads (`load.rs`): COPY … FROM STDIN in binary format, never row by row, into the
//! raw table (`append`), a temporary stage upserted by primary key (`merge`; straight into
//! a table that was empty at the start while no key repeats) or versioned (`history`, the
//! SQL shared with DuckDB in `keyed.rs`), or a new table swapped in at the end
//! (`overwrite`); each commit carries the stream's state.
//!
//! Concurrency (`lock.rs`): no lock for the whole connection; each stream is leased by the
//! worker loading it, with a fencing token checked in every commit's transaction. Workers
//! syncing different streams of one connection run side by side; a second worker on the
//! same stream fails with `Locked` (exit 3) until the lease is released or runs out.
//!
//! Hard-delete reconciliation (`keys.rs`): live-key digests, and marking under the stream's
//! lease. Time-partitioned raw tables (`partition_by`, `partitions.rs`): declarative range
//! partitions per UTC day or month, attached as rows need them.

mod bookkeeping;
mod config;
mod copy;
mod keys;
mod load;
mod lock;
mod partitions;
mod quality;
mod queries;
mod run_log;
mod session;
mod sql;
mod tables;
mod types;
mod windows;

use async_trait::async_trait;
use elt_core::{Destination, DestinationFactory, DestinationSession, Result};

pub use config::PostgresDestinationConfig;

/// The registration of the `postgres` destination type.
pub fn factory() -> DestinationFactory {
    DestinationFactory::new::<PostgresDestinationConfig>(
        "postgres",
        "PostgreSQL: raw typed tables loaded by binary COPY; concurrent workers per stream",
        |config| Ok(Box::new(PostgresDestination { config })),
    )
}

/// A configured PostgreSQL destination.
pub struct PostgresDestination {
    config: PostgresDestinationConfig,
}

#[async_trait]
impl Destination for PostgresDestination {
    fn endpoint(&self) -> Result<Option<String>> {
        let target = self.config.target()?;
        Ok(Some(target.describe()))
    }

    async fn check(&self) -> Result<()> {
        let target = self.config.target()?;
        let mut conn = target.connect().await?;
        let can_create: bool = sqlx::query_scalar(
            "SELECT has_database_privilege(current_user, current_database(), 'CREATE')",
        )
        .fetch_one(&mut conn)
        .await
        .map_err(|e| target.error("checking privileges", e))?;
        if !can_create {
            return Err(elt_core::Error::config(format!(
                "the user cannot create schemas in {}; grant CREATE on the database, or create \
                 the dataset schema and grant CREATE on it",
                target.describe()
            )));
        }
        Ok(())
    }

    async fn open(&self, connection: &str, dataset: &str) -> Result<Box<dyn DestinationSession>> {
        Ok(Box::new(
            session::PgSession::open(self.config.clone(), connection, dataset).await?,
        ))
    }
}
