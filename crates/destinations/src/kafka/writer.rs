//! One stream's load onto its topic: each batch's rows as keyed JSON messages, produced to
//! their partitions at once and acknowledged before `stage` returns; a commit writes the
//! state to the state topic after them. Nothing can be rolled back: a failed load leaves
//! its acknowledged messages on the topic, and the rerun sends them again (the at least
//! once window of the module doc).

use std::collections::BTreeMap;

use async_trait::async_trait;
use elt_core::arrow::record_batch::RecordBatch;
use elt_core::{ConfiguredStream, DeadLetter, Error, Result, RunInfo, StreamState};
use elt_kafka::rskafka::client::partition::{Compression, PartitionClient, UnknownTopicHandling};
use elt_kafka::rskafka::record::Record;
use elt_kafka::{classify, ensure_topic, partition_for};
use serde_json::{Value, json};

use super::KafkaSession;
use crate::driver::StreamWriter;

/// Messages per produce request at most.
const MESSAGES_PER_REQUEST: usize = 5_000;

/// The load of one stream onto `topic`.
pub struct KafkaWriter<'a> {
    session: &'a KafkaSession,
    run: &'a RunInfo,
    stream: &'a ConfiguredStream,
    topic: String,
    partitions: Vec<PartitionClient>,
    /// The dead-letter topic's partition 0, opened on first use.
    dead_letters: Option<PartitionClient>,
    /// Where the next message without a key goes.
    next_unkeyed: usize,
    state: Option<StreamState>,
}

impl<'a> KafkaWriter<'a> {
    /// Opens (creating when missing) the stream's topic.
    pub async fn open(
        session: &'a KafkaSession,
        run: &'a RunInfo,
        stream: &'a ConfiguredStream,
        topic: String,
    ) -> Result<Self> {
        let config = &session.config;
        let ids = ensure_topic(
            &session.client,
            &topic,
            config.partitions,
            config.replication_factor,
        )
        .await?;
        let mut partitions = Vec::with_capacity(ids.len());
        for id in ids {
            partitions.push(open_partition(session, &topic, id).await?);
        }
        Ok(Self {
            session,
            run,
            stream,
            topic,
            partitions,
            dead_letters: None,
            next_unkeyed: 0,
            state: None,
        })
    }

    /// The message key of `record`: the primary key's value as text (a JSON array of them
    /// for a key of several columns); None without a key.
    fn key(&self, record: &Value) -> Option<Vec<u8>> {
        let text = match self.stream.primary_key.as_slice() {
            [] => return None,
            [one] => match &record[one] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            },
            many => Value::Array(many.iter().map(|k| record[k].clone()).collect()).to_string(),
        };
        Some(text.into_bytes())
    }

    fn record(&self, key: Option<Vec<u8>>, value: String) -> Record {
        Record {
            key,
            value: Some(value.into_bytes()),
            headers: BTreeMap::from([(
                "elt_run_id".to_owned(),
                self.run.run_id.clone().into_bytes(),
            )]),
            timestamp: elt_kafka::rskafka::chrono::Utc::now(),
        }
    }
}

async fn open_partition(session: &KafkaSession, topic: &str, id: i32) -> Result<PartitionClient> {
    session
        .client
        .partition_client(topic, id, UnknownTopicHandling::Retry)
        .await
        .map_err(|e| classify(&format!("opening topic {topic} partition {id}"), e))
}

/// Produces `records` to `partition` in requests of [`MESSAGES_PER_REQUEST`]; returns when
/// the brokers acknowledged them all.
async fn produce(partition: &PartitionClient, mut records: Vec<Record>) -> Result<()> {
    while !records.is_empty() {
        let rest = records.split_off(records.len().min(MESSAGES_PER_REQUEST));
        partition
            .produce(records, Compression::NoCompression)
            .await
            .map_err(|e| {
                classify(
                    &format!(
                        "producing to topic {} partition {}",
                        partition.topic(),
                        partition.partition()
                    ),
                    e,
                )
            })?;
        records = rest;
    }
    Ok(())
}

#[async_trait]
impl StreamWriter for KafkaWriter<'_> {
    async fn stage(&mut self, batch: RecordBatch) -> Result<u64> {
        let rows = elt_core::record::encode(&batch)?;
        let count = rows.len() as u64;
        let n = self.partitions.len();
        let mut by_partition: Vec<Vec<Record>> = vec![Vec::new(); n];
        for row in rows {
            let key = self.key(&row);
            let index = match &key {
                Some(bytes) => partition_for(bytes, n as i32) as usize,
                None => {
                    self.next_unkeyed = (self.next_unkeyed + 1) % n;
                    self.next_unkeyed
                }
            };
            let record = self.record(key, row.to_string());
            by_partition[index].push(record);
        }
        let sends = self
            .partitions
            .iter()
            .zip(by_partition)
            .map(|(partition, records)| produce(partition, records));
        for result in futures_util::future::join_all(sends).await {
            result?;
        }
        Ok(count)
    }

    async fn write_dead_letters(&mut self, dead: &[DeadLetter], replayed: &[String]) -> Result<()> {
        if !replayed.is_empty() {
            return Err(Error::config(
                "the kafka destination cannot replay dead letters",
            ));
        }
        if self.dead_letters.is_none() {
            let topic = format!("{}._elt_dead_letter", self.session.dataset);
            let config = &self.session.config;
            ensure_topic(&self.session.client, &topic, 1, config.replication_factor).await?;
            self.dead_letters = Some(open_partition(self.session, &topic, 0).await?);
        }
        let stream = self.stream.name();
        let records = dead
            .iter()
            .map(|d| {
                let record = serde_json::from_str(&d.record).unwrap_or(json!(d.record));
                let value = json!({ "run_id": self.run.run_id, "stream": stream, "reason": d.reason, "record": record });
                self.record(Some(stream.as_bytes().to_vec()), value.to_string())
            })
            .collect();
        produce(self.dead_letters.as_ref().expect("opened above"), records).await
    }

    async fn write_state(&mut self, state: &StreamState) -> Result<()> {
        self.state = Some(state.clone());
        Ok(())
    }

    /// Every message before it is acknowledged already; the state follows them.
    async fn commit(&mut self) -> Result<()> {
        elt_core::failpoint::hit("kafka.before_commit");
        if let Some(state) = self.state.take() {
            let session = self.session;
            session
                .states
                .save(&session.connection, self.stream.name(), &state)
                .await?;
        }
        Ok(())
    }

    /// Acknowledged messages cannot be taken back; the state stays where it was.
    async fn rollback(&mut self) -> Result<()> {
        self.state = None;
        tracing::debug!(topic = %self.topic, "rolled back: messages sent since the last commit stay on the topic");
        Ok(())
    }
}
