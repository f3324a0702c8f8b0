//! One run's connection to the destination database, and the bookkeeping tables
//! `_elt_state`, `_elt_runs` and `_elt_locks` in the dataset schema. Loading is in
//! `load.rs`, stream leases in `lock.rs`.

use async_trait::async_trait;
use elt_core::pg::Target;
use elt_core::{
    ConfiguredStream, DeadLetter, DestinationSession, Error, Message, Result, RunInfo, RunRecord,
    RunStatus, SchemaChange, StateMap, StreamState, WriteSummary, quote_ident,
};
use sqlx::Row;
use sqlx::postgres::PgConnection;
use tokio::sync::mpsc;

use super::config::PostgresDestinationConfig;
use super::keys::{self, LiveKeys};
use super::load;
use super::sql::locked_ddl;
use super::types::pg_name;
use elt_core::reconcile::{Key, KeyRange, RangeDigest};

/// Runs `sql` (statements without parameters) on the session's connection.
pub(super) async fn exec(session: &mut PgSession, sql: String, doing: &'static str) -> Result<()> {
    sqlx::Executor::execute(&mut session.conn, sql.as_str())
        .await
        .map(drop)
        .map_err(|e| session.target.error(doing, e))
}

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
        let target = Target::new(&config.url, config.tls, config.connect_timeout_secs)?;
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
                 dead_at timestamptz NOT NULL);"
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

    fn error(&self, doing: &'static str, e: sqlx::Error) -> Error {
        self.target.error(doing, e)
    }
}

/// Replaces the state of one stream; part of the caller's transaction.
pub(super) async fn write_state(
    conn: &mut PgConnection,
    target: &Target,
    ds: &str,
    run: &RunInfo,
    stream: &str,
    state: &StreamState,
) -> Result<()> {
    let sql = format!(
        "INSERT INTO {ds}._elt_state VALUES ($1, $2, $3::jsonb, $4, now())
         ON CONFLICT (connection, stream) DO UPDATE SET state = EXCLUDED.state,
             run_id = EXCLUDED.run_id, committed_at = EXCLUDED.committed_at"
    );
    sqlx::query(&sql)
        .bind(run.connection.clone())
        .bind(stream.to_owned())
        .bind(state.to_json())
        .bind(run.run_id.clone())
        .execute(conn)
        .await
        .map(drop)
        .map_err(|e| target.error("writing the state", e))
}

/// Inserts dead letters of `stream` into `_elt_dead_letter` and deletes the `replayed`
/// ones, in the caller's transaction.
pub(super) async fn write_dead_letters(
    conn: &mut PgConnection,
    target: &Target,
    ds: &str,
    (run, stream): (&RunInfo, &str),
    dead: &[DeadLetter],
    replayed: &[String],
) -> Result<()> {
    if !dead.is_empty() {
        let sql = format!(
            "INSERT INTO {ds}._elt_dead_letter
             SELECT gen_random_uuid(), $1, $2, $3, reason, record::jsonb, now()
             FROM unnest($4::text[], $5::text[]) AS d(reason, record)"
        );
        sqlx::query(&sql)
            .bind(run.run_id.clone())
            .bind(run.connection.clone())
            .bind(stream.to_owned())
            .bind(dead.iter().map(|d| d.reason.clone()).collect::<Vec<_>>())
            .bind(dead.iter().map(|d| d.record.clone()).collect::<Vec<_>>())
            .execute(&mut *conn)
            .await
            .map_err(|e| target.error("writing dead letters", e))?;
    }
    if !replayed.is_empty() {
        let sql = format!("DELETE FROM {ds}._elt_dead_letter WHERE id = ANY($1::uuid[])");
        sqlx::query(&sql)
            .bind(replayed.to_vec())
            .execute(&mut *conn)
            .await
            .map_err(|e| target.error("removing replayed dead letters", e))?;
    }
    Ok(())
}

/// A timestamp from microseconds since the epoch, in SQL.
const FROM_US: &str = "'epoch'::timestamptz + interval '1 microsecond' *";
/// Microseconds since the epoch of a timestamptz column, in SQL.
fn to_us(column: &str) -> String {
    format!("(extract(epoch FROM {column}) * 1000000)::bigint")
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

    async fn record_run(&mut self, record: &RunRecord) -> Result<()> {
        let r = record;
        let sql = format!(
            "INSERT INTO {}._elt_runs VALUES ($1, $2, $3, {FROM_US} $4, {FROM_US} $5, $6, $7, $8,
                 $9, $10, $11, $12, $13)
             ON CONFLICT (run_id, stream) DO UPDATE SET ended_at = EXCLUDED.ended_at,
                 status = EXCLUDED.status, rows_read = EXCLUDED.rows_read,
                 rows_loaded = EXCLUDED.rows_loaded, watermark_after = EXCLUDED.watermark_after,
                 extract_secs = EXCLUDED.extract_secs, load_secs = EXCLUDED.load_secs,
                 error = EXCLUDED.error",
            self.ds
        );
        sqlx::query(&sql)
            .bind(&r.run_id)
            .bind(&r.connection)
            .bind(&r.stream)
            .bind(r.started_at_us)
            .bind(r.ended_at_us)
            .bind(r.status.as_str())
            .bind(r.rows_read as i64)
            .bind(r.rows_loaded as i64)
            .bind(&r.watermark_before)
            .bind(&r.watermark_after)
            .bind(r.extract_secs)
            .bind(r.load_secs)
            .bind(&r.error)
            .execute(&mut self.conn)
            .await
            .map(drop)
            .map_err(|e| self.error("recording the run", e))
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
        Ok(done.rows_affected() as usize)
    }

    async fn runs(&mut self, limit: usize) -> Result<Vec<RunRecord>> {
        // Run ids are UUID v7: their order is their start order.
        let sql = format!(
            "SELECT run_id, connection, stream, {}, {}, status, rows_read, rows_loaded,
                    watermark_before, watermark_after, extract_secs, load_secs, error
             FROM {ds}._elt_runs WHERE connection = $1 AND run_id IN (
                 SELECT DISTINCT run_id FROM {ds}._elt_runs WHERE connection = $1
                 ORDER BY run_id DESC LIMIT $2)
             ORDER BY run_id DESC, started_at",
            to_us("started_at"),
            to_us("ended_at"),
            ds = self.ds
        );
        let rows = sqlx::query(&sql)
            .bind(self.connection.clone())
            .bind(limit as i64)
            .fetch_all(&mut self.conn)
            .await
            .map_err(|e| self.error("reading _elt_runs", e))?;
        rows.into_iter()
            .map(|row| {
                let status: String = row.get(5);
                Ok(RunRecord {
                    run_id: row.get(0),
                    connection: row.get(1),
                    stream: row.get(2),
                    started_at_us: row.get(3),
                    ended_at_us: row.get(4),
                    status: RunStatus::parse(&status).ok_or_else(|| {
                        Error::permanent(format!("_elt_runs has an unknown status {status:?}"))
                    })?,
                    rows_read: row.get::<i64, _>(6) as u64,
                    rows_loaded: row.get::<i64, _>(7) as u64,
                    watermark_before: row.get(8),
                    watermark_after: row.get(9),
                    extract_secs: row.get(10),
                    load_secs: row.get(11),
                    error: row.get(12),
                })
            })
            .collect()
    }

    async fn key_digests(
        &mut self,
        stream: &ConfiguredStream,
        ranges: &[KeyRange],
    ) -> Result<Vec<RangeDigest>> {
        let live = LiveKeys::of(self, stream).await?;
        live.digests(self, ranges).await
    }

    async fn keys_in_range(
        &mut self,
        stream: &ConfiguredStream,
        range: &KeyRange,
    ) -> Result<Vec<Key>> {
        let live = LiveKeys::of(self, stream).await?;
        live.keys(self, range).await
    }

    async fn split_range(
        &mut self,
        stream: &ConfiguredStream,
        range: &KeyRange,
        parts: usize,
    ) -> Result<(u64, Vec<Key>)> {
        let live = LiveKeys::of(self, stream).await?;
        live.split(self, range, parts).await
    }

    async fn finish_reconcile(
        &mut self,
        run: &RunInfo,
        stream: &ConfiguredStream,
        deleted: Vec<Key>,
    ) -> Result<u64> {
        let live = LiveKeys::of(self, stream).await?;
        live.finish(self, run, stream, deleted).await
    }

    async fn runs_since_reconcile(&mut self, stream: &ConfiguredStream) -> Result<u64> {
        keys::runs_since_reconcile(self, stream.name()).await
    }

    async fn schema_changes(&mut self, stream: &ConfiguredStream) -> Result<Vec<SchemaChange>> {
        let table = format!("{}.{}", self.ds, quote_ident(&pg_name(&stream.table)));
        let schema = stream.schema().clone();
        super::tables::changes(self, &table, &schema).await
    }

    async fn query_text(
        &mut self,
        sql: &str,
        params: &[String],
    ) -> Result<Vec<Vec<Option<String>>>> {
        let sql = sql.to_owned();
        let mut query = sqlx::query(&sql);
        for param in params {
            query = query.bind(param.clone());
        }
        let rows = query
            .fetch_all(&mut self.conn)
            .await
            .map_err(|e| self.error("running a data test", e))?;
        Ok(rows
            .iter()
            .map(|row| {
                (0..row.len())
                    .map(|i| row.get::<Option<String>, _>(i))
                    .collect()
            })
            .collect())
    }
}
