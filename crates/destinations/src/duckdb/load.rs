//! Loading one stream: the transaction flow. Batches go through the Arrow appender straight
//! into the table (append, overwrite, a merge into an empty table) or into a temporary
//! stage that each checkpoint merges from; a commit carries the latest checkpoint's state.

use std::time::{Duration, Instant};

use duckdb::{Connection, params};
use elt_core::arrow::record_batch::RecordBatch;
use elt_core::{
    ConfiguredStream, Error, Message, Result, RunInfo, StreamState, WriteMode, WriteSummary,
    quote_ident,
};
use tokio::sync::mpsc;

use super::batches::{append, intervals_as_text, with_meta_columns};
use super::session::{db_error, write_state};
use super::tables::{
    META_COLUMNS, column_names, columns, evolve, is_empty, key_counts, null_key_error,
};
use super::types::{Use, staged_as_text};

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
    policy: CommitPolicy,
    uncommitted_rows: u64,
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
        let exec = |sql: &str, doing: &str| conn.execute_batch(sql).map_err(|e| db_error(doing, e));
        exec(
            &format!(
                "CREATE OR REPLACE TEMP TABLE {} ({})",
                quote_ident(&stage_name),
                columns(schema, Use::Staging, false)?
            ),
            "creating the staging table",
        )?;
        let into = if stream.write_mode == WriteMode::Overwrite {
            format!(
                "{ds}.{}",
                quote_ident(&format!("_elt_new__{}", stream.table))
            )
        } else {
            exec(
                &format!(
                    "CREATE TABLE IF NOT EXISTS {target} ({})",
                    columns(schema, Use::Raw, true)?
                ),
                "creating the raw table",
            )?;
            evolve(conn, dataset, &stream.table, &stage_name, schema)?;
            target.clone()
        };
        // Append and overwrite skip the stage when the table has exactly the batch's columns
        // plus the metadata ones: the appender writes straight into it. Merges need the
        // stage; intervals go through it as text (see `staged_as_text`).
        let table_name = match stream.write_mode {
            WriteMode::Overwrite => format!("_elt_new__{}", stream.table),
            _ => stream.table.clone(),
        };
        let expected: Vec<String> = schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .chain(META_COLUMNS.iter().map(|(name, _)| (*name).to_owned()))
            .collect();
        // A merge into a table that is empty when the load starts appends straight in too,
        // and resolves keys that repeat within the load at each commit instead.
        let layout_matches =
            || -> Result<bool> { Ok(column_names(conn, dataset, &stream.table)? == expected) };
        let direct = match stream.write_mode {
            _ if schema.fields().iter().any(|f| staged_as_text(f)) => None,
            WriteMode::Overwrite => Some(table_name),
            WriteMode::Append => layout_matches()?.then_some(table_name),
            WriteMode::Merge => {
                (!stream.primary_key.is_empty() && is_empty(conn, &target)? && layout_matches()?)
                    .then_some(table_name)
            }
        };
        exec("BEGIN TRANSACTION", "starting a transaction")?;
        if stream.write_mode == WriteMode::Overwrite {
            exec(
                &format!(
                    "CREATE OR REPLACE TABLE {into} ({})",
                    columns(schema, Use::Raw, true)?
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
            policy,
            uncommitted_rows: 0,
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

    fn exec(&self, sql: &str, doing: &str) -> Result<()> {
        self.conn.execute_batch(sql).map_err(|e| db_error(doing, e))
    }

    fn stage(&mut self, batch: RecordBatch) -> Result<()> {
        let rows = batch.num_rows();
        if let Some(table) = &self.direct {
            let batch = with_meta_columns(batch, self.run)?;
            append(self.conn.appender_to_db(table, self.dataset), batch)?;
            self.uncommitted_rows += rows as u64;
            return Ok(());
        }
        let batch = intervals_as_text(batch)?;
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
        if self.direct.is_some() && self.stream.write_mode == WriteMode::Merge {
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
        let state = self.pending_state.take();
        if let Some(state) = &state {
            write_state(self.conn, self.dataset, self.run, self.stream.name(), state)?;
        }
        elt_core::failpoint::hit("duckdb.before_commit");
        self.exec("COMMIT", "committing")?;
        elt_core::failpoint::hit("duckdb.after_commit");
        self.summary.rows_loaded += self.uncommitted_rows;
        self.uncommitted_rows = 0;
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
        let meta =
            "make_timestamp(?::BIGINT)::TIMESTAMPTZ AS _elt_extracted_at, ?::UUID AS _elt_run_id";
        let moved = if self.stream.write_mode == WriteMode::Merge {
            self.merge(meta)?
        } else {
            self.conn
                .execute(
                    &format!("INSERT INTO {into} BY NAME SELECT s.*, {meta} FROM {stage} s"),
                    params![self.run.started_at_us, self.run.run_id],
                )
                .map_err(|e| db_error("moving staged rows", e))?
        };
        self.exec(&format!("DELETE FROM {stage}"), "emptying the stage")?;
        self.uncommitted_rows += moved as u64;
        self.staged_rows = 0;
        Ok(())
    }

    /// For a merge appended straight into a table that was empty at the start: refuses
    /// NULL keys and keeps one row per key (highest cursor, then the last appended), the
    /// same outcome as merging through the stage.
    fn resolve_repeated_keys(&mut self) -> Result<()> {
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
        let (null_keys, repeated) = key_counts(self.conn, &target, &key)?;
        if null_keys > 0 {
            return Err(null_key_error(null_keys, &self.stream.primary_key));
        }
        if repeated == 0 {
            return Ok(());
        }
        let order = match &self.stream.cursor {
            Some(c) => format!("{} DESC NULLS LAST, rowid DESC", quote_ident(c)),
            None => "rowid DESC".to_owned(),
        };
        let removed = self
            .conn
            .execute(
                &format!(
                    "DELETE FROM {target} WHERE rowid IN (SELECT rowid FROM (SELECT rowid,
                     row_number() OVER (PARTITION BY {} ORDER BY {order}) AS n FROM {target}) WHERE n > 1)",
                    key.join(", ")
                ),
                [],
            )
            .map_err(|e| db_error("resolving repeated keys", e))?;
        self.uncommitted_rows -= removed as u64;
        Ok(())
    }

    /// Upserts the staged rows by primary key: a row replaces the stored one unless the
    /// stored cursor is higher (a NULL cursor loses to any value); among staged duplicates
    /// the highest cursor (then the last staged) wins.
    fn merge(&self, meta: &str) -> Result<usize> {
        let (into, stage) = (&self.into, &self.stage);
        let key = &self.stream.primary_key;
        if key.is_empty() {
            return Err(Error::config(
                "write mode `merge` needs a primary key; set `primary_key` on the stream or use `append`",
            ));
        }
        let quoted: Vec<_> = key.iter().map(|k| quote_ident(k)).collect();
        let (null_keys, repeated) = key_counts(self.conn, stage, &quoted)?;
        if null_keys > 0 {
            return Err(null_key_error(null_keys, key));
        }
        let same_key: Vec<_> = quoted.iter().map(|k| format!("t.{k} = s.{k}")).collect();
        let same_key = same_key.join(" AND ");
        let partition: Vec<_> = quoted.iter().map(|k| format!("s.{k}")).collect();
        // Every join below is driven by the stage (small) against the table (large): an
        // anti-join from the stage would hash the whole table at every checkpoint.
        let order = match &self.stream.cursor {
            Some(c) => {
                let c = quote_ident(c);
                // Staged rows that lose to a stored row with a higher cursor are dropped.
                let stored_wins = format!("t.{c} > s.{c} OR (s.{c} IS NULL AND t.{c} IS NOT NULL)");
                self.exec(
                    &format!("DELETE FROM {stage} AS s USING {into} AS t WHERE {same_key} AND ({stored_wins})"),
                    "dropping older staged rows",
                )?;
                format!("s.{c} DESC NULLS LAST, s.rowid DESC")
            }
            None => "s.rowid DESC".to_owned(),
        };
        self.exec(
            &format!("DELETE FROM {into} AS t USING {stage} AS s WHERE {same_key}"),
            "replacing merged rows",
        )?;
        // Materializing every staged row for a window is costly: only when keys repeat.
        let dedupe = if repeated > 0 {
            format!(
                " QUALIFY row_number() OVER (PARTITION BY {} ORDER BY {order}) = 1",
                partition.join(", ")
            )
        } else {
            String::new()
        };
        self.conn
            .execute(
                &format!("INSERT INTO {into} BY NAME SELECT s.*, {meta} FROM {stage} s{dedupe}"),
                params![self.run.started_at_us, self.run.run_id],
            )
            .map_err(|e| db_error("merging rows", e))
    }
}
