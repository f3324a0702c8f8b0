//! Topics a writer needs: found, or created with a partition count when missing.

use std::collections::BTreeSet;
use std::time::Duration;

use elt_core::{Error, Result};
use rskafka::client::Client;
use rskafka::client::error::{Error as KafkaError, ProtocolError};

use crate::classify;

/// The partitions of `topic`, creating it with `partitions` and `replication` first when
/// the cluster has no such topic.
pub async fn ensure_topic(
    client: &Client,
    topic: &str,
    partitions: i32,
    replication: i16,
) -> Result<BTreeSet<i32>> {
    for _ in 0..50 {
        let listed = client
            .list_topics()
            .await
            .map_err(|e| classify("listing the topics", e))?;
        if let Some(found) = listed.into_iter().find(|t| t.name == topic) {
            if !found.partitions.is_empty() {
                return Ok(found.partitions);
            }
        } else {
            let controller = client
                .controller_client()
                .map_err(|e| classify("reaching the controller", e))?;
            match controller
                .create_topic(topic, partitions, replication, 10_000)
                .await
            {
                Ok(()) => {}
                Err(KafkaError::ServerError {
                    protocol_error: ProtocolError::TopicAlreadyExists,
                    ..
                }) => {}
                Err(e) => return Err(classify(&format!("creating topic {topic}"), e)),
            }
        }
        // The metadata of a new topic reaches every broker a moment later.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(Error::transient(format!(
        "topic {topic} was created but has no partitions in the cluster's metadata after 5 s"
    )))
}
