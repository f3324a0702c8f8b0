//! The data-quality history of a DuckDB dataset: `_elt_test_results` (the data tests'
//! results, one row per test) and `_elt_profiles` (one row per loaded column and run),
//! each appended in one transaction.

use async_trait::async_trait;
use duckdb::params;
use elt_core::capability::{ColumnProfile, ProfileLog, RecordedTest, TestResult, TestResultLog};
use elt_core::{Result, quote_ident};

use super::db::{db_error, in_transaction};
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
        .await?;
        self.publish().await;
        Ok(())
    }

    async fn test_history(&mut self, limit: usize) -> Result<Vec<RecordedTest>> {
        let sql = format!(
            "SELECT run_id, epoch_us(tested_at), stream, test, severity, passed, failing_rows,
                    samples::VARCHAR, observed, detail
             FROM {}._elt_test_results WHERE connection = ?
             ORDER BY tested_at DESC LIMIT ?",
            quote_ident(&self.dataset)
        );
        let connection = self.connection.clone();
        self.with_conn(move |conn| {
            let read = |e| db_error("reading _elt_test_results", e);
            let mut stmt = conn.prepare(&sql).map_err(read)?;
            let rows = stmt
                .query_map(params![connection, limit as i64], |row| {
                    Ok(RecordedTest {
                        run_id: row.get(0)?,
                        tested_at_us: row.get(1)?,
                        result: TestResult {
                            stream: row.get(2)?,
                            test: row.get(3)?,
                            severity: row.get(4)?,
                            passed: row.get(5)?,
                            failing_rows: row.get::<_, i64>(6)? as u64,
                            samples: serde_json::from_str(&row.get::<_, String>(7)?)
                                .unwrap_or_default(),
                            observed: row.get(8)?,
                            detail: row.get(9)?,
                        },
                    })
                })
                .map_err(read)?;
            rows.collect::<duckdb::Result<Vec<_>>>().map_err(read)
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
