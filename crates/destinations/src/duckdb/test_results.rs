//! `_elt_test_results` of a DuckDB dataset: the data tests' results, appended one row per
//! test in one transaction per test run.

use async_trait::async_trait;
use duckdb::params;
use elt_core::capability::{TestResult, TestResultLog};
use elt_core::{Result, quote_ident};

use super::db::in_transaction;
use super::session::DuckDbSession;

#[async_trait]
impl TestResultLog for DuckDbSession {
    async fn record_test_results(&mut self, run_id: &str, results: &[TestResult]) -> Result<()> {
        let insert = format!(
            "INSERT INTO {}._elt_test_results VALUES (?, ?, ?, ?, ?, ?, ?, ?::JSON, ?, ?, now())",
            quote_ident(&self.dataset)
        );
        let (run_id, connection, results) =
            (run_id.to_owned(), self.connection.clone(), results.to_vec());
        self.with_conn(move |conn| {
            in_transaction(conn, "recording the data test results", || {
                let mut stmt = conn.prepare(&insert)?;
                for r in &results {
                    let samples = serde_json::Value::from(r.samples.clone()).to_string();
                    stmt.execute(params![
                        run_id,
                        connection,
                        r.stream,
                        r.test,
                        r.severity,
                        r.passed,
                        r.failing_rows as i64,
                        samples,
                        r.observed,
                        r.detail
                    ])?;
                }
                Ok(())
            })
        })
        .await
    }
}
