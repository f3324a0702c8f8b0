//! Configuration of the `mysql` source.

use elt_core::sql::TlsMode;
use elt_core::{ConnectorConfig, Error, Result, Secret, bounds};
use elt_ssh::SshConfig;
use schemars::JsonSchema;
use serde::Deserialize;

/// A MySQL or MariaDB server, read in consistent snapshots.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MysqlConfig {
    /// Connection URL, such as `mysql://user:${MYSQL_PASSWORD}@host:3306/shop`. A secret:
    /// `${ENV}` references are resolved when connecting and the URL is never printed.
    pub url: Secret,
    /// Databases (schemas) whose tables and views are offered as streams; the URL's
    /// database when empty.
    #[serde(default)]
    pub databases: Vec<String>,
    /// Only tables matching one of these patterns (`database.table`, `*` matches any run of
    /// characters); every table when empty.
    #[serde(default)]
    pub include: Vec<String>,
    /// Tables matching one of these patterns are left out.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// TLS mode; when unset, the URL's `ssl-mode`, else `verify-full` for a host that is not
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
    /// Incremental reads start this many seconds before the saved date or time watermark,
    /// to catch rows of transactions that committed late (the merge absorbs the overlap).
    #[serde(default)]
    pub lookback_secs: u64,
    /// Seconds to wait for a connection.
    #[serde(default = "default_connect_timeout_secs")]
    pub connect_timeout_secs: u64,
    /// Seconds the server waits for elt to take more rows before it drops the connection
    /// (the session's `net_write_timeout`): a slow destination pauses the read this long.
    #[serde(default = "default_stall_timeout_secs")]
    pub stall_timeout_secs: u64,
}

fn default_batch_rows() -> usize {
    65_536
}
fn default_connect_timeout_secs() -> u64 {
    10
}
fn default_stall_timeout_secs() -> u64 {
    600
}

impl ConnectorConfig for MysqlConfig {
    fn validate(&self) -> Result<()> {
        if let Some(ssh) = &self.ssh {
            ssh.validate()?;
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
        if !(1..=31_536_000).contains(&self.stall_timeout_secs) {
            return Err(Error::config(format!(
                "`stall_timeout_secs` is {}; expected 1 to 31536000",
                self.stall_timeout_secs
            )));
        }
        if let Some(empty) = self.databases.iter().find(|d| d.trim().is_empty()) {
            return Err(Error::config(format!(
                "`databases` has an empty name ({empty:?}); list database names, or leave it out to use the URL's"
            )));
        }
        Ok(())
    }
}
