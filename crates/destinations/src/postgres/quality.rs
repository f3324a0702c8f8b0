//! The data-quality history of a PostgreSQL dataset: `_elt_test_results` (the data tests'
//! results, one row per test) and `_elt_profiles` (one row per loaded column and run),
//! each appended in one statement from a JSON array of rows.

use async_trait::async_trait;
use elt_core::Result;
use elt_core::capability::{ColumnProfile, ProfileLog, TestResult, TestResultLog};

use super::session::PgSession;

#[async_trait]
impl TestResultLog for PgSession {
    async fn record_test_results(&mut self, run_id: &str, results: &[TestResult]) -> Result<()> {
        let sql = format!(
            "INSERT INTO {}._elt_test_results
             SELECT $1, $2, r.stream, r.test, r.severity, r.passed, r.failing_rows, r.samples,
                    r.observed, r.detail, now()
             FROM jsonb_to_recordset($3::jsonb) AS r(stream text, test text, severity text,
                  passed boolean, failing_rows bigint, samples jsonb, observed double precision,
                  detail text)",
            self.ds
        );
        let rows: Vec<serde_json::Value> = results
            .iter()
            .map(|r| {
                serde_json::json!({
                    "stream": r.stream, "test": r.test, "severity": r.severity,
                    "passed": r.passed, "failing_rows": r.failing_rows, "samples": r.samples,
                    "observed": r.observed, "detail": r.detail,
                })
            })
            .collect();
        sqlx::query(&sql)
            .bind(run_id)
            .bind(&self.connection)
            .bind(serde_json::Value::from(rows).to_string())
            .execute(&mut self.conn)
            .await
            .map(drop)
            .map_err(|e| self.error("recording the data test results", e))
    }
}

#[async_trait]
impl ProfileLog for PgSession {
    async fn record_profiles(&mut self, run_id: &str, profiles: &[ColumnProfile]) -> Result<()> {
        let sql = format!(
            "INSERT INTO {}._elt_profiles
             SELECT $1, $2, p.stream, p.column_name, p.rows, p.nulls, p.distinct_count,
                    p.min_value, p.max_value, p.mean, now()
             FROM jsonb_to_recordset($3::jsonb) AS p(stream text, column_name text, rows bigint,
                  nulls bigint, distinct_count bigint, min_value text, max_value text,
                  mean double precision)",
            self.ds
        );
        let rows: Vec<serde_json::Value> = profiles
            .iter()
            .map(|p| {
                serde_json::json!({
                    "stream": p.stream, "column_name": p.column, "rows": p.rows,
                    "nulls": p.nulls, "distinct_count": p.distinct, "min_value": p.min,
                    "max_value": p.max, "mean": p.mean,
                })
            })
            .collect();
        sqlx::query(&sql)
            .bind(run_id)
            .bind(&self.connection)
            .bind(serde_json::Value::from(rows).to_string())
            .execute(&mut self.conn)
            .await
            .map(drop)
            .map_err(|e| self.error("recording the column profiles", e))
    }
}
