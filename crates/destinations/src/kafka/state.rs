//! The state topic: one partition of records keyed `<connection>/<stream>`, each value the
//! stream's state as JSON; the last record of a key is the committed state, a tombstone a
//! reset. Read whole at the start of a run (it holds one record per commit until the
//! broker compacts it).

use std::collections::BTreeMap;

use elt_core::{Error, Result, StateMap, StreamState};
use elt_kafka::rskafka::client::Client;
use elt_kafka::rskafka::client::partition::{Compression, PartitionClient, UnknownTopicHandling};
use elt_kafka::rskafka::record::Record;
use elt_kafka::{classify, ensure_topic};

use super::KafkaDestinationConfig;

/// The state topic of a cluster.
pub struct StateTopic {
    topic: String,
    partition: PartitionClient,
}

impl StateTopic {
    /// Finds (or creates, with one partition) the state topic.
    pub async fn open(client: &Client, config: &KafkaDestinationConfig) -> Result<Self> {
        let topic = config.state_topic.clone();
        ensure_topic(client, &topic, 1, config.replication_factor).await?;
        let partition = client
            .partition_client(topic.as_str(), 0, UnknownTopicHandling::Retry)
            .await
            .map_err(|e| classify(&format!("opening state topic {topic}"), e))?;
        Ok(Self { topic, partition })
    }

    /// The committed state of every stream of `connection`.
    pub async fn load(&self, connection: &str) -> Result<StateMap> {
        let prefix = format!("{connection}/");
        let mut states = StateMap::new();
        for (key, value) in self.latest().await? {
            let Some(stream) = key.strip_prefix(&prefix) else {
                continue;
            };
            if let Some(value) = value {
                states.insert(stream.to_owned(), StreamState::from_json(&value)?);
            }
        }
        Ok(states)
    }

    /// Commits `state` as the state of `connection`'s `stream`.
    pub async fn save(&self, connection: &str, stream: &str, state: &StreamState) -> Result<()> {
        self.produce(format!("{connection}/{stream}"), Some(state.to_json()))
            .await
    }

    /// Forgets the state of one stream of `connection`, or of all; returns how many.
    pub async fn reset(&self, connection: &str, stream: Option<&str>) -> Result<usize> {
        let states = self.load(connection).await?;
        let mut removed = 0;
        for name in states
            .keys()
            .filter(|n| stream.is_none_or(|s| s == n.as_str()))
        {
            self.produce(format!("{connection}/{name}"), None).await?;
            removed += 1;
        }
        Ok(removed)
    }

    async fn produce(&self, key: String, value: Option<String>) -> Result<()> {
        let record = Record {
            key: Some(key.into_bytes()),
            value: value.map(String::into_bytes),
            headers: BTreeMap::new(),
            timestamp: elt_kafka::rskafka::chrono::Utc::now(),
        };
        self.partition
            .produce(vec![record], Compression::NoCompression)
            .await
            .map(|_| ())
            .map_err(|e| classify(&format!("writing state topic {}", self.topic), e))
    }

    /// The last value (None: a tombstone) of every key.
    async fn latest(&self) -> Result<BTreeMap<String, Option<String>>> {
        let doing = |what: &str| format!("{what} state topic {}", self.topic);
        let read = |e| classify(&doing("reading"), e);
        let (mut offset, end) = elt_kafka::bounds(&self.partition).await?;
        let mut latest = BTreeMap::new();
        while offset < end {
            let (records, _) = self
                .partition
                .fetch_records(offset, 1..(8 << 20), 0)
                .await
                .map_err(read)?;
            let Some(last) = records.last() else {
                return Err(Error::transient(doing(&format!(
                    "no records from offset {offset} to the end {end} of the"
                ))));
            };
            offset = last.offset + 1;
            for record in records {
                let text = |bytes: Vec<u8>| {
                    String::from_utf8(bytes).map_err(|_| {
                        Error::permanent(doing("a record that is not UTF-8 text in the"))
                    })
                };
                let Some(key) = record.record.key else {
                    continue;
                };
                let value = record.record.value.map(text).transpose()?;
                latest.insert(text(key)?, value);
            }
        }
        Ok(latest)
    }
}
