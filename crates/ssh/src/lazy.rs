//! What a connector's target holds: the optional `ssh` option. Connections go through the
//! process's one tunnel per SSH config and database address, opened by the first of them
//! and shared by the rest of the run (discovery, each stream, reconciliation), so that a
//! connection kept idle between those calls stays usable. A tunnel whose SSH session ended
//! is replaced by a new one at the next connection; all of them end with the process.

use std::net::SocketAddr;
use std::sync::Arc;

use elt_core::Result;
use tokio::sync::Mutex;

use crate::{SshConfig, Tunnel};

/// An open tunnel and what it was opened for.
struct Shared {
    ssh: SshConfig,
    to: (String, u16),
    tunnel: Arc<Tunnel>,
}

static TUNNELS: Mutex<Vec<Shared>> = Mutex::const_new(Vec::new());

/// An optional SSH tunnel, opened by the first connection that needs it.
#[derive(Debug, Default)]
pub struct LazyTunnel {
    ssh: Option<SshConfig>,
}

impl LazyTunnel {
    /// A tunnel through `ssh`, or none (connections go straight to the database).
    pub fn new(ssh: Option<&SshConfig>) -> Self {
        Self { ssh: ssh.cloned() }
    }

    /// `, via ssh user@host:port`, or nothing without a tunnel.
    pub fn describe(&self) -> String {
        self.ssh
            .as_ref()
            .map(SshConfig::describe)
            .unwrap_or_default()
    }

    /// The driver's options for reaching `host:port` through the tunnel, built by
    /// `retarget` from the loopback host and port; None without a tunnel (connect with the
    /// options as they are).
    pub async fn route<T>(
        &self,
        host: &str,
        port: u16,
        retarget: impl FnOnce(&str, u16) -> T,
    ) -> Result<Option<T>> {
        Ok(self
            .local_addr(host, port)
            .await?
            .map(|local| retarget(&local.ip().to_string(), local.port())))
    }

    /// Where the driver connects to reach `host:port`: the loopback address of the
    /// process's tunnel for this config and address (opened on first use, reopened when its
    /// session ended), or None to connect directly.
    async fn local_addr(&self, host: &str, port: u16) -> Result<Option<SocketAddr>> {
        let Some(ssh) = &self.ssh else {
            return Ok(None);
        };
        let mut tunnels = TUNNELS.lock().await;
        tunnels.retain(|shared| shared.tunnel.is_open());
        let to = (host.to_owned(), port);
        if let Some(shared) = tunnels.iter().find(|s| s.ssh == *ssh && s.to == to) {
            return Ok(Some(shared.tunnel.local_addr()));
        }
        let tunnel = Arc::new(Tunnel::open(ssh, host, port).await?);
        let local = tunnel.local_addr();
        tunnels.push(Shared {
            ssh: ssh.clone(),
            to,
            tunnel,
        });
        Ok(Some(local))
    }
}
