//! What the kafka tests share: the broker (`ELT_TEST_KAFKA`, default 127.0.0.1:9092, which
//! `scripts/kafka.sh start` serves), a topic of their own, a producer, and a project that
//! reads a topic into DuckDB.

use std::collections::BTreeMap;

use elt_kafka::rskafka::chrono::{TimeZone, Utc};
use elt_kafka::rskafka::client::partition::{Compression, UnknownTopicHandling};
use elt_kafka::rskafka::client::{Client, ClientBuilder};
use elt_kafka::rskafka::record::Record;

use crate::common::Project;
use crate::pg::block_on;

/// The broker the tests use.
pub fn broker() -> String {
    std::env::var("ELT_TEST_KAFKA").unwrap_or_else(|_| "127.0.0.1:9092".to_owned())
}

/// A client of the test broker; a missing broker fails the test with the fix.
pub async fn client() -> Client {
    let connecting = ClientBuilder::new(vec![broker()]).build();
    match tokio::time::timeout(std::time::Duration::from_secs(10), connecting).await {
        Ok(Ok(client)) => client,
        other => panic!(
            "no Kafka broker at {} ({:?}); start one with `scripts/kafka.sh start` (make test and .ci/run do)",
            broker(),
            other.map(|r| r.err())
        ),
    }
}

/// A new topic with `partitions`, named after the test and unique to this run (the
/// broker outlives test runs).
pub fn fresh_topic(name: &str, partitions: i32) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    let topic = format!("elt_{name}_{nanos}");
    block_on(async {
        let client = client().await;
        elt_kafka::ensure_topic(&client, &topic, partitions, 1)
            .await
            .unwrap_or_else(|e| panic!("create topic {topic}: {e}"));
    });
    topic
}

/// One message to produce: partition, key, value (None: a tombstone).
pub type Message = (i32, Option<String>, Option<String>);

/// A record of `key` and `value` with a fixed timestamp (ms).
pub fn record(key: Option<&str>, value: Option<&str>, millis: i64) -> Record {
    Record {
        key: key.map(|k| k.as_bytes().to_vec()),
        value: value.map(|v| v.as_bytes().to_vec()),
        headers: BTreeMap::new(),
        timestamp: Utc
            .timestamp_millis_opt(millis)
            .single()
            .expect("timestamp"),
    }
}

/// Produces `records` to `partition` of `topic`, in requests of 2,000.
pub async fn produce_to(client: &Client, topic: &str, partition: i32, records: Vec<Record>) {
    let partition_client = client
        .partition_client(topic, partition, UnknownTopicHandling::Retry)
        .await
        .expect("partition client");
    for chunk in records.chunks(2000) {
        partition_client
            .produce(chunk.to_vec(), Compression::NoCompression)
            .await
            .unwrap_or_else(|e| panic!("produce to {topic}/{partition}: {e}"));
    }
}

/// Produces `messages` (timestamps 1 ms apart from 2024-01-01).
pub fn produce(topic: &str, messages: &[Message]) {
    block_on(async {
        let client = client().await;
        let mut by_partition: BTreeMap<i32, Vec<Record>> = BTreeMap::new();
        for (i, (partition, key, value)) in messages.iter().enumerate() {
            let millis = 1_704_067_200_000 + i as i64;
            by_partition.entry(*partition).or_default().push(record(
                key.as_deref(),
                value.as_deref(),
                millis,
            ));
        }
        for (partition, records) in by_partition {
            produce_to(&client, topic, partition, records).await;
        }
    });
}

/// A project reading `topic` (source options `source`, appended to the `[sources.bus]`
/// table) into `data/demo.duckdb` as connection `k`, with `streams` (TOML, may be empty).
pub fn kafka_project(topic: &str, source: &str, streams: &str) -> Project {
    Project::new(&format!(
        "[sources.bus]\ntype = \"kafka\"\nbootstrap_servers = [\"{}\"]\ntopics = [\"{topic}\"]\n{source}\n\n\
         [destinations.local]\ntype = \"duckdb\"\npath = \"data/demo.duckdb\"\n\n\
         [connections.k]\nsource = \"bus\"\ndestination = \"local\"\n{streams}\n",
        broker()
    ))
}

/// The raw table a topic loads into (its name normalized as elt does).
pub fn table(topic: &str) -> String {
    elt_core::normalize_name(topic)
}
