//! Which streams a sync runs and how: the connection's stream list (or every discovered
//! stream), `--streams`, `--full-refresh` and backfill windows, checked against the
//! catalog. Every problem is a config error naming the stream and the option.

use elt_core::{Catalog, ConfiguredStream, Error, Result, SyncMode, WriteMode};

use crate::config::{Connection, StreamConfig};

mod cdc;
mod changes;
mod columns;
mod partitions;

pub use changes::{PlannedChange, StreamPlan, schema_plan};

use crate::options::SyncOptions;
use columns::{hash_columns, select_columns, track_previous};

/// Chooses the streams and their modes; every problem is a config error naming the
/// stream and the option.
pub fn plan_streams(
    catalog: &Catalog,
    config: &Connection,
    options: &SyncOptions,
) -> Result<Vec<(ConfiguredStream, Vec<String>)>> {
    let configured = configured_streams(catalog, config);
    if let Some(wanted) = &options.streams
        && let Some(name) = wanted
            .iter()
            .find(|n| !configured.iter().any(|c| &c.name == *n))
    {
        return Err(Error::config(format!(
            "--streams: the connection has no stream {name:?}; it syncs: {}",
            names(configured.iter().map(|c| c.name.as_str()))
        )));
    }
    let mut planned: Vec<(ConfiguredStream, Vec<String>)> = Vec::new();
    let selected = configured
        .iter()
        .filter(|c| options.streams.as_ref().is_none_or(|w| w.contains(&c.name)));
    for c in selected {
        let descriptor = catalog.stream(&c.name).ok_or_else(|| {
            Error::config(format!(
                "stream {:?} is not offered by the source; it offers: {}",
                c.name,
                names(catalog.streams.iter().map(|s| s.name.as_str()))
            ))
        })?;
        let mut notes = Vec::new();
        let mut stream = ConfiguredStream::with_defaults(descriptor.clone());
        set_columns(&mut stream, c)?;
        cdc::drop_cursor(&mut stream, c)?;
        select_columns(&mut stream, c, &mut notes)?;
        hash_columns(&mut stream, c, config, &mut notes)?;
        set_modes(&mut stream, c, &mut notes)?;
        track_previous(&mut stream, c)?;
        set_deletes(&mut stream, c)?;
        set_parallelism(&mut stream, c)?;
        partitions::set_partitions(&mut stream, c)?;
        cdc::finish(&mut stream, c, &config.name)?;
        cdc::refuse_options(&stream, options)?;
        apply_options(&mut stream, options, &mut notes)?;
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

/// The connection's stream list, or every discovered stream with defaults.
fn configured_streams(catalog: &Catalog, config: &Connection) -> Vec<StreamConfig> {
    match &config.streams {
        Some(list) => list.clone(),
        None => catalog
            .streams
            .iter()
            .map(|s| StreamConfig {
                name: s.name.clone(),
                ..StreamConfig::default()
            })
            .collect(),
    }
}

fn names<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names.collect::<Vec<_>>().join(", ")
}

/// `stream {name}: \`{option}\``, the start of an error about one option of one stream.
fn at(c: &StreamConfig, option: &str) -> String {
    format!("stream {}: `{option}`", c.name)
}

/// The cursor, primary key and table a stream's config names, checked against its columns.
fn set_columns(stream: &mut ConfiguredStream, c: &StreamConfig) -> Result<()> {
    let missing = |option: &str, column: &str| {
        Error::config(format!(
            "{} names column {column:?}, which the stream does not have",
            at(c, option)
        ))
    };
    let schema = stream.schema().clone();
    let has_column = |name: &str| schema.field_with_name(name).is_ok();
    if let Some(cursor) = &c.cursor {
        if !has_column(cursor) {
            return Err(missing("cursor", cursor));
        }
        stream.cursor = Some(cursor.clone());
    }
    if let Some(key) = &c.primary_key {
        if let Some(column) = key.iter().find(|k| !has_column(k)) {
            return Err(missing("primary_key", column));
        }
        stream.primary_key = key.clone();
    }
    if let Some(column) = &c.soft_delete {
        if !has_column(column) {
            return Err(missing("soft_delete", column));
        }
        stream.deletes.soft_delete_column = Some(column.clone());
    }
    if let Some(table) = &c.table {
        stream.table = elt_core::normalize_name(table);
    }
    Ok(())
}

/// The sync and write modes: the configured ones where the stream allows them, otherwise
/// what its cursor and key suggest.
fn set_modes(
    stream: &mut ConfiguredStream,
    c: &StreamConfig,
    notes: &mut Vec<String>,
) -> Result<()> {
    match c.sync {
        Some(SyncMode::Incremental) if stream.cursor.is_none() => {
            return Err(Error::config(format!(
                "{} is incremental but the stream has no cursor; set `cursor`",
                at(c, "sync")
            )));
        }
        Some(mode) => stream.sync_mode = mode,
        None if stream.sync_mode == SyncMode::FullRefresh => {
            notes.push("no primary key or cursor: full refresh with overwrite".to_owned());
        }
        None => {}
    }
    match c.write {
        Some(mode) if mode.is_keyed() && stream.primary_key.is_empty() => {
            Err(Error::config(format!(
                "{} is {mode} but the stream has no primary key; set `primary_key`",
                at(c, "write")
            )))
        }
        Some(mode) => {
            stream.write_mode = mode;
            Ok(())
        }
        None if c.sync == Some(SyncMode::FullRefresh) => {
            stream.write_mode = WriteMode::Overwrite;
            Ok(())
        }
        None if c.sync == Some(SyncMode::Incremental) && stream.primary_key.is_empty() => {
            stream.write_mode = WriteMode::Append;
            Ok(())
        }
        None => Ok(()),
    }
}

/// How deletes are kept (`soft_delete`, else the stream's delete marker; `on_delete`) and
/// how often hard deletes are looked for (`reconcile_deletes_every`), checked against the
/// write mode.
fn set_deletes(stream: &mut ConfiguredStream, c: &StreamConfig) -> Result<()> {
    let keyed = stream.write_mode.is_keyed();
    let needs_keyed = |option: &str| {
        Error::config(format!(
            "{} needs write mode merge, previous or history, but the stream is {}; set `write`",
            at(c, option),
            stream.write_mode
        ))
    };
    if !keyed && c.soft_delete.is_some() {
        return Err(needs_keyed("soft_delete"));
    }
    if let Some(on_delete) = c.on_delete {
        if !stream.write_mode.is_merge() {
            return Err(Error::config(format!(
                "{} applies to write modes merge and previous (history always closes the version)",
                at(c, "on_delete")
            )));
        }
        stream.deletes.on_delete = on_delete;
    }
    if keyed && stream.deletes.soft_delete_column.is_none() {
        stream.deletes.soft_delete_column = stream.stream.delete_marker.clone();
    }
    if let Some(every) = c.reconcile_deletes_every {
        if every == 0 {
            return Err(Error::config(format!(
                "{} must be at least 1 (1: every run)",
                at(c, "reconcile_deletes_every")
            )));
        }
        if !keyed {
            return Err(needs_keyed("reconcile_deletes_every"));
        }
        elt_core::reconcile::check_key_types(stream)?;
        stream.deletes.reconcile_every = Some(every);
    }
    Ok(())
}

/// Largest `parallelism`: more connections than this only queue on the server's cores.
const MAX_PARALLELISM: usize = 16;

/// How many connections read the stream at once (`parallelism`).
fn set_parallelism(stream: &mut ConfiguredStream, c: &StreamConfig) -> Result<()> {
    match c.parallelism {
        None => Ok(()),
        Some(n @ 1..=MAX_PARALLELISM) => {
            stream.parallelism = n;
            Ok(())
        }
        Some(n) => Err(Error::config(format!(
            "{} is {n}; expected 1 to {MAX_PARALLELISM} connections",
            at(c, "parallelism")
        ))),
    }
}

/// What the command line asks of every stream: `--reconcile-deletes`, a backfill window,
/// `--full-refresh`.
fn apply_options(
    stream: &mut ConfiguredStream,
    options: &SyncOptions,
    notes: &mut Vec<String>,
) -> Result<()> {
    let keyed = stream.write_mode.is_keyed();
    let hashed_key = stream.primary_key.iter().any(|k| stream.hashed.contains(k));
    if hashed_key && stream.deletes.reconcile_every.is_some() {
        return Err(Error::config(format!(
            "stream {}: `reconcile_deletes_every` compares the source's keys with the table's, \
             but the key is hashed; turn one of them off",
            stream.name()
        )));
    }
    if options.reconcile_deletes && stream.sync_mode == SyncMode::Cdc {
        notes.push(
            "--reconcile-deletes skipped it: a cdc stream sees deletes in the log".to_owned(),
        );
    } else if options.reconcile_deletes && keyed && hashed_key {
        notes.push("--reconcile-deletes skipped it: its key is hashed".to_owned());
    } else if options.reconcile_deletes && keyed {
        match elt_core::reconcile::check_key_types(stream) {
            Ok(()) => stream.deletes.reconcile_every = Some(1),
            Err(e) => notes.push(format!("--reconcile-deletes skipped it: {}", e.message())),
        }
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
                stream.name()
            )));
        }
        if stream.write_mode == WriteMode::Overwrite {
            return Err(Error::config(format!(
                "stream {}: a backfill would replace the table in write mode overwrite; use merge or append",
                stream.name()
            )));
        }
        if window.window && !matches!(stream.write_mode, WriteMode::Append | WriteMode::Merge) {
            return Err(Error::config(format!(
                "stream {}: a backfill window replaces its rows, which would rewrite the \
                 versions of write mode {}; use `elt sync --backfill-from/--backfill-to`, \
                 which merges, or write mode merge or append",
                stream.name(),
                stream.write_mode
            )));
        }
        stream.sync_mode = SyncMode::Incremental;
        stream.backfill = Some(window.clone());
        notes.push(if window.window {
            format!(
                "backfill window [{}, {}): its rows replaced, the watermark did not move",
                window.from, window.to
            )
        } else {
            format!(
                "backfill of {} to {}: the watermark did not move",
                window.from, window.to
            )
        });
    }
    if options.full_refresh && stream.write_mode == WriteMode::History {
        // Rebuilding would throw the versions away: re-read everything instead.
        stream.sync_mode = SyncMode::FullRefresh;
        notes.push(
            "--full-refresh: read from the start; history kept (unchanged rows add no version)"
                .to_owned(),
        );
    } else if options.full_refresh && stream.write_mode == WriteMode::Previous {
        // Rebuilding would throw the previous values away: re-read and merge instead.
        stream.sync_mode = SyncMode::FullRefresh;
        notes.push(
            "--full-refresh: read from the start and merged; previous values kept".to_owned(),
        );
    } else if options.full_refresh {
        stream.sync_mode = SyncMode::FullRefresh;
        stream.write_mode = WriteMode::Overwrite;
        // A rebuilt table holds exactly the source's rows: nothing to reconcile.
        stream.deletes.reconcile_every = None;
        notes.push("--full-refresh: read from the start and rebuilt the table".to_owned());
    }
    Ok(())
}
