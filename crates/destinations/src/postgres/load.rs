//! Loading one stream into PostgreSQL: the stream's lease, the table (created or evolved),
//! then binary COPY of every batch inside a transaction that each due checkpoint commits
//! with the stream's state, after checking the lease's fencing token.
//!
//! Where batches go: `append` copies straight into the raw table; `merge` copies straight
//! into a table that was empty at the start until a key repeats, and otherwise into a
//! temporary stage that each checkpoint upserts by primary key (`INSERT … ON CONFLICT`, the
//! highest cursor wins, repeated keys collapse); NULL keys are refused from the batch.
//! `overwrite` copies into a new table that replaces the raw table at the end (or whose rows
//! replace its rows, when views depend on it), in the transaction that writes the state, so
//! readers never see half a table; a partitioned table (`partitions.rs`) is emptied and
//! refilled in that transaction instead.

mod by_key;
mod prepare;

use std::time::Duration;

use async_trait::async_trait;
use elt_core::arrow::record_batch::RecordBatch;
use elt_core::changes::with_change_columns;
use elt_core::windows::Window;
use elt_core::{
    ConfiguredStream, DeadLetter, Error, Message, Result, RunInfo, StreamState, WriteMode,
    WriteSummary, quote_ident,
};
use tokio::sync::mpsc;

use super::bookkeeping::{write_dead_letters, write_state};
use super::copy::encode_batch;
use super::lock::StreamLock;
use super::partitions::Partitions;
use super::session::PgSession;
use super::sql::copy_in;
use super::types::{PgType, pg_name};
use super::windows;
use crate::driver::{CommitPolicy, StreamWriter, drive};

/// The run's start as a timestamp, from parameter `$1` (microseconds since the epoch).
const NOW: &str = "(timestamptz 'epoch' + $1::bigint * interval '1 microsecond')";

/// Loads `messages` of `stream` until `Complete` or the channel closes.
pub async fn load_stream(
    session: &mut PgSession,
    run: &RunInfo,
    stream: &ConfiguredStream,
    messages: mpsc::Receiver<Message>,
) -> (WriteSummary, Result<()>) {
    let mut summary = WriteSummary::default();
    let lease = Duration::from_secs(session.config.lease_secs);
    let lock = match StreamLock::acquire(
        &mut session.conn,
        &session.target,
        &session.ds,
        run,
        stream,
        lease,
    )
    .await
    {
        Ok(lock) => lock,
        Err(e) => return (summary, Err(e.in_stream(stream.name()))),
    };
    let policy = CommitPolicy {
        commit_rows: session.config.commit_rows,
        commit_interval: Duration::from_secs(session.config.commit_interval_secs),
    };
    // The driver rolls back a load that fails; a failed preparation is rolled back here.
    let result = match Loader::prepare(session, run, stream, &lock).await {
        Ok(mut loader) => {
            let (loaded, result) = drive(&mut loader, stream, policy, messages).await;
            summary = loaded;
            result
        }
        Err(e) => {
            let _ = session.roll_back().await;
            Err(e)
        }
    };
    lock.release(&mut session.conn).await;
    (summary, result.map_err(|e| e.in_stream(stream.name())))
}

struct Loader<'a> {
    session: &'a mut PgSession,
    run: &'a RunInfo,
    stream: &'a ConfiguredStream,
    lock: &'a StreamLock,
    /// The PostgreSQL types of the stream's columns.
    types: Vec<PgType>,
    /// `types`, then those of the change columns the stage takes (merge, history).
    staged_types: Vec<PgType>,
    /// The quoted raw table.
    table: String,
    /// Where COPY writes: the raw table, the stage (merge, history) or the overwrite's new
    /// table.
    into: String,
    /// The quoted stream columns.
    quoted: Vec<String>,
    /// The columns COPY writes into the raw table: the stream's and the run's.
    columns: String,
    /// The columns COPY writes into `into`: `columns`, plus the change columns of a stage.
    staged_columns: String,
    run_id: [u8; 16],
    staged_rows: u64,
    /// A merge into a table that was empty at the start copies straight into it while no
    /// key repeats.
    direct: bool,
    /// The raw table's time partitions (`partition_by`).
    partitions: Option<Partitions>,
}

impl Loader<'_> {
    /// Replaces the raw table by the overwrite's new one. When views or other objects
    /// depend on the raw table (dbt models often do), it cannot be dropped: its rows are
    /// replaced instead, in the same transaction, and the dependents stay.
    async fn swap_in_new_table(&mut self) -> Result<()> {
        let (table, new) = (self.table.clone(), self.into.clone());
        let name = quote_ident(&pg_name(&self.stream.table));
        let doing = "swapping in the new table";
        self.session
            .exec("SAVEPOINT elt_swap".to_owned(), doing)
            .await?;
        let swap = format!("DROP TABLE IF EXISTS {table}; ALTER TABLE {new} RENAME TO {name}");
        match sqlx::Executor::execute(&mut self.session.conn, swap.as_str()).await {
            Ok(_) => Ok(()),
            // dependent_objects_still_exist
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("2BP01") => {
                self.session
                    .exec("ROLLBACK TO SAVEPOINT elt_swap".to_owned(), doing)
                    .await?;
                let columns = &self.columns;
                self.session.exec(format!(
                        "TRUNCATE {table}; INSERT INTO {table} ({columns}) SELECT {columns} FROM {new};
                         DROP TABLE {new}"
                    ),
                    "replacing the rows of a table that views depend on",
                )
                .await
            }
            Err(e) => Err(self.session.target.error(doing, e)),
        }
    }
}

#[async_trait]
impl StreamWriter for Loader<'_> {
    async fn stage(&mut self, batch: RecordBatch) -> Result<u64> {
        if self.lock.is_lost() {
            // The heartbeat saw another worker take the stream: the fence decides, now.
            self.lock
                .fence(&mut self.session.conn, &self.session.target)
                .await?;
        }
        let keyed = self.stream.write_mode.is_keyed();
        if keyed {
            refuse_null_keys(&batch, &self.stream.primary_key)?;
        }
        if let Some(partitions) = &mut self.partitions {
            partitions.create_for_batch(self.session, &batch).await?;
        }
        if self.direct {
            let payload = encode_batch(&batch, &self.types, self.run.started_at_us, &self.run_id)?;
            // Straight into the (empty at start) raw table, unless a key repeats: then the
            // unique index refuses the batch, and this load merges through the stage.
            self.session
                .exec("SAVEPOINT elt_copy".to_owned(), "copying a batch")
                .await?;
            let sql = format!(
                "COPY {} ({}) FROM STDIN (FORMAT binary)",
                self.table, self.columns
            );
            match copy_in(&mut self.session.conn, sql, &payload).await {
                Ok(rows) => return Ok(rows),
                Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23505") => {
                    self.session
                        .exec(
                            "ROLLBACK TO SAVEPOINT elt_copy".to_owned(),
                            "copying a batch",
                        )
                        .await?;
                    self.direct = false;
                }
                Err(e) => return Err(self.session.target.error("copying a batch", e)),
            }
        }
        let batch = with_change_columns(batch, self.stream)?;
        let payload = encode_batch(
            &batch,
            &self.staged_types,
            self.run.started_at_us,
            &self.run_id,
        )?;
        let sql = format!(
            "COPY {} ({}) FROM STDIN (FORMAT binary)",
            self.into, self.staged_columns
        );
        let rows = copy_in(&mut self.session.conn, sql, &payload)
            .await
            .map_err(|e| self.session.target.error("copying a batch", e))?;
        if keyed {
            self.staged_rows += rows;
            return Ok(0);
        }
        Ok(rows)
    }

    async fn move_staged(&mut self) -> Result<u64> {
        self.move_staged_rows().await
    }

    async fn truncate(&mut self) -> Result<u64> {
        self.apply_truncate().await
    }

    /// Checks the lease's fencing token; the last commit of an overwrite swaps in its new
    /// table.
    async fn before_commit(&mut self, last: bool) -> Result<u64> {
        self.lock
            .fence(&mut self.session.conn, &self.session.target)
            .await?;
        if last && self.stream.write_mode == WriteMode::Overwrite && self.partitions.is_none() {
            self.swap_in_new_table().await?;
        }
        Ok(0)
    }

    async fn write_dead_letters(&mut self, dead: &[DeadLetter], replayed: &[String]) -> Result<()> {
        let session = &mut *self.session;
        let stream = (self.run, self.stream.name());
        write_dead_letters(
            &mut session.conn,
            &session.target,
            &session.ds,
            stream,
            dead,
            replayed,
        )
        .await
    }

    async fn write_state(&mut self, state: &StreamState) -> Result<()> {
        let session = &mut *self.session;
        let stream = self.stream.name();
        write_state(
            &mut session.conn,
            &session.target,
            &session.ds,
            self.run,
            stream,
            state,
        )
        .await
    }

    async fn clear_window(&mut self, window: &Window) -> Result<u64> {
        let emptied = match &self.partitions {
            Some(partitions) => partitions.truncate_covered(self.session, window).await?,
            None => 0,
        };
        let table = self.table.clone();
        let deleted = windows::clear_window(self.session, &table, self.stream, window).await?;
        Ok(emptied + deleted)
    }

    async fn write_window(&mut self, window: &Window, rows: u64) -> Result<()> {
        let stream = (self.run, self.stream.name());
        windows::write_window(self.session, stream, window, rows).await
    }

    async fn commit(&mut self) -> Result<()> {
        elt_core::failpoint::hit("postgres.before_commit");
        self.session.exec("COMMIT".to_owned(), "committing").await?;
        elt_core::failpoint::hit("postgres.after_commit");
        Ok(())
    }

    async fn begin(&mut self) -> Result<()> {
        self.session
            .exec("BEGIN".to_owned(), "starting a transaction")
            .await
    }

    async fn rollback(&mut self) -> Result<()> {
        self.session.roll_back().await
    }
}

/// Refuses a batch with a NULL in a primary-key column: a merge needs a key on every row.
fn refuse_null_keys(batch: &RecordBatch, key: &[String]) -> Result<()> {
    for name in key {
        let column = batch.column_by_name(name).ok_or_else(|| {
            Error::config(format!("primary key column {name} is not in the stream"))
        })?;
        if column.null_count() > 0 {
            return Err(Error::data(format!(
                "{} row(s) have a NULL in primary key column {name}; merge needs a key on every \
                 row (set `primary_key` on the stream, or use `append`)",
                column.null_count()
            )));
        }
    }
    Ok(())
}

/// The 16 bytes of a run id.
fn uuid_bytes(run_id: &str) -> Result<[u8; 16]> {
    uuid::Uuid::parse_str(run_id)
        .map(|u| *u.as_bytes())
        .map_err(|e| Error::bug(format!("run id {run_id} is not a UUID")).caused_by(e))
}
