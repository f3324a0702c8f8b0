//! SSH tunnels for the database connectors: the `ssh = { ... }` option of the PostgreSQL
//! and MySQL sources and the PostgreSQL destination ([`SshConfig`]), and a tunnel that
//! forwards a local loopback port to the database through the SSH server.
//!
//! The host key is checked against known_hosts or a pinned fingerprint before any
//! credential is sent; an unknown or changed key is a config error. A process opens one
//! tunnel per SSH config and database address ([`LazyTunnel`]) and keeps it until it
//! exits. It knows nothing of databases: the connectors point their driver at the
//! tunnel's loopback address.

mod config;
mod host_key;
mod lazy;
mod tunnel;

pub use config::SshConfig;
pub use lazy::LazyTunnel;
use tunnel::Tunnel;
