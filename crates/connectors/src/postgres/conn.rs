//! Connecting: the shared target of `elt_postgres` built from this source's options, and
//! the idle connection kept between the calls of a run.

use elt_core::Result;
pub use elt_postgres::Target;
use sqlx::postgres::PgConnection;

use super::config::PostgresConfig;

/// The target of the source's options.
pub fn target(config: &PostgresConfig) -> Result<Target> {
    Target::new(
        &config.url,
        config.tls,
        config.connect_timeout_secs,
        config.ssh.as_ref(),
    )
}

/// The connection kept between the calls of a run.
pub type IdleConnection = elt_core::sql::IdleConnection<PgConnection>;
