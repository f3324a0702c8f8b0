//! `_elt_test_results` of a PostgreSQL dataset: the data tests' results, appended one row
//! per test in one transaction per test run.

use async_trait::async_trait;
use elt_core::Result;
use elt_core::capability::{TestResult, TestResultLog};

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
