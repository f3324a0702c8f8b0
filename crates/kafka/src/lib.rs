//! elt-kafka: what the Kafka source (`elt-connectors`) and the Kafka destination
//! (`elt-destinations`) share: the connection options ([`Brokers`]: bootstrap servers,
//! SASL, TLS, timeout), connecting with `rskafka` ([`Brokers::connect`]), classifying its
//! errors with secrets scrubbed ([`classify`]), finding or creating topics
//! ([`ensure_topic`]), where a partition starts and ends ([`bounds`]), and the Java client's default partitioner
//! ([`partition_for`]), so keyed records land where other producers put the same key. No
//! source or destination logic lives here.

mod connect;
mod offsets;
mod partitioner;
mod topics;

pub use connect::{Brokers, Sasl, SaslMechanism, Tls, classify};
pub use offsets::bounds;
pub use partitioner::partition_for;
pub use rskafka;
pub use topics::ensure_topic;
