//! One run's hold on the database file: opening it (for writing, or only reading), the
//! state in `_elt_state`, and handing each stream to the loader (`load.rs`). The optional
//! capabilities live beside it: the run log in `run_log.rs`, SQL, schema comparison and
//! dead letters in `queries.rs`, key digests in `keys.rs`.
//!
//! DuckDB calls block, so every call runs on Tokio's blocking pool with the connection
//! moved in and back out.

use std::path::Path;

use async_trait::async_trait;
use duckdb::{Connection, params};
use elt_core::{
    ConfiguredStream, DestinationSession, Error, Message, Result, RunInfo, StateMap, StreamState,
    WriteSummary, quote_ident,
};
use tokio::sync::mpsc;

use super::config::DuckDbConfig;
use super::connect::{Access, bookkeeping_ddl, connect};
use super::db::{db_error, run_blocking};
use super::load;
use super::run_log::abandon_dead_runs;
use crate::driver::CommitPolicy;

/// One run's hold on the database file.
pub struct DuckDbSession {
    conn: Option<Connection>,
    policy: CommitPolicy,
    /// The file, when this session writes it (and so publishes the readers' snapshot).
    writes: Option<String>,
    /// A stream's `_elt_runs` row is open (`running`): its end publishes, not its loads.
    pub(super) run_open: bool,
    pub(super) connection: String,
    pub(super) dataset: String,
}

impl DuckDbSession {
    /// Opens the file (taking DuckDB's writer lock) and creates the dataset schema and the
    /// bookkeeping tables when missing.
    pub async fn open(config: DuckDbConfig, connection: &str, dataset: &str) -> Result<Self> {
        let policy = CommitPolicy {
            commit_rows: config.commit_rows,
            commit_interval: std::time::Duration::from_secs(config.commit_interval_secs),
        };
        // DuckDB names a file's catalog after its stem: a schema of the same name makes
        // every `schema.table` ambiguous.
        let stem = Path::new(&config.path).file_stem().and_then(|s| s.to_str());
        if stem.is_some_and(|stem| stem.eq_ignore_ascii_case(dataset)) {
            return Err(Error::config(format!(
                "the DuckDB file {} and the dataset {dataset:?} have the same name, which DuckDB \
                 cannot tell apart; rename the file (`path`) or set the connection's `dataset`",
                config.path
            )));
        }
        let (ds, owner) = (quote_ident(dataset), connection.to_owned());
        let path = config.path.clone();
        let conn = run_blocking(move || {
            let conn = connect(&config, Access::ReadWrite)?;
            conn.execute_batch(&bookkeeping_ddl(&ds))
                .map_err(|e| db_error("creating the bookkeeping tables", e))?;
            abandon_dead_runs(&conn, &ds, &owner)?;
            Ok(conn)
        })
        .await?;
        Ok(Self {
            policy,
            conn: Some(conn),
            writes: Some(path),
            run_open: false,
            connection: connection.to_owned(),
            dataset: dataset.to_owned(),
        })
    }

    /// A session that only reads (state, runs, plans, dead letters): the file read-only,
    /// or nothing at all when it or the dataset does not exist yet. It creates nothing,
    /// takes no writer lock and marks no run abandoned, so it never stands in a sync's way
    /// for longer than its reads; its writing methods fail.
    pub async fn open_reader(
        config: DuckDbConfig,
        connection: &str,
        dataset: &str,
    ) -> Result<Self> {
        let policy = CommitPolicy {
            commit_rows: config.commit_rows,
            commit_interval: std::time::Duration::from_secs(config.commit_interval_secs),
        };
        let ds = quote_ident(dataset);
        let conn = run_blocking(move || super::connect::reader(&config, &ds)).await?;
        Ok(Self {
            policy,
            conn: Some(conn),
            writes: None,
            run_open: false,
            connection: connection.to_owned(),
            dataset: dataset.to_owned(),
        })
    }

    /// Publishes the readers' snapshot (`snapshot.rs`) when this session writes; a failure
    /// is a warning, never a failed run.
    pub(super) async fn publish(&mut self) {
        let Some(file) = self.writes.clone() else {
            return;
        };
        let dataset = self.dataset.clone();
        let published = self
            .with_conn(move |conn| super::snapshot::publish(conn, &file, &dataset))
            .await;
        if let Err(e) = published {
            tracing::warn!(error = %e, "could not publish the readers' snapshot of the run");
        }
    }

    /// Runs `work` with the connection on the blocking pool.
    pub(super) async fn with_conn<T: Send + 'static>(
        &mut self,
        work: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let conn = self
            .conn
            .take()
            .ok_or_else(|| Error::bug("the DuckDB connection was lost"))?;
        let (conn, result) = run_blocking(move || {
            let result = work(&conn);
            Ok((conn, result))
        })
        .await?;
        self.conn = Some(conn);
        result
    }
}
#[async_trait]
impl DestinationSession for DuckDbSession {
    async fn state(&mut self) -> Result<StateMap> {
        let sql = format!(
            "SELECT stream, state FROM {}._elt_state WHERE connection = ?",
            quote_ident(&self.dataset)
        );
        let connection = self.connection.clone();
        self.with_conn(move |conn| {
            let mut stmt = conn
                .prepare(&sql)
                .map_err(|e| db_error("reading the state", e))?;
            let rows = stmt
                .query_map(params![connection], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
                })
                .map_err(|e| db_error("reading the state", e))?;
            let mut states = StateMap::new();
            for row in rows {
                let (stream, text) = row.map_err(|e| db_error("reading the state", e))?;
                let state = StreamState::from_json(&text).map_err(|e| e.in_stream(&stream))?;
                states.insert(stream, state);
            }
            Ok(states)
        })
        .await
    }

    async fn write(
        &mut self,
        run: &RunInfo,
        stream: &ConfiguredStream,
        messages: mpsc::Receiver<Message>,
    ) -> (WriteSummary, Result<()>) {
        let (run, stream, dataset, policy) = (
            run.clone(),
            stream.clone(),
            self.dataset.clone(),
            self.policy,
        );
        let Some(conn) = self.conn.take() else {
            let lost = Error::bug("the DuckDB connection was lost");
            return (WriteSummary::default(), Err(lost));
        };
        let loaded = run_blocking(move || {
            Ok(load::load_stream(
                conn, &dataset, &run, &stream, policy, messages,
            ))
        })
        .await;
        match loaded {
            Ok((conn, summary, result)) => {
                self.conn = Some(conn);
                // Writes outside a recorded run (a dead-letter replay) publish at once.
                if !self.run_open {
                    self.publish().await;
                }
                (summary, result)
            }
            Err(e) => (WriteSummary::default(), Err(e)),
        }
    }
    async fn reset_state(&mut self, stream: Option<&str>) -> Result<usize> {
        let table = format!("{}._elt_state", quote_ident(&self.dataset));
        let windows = format!("{}._elt_windows", quote_ident(&self.dataset));
        let (connection, stream) = (self.connection.clone(), stream.map(str::to_owned));
        let removed = self
            .with_conn(move |conn| {
                // The stream's completed backfill windows go with its state.
                let mut removed = Vec::new();
                for (table, doing) in [
                    (&table, "resetting the state"),
                    (&windows, "forgetting the completed windows"),
                ] {
                    let done = match &stream {
                        Some(s) => conn.execute(
                            &format!("DELETE FROM {table} WHERE connection = ? AND stream = ?"),
                            params![connection, s],
                        ),
                        None => conn.execute(
                            &format!("DELETE FROM {table} WHERE connection = ?"),
                            params![connection],
                        ),
                    };
                    removed.push(done.map_err(|e| db_error(doing, e))?);
                }
                // The count of states removed.
                Ok(removed[0])
            })
            .await?;
        self.publish().await;
        Ok(removed)
    }

    crate::offer_every_capability!();
}
