//! The conformance checks of a source: config checks, `check`, and reads that must match
//! the discovered schema, never move checkpoints backwards and resume without loss or repeat.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use serde_json::Value;
use tokio::sync::mpsc;

use super::ConfigCases;
use crate::catalog::{ConfiguredStream, StreamDescriptor, SyncMode};
use crate::message::{Emitter, Message, ReadStats};
use crate::source::SourceFactory;
use crate::state::StreamState;

/// The conformance checks of a source.
pub struct SourceKit {
    /// The source type under test.
    pub factory: SourceFactory,
    /// Its configs.
    pub cases: ConfigCases,
    /// The streams to read (every discovered one when empty). An incremental stream should
    /// hold rows enough for several checkpoints.
    pub streams: Vec<String>,
}

impl SourceKit {
    /// Runs every check; returns the names of those that passed (for the test's output).
    pub async fn run(&self) -> Vec<&'static str> {
        let mut passed = self
            .cases
            .run(&self.factory.spec(), |c| self.factory.build(c).map(drop));
        let source = self.factory.build(&self.cases.config).expect("builds");
        if let Err(e) = source.check().await {
            panic!("check fails on the working config: {e:#}");
        }
        passed.push("check passes");
        if let Some(unreachable) = &self.cases.unreachable {
            let source = self
                .factory
                .build(unreachable)
                .expect("the unreachable config builds");
            self.cases.assert_check_fails(source.check()).await;
            passed.push("check fails cleanly and quickly on an unreachable host");
        }
        let catalog = source
            .discover()
            .await
            .unwrap_or_else(|e| panic!("discover: {e:#}"));
        let wanted: Vec<&StreamDescriptor> = catalog
            .streams
            .iter()
            .filter(|s| self.streams.is_empty() || self.streams.contains(&s.name))
            .collect();
        assert!(
            !wanted.is_empty(),
            "no stream to read; discovered {catalog:?}"
        );
        let mut resumed = 0;
        for descriptor in wanted {
            let stream = ConfiguredStream::with_defaults(descriptor.clone());
            let all = read(source.as_ref(), &stream, None).await;
            assert!(
                !all.keys.is_empty(),
                "stream {}: a read from empty state sent no row (the kit's streams must hold rows)",
                stream.name()
            );
            assert_monotonic(&stream, &all.states);
            if stream.sync_mode != SyncMode::Incremental || all.states.is_empty() {
                continue;
            }
            let middle = all.states.len() / 2;
            let (state, rows_before) = all.states[middle].clone();
            let rest = read(source.as_ref(), &stream, Some(state)).await;
            let mut joined = all.keys[..rows_before].to_vec();
            joined.extend(rest.keys.iter().cloned());
            assert_same_rows(&stream, &all.keys, &joined);
            let (last, _) = all.states.last().cloned().expect("a state");
            let after = read(source.as_ref(), &stream, Some(last)).await;
            assert!(
                after.keys.is_empty(),
                "stream {}: a read from the final state read {} rows again",
                stream.name(),
                after.keys.len()
            );
            resumed += 1;
        }
        passed.push("each stream sends rows, in batches that match the discovered schema");
        passed.push("checkpoints never go backwards");
        if resumed > 0 {
            passed.push("a resumed read loses and repeats no row; the final state reads nothing");
        }
        passed
    }
}

/// What one read sent: each row's key (as text) in order, and each checkpoint with the
/// number of rows before it.
struct Read {
    keys: Vec<String>,
    states: Vec<(StreamState, usize)>,
}

async fn read(
    source: &dyn crate::Source,
    stream: &ConfiguredStream,
    state: Option<StreamState>,
) -> Read {
    let (tx, mut rx) = mpsc::channel(16);
    let collector = tokio::spawn(async move {
        let mut messages = Vec::new();
        while let Some(m) = rx.recv().await {
            messages.push(m);
        }
        messages
    });
    {
        let mut emitter = Emitter::new(tx, stream.schema().clone(), Arc::new(ReadStats::default()));
        if let Err(e) = source.read(stream, state, &mut emitter).await {
            panic!("stream {}: read failed: {e:#}", stream.name());
        }
    }
    let mut out = Read {
        keys: Vec::new(),
        states: Vec::new(),
    };
    for message in collector.await.expect("collector") {
        match message {
            Message::Batch(batch) => {
                assert_eq!(
                    batch.schema().fields(),
                    stream.schema().fields(),
                    "stream {}: a batch differs from the discovered schema",
                    stream.name()
                );
                out.keys.extend(row_keys(stream, &batch));
            }
            Message::Checkpoint(state) => out.states.push((state, out.keys.len())),
            Message::Complete => panic!("a source sent Complete (the runner's message)"),
            // Records the source could not type; the kit's checks are about the rows.
            Message::DeadLetters(_) => {}
            Message::Replayed(_) => panic!("a source sent Replayed (the runner's message)"),
            // The kit reads full and incremental streams, which never truncate.
            Message::Truncate => panic!("a source sent Truncate outside change data capture"),
        }
    }
    out
}

/// Each row's primary key as text (the whole row when the stream has no key).
fn row_keys(stream: &ConfiguredStream, batch: &RecordBatch) -> Vec<String> {
    let columns: Vec<&ArrayRef> = if stream.primary_key.is_empty() {
        batch.columns().iter().collect()
    } else {
        stream
            .primary_key
            .iter()
            .map(|k| batch.column_by_name(k).expect("key column in the batch"))
            .collect()
    };
    let options = FormatOptions::default().with_null("NULL");
    let formatters: Vec<ArrayFormatter<'_>> = columns
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).expect("formattable"))
        .collect();
    (0..batch.num_rows())
        .map(|row| {
            let parts: Vec<String> = formatters
                .iter()
                .map(|f| f.value(row).to_string())
                .collect();
            parts.join("\u{1f}")
        })
        .collect()
}

fn assert_monotonic(stream: &ConfiguredStream, states: &[(StreamState, usize)]) {
    for pair in states.windows(2) {
        let (a, b) = (&pair[0].0, &pair[1].0);
        let position = |s: &StreamState| (s.cursor.clone(), s.key.clone().unwrap_or_default());
        let ((ca, ka), (cb, kb)) = (position(a), position(b));
        let order = match (&ca, &cb) {
            (Some(x), Some(y)) => compare(x, y).then_with(|| compare_all(&ka, &kb)),
            (None, None) => std::cmp::Ordering::Equal,
            (Some(_), None) => std::cmp::Ordering::Greater,
            (None, Some(_)) => std::cmp::Ordering::Less,
        };
        assert!(
            order != std::cmp::Ordering::Greater,
            "stream {}: a checkpoint went backwards: {} after {}",
            stream.name(),
            b.to_json(),
            a.to_json()
        );
    }
}

fn compare(a: &Value, b: &Value) -> std::cmp::Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(std::cmp::Ordering::Equal),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        _ => a.to_string().cmp(&b.to_string()),
    }
}

fn compare_all(a: &[Value], b: &[Value]) -> std::cmp::Ordering {
    a.iter()
        .zip(b)
        .map(|(x, y)| compare(x, y))
        .find(|o| o.is_ne())
        .unwrap_or(a.len().cmp(&b.len()))
}

fn assert_same_rows(stream: &ConfiguredStream, expected: &[String], got: &[String]) {
    let count = |keys: &[String]| {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for k in keys {
            *counts.entry(k.clone()).or_default() += 1;
        }
        counts
    };
    let (want, have) = (count(expected), count(got));
    let repeated: Vec<_> = have
        .iter()
        .filter(|(k, n)| **n > want.get(*k).copied().unwrap_or(0))
        .take(5)
        .collect();
    let lost: Vec<_> = want
        .iter()
        .filter(|(k, n)| have.get(*k).copied().unwrap_or(0) < **n)
        .take(5)
        .collect();
    assert!(
        repeated.is_empty() && lost.is_empty(),
        "stream {}: resuming from a checkpoint repeated {repeated:?} and lost {lost:?}",
        stream.name()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::destination::{kit_batch, kit_stream};
    use serde_json::json;

    fn stream() -> ConfiguredStream {
        kit_stream()
    }

    #[test]
    #[should_panic(expected = "went backwards")]
    fn a_checkpoint_going_backwards_fails() {
        let states = [
            (
                StreamState::at(json!("2024-01-02T00:00:00.000000Z"), vec![json!(5)]),
                1,
            ),
            (
                StreamState::at(json!("2024-01-01T00:00:00.000000Z"), vec![json!(9)]),
                2,
            ),
        ];
        assert_monotonic(&stream(), &states);
    }

    #[test]
    fn equal_cursors_with_growing_keys_pass() {
        let states = [
            (StreamState::at(json!(7), vec![json!(2)]), 1),
            (StreamState::at(json!(7), vec![json!(10)]), 2),
            (StreamState::at(json!(8), vec![json!(1)]), 3),
        ];
        assert_monotonic(&stream(), &states);
    }

    #[test]
    #[should_panic(expected = "repeated")]
    fn a_repeated_row_fails() {
        let all = ["1".to_owned(), "2".to_owned()];
        assert_same_rows(&stream(), &all, &["1".into(), "2".into(), "2".into()]);
    }

    #[test]
    #[should_panic(expected = "lost")]
    fn a_lost_row_fails() {
        let all = ["1".to_owned(), "2".to_owned()];
        assert_same_rows(&stream(), &all, &["1".into()]);
    }

    #[test]
    fn row_keys_are_the_key_columns_as_text() {
        let s = stream();
        assert_eq!(row_keys(&s, &kit_batch(&s, 1..=3)), ["1", "2", "3"]);
    }
}
