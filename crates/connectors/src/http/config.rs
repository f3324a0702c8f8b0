//! Configuration of the `http` source: which manifest, its variables, the credentials,
//! and the limits of this deployment. What an API looks like lives in the manifest
//! (`manifest.rs`), not here.

use std::collections::BTreeMap;

use elt_core::{ConnectorConfig, Error, Result, Secret, bounds};
use schemars::JsonSchema;
use serde::Deserialize;

/// A REST API described by a declarative manifest.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// A shipped manifest by name (`github`); or leave it out and set `manifest_path`.
    #[serde(default)]
    pub manifest: Option<String>,
    /// A manifest file of your own (TOML), relative to `elt.toml`.
    #[serde(default)]
    pub manifest_path: Option<String>,
    /// Replaces the manifest's `base_url` (a proxy, an enterprise host, a test server).
    #[serde(default)]
    pub base_url: Option<String>,
    /// Values of the manifest's `{name}` placeholders in paths and parameters.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// How requests authenticate; none when unset.
    #[serde(default)]
    pub auth: Option<AuthConfig>,
    /// Requests per second at most (replaces the manifest's limit).
    #[serde(default)]
    pub requests_per_second: Option<u32>,
    /// Requests per minute at most (replaces the manifest's limit).
    #[serde(default)]
    pub requests_per_minute: Option<u32>,
    /// Seconds one request may take, from connecting to the last byte.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Seconds of retrying (429, 5xx, timeouts, resets) before a request fails.
    #[serde(default = "default_max_retry_secs")]
    pub max_retry_secs: u64,
    /// The largest response body accepted, in MiB.
    #[serde(default = "default_max_response_mib")]
    pub max_response_mib: u64,
    /// Other hosts that redirects and `next` URLs may lead to; credentials are sent there
    /// too. Any other host is refused.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Allow plain `http`, loopback and link-local addresses when `base_url` is https (and
    /// a plain-http `base_url` at all, credentials included). Only for tests and trusted
    /// networks.
    #[serde(default)]
    pub allow_insecure: bool,
    /// The cursor value an incremental stream's first sync starts from (`2024-01-01T00:00:00Z`);
    /// every record when unset.
    #[serde(default)]
    pub start: Option<String>,
    /// Incremental requests ask for records from this many seconds before the saved
    /// watermark (the merge absorbs the overlap).
    #[serde(default)]
    pub lookback_secs: u64,
    /// Records per batch at most (a page is never split over two checkpoints).
    #[serde(default = "default_batch_rows")]
    pub batch_rows: usize,
}

/// How requests authenticate. Every credential is a secret: `${ENV}` references are
/// resolved when connecting, and no credential is printed or sent to another host.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthConfig {
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// The token.
        token: Secret,
    },
    /// HTTP basic authentication.
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: Secret,
    },
    /// An API key in a header or a query parameter.
    ApiKey {
        /// The key.
        key: Secret,
        /// The header that carries it (such as `X-Api-Key`).
        #[serde(default)]
        header: Option<String>,
        /// The query parameter that carries it (such as `api_key`), instead of a header.
        #[serde(default)]
        query: Option<String>,
    },
    /// OAuth2 client credentials: a token from `token_url`, refreshed before it expires
    /// and after a 401.
    Oauth2 {
        /// The token endpoint.
        token_url: String,
        /// The client id.
        client_id: String,
        /// The client secret.
        client_secret: Secret,
        /// Scopes to ask for.
        #[serde(default)]
        scopes: Vec<String>,
    },
}

fn default_timeout_secs() -> u64 {
    30
}
fn default_max_retry_secs() -> u64 {
    300
}
fn default_max_response_mib() -> u64 {
    64
}
fn default_batch_rows() -> usize {
    10_000
}

impl ConnectorConfig for HttpConfig {
    fn validate(&self) -> Result<()> {
        match (&self.manifest, &self.manifest_path) {
            (Some(_), Some(_)) => {
                return Err(Error::config(
                    "`manifest` and `manifest_path` are both set; keep one",
                ));
            }
            (None, None) => {
                return Err(Error::config(format!(
                    "`manifest` is missing: name a shipped manifest ({}) or set `manifest_path` to a file",
                    super::manifest::SHIPPED
                        .iter()
                        .map(|(name, _)| *name)
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            (Some(name), None) if super::manifest::shipped(name).is_none() => {
                return Err(Error::config(format!(
                    "`manifest`: no shipped manifest is named {name:?} (shipped: {}); set `manifest_path` for a file of your own",
                    super::manifest::SHIPPED
                        .iter()
                        .map(|(name, _)| *name)
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            _ => {}
        }
        let positive = [
            ("timeout_secs", self.timeout_secs),
            ("max_response_mib", self.max_response_mib),
            ("batch_rows", self.batch_rows as u64),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(Error::config(format!("`{name}` must be at least 1")));
        }
        for (name, secs) in [
            ("timeout_secs", self.timeout_secs),
            ("max_retry_secs", self.max_retry_secs),
            ("lookback_secs", self.lookback_secs),
        ] {
            bounds::check_secs(name, secs)?;
        }
        bounds::mib_to_bytes("max_response_mib", self.max_response_mib)?;
        if self.requests_per_second == Some(0) || self.requests_per_minute == Some(0) {
            return Err(Error::config(
                "`requests_per_second` / `requests_per_minute` must be at least 1 (leave it out for no limit)",
            ));
        }
        if let Some(AuthConfig::ApiKey { header, query, .. }) = &self.auth
            && header.is_some() == query.is_some()
        {
            return Err(Error::config(
                "`auth.header` / `auth.query`: an api_key goes in exactly one of a header or a query parameter",
            ));
        }
        Ok(())
    }
}
