//! Streams with `sync = "cdc"`: their write mode (merge on the primary key, history with a
//! version per change, or append as a change log), the change columns added to their schema, the log position as the merge's
//! cursor and `_elt_op` as its delete marker, and the names of their slot and publication
//! (`cdc_slot`, `cdc_publication`, else derived from the connection and the table). Options
//! that mean nothing for a change stream are refused, naming the option.

use elt_core::cdc::{self, CdcNames};
use elt_core::{ConfiguredStream, Error, Result, SyncMode, WriteMode};

use super::at;
use crate::config::StreamConfig;

/// Before the columns are selected: a cdc stream has no cursor column of its own.
pub(super) fn drop_cursor(stream: &mut ConfiguredStream, c: &StreamConfig) -> Result<()> {
    if c.sync != Some(SyncMode::Cdc) {
        for (option, set) in [
            ("cdc_slot", c.cdc_slot.is_some()),
            ("cdc_publication", c.cdc_publication.is_some()),
        ] {
            if set {
                return Err(Error::config(format!(
                    "{} applies to `sync = \"cdc\"` streams only; set `sync` or remove it",
                    at(c, option)
                )));
            }
        }
        return Ok(());
    }
    if c.cursor.is_some() {
        return Err(Error::config(format!(
            "{} does not apply: a cdc stream is ordered by its log position; remove it",
            at(c, "cursor")
        )));
    }
    for (option, set) in [
        ("soft_delete", c.soft_delete.is_some()),
        (
            "reconcile_deletes_every",
            c.reconcile_deletes_every.is_some(),
        ),
    ] {
        if set {
            return Err(Error::config(format!(
                "{} does not apply: a cdc stream sees deletes in the log; remove it",
                at(c, option)
            )));
        }
    }
    stream.cursor = None;
    Ok(())
}

/// After the modes are set: the write mode, schema, cursor, delete marker and names.
pub(super) fn finish(
    stream: &mut ConfiguredStream,
    c: &StreamConfig,
    connection: &str,
) -> Result<()> {
    if stream.sync_mode != SyncMode::Cdc {
        return Ok(());
    }
    stream.write_mode = match c.write {
        None if stream.primary_key.is_empty() => WriteMode::Append,
        None => WriteMode::Merge,
        Some(WriteMode::History) if stream.primary_key.is_empty() => {
            return Err(Error::config(format!(
                "{} is history but the stream has no primary key; set `primary_key`",
                at(c, "write")
            )));
        }
        Some(mode @ (WriteMode::Merge | WriteMode::Append | WriteMode::History)) => mode,
        Some(other) => {
            return Err(Error::config(format!(
                "{} is {other}, which a cdc stream does not support yet; use merge (one row \
                 per key), history (a version per change) or append (every change)",
                at(c, "write")
            )));
        }
    };
    if stream.parallelism > 1 {
        return Err(Error::config(format!(
            "{}: a cdc stream's snapshot is read on one connection; remove it",
            at(c, "parallelism")
        )));
    }
    // The source builds rows in the discovered schema (with the change columns); the
    // stream's columns may be NULL (a delete sends only the key).
    let with_changes =
        cdc::with_change_fields(&stream.stream.schema).map_err(|e| e.in_stream(&c.name))?;
    stream.discovered = Some(match &stream.discovered {
        Some(discovered) => cdc::with_change_fields(discovered)?,
        None => with_changes.clone(),
    });
    stream.stream.schema = cdc::nullable(&with_changes);
    stream.cursor = Some(cdc::LSN.to_owned());
    if stream.write_mode.is_keyed() {
        stream.deletes.soft_delete_column = Some(cdc::OP.to_owned());
    }
    let derived = CdcNames::derived(connection, &stream.table);
    let slot = checked_name(c, "cdc_slot", c.cdc_slot.as_ref())?;
    stream.cdc = Some(CdcNames {
        derived_slot: slot.is_none(),
        slot: slot.unwrap_or(derived.slot),
        publication: checked_name(c, "cdc_publication", c.cdc_publication.as_ref())?
            .unwrap_or(derived.publication),
    });
    Ok(())
}

/// A configured slot or publication name, if valid (as PostgreSQL requires of slots).
fn checked_name(c: &StreamConfig, option: &str, name: Option<&String>) -> Result<Option<String>> {
    let Some(name) = name else {
        return Ok(None);
    };
    if name.is_empty() || name.len() > 63 || cdc::slot_name(name) != *name {
        return Err(Error::config(format!(
            "{} is {name:?}; use 1 to 63 lower case letters, digits and underscores",
            at(c, option)
        )));
    }
    Ok(Some(name.clone()))
}

/// What the command line cannot do to a cdc stream.
pub(super) fn refuse_options(
    stream: &ConfiguredStream,
    options: &crate::options::SyncOptions,
) -> Result<()> {
    if stream.sync_mode != SyncMode::Cdc {
        return Ok(());
    }
    let refused = if options.full_refresh {
        Some("--full-refresh")
    } else if options.backfill.is_some() {
        Some("--backfill-from/--backfill-to")
    } else {
        None
    };
    match refused {
        Some(flag) => Err(Error::config(format!(
            "stream {}: {flag} does not apply to a cdc stream; to copy it again from a new \
             snapshot, run `elt state reset` for it and sync",
            stream.name()
        ))),
        None => Ok(()),
    }
}
