//! The `kafka` destination: each stream onto the topic `<dataset>.<table>` (created with
//! `partitions` when missing), one JSON message per row (`elt_core::record`: exact values,
//! decimals as strings, times in ISO 8601 UTC), keyed by the stream's primary key (one
//! column: its value as text; several: a JSON array) and partitioned as the Java client's
//! default partitioner would, so the topic can be compacted; rows without a key go to the
//! partitions in turn. Every message carries the header `elt_run_id`.
//!
//! State: each commit appends the stream's state to the state topic (`state_topic`, one
//! partition, key `<connection>/<stream>`; make it compacted) after every message before it
//! was acknowledged by the brokers (acks from all in-sync replicas). `rskafka` speaks
//! neither the idempotent producer nor transactions, so this is at least once: a crash or
//! kill after some messages of a commit were acknowledged and before its state was written
//! repeats exactly those messages (at most `commit_rows` rows, or `commit_interval_secs` of
//! them) on the rerun, with the same keys and values and the failed run's `elt_run_id`.
//! Consumers that merge by key (compaction, the kafka source's `write = "merge"`) see each
//! row once. Dead letters go to the topic `<dataset>._elt_dead_letter`.
//!
//! Limits: write modes append and merge (a topic cannot be replaced, so no overwrite); no
//! lock between two runs of one connection (schedule one at a time); no run log, SQL or
//! schema comparison, so `elt runs`, data tests and contracts other than `evolve` say so.

mod state;
mod writer;

use std::time::Duration;

use async_trait::async_trait;
use elt_core::{
    ConfiguredStream, ConnectorConfig, Destination, DestinationFactory, DestinationSession, Error,
    Message, Result, RunInfo, StateMap, WriteMode, WriteSummary,
};
use elt_kafka::Brokers;
use elt_kafka::rskafka::client::Client;
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::driver::{CommitPolicy, drive};

/// The `kafka` destination's options.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KafkaDestinationConfig {
    /// Brokers to bootstrap from, `host:port` each.
    pub bootstrap_servers: Vec<String>,
    /// SASL authentication; none when absent.
    #[serde(default)]
    pub sasl: Option<elt_kafka::Sasl>,
    /// TLS to the brokers (`{}`, or `{ ca_file = "ca.pem" }`); plaintext when absent.
    #[serde(default)]
    pub tls: Option<elt_kafka::Tls>,
    /// Seconds a connection or a retried request may take before it fails as a transient
    /// error.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Partitions of the topics elt creates.
    #[serde(default = "default_partitions")]
    pub partitions: i32,
    /// Replication factor of the topics elt creates.
    #[serde(default = "default_replication_factor")]
    pub replication_factor: i16,
    /// The topic that keeps each stream's state (one partition; make it compacted).
    #[serde(default = "default_state_topic")]
    pub state_topic: String,
    /// Commit (write the state) at a checkpoint once this many rows are unacknowledged
    /// by a state: also the most a crash can repeat.
    #[serde(default = "default_commit_rows")]
    pub commit_rows: u64,
    /// Commit at a checkpoint once the last commit is this many seconds old.
    #[serde(default = "default_commit_interval_secs")]
    pub commit_interval_secs: u64,
}

fn default_timeout_secs() -> u64 {
    30
}
fn default_partitions() -> i32 {
    3
}
fn default_replication_factor() -> i16 {
    1
}
fn default_state_topic() -> String {
    "_elt_state".to_owned()
}
fn default_commit_rows() -> u64 {
    100_000
}
fn default_commit_interval_secs() -> u64 {
    10
}

impl KafkaDestinationConfig {
    fn brokers(&self) -> Brokers {
        Brokers {
            bootstrap_servers: self.bootstrap_servers.clone(),
            sasl: self.sasl.clone(),
            tls: self.tls.clone(),
            timeout_secs: self.timeout_secs,
        }
    }
}

impl ConnectorConfig for KafkaDestinationConfig {
    fn validate(&self) -> Result<()> {
        self.brokers().validate()?;
        if !(1..=10_000).contains(&self.partitions) {
            return Err(Error::config("`partitions` must be 1 to 10000"));
        }
        if self.replication_factor < 1 {
            return Err(Error::config("`replication_factor` must be at least 1"));
        }
        if self.state_topic.is_empty() {
            return Err(Error::config("`state_topic` must name a topic"));
        }
        if self.commit_rows == 0 || self.commit_interval_secs == 0 {
            return Err(Error::config(
                "`commit_rows` and `commit_interval_secs` must be at least 1",
            ));
        }
        Ok(())
    }
}

/// Registers the `kafka` destination type.
pub fn factory() -> DestinationFactory {
    DestinationFactory::new(
        "kafka",
        "Kafka topics: a JSON message per row, keyed by the primary key; at least once",
        |config: KafkaDestinationConfig| Ok(Box::new(config)),
    )
}

#[async_trait]
impl Destination for KafkaDestinationConfig {
    fn endpoint(&self) -> Result<Option<String>> {
        Ok(Some(self.brokers().endpoint()))
    }

    /// Connects and lists the topics; creates nothing (the state topic comes with the
    /// first sync).
    async fn check(&self) -> Result<()> {
        let client = self.brokers().connect().await?;
        let listed = client.list_topics().await;
        listed
            .map(|_| ())
            .map_err(|e| elt_kafka::classify("listing the topics", e))
    }

    async fn open(&self, connection: &str, dataset: &str) -> Result<Box<dyn DestinationSession>> {
        let client = self.brokers().connect().await?;
        let states = state::StateTopic::open(&client, self).await?;
        Ok(Box::new(KafkaSession {
            config: self.clone(),
            client,
            states,
            connection: connection.to_owned(),
            dataset: dataset.to_owned(),
        }))
    }
}

/// One run's use of the cluster.
struct KafkaSession {
    config: KafkaDestinationConfig,
    client: Client,
    states: state::StateTopic,
    connection: String,
    dataset: String,
}

#[async_trait]
impl DestinationSession for KafkaSession {
    async fn state(&mut self) -> Result<StateMap> {
        self.states.load(&self.connection).await
    }

    async fn write(
        &mut self,
        run: &RunInfo,
        stream: &ConfiguredStream,
        messages: mpsc::Receiver<Message>,
    ) -> (WriteSummary, Result<()>) {
        if !matches!(stream.write_mode, WriteMode::Append | WriteMode::Merge) {
            let refused = Error::config(format!(
                "stream {}: a Kafka topic cannot be written in mode {} (it cannot be replaced \
                 or versioned); set `write = \"append\"` or `\"merge\"` (keyed messages)",
                stream.name(),
                stream.write_mode
            ));
            return (WriteSummary::default(), Err(refused));
        }
        let policy = CommitPolicy {
            commit_rows: self.config.commit_rows,
            commit_interval: Duration::from_secs(self.config.commit_interval_secs),
        };
        let topic = format!("{}.{}", self.dataset, stream.table);
        let opened = writer::KafkaWriter::open(self, run, stream, topic).await;
        match opened {
            Ok(mut writer) => drive(&mut writer, stream, policy, messages).await,
            Err(e) => (WriteSummary::default(), Err(e)),
        }
    }

    async fn reset_state(&mut self, stream: Option<&str>) -> Result<usize> {
        self.states.reset(&self.connection, stream).await
    }
}
