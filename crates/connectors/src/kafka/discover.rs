//! Which topics are streams (`topics` and `topic_pattern`, checked against the cluster) and
//! each one's schema: the declared JSON Schema's properties, or the fields of a sample of
//! its earliest messages, then the metadata columns.

use std::collections::BTreeSet;

use elt_core::arrow::datatypes::{Field, Schema};
use elt_core::{Catalog, Error, Result, StreamDescriptor};
use elt_kafka::classify;
use elt_kafka::rskafka::client::Client;
use elt_kafka::rskafka::client::partition::UnknownTopicHandling;
use serde_json::Value;

use super::config::{KafkaConfig, ValueFormat};
use super::rows::{KEY, OFFSET, metadata_fields, raw_value_fields};
use crate::json_rows;

/// The topics the config names, with their partitions; a named topic the cluster lacks is
/// a config error.
pub async fn topics(config: &KafkaConfig, client: &Client) -> Result<Vec<(String, BTreeSet<i32>)>> {
    let listed = client
        .list_topics()
        .await
        .map_err(|e| classify("listing the topics", e))?;
    let pattern = config.pattern()?;
    if let Some(missing) = config
        .topics
        .iter()
        .find(|t| !listed.iter().any(|l| &l.name == *t))
    {
        let mut names: Vec<&str> = listed.iter().map(|t| t.name.as_str()).collect();
        names.sort_unstable();
        return Err(Error::config(format!(
            "`topics`: the cluster has no topic {missing:?}; it has: {}",
            names.join(", ")
        )));
    }
    let mut chosen: Vec<(String, BTreeSet<i32>)> = listed
        .into_iter()
        .filter(|t| {
            config.topics.contains(&t.name) || pattern.as_ref().is_some_and(|p| p.is_match(&t.name))
        })
        .map(|t| (t.name, t.partitions))
        .collect();
    chosen.sort();
    Ok(chosen)
}

/// A stream per topic.
pub async fn catalog(config: &KafkaConfig, client: &Client) -> Result<Catalog> {
    let mut streams = Vec::new();
    for (topic, partitions) in topics(config, client).await? {
        let mut fields: Vec<Field> = match config.format {
            ValueFormat::Json => {
                let json = match config.schemas.get(&topic) {
                    Some(declared) => json_rows::declared(declared),
                    None => {
                        json_rows::inferred(&sample(config, client, &topic, &partitions).await?)
                    }
                };
                let schema = json_rows::schema(json, None);
                schema.fields().iter().map(|f| f.as_ref().clone()).collect()
            }
            format => raw_value_fields(format),
        };
        if let Some(clash) = fields.iter().find(|f| f.name().starts_with("_elt_")) {
            return Err(Error::config(format!(
                "topic {topic}: the value's field {:?} would clash with elt's metadata columns; \
                 declare a schema without it in `schemas`",
                clash.name()
            )));
        }
        fields.extend(metadata_fields());
        streams.push(StreamDescriptor {
            name: topic,
            schema: std::sync::Arc::new(Schema::new(fields)),
            primary_key: vec![KEY.to_owned()],
            cursor_candidates: vec![OFFSET.to_owned()],
            append_only: true,
            delete_marker: Some(super::rows::TOMBSTONE.to_owned()),
        });
    }
    Ok(Catalog { streams })
}

/// Up to `sample_messages` JSON objects from the start of the topic's partitions (values
/// that are not JSON objects are left out of the sample; the read dead-letters them).
async fn sample(
    config: &KafkaConfig,
    client: &Client,
    topic: &str,
    partitions: &BTreeSet<i32>,
) -> Result<Vec<Value>> {
    let per_partition = config.sample_messages.div_ceil(partitions.len().max(1));
    let mut sample = Vec::new();
    for &partition in partitions {
        let doing = |what: &str| format!("{what} of topic {topic} partition {partition}");
        let client = client
            .partition_client(topic, partition, UnknownTopicHandling::Error)
            .await
            .map_err(|e| classify(&doing("opening"), e))?;
        let (mut offset, end) = elt_kafka::bounds(&client).await?;
        let mut taken = 0;
        while offset < end && taken < per_partition {
            let (records, _) = client
                .fetch_records(offset, 1..config.fetch_max_bytes, 0)
                .await
                .map_err(|e| classify(&doing("sampling messages"), e))?;
            let Some(last) = records.last() else { break };
            offset = last.offset + 1;
            for record in records.into_iter().take(per_partition - taken) {
                taken += 1;
                let value = record
                    .record
                    .value
                    .as_deref()
                    .map(serde_json::from_slice::<Value>);
                if let Some(Ok(value @ Value::Object(_))) = value {
                    sample.push(value);
                }
            }
        }
    }
    Ok(sample)
}
