//! The run log of a PostgreSQL dataset, `_elt_runs`: one row per run and stream, written
//! at a stream's start and end, read by `elt runs`.

use async_trait::async_trait;
use elt_core::capability::RunLog;
use elt_core::{Error, Result, RunRecord, RunStatus};
use sqlx::Row;

use super::session::PgSession;
use super::sql::to_us;

/// A timestamp from microseconds since the epoch, in SQL.
const FROM_US: &str = "'epoch'::timestamptz + interval '1 microsecond' *";
#[async_trait]
impl RunLog for PgSession {
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
}
