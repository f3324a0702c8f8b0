//! The data-quality history of a PostgreSQL dataset: `_elt_test_results` (the data tests'
//! results, one row per test) and `_elt_profiles` (one row per loaded column and run),
//! each appended in one statement from a JSON array of rows.

use async_trait::async_trait;
use elt_core::Result;
use elt_core::capability::{ColumnProfile, ProfileLog, RecordedTest, TestResult, TestResultLog};
use sqlx::Row;

use super::session::PgSession;

impl PgSession {
    /// Appends `rows` (JSON objects whose fields `record` defines, as `name type, ...`) to
    /// the bookkeeping table `table`, after the run id and the connection and before now().
    async fn append_json(
        &mut self,
        table: &str,
        record: &str,
        run_id: &str,
        rows: Vec<serde_json::Value>,
    ) -> Result<()> {
        let fields: Vec<String> = record
            .split(',')
            .filter_map(|field| field.split_whitespace().next())
            .map(|name| format!("r.{name}"))
            .collect();
        let sql = format!(
            "INSERT INTO {}.{table} SELECT $1, $2, {}, now()
             FROM jsonb_to_recordset($3::jsonb) AS r({record})",
            self.ds,
            fields.join(", ")
        );
        sqlx::query(&sql)
            .bind(run_id)
            .bind(&self.connection)
            .bind(serde_json::Value::from(rows).to_string())
            .execute(&mut self.conn)
            .await
            .map(drop)
            .map_err(|e| self.target.error(&format!("recording {table}"), e))
    }
}

#[async_trait]
impl TestResultLog for PgSession {
    async fn record_test_results(&mut self, run_id: &str, results: &[TestResult]) -> Result<()> {
        let rows = results
            .iter()
            .map(|r| {
                serde_json::json!({
                    "stream": r.stream, "test": r.test, "severity": r.severity,
                    "passed": r.passed, "failing_rows": r.failing_rows, "samples": r.samples,
                    "observed": r.observed, "detail": r.detail,
                })
            })
            .collect();
        let record = "stream text, test text, severity text, passed boolean, failing_rows bigint, \
                      samples jsonb, observed double precision, detail text";
        self.append_json("_elt_test_results", record, run_id, rows)
            .await
    }

    async fn test_history(&mut self, limit: usize) -> Result<Vec<RecordedTest>> {
        let sql = format!(
            "SELECT run_id, {}, stream, test, severity, passed, failing_rows, samples::text,
                    observed, detail
             FROM {}._elt_test_results WHERE connection = $1
             ORDER BY tested_at DESC LIMIT $2",
            super::sql::to_us("tested_at"),
            self.ds
        );
        let rows = sqlx::query(&sql)
            .bind(&self.connection)
            .bind(limit as i64)
            .fetch_all(&mut self.conn)
            .await
            .map_err(|e| self.target.error("reading _elt_test_results", e))?;
        Ok(rows
            .into_iter()
            .map(|row| RecordedTest {
                run_id: row.get(0),
                tested_at_us: row.get(1),
                result: TestResult {
                    stream: row.get(2),
                    test: row.get(3),
                    severity: row.get(4),
                    passed: row.get(5),
                    failing_rows: row.get::<i64, _>(6) as u64,
                    samples: serde_json::from_str(row.get::<&str, _>(7)).unwrap_or_default(),
                    observed: row.get(8),
                    detail: row.get(9),
                },
            })
            .collect())
    }
}

#[async_trait]
impl ProfileLog for PgSession {
    async fn record_profiles(&mut self, run_id: &str, profiles: &[ColumnProfile]) -> Result<()> {
        let rows = profiles
            .iter()
            .map(|p| {
                serde_json::json!({
                    "stream": p.stream, "column_name": p.column, "rows": p.rows,
                    "nulls": p.nulls, "distinct_count": p.distinct, "min_value": p.min,
                    "max_value": p.max, "mean": p.mean,
                })
            })
            .collect();
        let record = "stream text, column_name text, rows bigint, nulls bigint, \
                      distinct_count bigint, min_value text, max_value text, mean double precision";
        self.append_json("_elt_profiles", record, run_id, rows)
            .await
    }
}
