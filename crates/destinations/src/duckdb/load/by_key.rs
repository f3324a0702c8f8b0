//! The DuckDB loader's keyed writes: merge and history from the stage at a checkpoint (the
//! statements of `crate::keyed`, plus DuckDB's merge), and one row per key for loads
//! appended straight into a table that was empty at the start. The transaction flow around
//! them is in `load.rs`.

use elt_core::changes::{DELETED, DELETED_AT};
use elt_core::{Error, OnDelete, Result, SyncMode, quote_ident};

use super::super::db::db_error;
use super::super::tables::{appended_key_counts, key_counts, next_row_id, null_key_error};
use super::{Loader, NOW, RUN_META};
use crate::keyed::{KeyedSql, tracked_columns};
use crate::unchanged;

impl Loader<'_> {
    /// Notes where this transaction's appended rows start, for a keyed load appended
    /// straight into its table. Read after the last commit: a checkpoint at a commit may
    /// renumber rows when it drops deleted ones.
    pub(super) fn note_appended_from(&mut self) -> Result<()> {
        if let Some(table) = &self.layout.direct
            && self.stream.write_mode.is_keyed()
        {
            let target = format!("{}.{}", quote_ident(self.dataset), quote_ident(table));
            self.appended_from = next_row_id(&self.conn, &target)?;
        }
        Ok(())
    }

    /// For a merge or history appended straight into a table that was empty at the start:
    /// refuses NULL keys and keeps one row per key (highest cursor, then the last
    /// appended), the same outcome as loading through the stage. Only the rows appended
    /// in this transaction can break that, so only they are checked.
    pub(super) fn resolve_repeated_keys(&self) -> Result<u64> {
        let target = format!(
            "{}.{}",
            quote_ident(self.dataset),
            quote_ident(&self.stream.table)
        );
        let key: Vec<_> = self
            .stream
            .primary_key
            .iter()
            .map(|k| quote_ident(k))
            .collect();
        let (null_keys, repeated) =
            appended_key_counts(&self.conn, &target, &key, self.appended_from)?;
        if null_keys > 0 {
            return Err(null_key_error(null_keys, &self.stream.primary_key));
        }
        if repeated == 0 {
            return Ok(0);
        }
        let order = match &self.stream.cursor {
            Some(c) => format!("{} DESC NULLS LAST, rowid DESC", quote_ident(c)),
            None => "rowid DESC".to_owned(),
        };
        self.conn
            .execute(
                &format!(
                    "DELETE FROM {target} WHERE rowid IN (SELECT rowid FROM (SELECT rowid,
                     row_number() OVER (PARTITION BY {} ORDER BY {order}) AS n FROM {target}) WHERE n > 1)",
                    key.join(", ")
                ),
                [],
            )
            .map(|removed| removed as u64)
            .map_err(|e| db_error("resolving repeated keys", e))
    }

    /// The shared SQL of keyed loads (merge, history) for this stream.
    fn keyed_sql<'s>(
        &'s self,
        key: &'s [String],
        cursor: Option<&'s str>,
        columns: &'s [String],
    ) -> KeyedSql<'s> {
        KeyedSql {
            table: &self.layout.into,
            stage: &self.layout.stage,
            key,
            cursor,
            columns,
            now: NOW,
            row_id: "rowid",
        }
    }

    /// Readies the stage of a merge or history load: refuses NULL keys and keeps one row
    /// per key (the highest cursor, then the last staged).
    fn one_row_per_key(&self, sql: &KeyedSql<'_>) -> Result<()> {
        if sql.key.is_empty() {
            return Err(Error::config(format!(
                "write mode `{}` needs a primary key; set `primary_key` on the stream or use `append`",
                self.stream.write_mode
            )));
        }
        let (null_keys, repeated) = key_counts(&self.conn, &self.layout.stage, sql.key)?;
        if null_keys > 0 {
            return Err(null_key_error(null_keys, &self.stream.primary_key));
        }
        // Materializing every staged row for a window is costly: only when keys repeat.
        if repeated > 0 {
            self.exec(
                &sql.keep_one_staged_row_per_key(),
                "keeping one staged row per key",
            )?;
        }
        Ok(())
    }

    /// Upserts the staged rows by primary key: a row replaces the stored one unless the
    /// stored cursor is higher; a row the soft-delete column marks deleted is kept with
    /// `_elt_deleted_at` set, or removed (`on_delete = "remove"`). Write mode previous
    /// first carries the stored values of its tracked columns into the stage.
    pub(super) fn merge(&self) -> Result<usize> {
        let (into, stage) = (&self.layout.into, &self.layout.stage);
        let (key, cursor, columns) = self.quoted_names();
        let sql = self.keyed_sql(&key, cursor.as_deref(), &columns);
        self.fill_unchanged(stage, Some(into))?;
        self.one_row_per_key(&sql)?;
        if let Some(older) = sql.drop_older_staged("true") {
            self.exec(&older, "dropping older staged rows")?;
        }
        if let Some(carry) = sql.carry_previous(&tracked_columns(self.stream, quote_ident)) {
            self.run_sql(&carry, "keeping previous values")?;
        }
        self.exec(
            &format!(
                "DELETE FROM {into} AS t USING {stage} AS s WHERE {}",
                sql.same_key()
            ),
            "replacing merged rows",
        )?;
        let (deleted_at, keep) = match self.stream.deletes.on_delete {
            OnDelete::Mark => (format!("CASE WHEN s.{DELETED} THEN {NOW} END"), ""),
            OnDelete::Remove => ("NULL::TIMESTAMPTZ".to_owned(), " WHERE NOT s._elt_deleted"),
        };
        self.run_sql(
            &format!(
                "INSERT INTO {into} BY NAME SELECT s.* EXCLUDE ({DELETED}), {RUN_META},
                 {deleted_at} AS {DELETED_AT} FROM {stage} s{keep}"
            ),
            "merging rows",
        )
    }

    /// cdc: fills the values the source did not send (see `crate::unchanged`) in `rows`
    /// (the stage: cdc streams always load through it), looking back in them and in
    /// `stored`.
    fn fill_unchanged(&self, rows: &str, stored: Option<&str>) -> Result<()> {
        let (key, _, _) = self.quoted_names();
        let statements = unchanged::fill_statements(self.stream, rows, stored, &key, quote_ident);
        if statements.is_empty() {
            return Ok(());
        }
        let unsent: i64 = self
            .conn
            .query_row(&unchanged::count_unsent(rows, quote_ident), [], |r| {
                r.get(0)
            })
            .map_err(|e| db_error("counting unsent values", e))?;
        if unsent > 0 {
            for statement in statements {
                self.exec(&statement, "filling values the source did not send")?;
            }
        }
        Ok(())
    }

    /// Adds the staged rows as versions (see `keyed.rs` for the rules).
    pub(super) fn history(&self) -> Result<usize> {
        let (key, cursor, columns) = self.quoted_names();
        let sql = self.keyed_sql(&key, cursor.as_deref(), &columns);
        let statements = if self.stream.sync_mode == SyncMode::Cdc {
            self.fill_unchanged(&self.layout.stage, Some(&self.layout.into))?;
            sql.cdc_history()
        } else {
            self.one_row_per_key(&sql)?;
            sql.history()
        };
        let mut added = 0;
        for (statement, doing) in statements {
            added = self.run_sql(&statement, doing)?;
        }
        Ok(added)
    }

    /// The quoted key columns, cursor and source columns.
    fn quoted_names(&self) -> (Vec<String>, Option<String>, Vec<String>) {
        let key = self
            .stream
            .primary_key
            .iter()
            .map(|k| quote_ident(k))
            .collect();
        let cursor = self.stream.cursor.as_deref().map(quote_ident);
        let columns = self
            .stream
            .schema()
            .fields()
            .iter()
            .map(|f| quote_ident(f.name()))
            .collect();
        (key, cursor, columns)
    }
}
