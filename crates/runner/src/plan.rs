//! Which streams a sync runs and how: the connection's stream list (or every discovered
//! stream), `--streams`, `--full-refresh` and backfill windows, checked against the
//! catalog. Every problem is a config error naming the stream and the option.

use elt_core::{Catalog, ConfiguredStream, Error, Result, SyncMode, WriteMode};

use crate::config::Connection;
use crate::engine::SyncOptions;

/// Chooses the streams and their modes; every problem is a config error naming the
/// stream and the option.
pub fn plan_streams(
    catalog: &Catalog,
    config: &Connection,
    options: &SyncOptions,
) -> Result<Vec<(ConfiguredStream, Vec<String>)>> {
    let available = || {
        catalog
            .streams
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let configured: Vec<crate::config::StreamConfig> = match &config.streams {
        Some(list) => list.clone(),
        None => catalog
            .streams
            .iter()
            .map(|s| crate::config::StreamConfig {
                name: s.name.clone(),
                sync: None,
                write: None,
                cursor: None,
                primary_key: None,
                table: None,
                soft_delete: None,
                on_delete: None,
                reconcile_deletes_every: None,
                schema_contract: None,
                json_schema_path: None,
                json_schema: None,
            })
            .collect(),
    };
    if let Some(wanted) = &options.streams {
        for name in wanted {
            if !configured.iter().any(|c| &c.name == name) {
                return Err(Error::config(format!(
                    "--streams: the connection has no stream {name:?}; it syncs: {}",
                    configured
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
    }
    let mut planned: Vec<(ConfiguredStream, Vec<String>)> = Vec::new();
    for c in configured {
        if options
            .streams
            .as_ref()
            .is_some_and(|w| !w.contains(&c.name))
        {
            continue;
        }
        let descriptor = catalog.stream(&c.name).ok_or_else(|| {
            Error::config(format!(
                "stream {:?} is not offered by the source; it offers: {}",
                c.name,
                available()
            ))
        })?;
        let at = |option: &str| format!("stream {}: `{option}`", c.name);
        let mut stream = ConfiguredStream::with_defaults(descriptor.clone());
        let mut notes = Vec::new();
        let has_column = |name: &str| descriptor.schema.field_with_name(name).is_ok();
        if let Some(cursor) = &c.cursor {
            if !has_column(cursor) {
                return Err(Error::config(format!(
                    "{} names column {cursor:?}, which the stream does not have",
                    at("cursor")
                )));
            }
            stream.cursor = Some(cursor.clone());
        }
        if let Some(key) = &c.primary_key {
            if let Some(missing) = key.iter().find(|k| !has_column(k)) {
                return Err(Error::config(format!(
                    "{} names column {missing:?}, which the stream does not have",
                    at("primary_key")
                )));
            }
            stream.primary_key = key.clone();
        }
        if let Some(table) = &c.table {
            stream.table = elt_core::normalize_name(table);
        }
        match c.sync {
            Some(SyncMode::Incremental) if stream.cursor.is_none() => {
                return Err(Error::config(format!(
                    "{} is incremental but the stream has no cursor; set `cursor`",
                    at("sync")
                )));
            }
            Some(mode) => stream.sync_mode = mode,
            None if stream.sync_mode == SyncMode::FullRefresh => {
                notes.push("no primary key or cursor: full refresh with overwrite".to_owned());
            }
            None => {}
        }
        match c.write {
            Some(mode @ (WriteMode::Merge | WriteMode::History))
                if stream.primary_key.is_empty() =>
            {
                return Err(Error::config(format!(
                    "{} is {mode} but the stream has no primary key; set `primary_key`",
                    at("write")
                )));
            }
            Some(mode) => stream.write_mode = mode,
            None if c.sync == Some(SyncMode::FullRefresh) => {
                stream.write_mode = WriteMode::Overwrite
            }
            None if c.sync == Some(SyncMode::Incremental) && stream.primary_key.is_empty() => {
                stream.write_mode = WriteMode::Append;
            }
            None => {}
        }
        if let Some(column) = &c.soft_delete {
            if !has_column(column) {
                return Err(Error::config(format!(
                    "{} names column {column:?}, which the stream does not have",
                    at("soft_delete")
                )));
            }
            stream.deletes.soft_delete_column = Some(column.clone());
        }
        if let Some(on_delete) = c.on_delete {
            stream.deletes.on_delete = on_delete;
        }
        let keyed = matches!(stream.write_mode, WriteMode::Merge | WriteMode::History);
        if !keyed && c.soft_delete.is_some() {
            return Err(Error::config(format!(
                "{} needs write mode merge or history, but the stream is {}; set `write`",
                at("soft_delete"),
                stream.write_mode
            )));
        }
        if let Some(every) = c.reconcile_deletes_every {
            if every == 0 {
                return Err(Error::config(format!(
                    "{} must be at least 1 (1: every run)",
                    at("reconcile_deletes_every")
                )));
            }
            if !keyed {
                return Err(Error::config(format!(
                    "{} needs write mode merge or history, but the stream is {}; set `write`",
                    at("reconcile_deletes_every"),
                    stream.write_mode
                )));
            }
            elt_core::reconcile::check_key_types(&stream)?;
            stream.deletes.reconcile_every = Some(every);
        }
        if options.reconcile_deletes && keyed {
            match elt_core::reconcile::check_key_types(&stream) {
                Ok(()) => stream.deletes.reconcile_every = Some(1),
                Err(e) => notes.push(format!("--reconcile-deletes skipped it: {}", e.message())),
            }
        }
        if c.on_delete.is_some() && stream.write_mode != WriteMode::Merge {
            return Err(Error::config(format!(
                "{} applies to write mode merge (history always closes the version)",
                at("on_delete")
            )));
        }
        if let Some(window) = &options.backfill {
            if options.full_refresh {
                return Err(Error::config(
                    "--backfill-from/--backfill-to and --full-refresh exclude each other",
                ));
            }
            if stream.cursor.is_none() {
                return Err(Error::config(format!(
                    "stream {}: a backfill needs a cursor; set `cursor`",
                    c.name
                )));
            }
            if stream.write_mode == WriteMode::Overwrite {
                return Err(Error::config(format!(
                    "stream {}: a backfill would replace the table in write mode overwrite; use merge or append",
                    c.name
                )));
            }
            stream.sync_mode = SyncMode::Incremental;
            stream.backfill = Some(window.clone());
            notes.push(format!(
                "backfill of {} to {}: the watermark did not move",
                window.from, window.to
            ));
        }
        if options.full_refresh && stream.write_mode == WriteMode::History {
            // Rebuilding would throw the versions away: re-read everything instead.
            stream.sync_mode = SyncMode::FullRefresh;
            notes.push(
                "--full-refresh: read from the start; history kept (unchanged rows add no version)"
                    .to_owned(),
            );
        } else if options.full_refresh {
            stream.sync_mode = SyncMode::FullRefresh;
            stream.write_mode = WriteMode::Overwrite;
            // A rebuilt table holds exactly the source's rows: nothing to reconcile.
            stream.deletes.reconcile_every = None;
            notes.push("--full-refresh: read from the start and rebuilt the table".to_owned());
        }
        if let Some((other, _)) = planned.iter().find(|(p, _)| p.table == stream.table) {
            return Err(Error::config(format!(
                "streams {} and {} would both load table {}; set `table` on one of them",
                other.name(),
                stream.name(),
                stream.table
            )));
        }
        planned.push((stream, notes));
    }
    Ok(planned)
}
