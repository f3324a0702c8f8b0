//! elt-postgres: what the PostgreSQL source (`elt-connectors`) and the PostgreSQL
//! destination (`elt-destinations`) share: the connection [`Target`] (URL secret, TLS
//! mode, SSH tunnel, error classification with the secret scrubbed) and the reconciliation's key-range
//! SQL ([`key_ranges`]) and a backfill window's digest SQL ([`window_digest`]). No source or destination logic lives here, and nothing else in
//! elt depends on sqlx's PostgreSQL driver through it.

pub mod key_ranges;
mod target;
pub mod window_digest;

pub use target::{SshConfig, Target, TlsMode};
