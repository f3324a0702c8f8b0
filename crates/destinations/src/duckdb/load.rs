//! Loading one stream: the transaction flow. Batches go through the Arrow appender straight
//! into the table (append, overwrite, a merge into an empty table) or into a temporary
//! stage that each checkpoint merges from; a commit carries the latest checkpoint's state.

mod by_key;

use std::sync::Arc;

use async_trait::async_trait;
use duckdb::Connection;
use elt_core::arrow::datatypes::{Field, Schema};
use elt_core::arrow::record_batch::RecordBatch;
use elt_core::changes::{change_fields, meta_columns, with_change_columns};
use elt_core::windows::Window;
use elt_core::{
    ConfiguredStream, DeadLetter, Message, Result, RunInfo, StreamState, WriteMode, WriteSummary,
    quote_ident,
};
use tokio::sync::mpsc;

use super::batches::{append, intervals_as_text, with_meta_columns};
use super::bookkeeping::{write_dead_letters, write_state};
use super::db::db_error;
use super::tables::{column_names, columns, evolve, is_empty};
use super::types::{Use, staged_as_text};
use super::windows;
use crate::driver::{CommitPolicy, StreamWriter, drive};

/// The run's start as a timestamp, from parameter `$1`.
const NOW: &str = "make_timestamp($1::BIGINT)::TIMESTAMPTZ";

/// The run's metadata columns as a select list; parameters `$1` (start) and `$2` (run id).
const RUN_META: &str =
    "make_timestamp($1::BIGINT)::TIMESTAMPTZ AS _elt_extracted_at, $2::UUID AS _elt_run_id";

/// Loads `messages` of `stream` until `Complete` or the channel closes, through the
/// shared driver; gives the connection back with what was committed.
pub fn load_stream(
    conn: Connection,
    dataset: &str,
    run: &RunInfo,
    stream: &ConfiguredStream,
    policy: CommitPolicy,
    messages: mpsc::Receiver<Message>,
) -> (Connection, WriteSummary, Result<()>) {
    let stage = format!("temp.main.{}", quote_ident(&stage_name(stream)));
    let (conn, summary, result) = match Layout::prepare(&conn, dataset, stream) {
        Ok(layout) => {
            let mut loader = Loader {
                conn,
                dataset,
                run,
                stream,
                layout,
                staged_rows: 0,
                appended_from: 0,
            };
            let load = drive(&mut loader, stream, policy, messages);
            let (summary, result) = tokio::runtime::Handle::current().block_on(load);
            (loader.conn, summary, result)
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            (conn, WriteSummary::default(), Err(e))
        }
    };
    let _ = conn.execute_batch(&format!("DROP TABLE IF EXISTS {stage}"));
    (
        conn,
        summary,
        result.map_err(|e| e.in_stream(stream.name())),
    )
}

fn stage_name(stream: &ConfiguredStream) -> String {
    format!("_elt_stage__{}", stream.table)
}

struct Loader<'a> {
    conn: Connection,
    dataset: &'a str,
    run: &'a RunInfo,
    stream: &'a ConfiguredStream,
    layout: Layout,
    staged_rows: usize,
    /// The row id of the first row this transaction appended straight into a keyed
    /// table (0 in the first one: the table was empty).
    appended_from: i64,
}

/// Where one load's rows go.
struct Layout {
    /// The table rows move into at checkpoints: the raw table, or the overwrite's new one.
    into: String,
    stage_name: String,
    stage: String,
    /// The table (in the dataset) batches are appended to directly, bypassing the stage.
    direct: Option<String>,
}

impl Layout {
    /// Creates the stage and the table (or evolves it), picks where batches go, and opens
    /// the first transaction.
    fn prepare(conn: &Connection, dataset: &str, stream: &ConfiguredStream) -> Result<Self> {
        let ds = quote_ident(dataset);
        let target = format!("{ds}.{}", quote_ident(&stream.table));
        let stage_name = stage_name(stream);
        let stage = format!("temp.main.{}", quote_ident(&stage_name));
        let schema = &elt_core::previous::table_schema(stream)?;
        let mode = stream.write_mode;
        let exec = |sql: &str, doing: &str| conn.execute_batch(sql).map_err(|e| db_error(doing, e));
        let mut staged_fields: Vec<Field> =
            schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        staged_fields.extend(change_fields(stream));
        exec(
            &format!(
                "CREATE OR REPLACE TEMP TABLE {} ({})",
                quote_ident(&stage_name),
                columns(&Arc::new(Schema::new(staged_fields)), Use::Staging, None)?
            ),
            "creating the staging table",
        )?;
        let into = if mode == WriteMode::Overwrite {
            format!(
                "{ds}.{}",
                quote_ident(&format!("_elt_new__{}", stream.table))
            )
        } else {
            exec(
                &format!(
                    "CREATE TABLE IF NOT EXISTS {target} ({})",
                    columns(schema, Use::Raw, Some(mode))?
                ),
                "creating the raw table",
            )?;
            evolve(conn, dataset, &stream.table, &stage_name, schema, mode)?;
            target.clone()
        };
        // Append and overwrite skip the stage when the table has exactly the batch's columns
        // plus the metadata ones: the appender writes straight into it. Merges need the
        // stage; intervals go through it as text (see `staged_as_text`).
        let table_name = match mode {
            WriteMode::Overwrite => format!("_elt_new__{}", stream.table),
            _ => stream.table.clone(),
        };
        let expected: Vec<String> = schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .chain(meta_columns(mode).iter().map(|c| c.name.to_owned()))
            .collect();
        // A merge or history into a table that is empty when the load starts appends
        // straight in too (every row is new: a history row is a current version from the
        // run's start), and resolves keys that repeat within the load at each commit instead
        // (unless a soft-delete column needs the stage to decide each row).
        let layout_matches =
            || -> Result<bool> { Ok(column_names(conn, dataset, &stream.table)? == expected) };
        let direct = match mode {
            _ if schema.fields().iter().any(|f| staged_as_text(f)) => None,
            WriteMode::Overwrite => Some(table_name),
            WriteMode::Append => layout_matches()?.then_some(table_name),
            WriteMode::Merge | WriteMode::History | WriteMode::Previous => {
                (!stream.primary_key.is_empty()
                    && stream.deletes.soft_delete_column.is_none()
                    && is_empty(conn, &target)?
                    && layout_matches()?)
                .then_some(table_name)
            }
        };
        exec("BEGIN TRANSACTION", "starting a transaction")?;
        if stream.write_mode == WriteMode::Overwrite {
            exec(
                &format!(
                    "CREATE OR REPLACE TABLE {into} ({})",
                    columns(schema, Use::Raw, Some(mode))?
                ),
                "creating the new table",
            )?;
        }
        Ok(Self {
            into,
            stage_name,
            stage,
            direct,
        })
    }
}

impl Loader<'_> {
    /// Runs one statement whose parameters are `$1` (the run's start, microseconds) and
    /// `$2` (the run id); returns the rows it changed.
    fn run_sql(&self, sql: &str, doing: &str) -> Result<usize> {
        let mut statement = self.conn.prepare(sql).map_err(|e| db_error(doing, e))?;
        let count = statement.parameter_count();
        let values: [&dyn duckdb::ToSql; 2] = [&self.run.started_at_us, &self.run.run_id];
        statement
            .execute(&values[..count])
            .map_err(|e| db_error(doing, e))
    }

    fn exec(&self, sql: &str, doing: &str) -> Result<()> {
        self.conn.execute_batch(sql).map_err(|e| db_error(doing, e))
    }
}

#[async_trait]
impl StreamWriter for Loader<'_> {
    async fn stage(&mut self, batch: RecordBatch) -> Result<u64> {
        let rows = batch.num_rows();
        if let Some(table) = &self.layout.direct {
            let batch = with_meta_columns(batch, self.run, self.stream.write_mode)?;
            append(self.conn.appender_to_db(table, self.dataset), batch)?;
            return Ok(rows as u64);
        }
        let batch = intervals_as_text(with_change_columns(batch, self.stream)?)?;
        let appender =
            self.conn
                .appender_to_catalog_and_db(&self.layout.stage_name, "temp", "main");
        append(appender, batch)?;
        self.staged_rows += rows;
        Ok(0)
    }

    /// Moves staged rows into `into` (inside the open transaction) and empties the stage.
    async fn move_staged(&mut self) -> Result<u64> {
        if self.staged_rows == 0 {
            return Ok(0);
        }
        let (into, stage) = (&self.layout.into, &self.layout.stage);
        let moved = match self.stream.write_mode {
            WriteMode::Merge | WriteMode::Previous => self.merge()?,
            WriteMode::History => self.history()?,
            WriteMode::Append | WriteMode::Overwrite => self.run_sql(
                &format!("INSERT INTO {into} BY NAME SELECT s.*, {RUN_META} FROM {stage} s"),
                "moving staged rows",
            )?,
        };
        self.exec(&format!("DELETE FROM {stage}"), "emptying the stage")?;
        self.staged_rows = 0;
        Ok(moved as u64)
    }

    async fn truncate(&mut self) -> Result<u64> {
        let table = format!(
            "{}.{}",
            quote_ident(self.dataset),
            quote_ident(&self.stream.table)
        );
        let sql = crate::keyed::truncate_sql(&table, self.stream.deletes.on_delete, NOW);
        self.run_sql(&sql, "applying a TRUNCATE").map(|n| n as u64)
    }

    /// A keyed load appended straight in keeps one row per key; overwrite swaps its new
    /// table in.
    async fn before_commit(&mut self, last: bool) -> Result<u64> {
        let keyed = self.stream.write_mode.is_keyed();
        let removed = if self.layout.direct.is_some() && keyed {
            self.resolve_repeated_keys()?
        } else {
            0
        };
        if last && self.stream.write_mode == WriteMode::Overwrite {
            let target = format!(
                "{}.{}",
                quote_ident(self.dataset),
                quote_ident(&self.stream.table)
            );
            self.exec(
                &format!(
                    "DROP TABLE IF EXISTS {target}; ALTER TABLE {} RENAME TO {}",
                    self.layout.into,
                    quote_ident(&self.stream.table)
                ),
                "swapping in the new table",
            )?;
        }
        Ok(removed)
    }

    async fn write_dead_letters(&mut self, dead: &[DeadLetter], replayed: &[String]) -> Result<()> {
        let stream = (self.run, self.stream.name());
        write_dead_letters(&self.conn, self.dataset, stream, dead, replayed)
    }

    async fn write_state(&mut self, state: &StreamState) -> Result<()> {
        write_state(
            &self.conn,
            self.dataset,
            self.run,
            self.stream.name(),
            state,
        )
    }

    async fn clear_window(&mut self, window: &Window) -> Result<u64> {
        let table = format!(
            "{}.{}",
            quote_ident(self.dataset),
            quote_ident(&self.stream.table)
        );
        windows::clear_window(&self.conn, &table, self.stream, window)
    }

    async fn write_window(&mut self, window: &Window, rows: u64) -> Result<()> {
        let stream = (self.run, self.stream.name());
        windows::write_window(&self.conn, self.dataset, stream, window, rows)
    }

    async fn commit(&mut self) -> Result<()> {
        elt_core::failpoint::hit("duckdb.before_commit");
        self.exec("COMMIT", "committing")?;
        elt_core::failpoint::hit("duckdb.after_commit");
        Ok(())
    }

    async fn begin(&mut self) -> Result<()> {
        self.exec("BEGIN TRANSACTION", "starting a transaction")?;
        self.note_appended_from()
    }

    async fn rollback(&mut self) -> Result<()> {
        self.exec("ROLLBACK", "rolling back")
    }
}
