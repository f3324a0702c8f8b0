//! Configuration of the `postgres` source.

use elt_core::{ConnectorConfig, Error, Result, Secret, bounds};
use elt_postgres::{SshConfig, TlsMode};
use schemars::JsonSchema;
use serde::Deserialize;

/// A PostgreSQL database, read through binary COPY in consistent snapshots.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// Connection URL, such as `postgres://user:${PG_PASSWORD}@host:5432/db`. A secret:
    /// `${ENV}` references are resolved when connecting and the URL is never printed.
    pub url: Secret,
    /// Schemas whose tables and views are offered as streams.
    #[serde(default = "default_schemas")]
    pub schemas: Vec<String>,
    /// Only tables matching one of these patterns (`schema.table`, `*` matches any run of
    /// characters); every table when empty.
    #[serde(default)]
    pub include: Vec<String>,
    /// Tables matching one of these patterns are left out.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// TLS mode; when unset, the URL's `sslmode`, else `verify-full` for a host that is not
    /// this machine, and on loopback `prefer` (`require` when a password is set). `prefer`
    /// with a password is refused (it would send it in clear to a server that declines
    /// TLS); only `disable` sends a password without TLS.
    #[serde(default)]
    pub tls: Option<TlsMode>,
    /// Reach the database through an SSH jump host (`{ host, user, private_key_path, ... }`):
    /// the URL's host and port are then as the SSH server sees them. Through a tunnel the
    /// TLS default is that of a loopback address and `verify-full` is refused.
    #[serde(default)]
    pub ssh: Option<SshConfig>,
    /// Rows per batch; incremental reads checkpoint after every batch.
    #[serde(default = "default_batch_rows")]
    pub batch_rows: usize,
    /// Incremental reads start this many seconds before the saved timestamp watermark, to
    /// catch rows of transactions that committed late (the merge absorbs the overlap).
    /// With 0, a row whose transaction commits after a sync read past its `updated_at` is
    /// missed until a full refresh.
    #[serde(default)]
    pub lookback_secs: u64,
    /// Seconds to wait for a connection.
    #[serde(default = "default_connect_timeout_secs")]
    pub connect_timeout_secs: u64,
}

fn default_schemas() -> Vec<String> {
    vec!["public".to_owned()]
}
fn default_batch_rows() -> usize {
    65_536
}
fn default_connect_timeout_secs() -> u64 {
    10
}

impl ConnectorConfig for PostgresConfig {
    fn validate(&self) -> Result<()> {
        if let Some(ssh) = &self.ssh {
            ssh.validate()?;
        }
        if self.schemas.is_empty() {
            return Err(Error::config("`schemas` must name at least one schema"));
        }
        if self.batch_rows == 0 || self.batch_rows > 1_000_000 {
            return Err(Error::config(format!(
                "`batch_rows` is {}; expected 1 to 1000000",
                self.batch_rows
            )));
        }
        if self.connect_timeout_secs == 0 {
            return Err(Error::config("`connect_timeout_secs` must be at least 1"));
        }
        bounds::check_secs("connect_timeout_secs", self.connect_timeout_secs)?;
        bounds::check_secs("lookback_secs", self.lookback_secs)?;
        Ok(())
    }
}
