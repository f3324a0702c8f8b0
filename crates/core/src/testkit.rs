//! The connector conformance kit (feature `testkit`): checks every source and destination
//! runs from its own tests, against a live system the test provides. A check that fails
//! panics with what it saw, so the kit is called from `#[tokio::test]` functions.
//!
//! Sources ([`SourceKit`]): the spec accepts the working config and the factory builds it;
//! an unknown option and each listed bad option are refused naming the option; `check`
//! passes, and fails cleanly (not a bug, within ten seconds) on an unreachable host; every
//! batch matches the discovered schema; checkpoints never go backwards; a read resumed from
//! a checkpoint in the middle loses and repeats no row; a read from the final state reads
//! nothing; no error text contains a secret.
//!
//! Destinations ([`DestinationKit`]): the same config checks; a stream of batches and
//! checkpoints commits every row and the last state; a stream whose source stops without
//! completing keeps only what was committed.
//!
//! What it does not do: type round trips and write modes, which each connector tests
//! against its own system.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, TimeUnit};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::catalog::{ConfiguredStream, StreamDescriptor, SyncMode, WriteMode, schema};
use crate::destination::{DestinationFactory, RunInfo};
use crate::error::{Error, ErrorKind};
use crate::message::{Emitter, Message, ReadStats};
use crate::source::SourceFactory;
use crate::state::StreamState;

/// How long `check` may take to fail against an unreachable host.
const CHECK_LIMIT: Duration = Duration::from_secs(10);

/// The config checks both kits share: what the test provides.
#[derive(Debug, Clone, Default)]
pub struct ConfigCases {
    /// Options that work against the test's live system.
    pub config: Value,
    /// Options each paired with a value that must be refused, such as `("batch_rows", 0)`.
    pub bad_options: Vec<(&'static str, Value)>,
    /// Options pointing at a host that does not answer; None when there is no host.
    pub unreachable: Option<Value>,
    /// Values that must never appear in an error's text (passwords, tokens).
    pub secrets: Vec<String>,
}

impl ConfigCases {
    fn with(&self, option: &str, value: Value) -> Value {
        let mut config = self.config.clone();
        config[option] = value;
        config
    }

    fn assert_no_secret(&self, error: &Error, doing: &str) {
        let text = format!("{error:#} {error:?}");
        for secret in &self.secrets {
            assert!(
                !text.contains(secret.as_str()),
                "{doing}: the error shows a secret: {text}"
            );
        }
    }

    /// Awaits `check` against an unreachable host: it must fail within [`CHECK_LIMIT`], as
    /// a classified error (not a bug), without a secret in its text.
    async fn assert_check_fails(
        &self,
        check: impl std::future::Future<Output = crate::Result<()>>,
    ) {
        let error = match tokio::time::timeout(CHECK_LIMIT, check).await {
            Err(_) => panic!("check on an unreachable host took over {CHECK_LIMIT:?}"),
            Ok(Ok(())) => panic!("check passed on an unreachable host"),
            Ok(Err(e)) => e,
        };
        assert_ne!(error.kind(), ErrorKind::Bug, "{error:#}");
        self.assert_no_secret(&error, "check on an unreachable host");
    }

    /// Runs the config checks through `build`, returning the names of those that passed.
    fn run<T>(
        &self,
        spec: &Value,
        build: impl Fn(&Value) -> crate::Result<T>,
    ) -> Vec<&'static str> {
        let validator = jsonschema::validator_for(spec)
            .unwrap_or_else(|e| panic!("the spec is not a JSON Schema: {e}"));
        let problems: Vec<String> = validator
            .iter_errors(&self.config)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            problems.is_empty(),
            "the spec refuses the working config: {problems:?}"
        );
        if let Err(e) = build(&self.config) {
            panic!("the working config does not build: {e:#}");
        }
        let mut passed = vec!["the spec accepts the config, which builds"];
        let unknown = self.with("no_such_option", json!(1));
        match build(&unknown) {
            Ok(_) => panic!("an unknown option was accepted"),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Config, "{e:#}");
                assert!(
                    e.message().contains("no_such_option"),
                    "does not name it: {e:#}"
                );
            }
        }
        passed.push("an unknown option is refused by name");
        for (option, value) in &self.bad_options {
            match build(&self.with(option, value.clone())) {
                Ok(_) => panic!("`{option}` = {value} was accepted"),
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::Config, "{e:#}");
                    assert!(
                        e.message().contains(option),
                        "does not name `{option}`: {e:#}"
                    );
                    self.assert_no_secret(&e, "a bad option");
                }
            }
        }
        passed.push("each bad option is refused by name");
        passed
    }
}

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
        passed.push("batches match the discovered schema");
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

/// A new, empty database `name` on the test PostgreSQL server (`ELT_TEST_PG_URL`, default
/// `postgres://postgres@127.0.0.1:5432/test`), dropped first if it exists; returns its URL.
#[cfg(feature = "postgres")]
pub async fn fresh_pg_database(name: &str) -> String {
    use sqlx::{Connection, Executor};
    let admin = std::env::var("ELT_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is not reachable: {e}"));
    let drop = format!(
        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
        crate::quote_ident(name)
    );
    conn.execute(drop.as_str())
        .await
        .expect("drop the database");
    let create = format!("CREATE DATABASE {}", crate::quote_ident(name));
    conn.execute(create.as_str())
        .await
        .expect("create the database");
    format!(
        "{}/{name}",
        admin
            .rsplit_once('/')
            .map_or(admin.as_str(), |(base, _)| base)
    )
}

fn channel(messages: Vec<Message>) -> mpsc::Receiver<Message> {
    let (tx, rx) = mpsc::channel(messages.len().max(1));
    for m in messages {
        tx.try_send(m).expect("room in the channel");
    }
    rx
}

fn kit_stream() -> ConfiguredStream {
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
    };
    ConfiguredStream {
        write_mode: WriteMode::Append,
        ..ConfiguredStream::with_defaults(descriptor)
    }
}

fn kit_batch(stream: &ConfiguredStream, ids: std::ops::RangeInclusive<i64>) -> RecordBatch {
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

#[cfg(test)]
mod tests {
    use super::*;

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
