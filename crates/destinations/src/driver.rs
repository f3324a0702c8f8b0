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

/// Loads `messages` of `stream` through `writer` until `Complete` or the channel closes.
/// Returns what was committed, also when it fails; a failed load has been rolled back.
pub async fn drive<W: StreamWriter + ?Sized>(
    writer: &mut W,
    stream: &ConfiguredStream,
    policy: CommitPolicy,
    mut messages: mpsc::Receiver<Message>,
) -> (WriteSummary, Result<()>) {
    let mut load = Load {
        policy,
        at_end_only: stream.write_mode == WriteMode::Overwrite,
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
    /// Overwrite: one commit, at `Complete`.
    at_end_only: bool,
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
        if let Some(state) = &state {
            writer.write_state(state).await?;
        }
        writer.commit().await?;
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
mod tests {
    use std::sync::Arc;

    use elt_core::arrow::array::{ArrayRef, Int64Array};
    use elt_core::arrow::datatypes::{DataType, Field};
    use elt_core::catalog::{StreamDescriptor, schema};
    use serde_json::json;

    use super::*;

    /// A writer that logs each call; rows go straight into the "table".
    #[derive(Default)]
    struct Log(Vec<String>);

    #[async_trait]
    impl StreamWriter for Log {
        async fn stage(&mut self, batch: RecordBatch) -> Result<u64> {
            self.0.push(format!("stage {}", batch.num_rows()));
            Ok(batch.num_rows() as u64)
        }
        async fn before_commit(&mut self, last: bool) -> Result<u64> {
            self.0.push(format!("before_commit last={last}"));
            Ok(0)
        }
        async fn write_dead_letters(&mut self, dead: &[DeadLetter], _: &[String]) -> Result<()> {
            self.0.push(format!("dead {}", dead.len()));
            Ok(())
        }
        async fn write_state(&mut self, state: &StreamState) -> Result<()> {
            self.0
                .push(format!("state {}", state.watermark().unwrap_or_default()));
            Ok(())
        }
        async fn commit(&mut self) -> Result<()> {
            self.0.push("commit".into());
            Ok(())
        }
        async fn begin(&mut self) -> Result<()> {
            self.0.push("begin".into());
            Ok(())
        }
        async fn rollback(&mut self) -> Result<()> {
            self.0.push("rollback".into());
            Ok(())
        }
    }

    fn stream(mode: WriteMode) -> ConfiguredStream {
        let descriptor = StreamDescriptor {
            name: "s".into(),
            schema: schema(vec![Field::new("id", DataType::Int64, false)]),
            primary_key: vec![],
            cursor_candidates: vec![],
            append_only: false,
            delete_marker: None,
        };
        ConfiguredStream {
            write_mode: mode,
            ..ConfiguredStream::with_defaults(descriptor)
        }
    }

    async fn run(mode: WriteMode, complete: bool) -> (WriteSummary, Vec<String>) {
        let stream = stream(mode);
        let batch = |n: i64| {
            let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(0..n));
            Message::Batch(RecordBatch::try_new(stream.schema().clone(), vec![ids]).unwrap())
        };
        let dead = elt_core::DeadLetter {
            reason: "bad".into(),
            record: "{}".into(),
        };
        let mut messages = vec![
            batch(3),
            Message::DeadLetters(vec![dead]),
            Message::Checkpoint(StreamState::at(json!(1), vec![])),
            batch(2),
            Message::Checkpoint(StreamState::at(json!(2), vec![])),
        ];
        if complete {
            messages.push(Message::Complete);
        }
        let (tx, rx) = mpsc::channel(messages.len());
        for m in messages {
            tx.try_send(m).unwrap();
        }
        drop(tx);
        let policy = CommitPolicy {
            commit_rows: 1,
            commit_interval: Duration::from_secs(60),
        };
        let mut log = Log::default();
        let (summary, result) = drive(&mut log, &stream, policy, rx).await;
        result.unwrap();
        (summary, log.0)
    }

    #[tokio::test]
    async fn each_commit_carries_its_rows_dead_letters_and_state() {
        let (summary, log) = run(WriteMode::Append, true).await;
        assert_eq!(
            log,
            [
                "stage 3",
                "before_commit last=false",
                "dead 1",
                "state 1",
                "commit",
                "begin",
                "stage 2",
                "before_commit last=false",
                "state 2",
                "commit",
                "begin",
                "before_commit last=true",
                "commit"
            ]
        );
        assert_eq!((summary.rows_loaded, summary.rows_received), (5, 5));
        assert_eq!(summary.state.and_then(|s| s.watermark()), Some("2".into()));
    }

    #[tokio::test]
    async fn overwrite_commits_once_and_a_stopped_stream_rolls_back() {
        let (summary, log) = run(WriteMode::Overwrite, false).await;
        assert_eq!(log, ["stage 3", "stage 2", "rollback"]);
        assert_eq!((summary.rows_loaded, summary.state), (0, None));
        let (summary, log) = run(WriteMode::Overwrite, true).await;
        assert_eq!(log.iter().filter(|l| *l == "commit").count(), 1, "{log:?}");
        assert_eq!(summary.rows_loaded, 5);
    }
}
