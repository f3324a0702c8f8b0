//! Connecting to Kafka brokers with `rskafka`: the options a source and a destination
//! share, checked without I/O ([`Brokers::validate`]), a client with a deadline on every
//! retried request ([`Brokers::connect`]), and errors classified for the runner's retries
//! ([`classify`]). What it does not do: read or write records.

use std::sync::Arc;
use std::time::Duration;

use elt_core::{Error, Result, Secret};
use rskafka::BackoffConfig;
use rskafka::client::error::{Error as KafkaError, ProtocolError};
use rskafka::client::{Client, ClientBuilder, Credentials, SaslConfig};
use schemars::JsonSchema;
use serde::Deserialize;

/// Where the brokers are and how to reach them: the options both Kafka connectors take.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Brokers {
    /// Brokers to bootstrap from, `host:port` each.
    pub bootstrap_servers: Vec<String>,
    /// SASL authentication; none when absent.
    #[serde(default)]
    pub sasl: Option<Sasl>,
    /// TLS to the brokers; plaintext when absent.
    #[serde(default)]
    pub tls: Option<Tls>,
    /// Seconds a connection or a retried request may take before it fails (as a
    /// transient error, retried by the runner).
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

fn default_timeout_secs() -> u64 {
    30
}

/// SASL authentication.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Sasl {
    /// `plain`, `scram-sha-256` or `scram-sha-512`.
    pub mechanism: SaslMechanism,
    /// The user name.
    pub username: String,
    /// The password, such as `${KAFKA_PASSWORD}`; resolved when connecting, never printed.
    pub password: Secret,
}

/// A SASL mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
pub enum SaslMechanism {
    /// The password sent as it is: only over TLS or to this machine.
    #[serde(rename = "plain")]
    Plain,
    /// SCRAM with SHA-256: the password never crosses the network.
    #[serde(rename = "scram-sha-256")]
    ScramSha256,
    /// SCRAM with SHA-512.
    #[serde(rename = "scram-sha-512")]
    ScramSha512,
}

/// TLS to the brokers, verifying their certificates and names.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// A PEM file of the CA certificates to trust instead of the public web roots (a
    /// private CA). Relative to the directory elt runs in.
    #[serde(default)]
    pub ca_file: Option<String>,
}

impl Brokers {
    /// Checks the options without I/O; messages name the option.
    pub fn validate(&self) -> Result<()> {
        if self.bootstrap_servers.is_empty() {
            return Err(Error::config(
                "`bootstrap_servers` is empty; list at least one broker as \"host:port\"",
            ));
        }
        for server in &self.bootstrap_servers {
            let port = server.rsplit_once(':').map(|(_, p)| p.parse::<u16>());
            if !matches!(port, Some(Ok(_))) {
                return Err(Error::config(format!(
                    "`bootstrap_servers`: {server:?} is not \"host:port\""
                )));
            }
        }
        if !(1..=3600).contains(&self.timeout_secs) {
            return Err(Error::config("`timeout_secs` must be 1 to 3600"));
        }
        let plain = self.sasl.as_ref().map(|s| s.mechanism) == Some(SaslMechanism::Plain);
        if plain && self.tls.is_none() && !self.bootstrap_servers.iter().all(|s| is_local(s)) {
            return Err(Error::config(
                "`sasl` is `plain` without `tls`: the password would cross the network in clear; \
                 add `tls = {}` (or `tls = { ca_file = \"ca.pem\" }`), or use scram-sha-256",
            ));
        }
        Ok(())
    }

    /// The brokers, for summaries (no secret): `a:9092,b:9092 (sasl scram-sha-256, tls)`.
    pub fn endpoint(&self) -> String {
        let mut how = Vec::new();
        if let Some(sasl) = &self.sasl {
            how.push(format!("sasl {:?} as {}", sasl.mechanism, sasl.username));
        }
        if self.tls.is_some() {
            how.push("tls".to_owned());
        }
        match how.is_empty() {
            true => self.bootstrap_servers.join(","),
            false => format!("{} ({})", self.bootstrap_servers.join(","), how.join(", ")),
        }
    }

    /// A client connected to the cluster. Every request it retries gives up after
    /// `timeout_secs`.
    pub async fn connect(&self) -> Result<Client> {
        let timeout = Duration::from_secs(self.timeout_secs);
        let mut builder = ClientBuilder::new(self.bootstrap_servers.clone())
            .client_id("elt")
            .backoff_config(BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(2),
                base: 2.0,
                deadline: Some(timeout),
            });
        let mut password = None;
        if let Some(sasl) = &self.sasl {
            let revealed = sasl.password.resolve()?;
            let credentials = Credentials::new(sasl.username.clone(), revealed.expose().to_owned());
            builder = builder.sasl_config(match sasl.mechanism {
                SaslMechanism::Plain => SaslConfig::Plain(credentials),
                SaslMechanism::ScramSha256 => SaslConfig::ScramSha256(credentials),
                SaslMechanism::ScramSha512 => SaslConfig::ScramSha512(credentials),
            });
            password = Some(revealed);
        }
        if let Some(tls) = &self.tls {
            builder = builder.tls_config(Arc::new(client_tls(tls)?));
        }
        // rskafka retries a refused bootstrap (and a refused login) until its deadline and
        // then says why; this bounds a broker that accepts and never answers. rskafka checks
        // its deadline only between attempts, each a connection and a login that can take a
        // second on a busy machine: a bound of the deadline plus 2 s was seen to cut a
        // refused login short, turning its config error into a transient one.
        let limit = timeout * 2 + Duration::from_secs(2);
        let connecting = match tokio::time::timeout(limit, builder.build()).await {
            Ok(result) => result.map_err(|e| {
                let error = classify("connecting to the brokers", e);
                match self.sasl.is_none() && error.message().contains("early eof") {
                    // A broker that requires a login closes the connection on the first
                    // request of a client that sends none.
                    true => Error::config(format!(
                        "{}; if the brokers require authentication, set `sasl`",
                        error.message()
                    )),
                    false => error,
                }
            }),
            Err(_) => Err(Error::transient(format!(
                "connecting to the brokers {}: no answer within {} s (`timeout_secs`)",
                self.bootstrap_servers.join(","),
                self.timeout_secs
            ))),
        };
        connecting.map_err(|error| match &password {
            Some(p) => Error::new(error.kind(), p.redact(error.message())),
            None => error,
        })
    }
}

/// Whether `server` (`host:port`) is this machine.
fn is_local(server: &str) -> bool {
    let host = server.rsplit_once(':').map_or(server, |(h, _)| h);
    let endpoint = elt_core::tls::Endpoint {
        host,
        socket: false,
        password: false,
    };
    endpoint.is_local()
}

/// The rustls config for `tls`: ring as the crypto provider, the web roots or the CA file.
fn client_tls(tls: &Tls) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    match &tls.ca_file {
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Some(path) => {
            use rustls_pki_types::pem::PemObject;
            let certs = rustls_pki_types::CertificateDer::pem_file_iter(path)
                .map_err(|e| Error::config(format!("`tls.ca_file`: cannot read {path:?}: {e}")))?;
            for cert in certs {
                let cert = cert.map_err(|e| {
                    Error::config(format!(
                        "`tls.ca_file`: {path:?} is not PEM certificates: {e}"
                    ))
                })?;
                roots.add(cert).map_err(|e| {
                    Error::config(format!("`tls.ca_file`: a certificate in {path:?}: {e}"))
                })?;
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::bug(format!("TLS versions: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// An rskafka error while `doing` something, classified: a refused login, a denied or
/// unknown topic and a too large message are config errors; anything else (a broker
/// away, a leader moving, a timeout) is transient.
pub fn classify(doing: &str, error: KafkaError) -> Error {
    let text = format!("{doing}: {error}");
    let config = match &error {
        KafkaError::ServerError { protocol_error, .. } => matches!(
            protocol_error,
            ProtocolError::SaslAuthenticationFailed
                | ProtocolError::TopicAuthorizationFailed
                | ProtocolError::ClusterAuthorizationFailed
                | ProtocolError::GroupAuthorizationFailed
                | ProtocolError::UnknownTopicOrPartition
                | ProtocolError::InvalidTopicException
                | ProtocolError::MessageTooLarge
                | ProtocolError::RecordListTooLarge
                | ProtocolError::UnsupportedSaslMechanism
        ),
        KafkaError::Connection(inner) => {
            let inner = inner.to_string();
            inner.contains("Sasl") || inner.contains("certificate") || inner.contains("TLS")
        }
        _ => false,
    };
    match config {
        true => Error::config(text),
        false => Error::transient(text),
    }
}
