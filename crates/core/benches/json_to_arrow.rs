//! JSON documents to Arrow through `JsonBatcher` (the HTTP sources' hot loop).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use elt_core::arrow::datatypes::{DataType, Field, TimeUnit};
use elt_core::batch::{FlushPolicy, JsonBatcher};
use elt_core::catalog::schema;

const ROWS: usize = 100_000;

fn json_to_arrow(c: &mut Criterion) {
    let schema = schema(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("customer", DataType::Utf8, true),
        Field::new("amount", DataType::Float64, true),
        Field::new("quantity", DataType::Int32, true),
        Field::new("paid", DataType::Boolean, true),
        Field::new("status", DataType::Utf8, true),
        Field::new(
            "updated_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new("note", DataType::Utf8, true),
    ]);
    let mut input = String::new();
    for i in 0..ROWS {
        input.push_str(&format!(
            r#"{{"id":{i},"customer":"customer {}","amount":{}.25,"quantity":{},"paid":{},"status":"shipped","updated_at":"2024-01-01T00:00:{:02}.123456Z","note":{}}}"#,
            i % 1000,
            i % 500,
            i % 9,
            i % 2 == 0,
            i % 60,
            if i % 4 == 0 { "null".to_owned() } else { format!("\"note {i}\"") }
        ));
        input.push('\n');
    }
    let mut group = c.benchmark_group("json_to_arrow");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.bench_function("100k rows, 8 columns", |b| {
        b.iter(|| {
            let mut batcher = JsonBatcher::new(schema.clone(), FlushPolicy::rows(65_536)).unwrap();
            let mut rows = 0;
            for batch in batcher.push_bytes(input.as_bytes()).unwrap() {
                rows += batch.num_rows();
            }
            rows += batcher.flush().unwrap().map_or(0, |b| b.num_rows());
            assert_eq!(rows, ROWS);
        })
    });
    group.finish();
}

criterion_group!(benches, json_to_arrow);
criterion_main!(benches);
