//! `elt cdc drop`: removes what change data capture keeps on the source for a connection's
//! streams (PostgreSQL: the replication slot, which holds WAL on the server's disk until it
//! is consumed, and the publication) and forgets their cdc position in the destination, so
//! a later cdc sync starts from a new snapshot. Streams that are cdc now, and streams whose
//! saved state says they were, are dropped; others are left alone.

use elt_core::cdc::{CdcNames, CdcPosition};
use elt_core::{Error, SyncMode};
use elt_runner::plan::plan_streams;
use elt_runner::{Project, SyncOptions};

use super::exit;

/// Drops the slot and publication of the cdc streams of `connection` (or of `only`).
pub async fn drop(project: &Project, connection: &str, only: Option<&str>) -> anyhow::Result<i32> {
    let (config, source, destination) = project.connection(connection)?;
    let catalog = super::discover::catalog(project, connection).await?;
    let planned = plan_streams(&catalog, config, &SyncOptions::default())?;
    let mut session = destination.open(connection, &config.dataset).await?;
    let states = session.state().await?;
    let mut dropped_any = false;
    for (mut stream, _) in planned {
        if only.is_some_and(|name| name != stream.name()) {
            continue;
        }
        let was_cdc = match states.get(stream.name()) {
            Some(state) => CdcPosition::from_state(state)?.is_some(),
            None => false,
        };
        if stream.sync_mode != SyncMode::Cdc && !was_cdc {
            continue;
        }
        let names = stream
            .cdc
            .get_or_insert_with(|| CdcNames::derived(connection, &stream.table))
            .clone();
        let dropped = source.drop_changes(&stream).await?;
        if was_cdc {
            session.reset_state(Some(stream.name())).await?;
        }
        dropped_any = true;
        if dropped.is_empty() {
            println!(
                "{}: no slot or publication {} found; its cdc position is forgotten",
                stream.name(),
                names.publication
            );
        } else {
            println!(
                "{}: dropped {}; its cdc position is forgotten",
                stream.name(),
                dropped.join(" and ")
            );
        }
    }
    if !dropped_any {
        return Err(Error::config(match only {
            Some(name) => {
                format!("stream {name} of connection {connection} is not and was not a cdc stream")
            }
            None => format!("connection {connection} has no cdc stream, now or in its state"),
        })
        .into());
    }
    Ok(exit::SUCCESS)
}
