//! The PostgreSQL loader's keyed writes: moving the stage into the raw table at a checkpoint,
//! by `merge` (`INSERT … ON CONFLICT`, with soft deletes) or `history` (the statements of
//! `crate::keyed`). The transaction flow around them is in `load.rs`.

use elt_core::changes::{DELETED, DELETED_AT, EXTRACTED_AT, RUN_ID};
use elt_core::{OnDelete, Result, SyncMode, WriteMode, quote_ident};

use super::super::types::pg_name;
use super::{Loader, NOW};
use crate::keyed::{KeyedSql, tracked_columns};
use crate::unchanged;

impl Loader<'_> {
    /// Runs one statement, binding `$1` (the run's start, microseconds) and `$2` (the run
    /// id) when it uses them; returns the rows it changed.
    async fn run_sql(&mut self, sql: String, doing: &'static str) -> Result<u64> {
        let mut query = sqlx::query(sql.as_str());
        if sql.contains("$1") {
            query = query.bind(self.run.started_at_us);
        }
        if sql.contains("$2") {
            query = query.bind(self.run.run_id.clone());
        }
        match query.execute(&mut self.session.conn).await {
            Ok(done) => Ok(done.rows_affected()),
            Err(e) => Err(self.session.target.error(doing, e)),
        }
    }

    /// Moves the stage into the raw table (merge or history) and empties it.
    pub(super) async fn move_staged_rows(&mut self) -> Result<u64> {
        if self.staged_rows == 0 {
            return Ok(0);
        }
        let moved = if self.stream.write_mode == WriteMode::History {
            self.history().await?
        } else {
            self.merge().await?
        };
        self.session
            .exec(format!("TRUNCATE {}", self.into), "emptying the stage")
            .await?;
        self.staged_rows = 0;
        Ok(moved)
    }

    /// cdc: a TRUNCATE of the source table (see `keyed::truncate_sql`).
    pub(super) async fn apply_truncate(&mut self) -> Result<u64> {
        let sql = crate::keyed::truncate_sql(&self.table, self.stream.deletes.on_delete, NOW);
        self.run_sql(sql, "applying a TRUNCATE").await
    }

    /// The quoted key and cursor columns.
    fn key_and_cursor(&self) -> (Vec<String>, Option<String>) {
        let key = self
            .stream
            .primary_key
            .iter()
            .map(|k| quote_ident(&pg_name(k)))
            .collect();
        let cursor = self
            .stream
            .cursor
            .as_deref()
            .map(|c| quote_ident(&pg_name(c)));
        (key, cursor)
    }

    /// cdc: fills the values the source did not send (see `crate::unchanged`) in the
    /// stage, looking back in it and in the table.
    async fn fill_unchanged(&mut self, stage: &str, table: &str, key: &[String]) -> Result<()> {
        let quote = |c: &str| quote_ident(&pg_name(c));
        let statements = unchanged::fill_statements(self.stream, stage, Some(table), key, quote);
        if statements.is_empty() {
            return Ok(());
        }
        let unsent: i64 = sqlx::query_scalar(&unchanged::count_unsent(stage, quote))
            .fetch_one(&mut self.session.conn)
            .await
            .map_err(|e| self.session.target.error("counting unsent values", e))?;
        if unsent > 0 {
            for statement in statements {
                self.run_sql(statement, "filling values the source did not send")
                    .await?;
            }
        }
        Ok(())
    }

    /// Adds the staged rows as versions (see `keyed.rs` for the rules).
    async fn history(&mut self) -> Result<u64> {
        let (key, cursor) = self.key_and_cursor();
        let (stage, table) = (self.into.clone(), self.table.clone());
        let cdc = self.stream.sync_mode == SyncMode::Cdc;
        if cdc {
            self.fill_unchanged(&stage, &table, &key).await?;
        }
        let sql = KeyedSql {
            table: &table,
            stage: &stage,
            key: &key,
            cursor: cursor.as_deref(),
            columns: &self.quoted,
            now: NOW,
            row_id: "ctid",
        };
        let statements = if cdc {
            sql.cdc_history()
        } else {
            let mut statements = vec![(
                sql.keep_one_staged_row_per_key(),
                "keeping one staged row per key",
            )];
            statements.extend(sql.history());
            statements
        };
        let mut added = 0;
        for (statement, doing) in statements {
            added = self.run_sql(statement, doing).await?;
        }
        Ok(added)
    }

    /// Upserts the stage into the raw table by primary key: a staged row replaces the
    /// stored one unless the stored cursor is higher (a NULL cursor loses to any value);
    /// among staged rows of one key the highest cursor, then the last copied, wins. A row
    /// the soft-delete column marks deleted sets `_elt_deleted_at`, or is removed
    /// (`on_delete = "remove"`); any other row clears it. Write mode previous first carries
    /// the stored values of its tracked columns into the stage.
    async fn merge(&mut self) -> Result<u64> {
        let (key, cursor) = self.key_and_cursor();
        let (into, table) = (self.into.clone(), self.table.clone());
        self.fill_unchanged(&into, &table, &key).await?;
        let sql = KeyedSql {
            table: &table,
            stage: &into,
            key: &key,
            cursor: cursor.as_deref(),
            columns: &self.quoted,
            now: NOW,
            row_id: "ctid",
        };
        let (order, newer) = match &cursor {
            Some(c) => (
                format!("{c} DESC NULLS LAST, ctid DESC"),
                format!(
                    " WHERE t.{c} IS NULL OR (EXCLUDED.{c} IS NOT NULL AND t.{c} <= EXCLUDED.{c})"
                ),
            ),
            None => ("ctid DESC".to_owned(), String::new()),
        };
        let tracked = tracked_columns(self.stream, |c| quote_ident(&pg_name(c)));
        let carry = sql.carry_previous(&tracked);
        let mut keep = "";
        if self.stream.deletes.soft_delete_column.is_some() {
            // Deleted rows must be decided one per key: collapse the stage first.
            let mut statements = vec![(
                sql.keep_one_staged_row_per_key(),
                "keeping one staged row per key",
            )];
            if self.stream.deletes.on_delete == OnDelete::Remove {
                statements.extend(
                    sql.drop_older_staged("true")
                        .map(|d| (d, "dropping older staged rows")),
                );
                statements.push((
                    format!(
                        "DELETE FROM {table} AS t USING {into} AS s WHERE {} AND s.{DELETED}",
                        sql.same_key()
                    ),
                    "removing deleted rows",
                ));
                keep = " WHERE NOT _elt_deleted";
            }
            for (statement, doing) in statements {
                self.run_sql(statement, doing).await?;
            }
        }
        if let Some(carry) = carry {
            self.run_sql(carry, "keeping previous values").await?;
        }
        let quoted = self.quoted.join(", ");
        let columns = format!("{quoted}, {EXTRACTED_AT}, {RUN_ID}, {DELETED_AT}");
        let select =
            format!("{quoted}, {EXTRACTED_AT}, {RUN_ID}, CASE WHEN {DELETED} THEN {NOW} END");
        let updates: Vec<String> = self
            .quoted
            .iter()
            .filter(|c| !key.contains(c))
            .cloned()
            .chain([
                EXTRACTED_AT.to_owned(),
                RUN_ID.to_owned(),
                DELETED_AT.to_owned(),
            ])
            .map(|c| format!("{c} = EXCLUDED.{c}"))
            .collect();
        let keys = key.join(", ");
        let action = format!("UPDATE SET {}{newer}", updates.join(", "));
        // Most stages hold each key once: try the plain upsert first (no sort), and only
        // when a key repeats (SQLSTATE 21000) collapse the stage to one row per key.
        let upsert = |select: String| {
            format!(
                "INSERT INTO {table} AS t ({columns}) {select} ON CONFLICT ({keys}) DO {action}"
            )
        };
        let plain = upsert(format!("SELECT {select} FROM {into}{keep}"));
        self.session
            .exec("SAVEPOINT elt_merge".to_owned(), "merging rows")
            .await?;
        let moved = match self.run_sql(plain, "merging rows").await {
            Ok(rows) => rows,
            Err(e) if e.message().contains("SQLSTATE 21000") => {
                self.session
                    .exec("ROLLBACK TO SAVEPOINT elt_merge".to_owned(), "merging rows")
                    .await?;
                let collapsed = upsert(format!(
                    "SELECT DISTINCT ON ({keys}) {select} FROM {into}{keep} ORDER BY {keys}, {order}"
                ));
                self.run_sql(collapsed, "merging rows").await?
            }
            Err(e) => return Err(e),
        };
        Ok(moved)
    }
}
