//! Replaying dead letters (`elt dead-letter replay`): after the source data, the JSON
//! Schema or the contract was fixed, each dead-lettered record of a stream is decoded into
//! the stream's schema again and re-checked. Records that now pass are loaded through the
//! stream's write mode, and deleted from `_elt_dead_letter` in the same commit: a replay
//! loads a record exactly once. Records that still fail stay, as they were.
//!
//! A merge or history stream never goes back in time: a replayed record whose key already
//! holds a row with a newer or equal cursor in the table is superseded (dropped from the
//! dead-letter table, not loaded). State and watermarks do not move.

use elt_core::arrow::util::display::array_value_to_string;
use elt_core::{BatchCheck, ConfiguredStream, DestinationSession, Error, Message, Result, RunInfo};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::config::{Connection, Project};
use crate::plan::plan_streams;
use crate::{SyncOptions, checks};

/// What a replay did with one stream's dead letters.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayOutcome {
    /// The stream.
    pub stream: String,
    /// Records loaded into the raw table (and removed from the dead-letter table).
    pub replayed: u64,
    /// Records a newer row of the same key made obsolete (removed, not loaded).
    pub superseded: u64,
    /// Records that still fail (kept).
    pub still_failing: u64,
}

/// Replays the dead letters of `connection` (of stream `only`, when given).
pub async fn replay(
    project: &Project,
    connection: &str,
    only: Option<&str>,
) -> Result<Vec<ReplayOutcome>> {
    let (config, source, destination) = project.connection(connection)?;
    let catalog = source.discover().await?;
    let planned = plan_streams(&catalog, config, &SyncOptions::default())?;
    if let Some(name) = only.filter(|n| !planned.iter().any(|(s, _)| s.name() == *n)) {
        return Err(Error::config(format!(
            "--stream: the connection does not sync a stream {name:?}"
        )));
    }
    let mut session = destination.open(connection, &config.dataset).await?;
    let run = RunInfo {
        run_id: uuid::Uuid::now_v7().to_string(),
        connection: connection.to_owned(),
        started_at_us: chrono::Utc::now().timestamp_micros(),
    };
    let mut outcomes = Vec::new();
    for (stream, _) in planned
        .iter()
        .filter(|(s, _)| only.is_none_or(|o| s.name() == o))
    {
        if let Some(outcome) = replay_stream(session.as_mut(), config, &run, stream).await? {
            outcomes.push(outcome);
        }
    }
    Ok(outcomes)
}

async fn replay_stream(
    session: &mut dyn DestinationSession,
    config: &Connection,
    run: &RunInfo,
    stream: &ConfiguredStream,
) -> Result<Option<ReplayOutcome>> {
    let store = session.dead_letters().ok_or_else(|| {
        elt_core::capability::missing("readable dead-letter table", "`elt dead-letter replay`")
    })?;
    // Oldest first: a key dead-lettered twice replays in the order the source sent it.
    let mut letters = store.list(Some(stream.name()), usize::MAX).await?;
    letters.reverse();
    if letters.is_empty() {
        return Ok(None);
    }
    let check = checks::for_stream(session, config, stream, &mut Vec::new()).await?;
    let mut write_stream = stream.clone();
    if let Some(check) = &check {
        write_stream.stream.schema = check.output_schema();
    }
    let mut outcome = ReplayOutcome {
        stream: stream.name().to_owned(),
        replayed: 0,
        superseded: 0,
        still_failing: 0,
    };
    let (mut rows, mut removed) = (Vec::new(), Vec::new());
    for letter in &letters {
        let (id, record) = (&letter.id, &letter.record);
        let Some(batch) = decode(stream, record) else {
            outcome.still_failing += 1;
            continue;
        };
        let batch = match &check {
            Some(check) => match check.check(batch)? {
                (Some(good), dead) if dead.is_empty() => good,
                _ => {
                    outcome.still_failing += 1;
                    continue;
                }
            },
            None => batch,
        };
        removed.push(id.clone());
        if superseded(session, &write_stream, &batch).await? {
            outcome.superseded += 1;
        } else {
            outcome.replayed += 1;
            rows.push(batch);
        }
    }
    if removed.is_empty() {
        return Ok(Some(outcome));
    }
    let (tx, rx) = mpsc::channel(rows.len() + 2);
    for batch in rows {
        let _ = tx.send(Message::Batch(batch)).await;
    }
    let _ = tx.send(Message::Replayed(removed)).await;
    let _ = tx.send(Message::Complete).await;
    drop(tx);
    let (_, written) = session.write(run, &write_stream, rx).await;
    written?;
    Ok(Some(outcome))
}

/// One record, as JSON text, in `stream`'s schema; None when it does not fit.
fn decode(stream: &ConfiguredStream, record: &str) -> Option<elt_core::arrow::array::RecordBatch> {
    let value: Value = serde_json::from_str(record).ok()?;
    elt_core::record::decode(stream.schema(), &[value]).ok()
}

/// Whether the table already holds the one row of `batch`'s key with a cursor at least as
/// new (merge and history streams with a key and a cursor only).
async fn superseded(
    session: &mut dyn DestinationSession,
    stream: &ConfiguredStream,
    batch: &elt_core::arrow::array::RecordBatch,
) -> Result<bool> {
    let keyed = stream.write_mode.is_keyed();
    let Some(cursor) = stream
        .cursor
        .as_deref()
        .filter(|_| keyed && !stream.primary_key.is_empty())
    else {
        return Ok(false);
    };
    let text = |column: &str| -> Result<Option<String>> {
        let index = batch
            .schema()
            .index_of(column)
            .map_err(|_| Error::bug(format!("replay: column {column} is not in the stream")))?;
        let array = batch.column(index);
        Ok((!array.is_null(0))
            .then(|| array_value_to_string(array, 0).ok())
            .flatten())
    };
    let Some(mine) = text(cursor)? else {
        return Ok(false);
    };
    let mut key = Vec::new();
    for column in &stream.primary_key {
        let Some(value) = text(column)? else {
            return Ok(false);
        };
        key.push(value);
    }
    let Some(store) = session.dead_letters() else {
        return Ok(false);
    };
    let stored = store.live_cursors(stream, &key).await?;
    Ok(stored.iter().any(|theirs| newer_or_equal(theirs, &mine)))
}

/// Whether cursor text `theirs` (as the database prints it) is at least `mine` (as Arrow
/// prints it): as instants when both are times, numbers when both are numbers, else text.
fn newer_or_equal(theirs: &str, mine: &str) -> bool {
    if let (Some(a), Some(b)) = (
        crate::datatests::parse_time(theirs),
        crate::datatests::parse_time(mine),
    ) {
        return a >= b;
    }
    if let (Ok(a), Ok(b)) = (theirs.parse::<f64>(), mine.parse::<f64>()) {
        return a >= b;
    }
    theirs >= mine
}
