//! Opening a tunnel: connect to the SSH server, verify its host key, log in, check that it
//! can reach the database, then forward every connection accepted on a loopback port to
//! the database through a `direct-tcpip` channel. Dropping the [`Tunnel`] closes the
//! listener, every forwarded connection and the SSH session.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use elt_core::{Error, ErrorKind, Result};
use russh::client::{self, AuthResult, Handle};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, decode_secret_key, load_secret_key};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use crate::config::{KeySource, Login, SshConfig};
use crate::host_key::{SessionError, Verifier};

/// A forwarded loopback port; the tunnel closes when this value is dropped.
pub struct Tunnel {
    local: SocketAddr,
    session: Arc<Handle<Verifier>>,
    forwarding: JoinHandle<()>,
}

impl std::fmt::Debug for Tunnel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tunnel({})", self.local)
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        // Drops the listener, the JoinSet of forwarded connections and the task's session
        // handle; the SSH session ends with the last handle.
        self.forwarding.abort();
    }
}

impl Tunnel {
    /// Opens a tunnel through the SSH server of `config` to `to_host:to_port` (as the SSH
    /// server resolves it).
    pub async fn open(config: &SshConfig, to_host: &str, to_port: u16) -> Result<Self> {
        config.validate()?;
        let server = format!("{}@{}:{}", config.user, config.host, config.port);
        let timeout = Duration::from_secs(config.connect_timeout_secs);
        let session = tokio::time::timeout(timeout, connect(config, &server))
            .await
            .map_err(|_| {
                Error::transient(format!(
                    "timed out after {}s connecting to the SSH server {server} (`ssh.connect_timeout_secs`)",
                    timeout.as_secs()
                ))
            })??;
        // One channel now, so that a bastion that cannot reach the database says so here
        // rather than as a reset connection inside the driver.
        let probe = session
            .channel_open_direct_tcpip(to_host, to_port.into(), "127.0.0.1", 0)
            .await
            .map_err(|e| {
                ssh_error(
                    &format!(
                        "the SSH server {server} could not open a connection to {to_host}:{to_port}"
                    ),
                    e,
                )
            })?;
        drop(probe);
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(|e| {
                Error::permanent(format!(
                    "cannot listen on a loopback port for the SSH tunnel: {e}"
                ))
            })?;
        let local = listener
            .local_addr()
            .map_err(|e| Error::permanent(format!("the SSH tunnel's loopback port: {e}")))?;
        tracing::debug!(%local, %server, to_host, to_port, "SSH tunnel open");
        let session = Arc::new(session);
        let forwarding = tokio::spawn(forward(
            listener,
            session.clone(),
            to_host.to_owned(),
            to_port,
        ));
        Ok(Self {
            local,
            session,
            forwarding,
        })
    }

    /// Whether the SSH session and the forwarding still run.
    pub fn is_open(&self) -> bool {
        !self.session.is_closed() && !self.forwarding.is_finished()
    }

    /// The loopback address to point the database driver at.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

async fn connect(config: &SshConfig, server: &str) -> Result<Handle<Verifier>> {
    let verifier = Verifier {
        host: config.host.clone(),
        port: config.port,
        check: config.host_key_check()?,
    };
    let settings = Arc::new(client::Config {
        keepalive_interval: Some(Duration::from_secs(30)),
        nodelay: true,
        ..Default::default()
    });
    let mut session = client::connect(settings, (config.host.as_str(), config.port), verifier)
        .await
        .map_err(|e| match e {
            SessionError::HostKey(message) => Error::config(message),
            SessionError::Ssh(e) => {
                ssh_error(&format!("cannot connect to the SSH server {server}"), e)
            }
        })?;
    let refused = |what: &str, methods: String| {
        Error::config(format!(
            "the SSH server {server} refused the {what} (`ssh`); it accepts: {methods}"
        ))
    };
    let auth_error = |e| ssh_error(&format!("logging in to the SSH server {server}"), e);
    match config.login()? {
        Login::Password(secret) => {
            let password = secret
                .resolve()
                .map_err(|e| Error::config(format!("`ssh.password`: {}", e.message())))?;
            match session
                .authenticate_password(&config.user, password.expose())
                .await
                .map_err(auth_error)?
            {
                AuthResult::Success => {}
                AuthResult::Failure {
                    remaining_methods, ..
                } => {
                    return Err(refused("password", format!("{remaining_methods:?}")));
                }
            }
        }
        Login::Key(source) => {
            let key = Arc::new(private_key(config, &source)?);
            let hash = if key.algorithm().is_rsa() {
                session
                    .best_supported_rsa_hash()
                    .await
                    .map_err(auth_error)?
                    .flatten()
            } else {
                None
            };
            let key = PrivateKeyWithHashAlg::new(key, hash);
            match session
                .authenticate_publickey(&config.user, key)
                .await
                .map_err(auth_error)?
            {
                AuthResult::Success => {}
                AuthResult::Failure {
                    remaining_methods, ..
                } => {
                    return Err(refused("private key", format!("{remaining_methods:?}")));
                }
            }
        }
    }
    Ok(session)
}

fn private_key(config: &SshConfig, source: &KeySource<'_>) -> Result<PrivateKey> {
    let passphrase = config
        .private_key_passphrase
        .as_ref()
        .map(|secret| secret.resolve())
        .transpose()
        .map_err(|e| Error::config(format!("`ssh.private_key_passphrase`: {}", e.message())))?;
    let passphrase = passphrase.as_ref().map(|p| p.expose());
    let (option, loaded) = match source {
        KeySource::File(path) => (
            format!("`ssh.private_key_path` ({path})"),
            load_secret_key(Path::new(path), passphrase),
        ),
        KeySource::Text(secret) => {
            let text = secret
                .resolve()
                .map_err(|e| Error::config(format!("`ssh.private_key`: {}", e.message())))?;
            (
                "`ssh.private_key`".to_owned(),
                decode_secret_key(text.expose(), passphrase),
            )
        }
    };
    loaded.map_err(|e| {
        let hint = if passphrase.is_none() {
            " (an encrypted key needs `ssh.private_key_passphrase`)"
        } else {
            " (is `ssh.private_key_passphrase` right?)"
        };
        Error::config(format!(
            "cannot read the SSH private key {option}: {e}{hint}"
        ))
    })
}

/// Classifies a protocol error: network faults and timeouts are transient, the rest
/// permanent. russh's messages carry no credentials.
fn ssh_error(doing: &str, err: russh::Error) -> Error {
    let kind = match &err {
        russh::Error::IO(_)
        | russh::Error::ConnectionTimeout
        | russh::Error::KeepaliveTimeout
        | russh::Error::InactivityTimeout
        | russh::Error::Disconnect
        | russh::Error::HUP
        | russh::Error::Elapsed(_) => ErrorKind::Transient,
        _ => ErrorKind::Permanent,
    };
    Error::new(kind, format!("{doing}: {err}"))
}

/// Accepts driver connections and pipes each through its own channel until dropped.
async fn forward(
    listener: TcpListener,
    session: Arc<Handle<Verifier>>,
    to_host: String,
    to_port: u16,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    connections.spawn(pipe(socket, peer, session.clone(), to_host.clone(), to_port));
                }
                Err(err) => {
                    // Out of file descriptors, say: wait instead of spinning on the error.
                    tracing::warn!(%err, "SSH tunnel: accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn pipe(
    mut socket: TcpStream,
    peer: SocketAddr,
    session: Arc<Handle<Verifier>>,
    to_host: String,
    to_port: u16,
) {
    let channel = match session
        .channel_open_direct_tcpip(
            to_host.as_str(),
            to_port.into(),
            peer.ip().to_string(),
            peer.port().into(),
        )
        .await
    {
        Ok(channel) => channel,
        Err(err) => {
            tracing::warn!(%err, to_host, to_port, "SSH tunnel: the server could not open a connection");
            return;
        }
    };
    let mut stream = channel.into_stream();
    if let Err(err) = tokio::io::copy_bidirectional(&mut socket, &mut stream).await {
        tracing::debug!(%err, "SSH tunnel: a forwarded connection ended");
    }
}
