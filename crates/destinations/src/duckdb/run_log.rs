//! The run log of a DuckDB dataset, `_elt_runs`: one row per run and stream, written at a
//! stream's start and end, read by `elt runs`. A writing session also closes the `running`
//! rows of runs that were killed.

use async_trait::async_trait;
use duckdb::{Connection, params};
use elt_core::capability::RunLog;
use elt_core::{Result, RunRecord, RunStatus, quote_ident};

use super::db::{db_error, in_transaction};
use super::session::DuckDbSession;

/// Marks the connection's `running` rows of `_elt_runs` `abandoned`. Only a session holding
/// the file's writer lock calls it, so no live process owns those rows: their run was
/// killed or crashed before it could record its end.
pub(super) fn abandon_dead_runs(conn: &Connection, dataset: &str, connection: &str) -> Result<()> {
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

#[async_trait]
impl RunLog for DuckDbSession {
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
        .await?;
        // Readers see a stream start (`running`) and end; its loads in between publish
        // nothing (the run's record says what it committed when it ends).
        self.run_open = record.status == RunStatus::Running;
        self.publish().await;
        Ok(())
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
}
