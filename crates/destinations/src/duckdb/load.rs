//! Loading one stream: the transaction flow. Batches go through the Arrow appender straight
//! into the table (append, overwrite, a merge into an empty table) or into a temporary
//! stage that each checkpoint merges from; a commit carries the latest checkpoint's state.

mod by_key;

use std::time::{Duration, Instant};

use std::sync::Arc;

use duckdb::Connection;
use elt_core::arrow::datatypes::{Field, Schema};
use elt_core::arrow::record_batch::RecordBatch;
use elt_core::changes::{change_fields, meta_columns, with_change_columns};
use elt_core::{
    ConfiguredStream, Message, Result, RunInfo, StreamState, WriteMode, WriteSummary, quote_ident,
};
use tokio::sync::mpsc;

use super::batches::{append, intervals_as_text, with_meta_columns};
use super::bookkeeping::{write_dead_letters, write_state};
use super::connect::db_error;
use super::tables::{column_names, columns, evolve, is_empty};
use super::types::{Use, staged_as_text};

/// The run's start as a timestamp, from parameter `$1`.
const NOW: &str = "make_timestamp($1::BIGINT)::TIMESTAMPTZ";

/// The run's metadata columns as a select list; parameters `$1` (start) and `$2` (run id).
const RUN_META: &str =
    "make_timestamp($1::BIGINT)::TIMESTAMPTZ AS _elt_extracted_at, $2::UUID AS _elt_run_id";

/// When a load commits.
#[derive(Debug, Clone, Copy)]
pub struct CommitPolicy {
    /// Commit at a checkpoint once this many rows are uncommitted.
    pub commit_rows: u64,
    /// Commit at a checkpoint once the last commit is this old.
    pub commit_interval: Duration,
}

/// Loads `messages` of `stream` until `Complete` or the channel closes.
pub fn load_stream(
    conn: &Connection,
    dataset: &str,
    run: &RunInfo,
    stream: &ConfiguredStream,
    policy: CommitPolicy,
    mut messages: mpsc::Receiver<Message>,
) -> (WriteSummary, Result<()>) {
    let prepared = Loader::prepare(conn, dataset, run, stream, policy);
    let (summary, result) = match prepared {
        Ok(mut loader) => {
            let result = loader.consume(&mut messages);
            (loader.summary, result)
        }
        Err(e) => (WriteSummary::default(), Err(e)),
    };
    if result.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    let stage = format!("temp.main.{}", quote_ident(&stage_name(stream)));
    let _ = conn.execute_batch(&format!("DROP TABLE IF EXISTS {stage}"));
    (summary, result.map_err(|e| e.in_stream(stream.name())))
}

fn stage_name(stream: &ConfiguredStream) -> String {
    format!("_elt_stage__{}", stream.table)
}

struct Loader<'a> {
    conn: &'a Connection,
    dataset: &'a str,
    run: &'a RunInfo,
    stream: &'a ConfiguredStream,
    /// The table rows move into at checkpoints: the raw table, or the overwrite's new one.
    into: String,
    stage_name: String,
    stage: String,
    summary: WriteSummary,
    staged_rows: usize,
    /// The table (in the dataset) batches are appended to directly, bypassing the stage.
    direct: Option<String>,
    pending_state: Option<StreamState>,
    /// Dead letters to insert with the next commit.
    dead: Vec<elt_core::DeadLetter>,
    /// Replayed dead letters to delete with the next commit.
    replayed: Vec<String>,
    policy: CommitPolicy,
    uncommitted_rows: u64,
    /// Rows received since the last commit.
    uncommitted_received: u64,
    last_commit: Instant,
}

impl<'a> Loader<'a> {
    fn prepare(
        conn: &'a Connection,
        dataset: &'a str,
        run: &'a RunInfo,
        stream: &'a ConfiguredStream,
        policy: CommitPolicy,
    ) -> Result<Self> {
        let ds = quote_ident(dataset);
        let target = format!("{ds}.{}", quote_ident(&stream.table));
        let stage_name = stage_name(stream);
        let stage = format!("temp.main.{}", quote_ident(&stage_name));
        let schema = stream.schema();
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
            WriteMode::Merge | WriteMode::History => (!stream.primary_key.is_empty()
                && stream.deletes.soft_delete_column.is_none()
                && is_empty(conn, &target)?
                && layout_matches()?)
            .then_some(table_name),
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
            conn,
            dataset,
            run,
            stream,
            into,
            stage_name,
            stage,
            summary: WriteSummary::default(),
            staged_rows: 0,
            direct,
            pending_state: None,
            dead: Vec::new(),
            replayed: Vec::new(),
            policy,
            uncommitted_rows: 0,
            uncommitted_received: 0,
            last_commit: Instant::now(),
        })
    }

    fn consume(&mut self, messages: &mut mpsc::Receiver<Message>) -> Result<()> {
        let mut busy = Duration::ZERO;
        let result = loop {
            let Some(message) = messages.blocking_recv() else {
                // The source stopped without finishing: keep only what was committed.
                self.exec("ROLLBACK", "rolling back")?;
                break Ok(());
            };
            let started = Instant::now();
            let step = match message {
                Message::Batch(batch) => self.stage(batch),
                Message::DeadLetters(dead) => {
                    self.dead.extend(dead);
                    Ok(())
                }
                Message::Replayed(ids) => {
                    self.replayed.extend(ids);
                    Ok(())
                }
                Message::Checkpoint(state) => {
                    self.pending_state = Some(state);
                    self.move_staged().and_then(|()| self.commit_if_due())
                }
                Message::Complete => {
                    let done = self.commit();
                    busy += started.elapsed();
                    break done;
                }
            };
            busy += started.elapsed();
            if let Err(e) = step {
                break Err(e);
            }
        };
        self.summary.load_secs = busy.as_secs_f64();
        result
    }

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

    fn stage(&mut self, batch: RecordBatch) -> Result<()> {
        let rows = batch.num_rows();
        self.uncommitted_received += rows as u64;
        if let Some(table) = &self.direct {
            let batch = with_meta_columns(batch, self.run, self.stream.write_mode)?;
            append(self.conn.appender_to_db(table, self.dataset), batch)?;
            self.uncommitted_rows += rows as u64;
            return Ok(());
        }
        let batch = intervals_as_text(with_change_columns(batch, self.stream)?)?;
        let appender = self
            .conn
            .appender_to_catalog_and_db(&self.stage_name, "temp", "main");
        append(appender, batch)?;
        self.staged_rows += rows;
        Ok(())
    }

    /// Commits when enough rows or time have gathered since the last commit (overwrite
    /// commits only at `Complete`). DuckDB writes large commits straight into the file and
    /// small ones through its WAL, so fewer, larger commits load several times faster; a
    /// crash re-reads at most `commit_rows` rows.
    fn commit_if_due(&mut self) -> Result<()> {
        let due = self.uncommitted_rows >= self.policy.commit_rows
            || self.last_commit.elapsed() >= self.policy.commit_interval;
        if self.stream.write_mode == WriteMode::Overwrite || !due {
            return Ok(());
        }
        self.commit()?;
        self.exec("BEGIN TRANSACTION", "starting a transaction")
    }

    /// Moves the staged rows into the table, then commits them with the latest checkpoint's
    /// state; overwrite swaps its new table in first.
    fn commit(&mut self) -> Result<()> {
        self.move_staged()?;
        let keyed = matches!(
            self.stream.write_mode,
            WriteMode::Merge | WriteMode::History
        );
        if self.direct.is_some() && keyed {
            self.resolve_repeated_keys()?;
        }
        if self.stream.write_mode == WriteMode::Overwrite {
            let target = format!(
                "{}.{}",
                quote_ident(self.dataset),
                quote_ident(&self.stream.table)
            );
            self.exec(
                &format!(
                    "DROP TABLE IF EXISTS {target}; ALTER TABLE {} RENAME TO {}",
                    self.into,
                    quote_ident(&self.stream.table)
                ),
                "swapping in the new table",
            )?;
        }
        let dead = std::mem::take(&mut self.dead);
        let replayed = std::mem::take(&mut self.replayed);
        write_dead_letters(
            self.conn,
            self.dataset,
            (self.run, self.stream.name()),
            &dead,
            &replayed,
        )?;
        let state = self.pending_state.take();
        if let Some(state) = &state {
            write_state(self.conn, self.dataset, self.run, self.stream.name(), state)?;
        }
        elt_core::failpoint::hit("duckdb.before_commit");
        self.exec("COMMIT", "committing")?;
        elt_core::failpoint::hit("duckdb.after_commit");
        self.summary.rows_loaded += self.uncommitted_rows;
        self.uncommitted_rows = 0;
        self.summary.rows_received += self.uncommitted_received;
        self.uncommitted_received = 0;
        self.last_commit = Instant::now();
        if state.is_some() {
            self.summary.state = state;
        }
        Ok(())
    }

    /// Moves staged rows into `into` (inside the open transaction) and empties the stage.
    fn move_staged(&mut self) -> Result<()> {
        if self.staged_rows == 0 {
            return Ok(());
        }
        let (into, stage) = (&self.into, &self.stage);
        let moved = match self.stream.write_mode {
            WriteMode::Merge => self.merge()?,
            WriteMode::History => self.history()?,
            WriteMode::Append | WriteMode::Overwrite => self.run_sql(
                &format!("INSERT INTO {into} BY NAME SELECT s.*, {RUN_META} FROM {stage} s"),
                "moving staged rows",
            )?,
        };
        self.exec(&format!("DELETE FROM {stage}"), "emptying the stage")?;
        self.uncommitted_rows += moved as u64;
        self.staged_rows = 0;
        Ok(())
    }
}
