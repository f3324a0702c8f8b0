//! Reading one topic: every partition from its saved next offset (or `start`) up to the end
//! it had when the read began, on one fetch task per partition; rows in batches of
//! `batch_rows`, each followed by a checkpoint holding the next offset of every partition
//! (a batch ends only between two fetched chunks, so the checkpoint covers exactly the
//! rows sent before it).

use std::collections::BTreeMap;

use elt_core::{ConfiguredStream, Emitter, Error, Result, StreamState, SyncMode};
use elt_kafka::classify;
use elt_kafka::rskafka::client::partition::{PartitionClient, UnknownTopicHandling};
use elt_kafka::rskafka::record::RecordAndOffset;
use serde_json::Value;
use tokio::sync::mpsc;

use super::config::{KafkaConfig, StartAt};
use super::rows::Rows;

/// The next offset to read of each partition.
type Offsets = BTreeMap<i32, i64>;

/// Fetched chunks waiting for the batch builder, per partition fetcher.
const CHUNKS_PER_FETCHER: usize = 2;

/// Reads `stream` (a topic) after `state`.
pub async fn read(
    config: &KafkaConfig,
    stream: &ConfiguredStream,
    state: Option<StreamState>,
    out: &mut Emitter,
) -> Result<()> {
    if stream.backfill.is_some() {
        return Err(Error::config(format!(
            "stream {}: a Kafka topic has no cursor window to backfill; to read it again, \
             run `elt state reset` for it (or sync with --full-refresh)",
            stream.name()
        )));
    }
    let topic = stream.name();
    let saved = match (stream.sync_mode, &state) {
        (SyncMode::FullRefresh, _) | (_, None) => Offsets::new(),
        (_, Some(state)) => saved_offsets(topic, state)?,
    };
    let client = config.brokers().connect().await?;
    let partitions = super::discover::topics(config, &client)
        .await?
        .into_iter()
        .find(|(name, _)| name == topic)
        .map(|(_, p)| p)
        .ok_or_else(|| Error::config(format!("topic {topic} is gone from the cluster")))?;
    if let Some(lost) = saved.keys().find(|p| !partitions.contains(p)) {
        return Err(Error::config(format!(
            "topic {topic}: the state has partition {lost}, which the topic no longer has \
             (was it deleted and created again?); run `elt state reset` for the stream"
        )));
    }
    let mut positions = Offsets::new();
    let (tx, mut rx) = mpsc::channel(CHUNKS_PER_FETCHER * partitions.len().max(1));
    let mut fetchers = tokio::task::JoinSet::new();
    for &partition in &partitions {
        let doing = |what: &str| format!("{what} of topic {topic} partition {partition}");
        let client = client
            .partition_client(topic, partition, UnknownTopicHandling::Error)
            .await
            .map_err(|e| classify(&doing("opening"), e))?;
        let (earliest, end) = elt_kafka::bounds(&client).await?;
        let start = match saved.get(&partition) {
            Some(&next) if next > end => {
                return Err(Error::config(format!(
                    "topic {topic} partition {partition}: the state's next offset {next} is past \
                     the partition's end {end} (was the topic deleted and created again?); run \
                     `elt state reset` for the stream"
                )));
            }
            Some(&next) if next < earliest => {
                out.note(format!(
                    "partition {partition}: offsets {next} to {} were deleted by the topic's \
                     retention before they were read",
                    earliest - 1
                ));
                earliest
            }
            Some(&next) => next,
            None if config.start == StartAt::Latest => end,
            None => earliest,
        };
        positions.insert(partition, start);
        if start < end {
            let tx = tx.clone();
            let max_bytes = config.fetch_max_bytes;
            let what = doing("fetching messages");
            fetchers.spawn(fetch(client, start, end, max_bytes, what, tx));
        }
    }
    drop(tx);
    drop(client);
    let keyed = stream.write_mode.is_keyed();
    let mut rows = Rows::new(
        out.schema().clone(),
        config.format,
        config.key_format,
        keyed,
    );
    let mut dead = Vec::new();
    let mut checkpointed =
        (state.is_some() && stream.sync_mode != SyncMode::FullRefresh).then(|| saved.clone());
    while let Some(chunk) = rx.recv().await {
        let (partition, messages) = match chunk? {
            Fetched::Messages(partition, messages) => (partition, messages),
            Fetched::Stalled(note) => {
                out.note(note);
                continue;
            }
        };
        if let Some(last) = messages.last() {
            positions.insert(partition, last.offset + 1);
        }
        for message in messages {
            dead.extend(rows.push(partition, message));
        }
        if rows.len() + dead.len() >= config.batch_rows {
            send(out, &mut rows, &mut dead).await?;
            out.checkpoint(checkpoint(&positions)).await?;
            checkpointed = Some(positions.clone());
        }
    }
    while let Some(joined) = fetchers.join_next().await {
        joined.map_err(|e| Error::bug(format!("a fetch task of topic {topic} failed: {e}")))?;
    }
    send(out, &mut rows, &mut dead).await?;
    // Also without new rows when the positions moved (a first read of an empty topic,
    // `start = "latest"`, retention): the next run starts where the partitions stand.
    if checkpointed.as_ref() != Some(&positions) {
        out.checkpoint(checkpoint(&positions)).await?;
    }
    Ok(())
}

/// Sends the waiting dead letters and rows.
async fn send(
    out: &mut Emitter,
    rows: &mut Rows,
    dead: &mut Vec<elt_core::DeadLetter>,
) -> Result<()> {
    out.dead_letters(std::mem::take(dead)).await?;
    if let Some(batch) = rows.take_batch()? {
        out.batch(batch).await?;
    }
    Ok(())
}

/// The state at `positions`: the cursor maps each partition to its next offset.
fn checkpoint(positions: &Offsets) -> StreamState {
    let cursor: serde_json::Map<String, Value> = positions
        .iter()
        .map(|(p, next)| (p.to_string(), Value::from(*next)))
        .collect();
    StreamState {
        cursor: Some(Value::Object(cursor)),
        ..StreamState::empty()
    }
}

/// The next offsets of a saved state.
fn saved_offsets(topic: &str, state: &StreamState) -> Result<Offsets> {
    let bad = || {
        Error::config(format!(
            "topic {topic}: the saved state {} is not a map of partitions to offsets; run \
             `elt state reset` for the stream",
            state.to_json()
        ))
    };
    let Some(cursor) = &state.cursor else {
        return Ok(Offsets::new());
    };
    let object = cursor.as_object().ok_or_else(bad)?;
    object
        .iter()
        .map(|(p, next)| {
            Ok((
                p.parse().map_err(|_| bad())?,
                next.as_i64().ok_or_else(bad)?,
            ))
        })
        .collect()
}

/// What a fetch task hands the batch builder.
enum Fetched {
    /// The next messages of a partition, in offset order.
    Messages(i32, Vec<RecordAndOffset>),
    /// The partition gave nothing before its end; a note for the summary.
    Stalled(String),
}

/// Empty fetches in a row after which a partition's read ends before its end.
const EMPTY_FETCHES: u32 = 5;

/// Fetches `start..end` of one partition in chunks onto `tx`; stops early when the reader
/// has gone. A partition whose broker keeps answering with no messages before the end
/// (only transaction markers are left) ends where it is, with a note: the next run tries
/// again from there, so nothing is skipped.
async fn fetch(
    client: PartitionClient,
    start: i64,
    end: i64,
    max_bytes: i32,
    doing: String,
    tx: mpsc::Sender<Result<Fetched>>,
) {
    let partition = client.partition();
    let (mut offset, mut empty) = (start, 0);
    while offset < end {
        // No wait: every offset up to the end is there already (and some brokers, tansu
        // 0.6 among them, wait out the whole time even when messages are ready).
        let chunk = match client.fetch_records(offset, 1..max_bytes, 0).await {
            Ok((mut records, _)) => {
                records.retain(|r| r.offset >= offset && r.offset < end);
                match records.last() {
                    Some(last) => {
                        (offset, empty) = (last.offset + 1, 0);
                        Ok(Fetched::Messages(partition, records))
                    }
                    None if empty + 1 < EMPTY_FETCHES => {
                        empty += 1;
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                    None => {
                        let note = format!(
                            "partition {partition}: the broker returned no messages from offset \
                             {offset} to the partition's end {end}; the next run reads on from there"
                        );
                        offset = end;
                        Ok(Fetched::Stalled(note))
                    }
                }
            }
            Err(e) => Err(classify(&doing, e)),
        };
        let failed = chunk.is_err();
        if tx.send(chunk).await.is_err() || failed {
            return;
        }
    }
}
