//! Opening the database file, and the session's bookkeeping tables `_elt_state` and
//! `_elt_runs`. The loading itself is in `load.rs`.
//!
//! DuckDB calls block, so every call runs on Tokio's blocking pool with the connection
//! moved in and back out.

use std::path::Path;

use async_trait::async_trait;
use duckdb::{Connection, params};
use elt_core::{
    ConfiguredStream, DestinationSession, Error, Message, Result, RunInfo, RunRecord, RunStatus,
    SchemaChange, StateMap, StreamState, WriteSummary, quote_ident,
};
use tokio::sync::mpsc;

use super::config::DuckDbConfig;
use super::connect::{Access, bookkeeping_ddl, connect, db_error, in_transaction, run_blocking};
use super::keys::{self, LiveKeys};
use super::load;
use elt_core::reconcile::{Key, KeyRange, RangeDigest};

/// Marks the connection's `running` rows of `_elt_runs` `abandoned`. Only a session holding
/// the file's writer lock calls it, so no live process owns those rows: their run was
/// killed or crashed before it could record its end.
fn abandon_dead_runs(conn: &Connection, dataset: &str, connection: &str) -> Result<()> {
    let abandoned = conn
        .execute(
            &format!(
                "UPDATE {dataset}._elt_runs SET status = ?, ended_at = now(),
                 error = 'the process stopped before the run ended (killed or crashed); \
                 what it committed stays'
                 WHERE connection = ? AND status = ?"
            ),
            params![
                RunStatus::Abandoned.as_str(),
                connection,
                RunStatus::Running.as_str()
            ],
        )
        .map_err(|e| db_error("closing the runs of killed processes", e))?;
    if abandoned > 0 {
        tracing::warn!(
            connection,
            streams = abandoned,
            "an earlier run of this connection was killed or crashed; marked it abandoned in \
             _elt_runs and resuming from its last commit"
        );
    }
    Ok(())
}

/// One run's hold on the database file.
pub struct DuckDbSession {
    conn: Option<Connection>,
    policy: load::CommitPolicy,
    connection: String,
    dataset: String,
}

impl DuckDbSession {
    /// Opens the file (taking DuckDB's writer lock) and creates the dataset schema and the
    /// bookkeeping tables when missing.
    pub async fn open(config: DuckDbConfig, connection: &str, dataset: &str) -> Result<Self> {
        let policy = load::CommitPolicy {
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
        let policy = load::CommitPolicy {
            commit_rows: config.commit_rows,
            commit_interval: std::time::Duration::from_secs(config.commit_interval_secs),
        };
        let ds = quote_ident(dataset);
        let conn = run_blocking(move || super::connect::reader(&config, &ds)).await?;
        Ok(Self {
            policy,
            conn: Some(conn),
            connection: connection.to_owned(),
            dataset: dataset.to_owned(),
        })
    }

    /// Runs `work` with the connection on the blocking pool.
    async fn with_conn<T: Send + 'static>(
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
        let outcome = self
            .with_conn(move |conn| {
                Ok(load::load_stream(
                    conn, &dataset, &run, &stream, policy, messages,
                ))
            })
            .await;
        outcome.unwrap_or_else(|e| (WriteSummary::default(), Err(e)))
    }

    async fn record_run(&mut self, record: &RunRecord) -> Result<()> {
        let table = format!("{}._elt_runs", quote_ident(&self.dataset));
        let r = record.clone();
        let delete = format!("DELETE FROM {table} WHERE run_id = ? AND stream = ?");
        let insert = format!(
            "INSERT INTO {table} VALUES (?, ?, ?, make_timestamp(?::BIGINT)::TIMESTAMPTZ,
             make_timestamp(?::BIGINT)::TIMESTAMPTZ, ?, ?, ?, ?, ?, ?, ?, ?)"
        );
        self.with_conn(move |conn| {
            in_transaction(conn, "recording the run", || {
                conn.execute(&delete, params![r.run_id, r.stream])?;
                conn.execute(
                    &insert,
                    params![
                        r.run_id,
                        r.connection,
                        r.stream,
                        r.started_at_us,
                        r.ended_at_us,
                        r.status.as_str(),
                        r.rows_read as i64,
                        r.rows_loaded as i64,
                        r.watermark_before,
                        r.watermark_after,
                        r.extract_secs,
                        r.load_secs,
                        r.error
                    ],
                )
                .map(drop)
            })
        })
        .await
    }

    async fn reset_state(&mut self, stream: Option<&str>) -> Result<usize> {
        let table = format!("{}._elt_state", quote_ident(&self.dataset));
        let (connection, stream) = (self.connection.clone(), stream.map(str::to_owned));
        self.with_conn(move |conn| {
            let removed = match stream {
                Some(s) => conn.execute(
                    &format!("DELETE FROM {table} WHERE connection = ? AND stream = ?"),
                    params![connection, s],
                ),
                None => conn.execute(
                    &format!("DELETE FROM {table} WHERE connection = ?"),
                    params![connection],
                ),
            };
            removed.map_err(|e| db_error("resetting the state", e))
        })
        .await
    }

    async fn runs(&mut self, limit: usize) -> Result<Vec<RunRecord>> {
        let table = format!("{}._elt_runs", quote_ident(&self.dataset));
        // Run ids are UUID v7: their order is their start order.
        let sql = format!(
            "WITH recent AS (
                 SELECT DISTINCT run_id FROM {table} WHERE connection = ?
                 ORDER BY run_id DESC LIMIT ?)
             SELECT run_id, connection, stream, epoch_us(started_at), epoch_us(ended_at), status,
                    rows_read, rows_loaded, watermark_before, watermark_after, extract_secs,
                    load_secs, error
             FROM {table} WHERE connection = ? AND run_id IN (SELECT run_id FROM recent)
             ORDER BY run_id DESC, started_at"
        );
        let connection = self.connection.clone();
        self.with_conn(move |conn| {
            let read = |e| db_error("reading _elt_runs", e);
            let mut stmt = conn.prepare(&sql).map_err(read)?;
            let rows = stmt
                .query_map(params![connection, limit as i64, connection], |row| {
                    let status: String = row.get(5)?;
                    Ok(RunRecord {
                        run_id: row.get(0)?,
                        connection: row.get(1)?,
                        stream: row.get(2)?,
                        started_at_us: row.get(3)?,
                        ended_at_us: row.get(4)?,
                        status: RunStatus::parse(&status).ok_or_else(|| {
                            duckdb::Error::FromSqlConversionFailure(
                                5,
                                duckdb::types::Type::Text,
                                format!("unknown run status {status:?}").into(),
                            )
                        })?,
                        rows_read: row.get::<_, i64>(6)? as u64,
                        rows_loaded: row.get::<_, i64>(7)? as u64,
                        watermark_before: row.get(8)?,
                        watermark_after: row.get(9)?,
                        extract_secs: row.get(10)?,
                        load_secs: row.get(11)?,
                        error: row.get(12)?,
                    })
                })
                .map_err(read)?;
            rows.collect::<duckdb::Result<Vec<_>>>().map_err(read)
        })
        .await
    }

    async fn key_digests(
        &mut self,
        stream: &ConfiguredStream,
        ranges: &[KeyRange],
    ) -> Result<Vec<RangeDigest>> {
        let (dataset, stream, ranges) = (self.dataset.clone(), stream.clone(), ranges.to_vec());
        self.with_conn(move |conn| LiveKeys::of(conn, &dataset, &stream)?.digests(conn, &ranges))
            .await
    }

    async fn keys_in_range(
        &mut self,
        stream: &ConfiguredStream,
        range: &KeyRange,
    ) -> Result<Vec<Key>> {
        let (dataset, stream, range) = (self.dataset.clone(), stream.clone(), range.clone());
        self.with_conn(move |conn| LiveKeys::of(conn, &dataset, &stream)?.keys(conn, &range))
            .await
    }

    async fn split_range(
        &mut self,
        stream: &ConfiguredStream,
        range: &KeyRange,
        parts: usize,
    ) -> Result<(u64, Vec<Key>)> {
        let (dataset, stream, range) = (self.dataset.clone(), stream.clone(), range.clone());
        self.with_conn(move |conn| {
            LiveKeys::of(conn, &dataset, &stream)?.split(conn, &range, parts)
        })
        .await
    }

    async fn finish_reconcile(
        &mut self,
        run: &RunInfo,
        stream: &ConfiguredStream,
        deleted: Vec<Key>,
    ) -> Result<u64> {
        let (dataset, stream, run) = (self.dataset.clone(), stream.clone(), run.clone());
        self.with_conn(move |conn| {
            LiveKeys::of(conn, &dataset, &stream)?.finish(conn, &dataset, &run, &stream, &deleted)
        })
        .await
    }

    async fn runs_since_reconcile(&mut self, stream: &ConfiguredStream) -> Result<u64> {
        let (dataset, connection, name) = (
            self.dataset.clone(),
            self.connection.clone(),
            stream.name().to_owned(),
        );
        self.with_conn(move |conn| keys::runs_since_reconcile(conn, &dataset, &connection, &name))
            .await
    }

    async fn schema_changes(&mut self, stream: &ConfiguredStream) -> Result<Vec<SchemaChange>> {
        let (dataset, table, schema) = (
            self.dataset.clone(),
            stream.table.clone(),
            stream.schema().clone(),
        );
        self.with_conn(move |conn| super::tables::changes(conn, &dataset, &table, &schema))
            .await
    }

    async fn query_text(
        &mut self,
        sql: &str,
        params: &[String],
    ) -> Result<Vec<Vec<Option<String>>>> {
        let (sql, params) = (sql.to_owned(), params.to_vec());
        self.with_conn(move |conn| {
            let failed = |e| db_error("running a data test", e);
            let mut stmt = conn.prepare(&sql).map_err(failed)?;
            let mut rows = stmt
                .query(duckdb::params_from_iter(params.iter()))
                .map_err(failed)?;
            let columns = rows.as_ref().map_or(0, |s| s.column_count());
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(failed)? {
                let values = (0..columns)
                    .map(|i| row.get::<_, Option<String>>(i))
                    .collect::<duckdb::Result<Vec<_>>>()
                    .map_err(failed)?;
                out.push(values);
            }
            Ok(out)
        })
        .await
    }
}
