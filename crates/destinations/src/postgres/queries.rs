//! Reading a PostgreSQL dataset for the runner: read-only SQL for data tests, the
//! comparison of a stream's schema with its raw table, and the dead letters. Nothing here
//! writes.

use async_trait::async_trait;
use elt_core::capability::{DeadLetterStore, SchemaCompare, SqlQueries, StoredDeadLetter};
use elt_core::{ConfiguredStream, Result, SchemaChange, quote_ident};
use sqlx::Row;

use super::session::PgSession;
use super::types::pg_name;

#[async_trait]
impl SqlQueries for PgSession {
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

#[async_trait]
impl SchemaCompare for PgSession {
    async fn schema_changes(&mut self, stream: &ConfiguredStream) -> Result<Vec<SchemaChange>> {
        let table = format!("{}.{}", self.ds, quote_ident(&pg_name(&stream.table)));
        let schema = elt_core::previous::table_schema(stream)?;
        super::tables::changes(self, &table, &schema).await
    }
}

#[async_trait]
impl DeadLetterStore for PgSession {
    async fn list(&mut self, stream: Option<&str>, limit: usize) -> Result<Vec<StoredDeadLetter>> {
        let (ds, connection) = (self.ds.clone(), self.connection.clone());
        crate::dead_letters::list(self, &ds, &connection, stream, limit).await
    }

    async fn live_cursors(
        &mut self,
        stream: &ConfiguredStream,
        key: &[String],
    ) -> Result<Vec<String>> {
        let table = format!("{}.{}", self.ds, quote_ident(&pg_name(&stream.table)));
        let column = |c: &str| quote_ident(&pg_name(c));
        crate::dead_letters::live_cursors(self, &table, column, stream, key).await
    }
}
