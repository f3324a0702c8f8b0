//! Arrow batches into a DuckDB raw table through the destination (appender, metadata
//! columns, commit): the load side's hot loop.

use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use elt_core::arrow::array::{ArrayRef, Int64Array, StringArray, TimestampMicrosecondArray};
use elt_core::arrow::datatypes::{DataType, Field, TimeUnit};
use elt_core::arrow::record_batch::RecordBatch;
use elt_core::catalog::{json_field, schema};
use elt_core::{
    ConfiguredStream, Destination, Message, RunInfo, StreamDescriptor, StreamState, WriteMode,
};
use elt_destinations::duckdb::{DuckDbConfig, DuckDbDestination};

const ROWS: usize = 100_000;
const BATCH: usize = 25_000;

fn batch(stream: &ConfiguredStream, start: usize) -> RecordBatch {
    let ids = start as i64..(start + BATCH) as i64;
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(ids.clone())),
        Arc::new(StringArray::from_iter_values(
            ids.clone().map(|i| format!("customer {}", i % 1000)),
        )),
        Arc::new(StringArray::from_iter_values(
            ids.clone().map(|i| format!(r#"{{"k":{}}}"#, i % 20)),
        )),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(ids.map(|i| i * 1000)).with_timezone("UTC"),
        ),
    ];
    RecordBatch::try_new(stream.schema().clone(), columns).unwrap()
}

fn duckdb_append(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let descriptor = StreamDescriptor {
        name: "orders".into(),
        schema: schema(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("customer", DataType::Utf8, true),
            json_field("attrs", true),
            Field::new(
                "updated_at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
        ]),
        primary_key: vec!["id".into()],
        cursor_candidates: vec!["updated_at".into()],
        append_only: false,
        delete_marker: None,
    };
    let stream = ConfiguredStream {
        write_mode: WriteMode::Append,
        ..ConfiguredStream::with_defaults(descriptor)
    };
    let batches: Vec<_> = (0..ROWS)
        .step_by(BATCH)
        .map(|start| batch(&stream, start))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let config = DuckDbConfig {
        path: dir
            .path()
            .join("bench.duckdb")
            .to_string_lossy()
            .into_owned(),
        memory_limit: None,
        threads: None,
        commit_rows: 500_000,
        commit_interval_secs: 60,
    };
    let destination = DuckDbDestination::new(config);
    let run = RunInfo {
        run_id: "01a21392-0000-7000-8000-000000000001".into(),
        connection: "bench".into(),
        started_at_us: 0,
    };
    let mut group = c.benchmark_group("duckdb_append");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.sample_size(10);
    group.bench_function("100k rows, 4 columns, append", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let mut session = destination.open("bench", "raw").await.unwrap();
                let (tx, rx) = tokio::sync::mpsc::channel(4);
                let messages = batches.clone();
                let sender = tokio::spawn(async move {
                    for batch in messages {
                        tx.send(Message::Batch(batch)).await.unwrap();
                        tx.send(Message::Checkpoint(StreamState::empty()))
                            .await
                            .unwrap();
                    }
                    tx.send(Message::Complete).await.unwrap();
                });
                let (summary, result) = session.write(&run, &stream, rx).await;
                sender.await.unwrap();
                result.unwrap();
                assert_eq!(summary.rows_loaded, ROWS as u64);
            })
        })
    });
    group.finish();
}

criterion_group!(benches, duckdb_append);
criterion_main!(benches);
