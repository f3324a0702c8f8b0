//! The load driver's commit order, overwrite's single commit and a window's load, with a
//! writer that logs each call.

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
    async fn clear_window(&mut self, window: &Window) -> Result<u64> {
        self.0.push(format!("clear {window}"));
        Ok(7)
    }
    async fn write_window(&mut self, window: &Window, rows: u64) -> Result<()> {
        self.0.push(format!("window {window} {rows}"));
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
    run_stream(stream(mode), complete).await
}

async fn run_stream(stream: ConfiguredStream, complete: bool) -> (WriteSummary, Vec<String>) {
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

#[tokio::test]
async fn a_window_replaces_its_rows_and_records_itself_in_one_commit() {
    let mut windowed = stream(WriteMode::Append);
    windowed.backfill = Some(elt_core::Backfill {
        from: "1".into(),
        to: "9".into(),
        window: true,
    });
    let (summary, log) = run_stream(windowed.clone(), true).await;
    assert_eq!(
        log,
        [
            "clear [1, 9)",
            "stage 3",
            "stage 2",
            "before_commit last=true",
            "dead 1",
            "window [1, 9) 5",
            "commit"
        ]
    );
    assert_eq!(summary.rows_loaded, 5);
    assert_eq!(
        summary.notes,
        ["the window's 7 earlier rows in the table were replaced"]
    );
    let (_, log) = run_stream(windowed, false).await;
    assert_eq!(log.last().map(String::as_str), Some("rollback"), "{log:?}");
    assert!(!log.iter().any(|l| l.starts_with("window")), "{log:?}");
}
