//! Connecting: the shared target of `elt_core::pg` built from this source's options, and
//! one idle connection kept between the calls of a run.

use elt_core::Result;
pub use elt_core::pg::Target;
use sqlx::postgres::PgConnection;

use super::config::PostgresConfig;

/// The target of the source's options.
pub fn target(config: &PostgresConfig) -> Result<Target> {
    Target::new(&config.url, config.tls, config.connect_timeout_secs)
}

/// One connection kept between calls of a source (discovery, then each stream), so a sync
/// does not pay a new connection per stream. A connection that failed is never put back.
#[derive(Default)]
pub struct IdleConnection(tokio::sync::Mutex<Option<PgConnection>>);

impl IdleConnection {
    /// The idle connection, or a new one.
    pub async fn take(&self, target: &Target) -> Result<PgConnection> {
        match self.0.lock().await.take() {
            Some(conn) => Ok(conn),
            None => target.connect().await,
        }
    }

    /// Keeps a healthy connection for the next call.
    pub async fn put(&self, conn: PgConnection) {
        *self.0.lock().await = Some(conn);
    }
}
