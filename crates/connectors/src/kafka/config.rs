//! The options of the `kafka` source, parsed strictly and checked without I/O.

use std::collections::BTreeMap;

use elt_core::{ConnectorConfig, Error, Result};
use elt_kafka::Brokers;
use schemars::JsonSchema;
use serde::Deserialize;

/// The `kafka` source's options.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Brokers to bootstrap from, `host:port` each.
    pub bootstrap_servers: Vec<String>,
    /// SASL authentication (`{ mechanism = "scram-sha-256", username = "elt", password =
    /// "${KAFKA_PASSWORD}" }`); none when absent.
    #[serde(default)]
    pub sasl: Option<elt_kafka::Sasl>,
    /// TLS to the brokers (`{}` for the public CA roots, `{ ca_file = "ca.pem" }` for a
    /// private CA); plaintext when absent.
    #[serde(default)]
    pub tls: Option<elt_kafka::Tls>,
    /// Seconds a connection or a retried request may take before it fails as a transient
    /// error.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Topics to read, each one stream.
    #[serde(default)]
    pub topics: Vec<String>,
    /// A regular expression: every topic whose whole name matches is a stream too (topics
    /// whose names start with `_` only when the pattern says so).
    #[serde(default)]
    pub topic_pattern: Option<String>,
    /// How message values are read: `json` (an object per message; its fields become
    /// columns), `text` (UTF-8, one `value` column) or `bytes` (one binary `value` column).
    #[serde(default)]
    pub format: ValueFormat,
    /// How message keys land in `_elt_key`: `text` (UTF-8; a key that is not is a dead
    /// letter) or `base64`.
    #[serde(default)]
    pub key_format: KeyFormat,
    /// Declared JSON Schemas by topic, for `format = "json"`: the `properties` become the
    /// columns (integer, number, boolean, string with format date-time or date, anything
    /// else JSON) instead of what a sample of messages suggests.
    #[serde(default)]
    pub schemas: BTreeMap<String, serde_json::Value>,
    /// Messages per topic read at discovery to infer the columns of a topic without a
    /// declared schema.
    #[serde(default = "default_sample_messages")]
    pub sample_messages: usize,
    /// Where a partition without a saved offset starts: `earliest` (every retained
    /// message) or `latest` (only messages produced after the first sync).
    #[serde(default)]
    pub start: StartAt,
    /// Rows per batch (and per checkpoint, at most).
    #[serde(default = "default_batch_rows")]
    pub batch_rows: usize,
    /// Bytes asked of a broker per fetch of one partition.
    #[serde(default = "default_fetch_max_bytes")]
    pub fetch_max_bytes: i32,
}

/// How message values are read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ValueFormat {
    /// A JSON object per message.
    #[default]
    Json,
    /// UTF-8 text.
    Text,
    /// Bytes as they are.
    Bytes,
}

/// How message keys are kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyFormat {
    /// UTF-8 text.
    #[default]
    Text,
    /// Base64 of the key's bytes.
    Base64,
}

/// Where a partition without a saved offset starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StartAt {
    /// The oldest retained message.
    #[default]
    Earliest,
    /// The end of the partition when the stream is first read.
    Latest,
}

fn default_timeout_secs() -> u64 {
    30
}

fn default_sample_messages() -> usize {
    1000
}

fn default_batch_rows() -> usize {
    10_000
}

fn default_fetch_max_bytes() -> i32 {
    4 << 20
}

impl KafkaConfig {
    /// The connection options.
    pub fn brokers(&self) -> Brokers {
        Brokers {
            bootstrap_servers: self.bootstrap_servers.clone(),
            sasl: self.sasl.clone(),
            tls: self.tls.clone(),
            timeout_secs: self.timeout_secs,
        }
    }

    /// The compiled `topic_pattern`, anchored to the whole name.
    pub fn pattern(&self) -> Result<Option<regex::Regex>> {
        let Some(pattern) = &self.topic_pattern else {
            return Ok(None);
        };
        regex::Regex::new(&format!("^(?:{pattern})$"))
            .map(Some)
            .map_err(|e| Error::config(format!("`topic_pattern` is not a regular expression: {e}")))
    }
}

impl ConnectorConfig for KafkaConfig {
    fn validate(&self) -> Result<()> {
        self.brokers().validate()?;
        if self.topics.is_empty() && self.topic_pattern.is_none() {
            return Err(Error::config(
                "name the topics to read: `topics = [\"orders\"]` or `topic_pattern = \"events\\\\..*\"`",
            ));
        }
        if let Some(topic) = self.topics.iter().find(|t| t.is_empty() || t.len() > 249) {
            return Err(Error::config(format!(
                "`topics`: {topic:?} is not a topic name"
            )));
        }
        self.pattern()?;
        if self.format != ValueFormat::Json && !self.schemas.is_empty() {
            return Err(Error::config(
                "`schemas` declares JSON fields, but `format` is not \"json\"; remove one",
            ));
        }
        if let Some((topic, _)) = self
            .schemas
            .iter()
            .find(|(_, s)| !s["properties"].is_object())
        {
            return Err(Error::config(format!(
                "`schemas.{topic}` has no `properties` object; declare the fields as a JSON Schema object"
            )));
        }
        if !(1..=1_000_000).contains(&self.batch_rows) {
            return Err(Error::config("`batch_rows` must be 1 to 1,000,000"));
        }
        if !(1..=100_000).contains(&self.sample_messages) {
            return Err(Error::config("`sample_messages` must be 1 to 100,000"));
        }
        if !(1024..=(256 << 20)).contains(&self.fetch_max_bytes) {
            return Err(Error::config("`fetch_max_bytes` must be 1024 to 268435456"));
        }
        Ok(())
    }
}
