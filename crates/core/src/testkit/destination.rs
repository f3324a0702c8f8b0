//! The conformance checks of a destination: config checks, `check`, and a stream that must
//! commit every row with its last state, and keep only committed work when it stops.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, TimeUnit};
use serde_json::json;
use tokio::sync::mpsc;

use super::ConfigCases;
use crate::catalog::{ConfiguredStream, StreamDescriptor, WriteMode, schema};
use crate::destination::{DestinationFactory, RunInfo};
use crate::message::Message;
use crate::state::StreamState;

/// The conformance checks of a destination.
#[derive(Debug)]
pub struct DestinationKit {
    /// The destination type under test.
    pub factory: DestinationFactory,
    /// Its configs.
    pub cases: ConfigCases,
    /// A dataset (schema) the kit may create and fill.
    pub dataset: String,
}

impl DestinationKit {
    /// Runs every check; returns the names of those that passed.
    pub async fn run(&self) -> Vec<&'static str> {
        let mut passed = self
            .cases
            .run(&self.factory.spec(), |c| self.factory.build(c).map(drop));
        let destination = self.factory.build(&self.cases.config).expect("builds");
        if let Err(e) = destination.check().await {
            panic!("check fails on the working config: {e:#}");
        }
        passed.push("check passes");
        if let Some(unreachable) = &self.cases.unreachable {
            let destination = self
                .factory
                .build(unreachable)
                .expect("the unreachable config builds");
            self.cases.assert_check_fails(destination.check()).await;
            passed.push("check fails cleanly and quickly on an unreachable target");
        }
        let stream = kit_stream();
        let run = RunInfo {
            run_id: "01a21392-0000-7000-8000-00000000c0de".into(),
            connection: "elt_kit".into(),
            started_at_us: 1_700_000_000_000_000,
        };
        let mut session = destination
            .open("elt_kit", &self.dataset)
            .await
            .unwrap_or_else(|e| panic!("open: {e:#}"));
        let messages = vec![
            Message::Batch(kit_batch(&stream, 1..=3)),
            Message::Checkpoint(StreamState::at(json!(3), vec![])),
            Message::Batch(kit_batch(&stream, 4..=5)),
            Message::Checkpoint(StreamState::at(json!(5), vec![])),
            Message::Complete,
        ];
        let (summary, result) = session.write(&run, &stream, channel(messages)).await;
        result.unwrap_or_else(|e| panic!("write: {e:#}"));
        assert_eq!(summary.rows_loaded, 5, "rows loaded");
        let saved = session.state().await.expect("state");
        assert_eq!(
            saved.get(stream.name()).and_then(|s| s.cursor.clone()),
            Some(json!(5))
        );
        passed.push("a stream commits every row and its last state");
        let stopped = vec![
            Message::Batch(kit_batch(&stream, 6..=7)),
            Message::Checkpoint(StreamState::at(json!(7), vec![])),
        ];
        let (summary, result) = session.write(&run, &stream, channel(stopped)).await;
        result.unwrap_or_else(|e| panic!("write of a stopped stream: {e:#}"));
        let saved = session.state().await.expect("state");
        assert!(summary.rows_loaded <= 2);
        let cursor = saved.get(stream.name()).and_then(|s| s.cursor.clone());
        assert!(
            (summary.rows_loaded == 0 && cursor == Some(json!(5)))
                || (summary.rows_loaded == 2 && cursor == Some(json!(7))),
            "rows and state commit together: {} rows, state {cursor:?}",
            summary.rows_loaded
        );
        passed.push("a stream that stops keeps only what was committed, with its state");
        passed
    }
}

fn channel(messages: Vec<Message>) -> mpsc::Receiver<Message> {
    let (tx, rx) = mpsc::channel(messages.len().max(1));
    for m in messages {
        tx.try_send(m).expect("room in the channel");
    }
    rx
}

pub(super) fn kit_stream() -> ConfiguredStream {
    let descriptor = StreamDescriptor {
        name: "elt_kit_items".into(),
        schema: schema(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
            Field::new(
                "updated_at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                false,
            ),
        ]),
        primary_key: vec!["id".into()],
        cursor_candidates: vec!["updated_at".into()],
        append_only: false,
        delete_marker: None,
    };
    ConfiguredStream {
        write_mode: WriteMode::Append,
        ..ConfiguredStream::with_defaults(descriptor)
    }
}

pub(super) fn kit_batch(
    stream: &ConfiguredStream,
    ids: std::ops::RangeInclusive<i64>,
) -> RecordBatch {
    let ids: Vec<i64> = ids.collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(ids.clone())),
        Arc::new(StringArray::from_iter(
            ids.iter()
                .map(|i| (i % 2 == 0).then(|| format!("nöme {i}"))),
        )),
        Arc::new(
            TimestampMicrosecondArray::from(ids.iter().map(|i| i * 1_000_000).collect::<Vec<_>>())
                .with_timezone("UTC"),
        ),
    ];
    RecordBatch::try_new(stream.schema().clone(), columns).expect("kit batch")
}
