//! PostgreSQL binary COPY rows to Arrow (the `postgres` source's hot loop), on rows shaped
//! like the benchmark's `orders` table.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use elt_connectors::postgres::copy::CopyDecoder;
use elt_connectors::postgres::types::Kind;
use elt_core::catalog::schema;

const ROWS: usize = 100_000;

fn kinds() -> Vec<Kind> {
    vec![
        Kind::Int64,
        Kind::Int64,
        Kind::Text,
        Kind::Text,
        Kind::Decimal {
            precision: 12,
            scale: 2,
        },
        Kind::Int32,
        Kind::Bool,
        Kind::Text,
        Kind::TimestampTz,
        Kind::TimestampTz,
        Kind::Jsonb,
        Kind::Text,
    ]
}

fn field(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        Some(v) => {
            out.extend_from_slice(&(v.len() as i32).to_be_bytes());
            out.extend_from_slice(v);
        }
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
    }
}

/// A binary COPY stream of ROWS rows.
fn copy_stream() -> Vec<u8> {
    let mut out = b"PGCOPY\n\xff\r\n\0".to_vec();
    out.extend_from_slice(&[0; 8]);
    for i in 0..ROWS as i64 {
        out.extend_from_slice(&12i16.to_be_bytes());
        field(&mut out, Some(&i.to_be_bytes()));
        field(&mut out, Some(&(i % 50_000).to_be_bytes()));
        field(&mut out, Some(b"shipped"));
        field(&mut out, Some(format!("SKU-{:06}", i % 10_000).as_bytes()));
        let mut numeric = Vec::new();
        for word in [2u16, 0, 0, 2, (i % 10_000) as u16, ((i % 100) * 100) as u16] {
            numeric.extend_from_slice(&word.to_be_bytes());
        }
        field(&mut out, Some(&numeric));
        field(&mut out, Some(&((i % 9) as i32).to_be_bytes()));
        field(&mut out, Some(&[(i % 3 == 0) as u8]));
        field(&mut out, Some(b"eu"));
        field(&mut out, Some(&(i * 1_000_000).to_be_bytes()));
        field(&mut out, Some(&(i * 10_000).to_be_bytes()));
        field(
            &mut out,
            Some(format!("\x01{{\"channel\": \"web\", \"campaign\": {}}}", i % 20).as_bytes()),
        );
        let note = format!("note {i}");
        field(&mut out, (i % 4 != 0).then_some(note.as_bytes()));
    }
    out.extend_from_slice(&(-1i16).to_be_bytes());
    out
}

fn pg_binary_decode(c: &mut Criterion) {
    let kinds = kinds();
    let names = [
        "id",
        "customer_id",
        "status",
        "sku",
        "amount",
        "quantity",
        "paid",
        "region",
        "created_at",
        "updated_at",
        "attrs",
        "note",
    ];
    let schema = schema(
        kinds
            .iter()
            .zip(names)
            .map(|(k, n)| k.field(n, true))
            .collect(),
    );
    let stream = copy_stream();
    let mut group = c.benchmark_group("pg_binary_decode");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.bench_function("100k rows, 12 columns, 64 KiB chunks", |b| {
        b.iter(|| {
            let mut decoder = CopyDecoder::new(schema.clone(), &kinds);
            let mut rows = 0;
            for chunk in stream.chunks(64 * 1024) {
                decoder.push(chunk);
                decoder.decode(usize::MAX).unwrap();
            }
            rows += decoder.finish_batch().unwrap().map_or(0, |b| b.num_rows());
            assert!(decoder.is_finished());
            assert_eq!(rows, ROWS);
        })
    });
    group.finish();
}

criterion_group!(benches, pg_binary_decode);
criterion_main!(benches);
