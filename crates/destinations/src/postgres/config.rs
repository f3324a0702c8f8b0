//! Configuration of the `postgres` destination.

use elt_core::{ConnectorConfig, Error, Result, Secret, bounds};
use elt_postgres::{SshConfig, Target, TlsMode};
use schemars::JsonSchema;
use serde::Deserialize;

/// A PostgreSQL database that receives raw tables through binary COPY.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostgresDestinationConfig {
    /// Connection URL, such as `postgres://elt:${PG_PASSWORD}@host:5432/warehouse`. A secret:
    /// `${ENV}` references are resolved when connecting and the URL is never printed.
    pub url: Secret,
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
    /// Seconds to wait for a connection.
    #[serde(default = "default_connect_timeout_secs")]
    pub connect_timeout_secs: u64,
    /// Seconds a worker's lock on a stream lasts without renewal. The worker renews it every
    /// third of this while it loads; a worker that stops (killed, paused, cut off) loses the
    /// stream to the next worker after this long, and then commits nothing more.
    #[serde(default = "default_lease_secs")]
    pub lease_secs: u64,
    /// Commit at a checkpoint once this many rows are uncommitted; a crash re-reads at most
    /// this many rows.
    #[serde(default = "default_commit_rows")]
    pub commit_rows: u64,
    /// Commit at a checkpoint once the last commit is this many seconds old.
    #[serde(default = "default_commit_interval_secs")]
    pub commit_interval_secs: u64,
}

fn default_connect_timeout_secs() -> u64 {
    10
}
fn default_lease_secs() -> u64 {
    60
}
fn default_commit_rows() -> u64 {
    100_000
}
fn default_commit_interval_secs() -> u64 {
    30
}

impl PostgresDestinationConfig {
    /// Where and how to connect (no I/O).
    pub fn target(&self) -> Result<Target> {
        Target::new(
            &self.url,
            self.tls,
            self.connect_timeout_secs,
            self.ssh.as_ref(),
        )
    }
}

impl ConnectorConfig for PostgresDestinationConfig {
    fn validate(&self) -> Result<()> {
        if let Some(ssh) = &self.ssh {
            ssh.validate()?;
        }
        if self.connect_timeout_secs == 0 {
            return Err(Error::config("`connect_timeout_secs` must be at least 1"));
        }
        if self.lease_secs < 1 {
            return Err(Error::config("`lease_secs` must be at least 1"));
        }
        if self.commit_rows == 0 {
            return Err(Error::config("`commit_rows` must be at least 1"));
        }
        for (name, secs) in [
            ("connect_timeout_secs", self.connect_timeout_secs),
            ("lease_secs", self.lease_secs),
            ("commit_interval_secs", self.commit_interval_secs),
        ] {
            bounds::check_secs(name, secs)?;
        }
        Ok(())
    }
}
