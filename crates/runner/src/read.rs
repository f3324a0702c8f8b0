//! Opening a connection's destination to read its bookkeeping (run records, state, dead
//! letters), for `elt runs`, `elt state show` and `elt dead-letter list`: the destination
//! itself, or, while a sync holds a single-writer file (DuckDB), what that sync published
//! for readers, with a note that says so. What it does not do: read rows of the raw
//! tables (data tests and `elt plan` open the destination and wait for nobody's snapshot).

use elt_core::{DestinationSession, ErrorKind, Result};

use crate::Project;

/// A session to read, and why it reads a published snapshot instead of the destination.
pub struct Reading {
    /// The session.
    pub session: Box<dyn DestinationSession>,
    /// Set when the destination was locked by a sync and the session reads what it
    /// published.
    pub note: Option<String>,
}

/// Opens `connection`'s destination to read its bookkeeping.
pub async fn bookkeeping(project: &Project, connection: &str) -> Result<Reading> {
    let (config, _, destination) = project.connection(connection)?;
    match destination.open_reader(connection, &config.dataset).await {
        Ok(session) => Ok(Reading {
            session,
            note: None,
        }),
        Err(e) if e.kind() == ErrorKind::Locked => {
            let session = destination
                .open_published(connection, &config.dataset)
                .await?;
            Ok(Reading {
                session,
                note: Some(format!(
                    "{}; showing what that sync has published so far (its run records, state \
                     and dead letters as of its last stream start or end)",
                    e.message()
                )),
            })
        }
        Err(e) => Err(e),
    }
}
