//! What a connector's target holds: the optional `ssh` option and the tunnel it opens on
//! first use, so the PostgreSQL and MySQL targets route their connections the same way.

use std::net::SocketAddr;

use elt_core::Result;
use tokio::sync::OnceCell;

use crate::{SshConfig, Tunnel};

/// An optional SSH tunnel, opened by the first connection and closed when dropped.
#[derive(Debug, Default)]
pub struct LazyTunnel {
    ssh: Option<SshConfig>,
    tunnel: OnceCell<Tunnel>,
}

impl LazyTunnel {
    /// A tunnel through `ssh`, or none (connections go straight to the database).
    pub fn new(ssh: Option<&SshConfig>) -> Self {
        Self {
            ssh: ssh.cloned(),
            tunnel: OnceCell::new(),
        }
    }

    /// Whether connections go through SSH.
    pub fn is_set(&self) -> bool {
        self.ssh.is_some()
    }

    /// `, via ssh user@host:port`, or nothing without a tunnel.
    pub fn describe(&self) -> String {
        self.ssh
            .as_ref()
            .map(SshConfig::describe)
            .unwrap_or_default()
    }

    /// Where the driver connects to reach `host:port`: the tunnel's loopback address
    /// (opening the tunnel on first use), or None to connect directly.
    pub async fn local_addr(&self, host: &str, port: u16) -> Result<Option<SocketAddr>> {
        let Some(ssh) = &self.ssh else {
            return Ok(None);
        };
        let tunnel = self
            .tunnel
            .get_or_try_init(|| Tunnel::open(ssh, host, port))
            .await?;
        Ok(Some(tunnel.local_addr()))
    }
}
