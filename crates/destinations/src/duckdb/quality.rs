//! The data-quality history of a DuckDB dataset: `_elt_test_results` (the data tests'
//! results, one row per test) and `_elt_profiles` (one row per loaded column and run),
//! each appended in one transaction.

use async_trait::async_trait;
use duckdb::params;
use elt_core::capability::{ColumnProfile, ProfileLog, TestResult, TestResultLog};
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

#[async_trait]
impl ProfileLog for DuckDbSession {
    async fn record_profiles(&mut self, run_id: &str, profiles: &[ColumnProfile]) -> Result<()> {
        let insert = format!(
            "INSERT INTO {}._elt_profiles VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now())",
            quote_ident(&self.dataset)
        );
        let (run_id, connection, profiles) = (
            run_id.to_owned(),
            self.connection.clone(),
            profiles.to_vec(),
        );
        self.with_conn(move |conn| {
            in_transaction(conn, "recording the column profiles", || {
                let mut stmt = conn.prepare(&insert)?;
                for p in &profiles {
                    stmt.execute(params![
                        run_id,
                        connection,
                        p.stream,
                        p.column,
                        p.rows as i64,
                        p.nulls as i64,
                        p.distinct.map(|d| d as i64),
                        p.min,
                        p.max,
                        p.mean
                    ])?;
                }
                Ok(())
            })
        })
        .await
    }
}
