//! Reading a DuckDB dataset for the runner: read-only SQL for data tests, the comparison
//! of a stream's schema with its raw table, and the dead letters. Nothing here writes.

use async_trait::async_trait;
use elt_core::capability::{DeadLetterStore, SchemaCompare, SqlQueries, StoredDeadLetter};
use elt_core::{ConfiguredStream, Result, SchemaChange, quote_ident};

use super::db::db_error;
use super::session::DuckDbSession;

#[async_trait]
impl SqlQueries for DuckDbSession {
    async fn query_text(
        &mut self,
        sql: &str,
        params: &[String],
    ) -> Result<Vec<Vec<Option<String>>>> {
        let (sql, params) = (sql.to_owned(), params.to_vec());
        self.with_conn(move |conn| {
            let failed = |e| db_error("running a data test", e);
            let mut stmt = conn.prepare(&sql).map_err(failed)?;
            let mut rows = stmt
                .query(duckdb::params_from_iter(params.iter()))
                .map_err(failed)?;
            let columns = rows.as_ref().map_or(0, |s| s.column_count());
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(failed)? {
                let values = (0..columns)
                    .map(|i| row.get::<_, Option<String>>(i))
                    .collect::<duckdb::Result<Vec<_>>>()
                    .map_err(failed)?;
                out.push(values);
            }
            Ok(out)
        })
        .await
    }
}

#[async_trait]
impl SchemaCompare for DuckDbSession {
    async fn schema_changes(&mut self, stream: &ConfiguredStream) -> Result<Vec<SchemaChange>> {
        let (dataset, table, schema) = (
            self.dataset.clone(),
            stream.table.clone(),
            elt_core::previous::table_schema(stream)?,
        );
        self.with_conn(move |conn| super::tables::changes(conn, &dataset, &table, &schema))
            .await
    }
}

#[async_trait]
impl DeadLetterStore for DuckDbSession {
    async fn list(&mut self, stream: Option<&str>, limit: usize) -> Result<Vec<StoredDeadLetter>> {
        let (ds, connection) = (quote_ident(&self.dataset), self.connection.clone());
        crate::dead_letters::list(self, &ds, &connection, stream, limit).await
    }

    async fn live_cursors(
        &mut self,
        stream: &ConfiguredStream,
        key: &[String],
    ) -> Result<Vec<String>> {
        let table = format!(
            "{}.{}",
            quote_ident(&self.dataset),
            quote_ident(&stream.table)
        );
        crate::dead_letters::live_cursors(self, &table, quote_ident, stream, key).await
    }
}
