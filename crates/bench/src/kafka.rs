//! The Kafka workload (`--kafka-messages N`): N JSON messages (an order each, ten fields)
//! produced onto a fresh topic of three partitions on the local broker (`--kafka`, default
//! 127.0.0.1:9092, which `scripts/kafka.sh start` serves), then read twice: by the floor, a
//! plain fetch loop of the same client library that discards the messages, and by `elt
//! sync` into DuckDB (messages per second, peak RSS). What it does not do: measure
//! producing, or the broker's own console consumer (docs/benchmarks.md has that, timed by
//! hand).

use std::path::Path;

use anyhow::{Context, Result, bail};
use elt_kafka::rskafka::client::partition::{Compression, UnknownTopicHandling};
use elt_kafka::rskafka::client::{Client, ClientBuilder};
use elt_kafka::rskafka::record::Record;

use super::{Measure, measure};

const PARTITIONS: i32 = 3;

/// Produces `messages` onto a new topic; returns the measured floor and sync.
pub async fn run(broker: &str, dir: &Path, messages: u64) -> Result<(Measure, Measure)> {
    let client = connect(broker).await?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos();
    let topic = format!("elt_bench_{nanos}");
    elt_kafka::ensure_topic(&client, &topic, PARTITIONS, 1).await?;
    eprintln!("producing {messages} messages onto {topic} ...");
    let started = std::time::Instant::now();
    for partition in 0..PARTITIONS {
        let writer = client
            .partition_client(topic.as_str(), partition, UnknownTopicHandling::Retry)
            .await?;
        let mine: Vec<u64> = (0..messages)
            .filter(|i| i % PARTITIONS as u64 == partition as u64)
            .collect();
        for chunk in mine.chunks(5000) {
            let records = chunk.iter().map(|&i| order(i)).collect();
            writer.produce(records, Compression::NoCompression).await?;
        }
    }
    eprintln!("produced in {:.1}s", started.elapsed().as_secs_f64());
    let floor = measure(&["kafka-floor", broker, &topic])?;
    let config = write_config(dir, broker, &topic)?;
    let load = measure(&["sync", &config, "kafka"])?;
    for (name, m) in [("the floor", &floor), ("the sync", &load)] {
        if m.output != messages {
            bail!("{name} read {} messages, expected {messages}", m.output);
        }
    }
    Ok((floor, load))
}

/// A child: fetches every message of `topic` up to its end and discards it; prints the count.
pub async fn floor(broker: &str, topic: &str) -> Result<()> {
    let client = connect(broker).await?;
    let mut count = 0u64;
    for partition in 0..PARTITIONS {
        let reader = client
            .partition_client(topic, partition, UnknownTopicHandling::Error)
            .await?;
        let (mut offset, end) = elt_kafka::bounds(&reader).await?;
        while offset < end {
            let (records, _) = reader.fetch_records(offset, 1..(4 << 20), 0).await?;
            let last = records.last().context("an empty fetch before the end")?;
            offset = last.offset + 1;
            count += records.len() as u64;
        }
    }
    println!("{count}");
    Ok(())
}

async fn connect(broker: &str) -> Result<Client> {
    ClientBuilder::new(vec![broker.to_owned()])
        .build()
        .await
        .with_context(|| {
            format!("no Kafka broker at {broker}; start one with scripts/kafka.sh start")
        })
}

/// Message `i`: an order as JSON, keyed by its id.
fn order(i: u64) -> Record {
    let value = format!(
        "{{\"id\":{i},\"customer_id\":{},\"status\":\"{}\",\"sku\":\"SKU-{:06}\",\"amount\":{}.{:02},\
         \"quantity\":{},\"paid\":{},\"region\":\"{}\",\"created_at\":\"2024-01-01T00:00:00Z\",\
         \"note\":{}}}",
        i % 50_000,
        ["placed", "paid", "shipped", "delivered"][(i % 4) as usize],
        i % 10_000,
        i % 1000,
        i % 100,
        1 + i % 9,
        i.is_multiple_of(3),
        ["eu", "us", "apac"][(i % 3) as usize],
        if i.is_multiple_of(4) {
            "null".to_owned()
        } else {
            format!("\"note {i}\"")
        }
    );
    Record {
        key: Some(i.to_string().into_bytes()),
        value: Some(value.into_bytes()),
        headers: Default::default(),
        timestamp: elt_kafka::rskafka::chrono::Utc::now(),
    }
}

fn write_config(dir: &Path, broker: &str, topic: &str) -> Result<String> {
    super::project::write(
        dir,
        "kafka.toml",
        &format!(
            r#"
[sources.bus]
type = "kafka"
bootstrap_servers = ["{broker}"]
topics = ["{topic}"]

[destinations.duck]
type = "duckdb"
path = "kafka.duckdb"

[connections.kafka]
source = "bus"
destination = "duck"
"#
        ),
    )
}

/// Prints the floor and the sync: messages per second and peak RSS.
pub fn report(floor: &Measure, load: &Measure) {
    for (name, m) in [
        ("kafka floor: fetch and discard", floor),
        ("kafka topic into DuckDB", load),
    ] {
        println!(
            "{name:<34} {:>10} {:>9.2} {:>12.0} {:>9.2} {:>10.1} {:>8.2} {:>8}",
            m.output,
            m.secs,
            m.output as f64 / m.secs.max(f64::EPSILON),
            m.secs / floor.secs.max(f64::EPSILON),
            m.peak_rss_mb,
            m.cpu_secs,
            "-"
        );
    }
}
