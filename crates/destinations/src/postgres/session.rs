//! One run's connection to the destination database: opening it (and the bookkeeping
//! tables `_elt_state`, `_elt_runs`, `_elt_locks`, `_elt_reconciliations`,
//! `_elt_dead_letter`, `_elt_test_results`, `_elt_profiles` and `_elt_windows` in the
//! dataset schema), the state, and handing each stream to the
//! loader (`load.rs`). The optional capabilities live beside it: the run log in
//! `run_log.rs`, SQL, schema comparison and dead letters in `queries.rs`, key digests in
//! `keys.rs`; stream leases in `lock.rs`.

use async_trait::async_trait;
use elt_core::{
    ConfiguredStream, DestinationSession, Error, Message, Result, RunInfo, StateMap, StreamState,
    WriteSummary, quote_ident,
};
use elt_postgres::Target;
use sqlx::Row;
use sqlx::postgres::PgConnection;
use tokio::sync::mpsc;

use super::config::PostgresDestinationConfig;
use super::load;
use super::sql::locked_ddl;
use super::types::pg_name;

/// One run's session.
pub struct PgSession {
    pub(super) conn: PgConnection,
    pub(super) target: Target,
    pub(super) config: PostgresDestinationConfig,
    /// The dataset schema, quoted.
    pub(super) ds: String,
    pub(super) connection: String,
}
impl PgSession {
    /// Connects and creates the dataset schema and the bookkeeping tables when missing.
    pub async fn open(
        config: PostgresDestinationConfig,
        connection: &str,
        dataset: &str,
    ) -> Result<Self> {
        let target = config.target()?;
        let mut conn = target.connect().await?;
        let ds = quote_ident(&pg_name(dataset));
        let ddl = format!(
            "CREATE SCHEMA IF NOT EXISTS {ds};
             CREATE TABLE IF NOT EXISTS {ds}._elt_state (
                 connection text NOT NULL, stream text NOT NULL, state jsonb NOT NULL,
                 run_id text, committed_at timestamptz NOT NULL,
                 PRIMARY KEY (connection, stream));
             CREATE TABLE IF NOT EXISTS {ds}._elt_runs (
                 run_id text NOT NULL, connection text NOT NULL, stream text NOT NULL,
                 started_at timestamptz NOT NULL, ended_at timestamptz, status text NOT NULL,
                 rows_read bigint NOT NULL, rows_loaded bigint NOT NULL,
                 watermark_before text, watermark_after text,
                 extract_secs double precision NOT NULL, load_secs double precision NOT NULL,
                 error text, PRIMARY KEY (run_id, stream));
             CREATE TABLE IF NOT EXISTS {ds}._elt_locks (
                 connection text NOT NULL, stream text NOT NULL, token bigint NOT NULL,
                 run_id text NOT NULL, holder text NOT NULL, acquired_at timestamptz NOT NULL,
                 expires_at timestamptz NOT NULL, PRIMARY KEY (connection, stream));
             CREATE TABLE IF NOT EXISTS {ds}._elt_reconciliations (
                 run_id uuid NOT NULL, connection text NOT NULL, stream text NOT NULL,
                 reconciled_at timestamptz NOT NULL, rows_deleted bigint NOT NULL);
             CREATE TABLE IF NOT EXISTS {ds}._elt_dead_letter (
                 id uuid NOT NULL PRIMARY KEY, run_id text NOT NULL, connection text NOT NULL,
                 stream text NOT NULL, reason text NOT NULL, record jsonb NOT NULL,
                 dead_at timestamptz NOT NULL);
             CREATE TABLE IF NOT EXISTS {ds}._elt_test_results (
                 run_id text NOT NULL, connection text NOT NULL, stream text NOT NULL,
                 test text NOT NULL, severity text NOT NULL, passed boolean NOT NULL,
                 failing_rows bigint NOT NULL, samples jsonb NOT NULL, observed double precision,
                 detail text, tested_at timestamptz NOT NULL);
             CREATE TABLE IF NOT EXISTS {ds}._elt_profiles (
                 run_id text NOT NULL, connection text NOT NULL, stream text NOT NULL,
                 column_name text NOT NULL, rows bigint NOT NULL, nulls bigint NOT NULL,
                 distinct_count bigint, min_value text, max_value text, mean double precision,
                 profiled_at timestamptz NOT NULL);
             CREATE TABLE IF NOT EXISTS {ds}._elt_windows (
                 connection text NOT NULL, stream text NOT NULL, window_from text NOT NULL,
                 window_to text NOT NULL, run_id text NOT NULL, rows bigint NOT NULL,
                 committed_at timestamptz NOT NULL,
                 PRIMARY KEY (connection, stream, window_from, window_to));"
        );
        locked_ddl(
            &mut conn,
            &target,
            format!("elt:{dataset}"),
            ddl,
            "creating the bookkeeping tables",
        )
        .await?;
        Ok(Self {
            conn,
            target,
            config,
            ds,
            connection: connection.to_owned(),
        })
    }

    pub(super) fn error(&self, doing: &'static str, e: sqlx::Error) -> Error {
        self.target.error(doing, e)
    }

    /// Rolls back the open transaction. A connection that cannot even roll back is broken:
    /// it is replaced by a new one (when one can be had), so the next attempt starts clean;
    /// the rollback's error is returned either way.
    pub(super) async fn roll_back(&mut self) -> Result<()> {
        let rolled_back = self.exec("ROLLBACK".to_owned(), "rolling back").await;
        if rolled_back.is_err()
            && let Ok(conn) = self.target.connect().await
        {
            self.conn = conn;
        }
        rolled_back
    }

    /// Runs `sql` (statements without parameters) on the session's connection.
    pub(super) async fn exec(&mut self, sql: String, doing: &'static str) -> Result<()> {
        sqlx::Executor::execute(&mut self.conn, sql.as_str())
            .await
            .map(drop)
            .map_err(|e| self.target.error(doing, e))
    }
}
#[async_trait]
impl DestinationSession for PgSession {
    async fn state(&mut self) -> Result<StateMap> {
        let sql = format!(
            "SELECT stream, state::text FROM {}._elt_state WHERE connection = $1",
            self.ds
        );
        let rows = sqlx::query(&sql)
            .bind(self.connection.clone())
            .fetch_all(&mut self.conn)
            .await
            .map_err(|e| self.error("reading the state", e))?;
        let mut states = StateMap::new();
        for row in rows {
            let stream: String = row.get(0);
            let state = StreamState::from_json(row.get(1)).map_err(|e| e.in_stream(&stream))?;
            states.insert(stream, state);
        }
        Ok(states)
    }

    async fn write(
        &mut self,
        run: &RunInfo,
        stream: &ConfiguredStream,
        messages: mpsc::Receiver<Message>,
    ) -> (WriteSummary, Result<()>) {
        load::load_stream(self, run, stream, messages).await
    }
    async fn reset_state(&mut self, stream: Option<&str>) -> Result<usize> {
        let sql = format!(
            "DELETE FROM {}._elt_state WHERE connection = $1 AND ($2::text IS NULL OR stream = $2)",
            self.ds
        );
        let done = sqlx::query(&sql)
            .bind(self.connection.clone())
            .bind(stream.to_owned())
            .execute(&mut self.conn)
            .await
            .map_err(|e| self.error("resetting the state", e))?;
        let sql = format!(
            "DELETE FROM {}._elt_windows WHERE connection = $1 AND ($2::text IS NULL OR stream = $2)",
            self.ds
        );
        sqlx::query(&sql)
            .bind(self.connection.clone())
            .bind(stream.to_owned())
            .execute(&mut self.conn)
            .await
            .map_err(|e| self.error("forgetting the completed windows", e))?;
        Ok(done.rows_affected() as usize)
    }

    crate::offer_every_capability!();

    fn partitions_tables(&self) -> bool {
        true
    }
}
