//! The load driver every destination shares: it owns the loop over one stream's
//! [`Message`]s, the commit policy, the state and dead letters waiting for the next commit,
//! the accounting of rows received and loaded, each batch's and commit's time (and a
//! `commit` tracing span per commit), and the [`WriteSummary`]. A destination
//! supplies a [`StreamWriter`]: where a batch goes, how staged rows reach the table, and
//! how a transaction writes its state and commits.
//!
//! The guarantee it keeps with any writer: a commit carries the rows of every batch before
//! the latest checkpoint together with that checkpoint's state, so rows and state are
//! always committed together; when the channel closes without [`Message::Complete`] (the
//! source failed) or a step fails, the open transaction is rolled back and only committed
//! work stays. Overwrite commits once, at `Complete`.
//!
//! What it does not do: open tables, take locks or clean up after a load; the destination
//! does that around [`drive`]. A blocking destination (DuckDB) runs `drive` on a blocking
//! thread with `Handle::block_on`; its writer's methods then simply block.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use elt_core::arrow::record_batch::RecordBatch;
use elt_core::windows::Window;
use elt_core::{
    ConfiguredStream, DeadLetter, Message, Result, StreamState, WriteMode, WriteSummary,
};
use tokio::sync::mpsc;
use tracing::Instrument;

/// When a load commits.
#[derive(Debug, Clone, Copy)]
pub struct CommitPolicy {
    /// Commit at a checkpoint once this many rows are uncommitted.
    pub commit_rows: u64,
    /// Commit at a checkpoint once the last commit is this old.
    pub commit_interval: Duration,
}

/// One stream's load into one destination, called by [`drive`]. The writer is handed to the
/// driver with its first transaction open; the driver calls [`Self::begin`] after every
/// commit but the last.
#[async_trait]
pub trait StreamWriter: Send {
    /// Writes a batch where this load puts rows (the table itself, or a stage) inside the
    /// open transaction. Returns how many rows are now in the table (0 when staged).
    async fn stage(&mut self, batch: RecordBatch) -> Result<u64>;

    /// Moves staged rows into the table, in the open transaction, at a checkpoint; returns
    /// the rows that changed it. Writers without a stage keep the default.
    async fn move_staged(&mut self) -> Result<u64> {
        Ok(0)
    }

    /// Last work before the transaction writes its state (fencing, an overwrite's swap at
    /// the `last` commit, collapsing repeated keys); returns how many of the rows counted
    /// as loaded it removed again.
    async fn before_commit(&mut self, last: bool) -> Result<u64> {
        let _ = last;
        Ok(0)
    }

    /// Deletes every row of the table (after [`Self::move_staged`]) as [`Message::Truncate`]
    /// asks, in the open transaction; returns the rows it changed. Writers of tables that
    /// cannot take it keep the default, an error.
    async fn truncate(&mut self) -> Result<u64> {
        Err(elt_core::Error::config(
            "this destination cannot apply a TRUNCATE of a cdc stream; use DuckDB or PostgreSQL",
        ))
    }

    /// Adds `dead` letters and removes `replayed` ones, in the open transaction; called
    /// only when one of them is not empty.
    async fn write_dead_letters(&mut self, dead: &[DeadLetter], replayed: &[String]) -> Result<()>;

    /// Replaces the stream's committed state, in the open transaction.
    async fn write_state(&mut self, state: &StreamState) -> Result<()>;

    /// A backfill window's load, first thing in its (single) transaction: deletes the
    /// table's rows whose cursor is in `window`, so that the rows read replace them;
    /// returns how many. Writers that cannot keep the default, an error.
    async fn clear_window(&mut self, window: &Window) -> Result<u64> {
        let _ = window;
        Err(no_windows())
    }

    /// Records `window` as completed with the `rows` received for it, in the open
    /// transaction of its rows (`_elt_windows`); a window's load writes this instead of the
    /// stream's state.
    async fn write_window(&mut self, window: &Window, rows: u64) -> Result<()> {
        let _ = (window, rows);
        Err(no_windows())
    }

    /// Commits the open transaction.
    async fn commit(&mut self) -> Result<()>;

    /// Opens the next transaction; writers whose commit leaves nothing to open keep the
    /// default.
    async fn begin(&mut self) -> Result<()> {
        Ok(())
    }

    /// Rolls back the open transaction.
    async fn rollback(&mut self) -> Result<()>;
}

fn no_windows() -> elt_core::Error {
    elt_core::Error::config(
        "this destination cannot load backfill windows; use a DuckDB or PostgreSQL destination",
    )
}

/// Loads `messages` of `stream` through `writer` until `Complete` or the channel closes.
/// Returns what was committed, also when it fails; a failed load has been rolled back.
pub async fn drive<W: StreamWriter + ?Sized>(
    writer: &mut W,
    stream: &ConfiguredStream,
    policy: CommitPolicy,
    mut messages: mpsc::Receiver<Message>,
) -> (WriteSummary, Result<()>) {
    let window = stream.window();
    let mut load = Load {
        policy,
        // A window is loaded in one transaction: a kill leaves the old rows, never part.
        at_end_only: stream.write_mode == WriteMode::Overwrite || window.is_some(),
        window,
        replaced: 0,
        summary: WriteSummary::default(),
        pending_state: None,
        dead: Vec::new(),
        replayed: Vec::new(),
        uncommitted_rows: 0,
        uncommitted_received: 0,
        last_commit: Instant::now(),
    };
    let result = load.consume(writer, stream, &mut messages).await;
    (load.summary, result)
}

/// What the driver holds between commits.
struct Load {
    policy: CommitPolicy,
    /// Overwrite and a backfill window: one commit, at `Complete`.
    at_end_only: bool,
    /// The backfill window this load replaces and records instead of writing state.
    window: Option<Window>,
    /// The window's earlier rows deleted in the open transaction.
    replaced: u64,
    summary: WriteSummary,
    pending_state: Option<StreamState>,
    /// Dead letters to insert with the next commit.
    dead: Vec<DeadLetter>,
    /// Replayed dead letters to delete with the next commit.
    replayed: Vec<String>,
    /// Rows in the table since the last commit.
    uncommitted_rows: u64,
    /// Rows received since the last commit.
    uncommitted_received: u64,
    last_commit: Instant,
}

impl Load {
    async fn consume<W: StreamWriter + ?Sized>(
        &mut self,
        writer: &mut W,
        stream: &ConfiguredStream,
        messages: &mut mpsc::Receiver<Message>,
    ) -> Result<()> {
        let mut busy = Duration::ZERO;
        if let Some(window) = &self.window {
            match writer.clear_window(window).await {
                Ok(replaced) => self.replaced = replaced,
                Err(e) => {
                    let _ = writer.rollback().await;
                    return Err(e);
                }
            }
        }
        let result = loop {
            let Some(message) = messages.recv().await else {
                // The source stopped without finishing: keep only what was committed.
                break writer.rollback().await;
            };
            let started = Instant::now();
            let last = matches!(message, Message::Complete);
            let step = match message {
                Message::Batch(batch) => {
                    self.uncommitted_received += batch.num_rows() as u64;
                    match elt_core::previous::with_columns(batch, stream) {
                        Ok(batch) => writer.stage(batch).await.map(|rows| {
                            self.uncommitted_rows += rows;
                            self.summary
                                .batch_secs
                                .push(started.elapsed().as_secs_f64());
                            elt_core::failpoint::hit("load.after_batch");
                        }),
                        Err(e) => Err(e),
                    }
                }
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
                    self.checkpoint(writer).await
                }
                Message::Truncate => match writer.move_staged().await {
                    Ok(moved) => writer.truncate().await.map(|removed| {
                        self.uncommitted_rows += moved + removed;
                    }),
                    Err(e) => Err(e),
                },
                Message::Complete => self.commit(writer, true).await,
            };
            busy += started.elapsed();
            if let Err(e) = step {
                // The step's error is what the user needs; a failed rollback adds nothing.
                let _ = writer.rollback().await;
                break Err(e);
            }
            if last {
                break Ok(());
            }
        };
        self.summary.load_secs = busy.as_secs_f64();
        result
    }

    /// Moves staged rows into the table, and commits when enough rows or time have gathered
    /// since the last commit. Fewer, larger commits load faster (DuckDB writes large ones
    /// straight into the file); a crash re-reads at most `commit_rows` rows.
    async fn checkpoint<W: StreamWriter + ?Sized>(&mut self, writer: &mut W) -> Result<()> {
        self.uncommitted_rows += writer.move_staged().await?;
        let due = self.uncommitted_rows >= self.policy.commit_rows
            || self.last_commit.elapsed() >= self.policy.commit_interval;
        if self.at_end_only || !due {
            return Ok(());
        }
        self.commit(writer, false).await?;
        writer.begin().await
    }

    /// Commits the open transaction with the latest checkpoint's state and the dead letters
    /// gathered since the last commit.
    async fn commit<W: StreamWriter + ?Sized>(&mut self, writer: &mut W, last: bool) -> Result<()> {
        let span = tracing::info_span!("commit", last);
        let started = Instant::now();
        self.commit_in(writer, last).instrument(span).await?;
        self.summary
            .commit_secs
            .push(started.elapsed().as_secs_f64());
        Ok(())
    }

    /// [`Self::commit`]'s work, inside its span.
    async fn commit_in<W: StreamWriter + ?Sized>(
        &mut self,
        writer: &mut W,
        last: bool,
    ) -> Result<()> {
        self.uncommitted_rows += writer.move_staged().await?;
        let removed = writer.before_commit(last).await?;
        self.uncommitted_rows = self.uncommitted_rows.saturating_sub(removed);
        let dead = std::mem::take(&mut self.dead);
        let replayed = std::mem::take(&mut self.replayed);
        if !dead.is_empty() || !replayed.is_empty() {
            writer.write_dead_letters(&dead, &replayed).await?;
        }
        let state = self.pending_state.take();
        match (&self.window, &state) {
            // Nothing else commits a window's rows: they are all received now.
            (Some(window), _) if last => {
                let rows = self.summary.rows_received + self.uncommitted_received;
                writer.write_window(window, rows).await?;
            }
            (Some(_), _) | (None, None) => {}
            (None, Some(state)) => writer.write_state(state).await?,
        }
        writer.commit().await?;
        if last && self.window.is_some() {
            let replaced = std::mem::take(&mut self.replaced);
            let note = format!("the window's {replaced} earlier rows in the table were replaced");
            self.summary.notes.push(note);
        }
        self.summary.rows_loaded += std::mem::take(&mut self.uncommitted_rows);
        self.summary.rows_received += std::mem::take(&mut self.uncommitted_received);
        self.last_commit = Instant::now();
        if state.is_some() {
            self.summary.state = state;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
