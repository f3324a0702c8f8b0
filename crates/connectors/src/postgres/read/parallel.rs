//! Parallel reads of one table (`parallelism` above 1): the range of a single-column
//! integer primary key split into parts, each read by binary COPY on a connection of its
//! own inside the snapshot the reading connection exported (`pg_export_snapshot()`, then
//! `SET TRANSACTION SNAPSHOT`), so together the parts are exactly the rows one read of
//! that snapshot returns. There are four parts per connection; at most `parallelism` are
//! read at once. Batches of the parts interleave on the stream.
//!
//! Checkpoints: an incremental first load reads each part in key order and checkpoints,
//! after every batch, the parts with the last key each has sent (see `ranges.rs`); a killed
//! run resumes only the unfinished parts, in a new snapshot but up to the same cursor
//! bound, and the end leaves the usual keyset watermark. A full refresh checkpoints an
//! empty state, only to let the destination flush, as a read on one connection does.
//!
//! Not here: which streams read in parallel (`mod.rs`): not backfill windows, not
//! incremental runs after the first load, not tables without such a key.

use std::sync::Arc;

use elt_core::arrow::array::{Array, Int64Array};
use elt_core::arrow::compute::cast;
use elt_core::arrow::datatypes::{DataType, SchemaRef};
use elt_core::arrow::record_batch::RecordBatch;
use elt_core::{Emitter, Error, Result, StreamState, quote_ident};
use sqlx::Executor;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use super::super::conn::Target;
use super::super::copy::{CopyBatches, CopyDecoder};
use super::super::types::Kind;
use super::ranges::{Part, Ranges};
use super::{Keyset, Reader, set_parameter, setting};

/// Parts per connection: a connection whose part ends takes the next one, so keys that
/// bunch in one part of the range still keep every connection busy.
const RANGES_PER_CONNECTION: usize = 4;

/// What a part's reader tells the coordinating read.
enum Event {
    /// Rows of part `.0`, in key order when the read is incremental.
    Batch(usize, RecordBatch),
    /// Part `.0` sent all its rows.
    Done(usize),
    /// Part's reader failed.
    Failed(Error),
}

/// How one part is read, owned so that it runs on a task of its own.
struct PartRead {
    index: usize,
    part: Part,
    target: Arc<Target>,
    snapshot: String,
    sql: String,
    upper: Option<String>,
    schema: SchemaRef,
    kinds: Arc<Vec<Kind>>,
    batch_rows: usize,
    what: String,
}

impl Reader<'_> {
    /// Reads the table in `ranges` (new, or left by a killed run) on up to `parallelism`
    /// connections; `key` is the index of the integer key column.
    pub(super) async fn copy_parallel(
        &mut self,
        target: &Arc<Target>,
        key: usize,
        ranges: Option<Ranges>,
        out: &mut Emitter,
    ) -> Result<()> {
        let incremental = self.stream.sync_mode == elt_core::SyncMode::Incremental;
        let keyset = self.keyset()?.filter(|_| incremental);
        let end_keyset = self.keyset()?;
        let Some(mut ranges) = (match ranges {
            Some(r) => Some(r),
            None => self.split(key, keyset.as_ref(), out).await?,
        }) else {
            return Ok(());
        };
        if let Some(upper) = &ranges.upper {
            self.set("elt.upper", upper).await?;
        }
        let snapshot = self.export_snapshot().await?;
        let open = ranges.parts.iter().filter(|p| !p.done).count();
        let connections = open.min(self.stream.parallelism.max(1));
        out.note(format!(
            "read {open} of {} key ranges on {connections} connections in one snapshot",
            ranges.parts.len()
        ));
        let (tx, mut rx) = mpsc::channel(1);
        let permits = Arc::new(Semaphore::new(self.stream.parallelism.max(1)));
        let kinds: Arc<Vec<Kind>> =
            Arc::new(self.table.columns.iter().map(|c| c.kind.clone()).collect());
        let mut readers = JoinSet::new();
        for (index, part) in ranges.parts.iter().enumerate().filter(|(_, p)| !p.done) {
            let read = PartRead {
                index,
                part: part.clone(),
                target: target.clone(),
                snapshot: snapshot.clone(),
                sql: self.part_sql(key, keyset.as_ref(), part),
                upper: ranges.upper.clone(),
                schema: elt_core::catalog::schema(self.table.fields()),
                kinds: kinds.clone(),
                batch_rows: self.config.batch_rows,
                what: format!("{} (key range {})", self.stream.name(), index + 1),
            };
            let (tx, permits) = (tx.clone(), permits.clone());
            readers.spawn(async move {
                let Ok(_permit) = permits.acquire().await else {
                    return;
                };
                let index = read.index;
                let event = match read.run(&tx).await {
                    Ok(()) => Event::Done(index),
                    Err(e) => Event::Failed(e),
                };
                let _ = tx.send(event).await;
            });
        }
        drop(tx);
        while let Some(event) = rx.recv().await {
            match event {
                Event::Failed(e) => return Err(e),
                Event::Batch(index, batch) => {
                    let last = last_key(&batch, key);
                    out.batch(batch).await?;
                    ranges.parts[index].after = last.or(ranges.parts[index].after);
                }
                Event::Done(index) => ranges.parts[index].done = true,
            }
            if ranges.is_done() {
                break;
            }
            let state = if incremental {
                ranges.state()
            } else {
                StreamState::empty()
            };
            out.checkpoint(state).await?;
        }
        readers.shutdown().await;
        if !ranges.is_done() {
            return Err(Error::transient(format!(
                "a reader of {} stopped before its key range ended",
                self.stream.name()
            )));
        }
        let end = match (&keyset, &end_keyset) {
            (Some(ks), _) => self.last_row(ks, true).await?,
            (None, Some(ks)) => self.last_row(ks, false).await?,
            (None, None) => None,
        };
        out.checkpoint(end.unwrap_or_else(StreamState::empty)).await
    }

    /// New ranges over the key's current bounds, with the cursor's upper bound of an
    /// incremental read; None when there is nothing to read.
    async fn split(
        &mut self,
        key: usize,
        keyset: Option<&Keyset<'_>>,
        out: &Emitter,
    ) -> Result<Option<Ranges>> {
        let upper = match keyset {
            Some(ks) => match self.upper(ks, out).await? {
                Some(upper) => Some(upper),
                None => return Ok(None),
            },
            None => None,
        };
        let (table, k) = (
            self.quoted_name(),
            quote_ident(&self.table.columns[key].name),
        );
        let bound = |f: &str| format!("SELECT {f}({k})::text FROM {table}");
        let (Some(min), Some(max)) = (
            self.scalar(&bound("min")).await?,
            self.scalar(&bound("max")).await?,
        ) else {
            return Ok(None);
        };
        let parse = |v: String| {
            v.parse::<i64>()
                .map_err(|e| Error::bug(format!("key bound {v:?} is not an integer: {e}")))
        };
        let parts = self.stream.parallelism.max(1) * RANGES_PER_CONNECTION;
        Ok(Some(Ranges::split(parse(min)?, parse(max)?, parts, upper)))
    }

    /// Exports the reading transaction's snapshot for the parts' connections.
    async fn export_snapshot(&mut self) -> Result<String> {
        let id = self.scalar("SELECT pg_export_snapshot()").await?;
        // An id is hex digits and dashes; anything else would not be safe in SQL text.
        id.filter(|id| id.chars().all(|c| c.is_ascii_hexdigit() || c == '-'))
            .ok_or_else(|| Error::bug("pg_export_snapshot() returned no usable snapshot id"))
    }

    /// The COPY of one part: the key's bounds it has, and in an incremental read the
    /// cursor's bound, key order and the resume position. The values come from
    /// `set_config` parameters (see [`PartRead::run`]).
    fn part_sql(&self, key: usize, keyset: Option<&Keyset<'_>>, part: &Part) -> String {
        let column = &self.table.columns[key];
        let (k, ty) = (quote_ident(&column.name), column.sql_type.as_str());
        let mut filters = Vec::new();
        if part.from.is_some() {
            filters.push(format!("{k} >= {}", setting("from", ty)));
        }
        if part.to.is_some() {
            filters.push(format!("{k} < {}", setting("to", ty)));
        }
        let mut order = String::new();
        if let Some(ks) = keyset {
            let cursor = ks.cursor.1;
            filters.push(format!(
                "{} <= {}",
                quote_ident(&cursor.name),
                setting("upper", &cursor.sql_type)
            ));
            if part.after.is_some() {
                filters.push(format!("{k} > {}", setting("after", ty)));
            }
            order = format!(" ORDER BY {k}");
        }
        let filter = if filters.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", filters.join(" AND "))
        };
        format!(
            "COPY (SELECT {} FROM {}{filter}{order}) TO STDOUT (FORMAT binary)",
            self.select_list(),
            self.quoted_name()
        )
    }
}

impl PartRead {
    /// Reads the part on a new connection in the exported snapshot.
    async fn run(self, tx: &mpsc::Sender<Event>) -> Result<()> {
        let target = &self.target;
        let mut conn = target.connect().await?;
        let begin = format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET TRANSACTION SNAPSHOT '{}'",
            self.snapshot
        );
        conn.execute(begin.as_str())
            .await
            .map_err(|e| target.error("joining the read's snapshot", e))?;
        let (from, to, after) = (self.part.from, self.part.to, self.part.after);
        let bounds = [("elt.from", from), ("elt.to", to), ("elt.after", after)];
        for (name, value) in bounds {
            if let Some(value) = value {
                set_parameter(&mut conn, target, name, &value.to_string()).await?;
            }
        }
        if let Some(upper) = &self.upper {
            set_parameter(&mut conn, target, "elt.upper", upper).await?;
        }
        let decoder = CopyDecoder::new(self.schema.clone(), &self.kinds);
        let mut batches = CopyBatches::start(
            &mut conn,
            target,
            &self.what,
            &self.sql,
            decoder,
            self.batch_rows,
        )
        .await?;
        while let Some((batch, _)) = batches.next().await? {
            tx.send(Event::Batch(self.index, batch))
                .await
                .map_err(|_| Error::permanent("the read stopped before its key ranges"))?;
        }
        drop(batches);
        conn.execute("COMMIT")
            .await
            .map(drop)
            .map_err(|e| target.error("ending a key range's read", e))
    }
}

/// The key of a batch's last row (the highest, as parts are read in key order).
fn last_key(batch: &RecordBatch, key: usize) -> Option<i64> {
    let column = batch.column(key);
    let last = column.slice(column.len().checked_sub(1)?, 1);
    let last = cast(&last, &DataType::Int64).ok()?;
    let last = last.as_any().downcast_ref::<Int64Array>()?;
    (!last.is_null(0)).then(|| last.value(0))
}

/// The integer key column a read of `stream` splits into ranges, and the ranges a killed
/// parallel read left in `state`; None to read on one connection: no `parallelism` and
/// nothing left to resume, a backfill window, an incremental run after the first load, or
/// a key that is not a single integer column (with a note).
pub(super) fn plan(
    reader: &Reader<'_>,
    state: Option<&StreamState>,
    out: &Emitter,
) -> Result<Option<(usize, Option<Ranges>)>> {
    let stream = reader.stream;
    let ranges = match state {
        Some(state) => Ranges::of(state)?,
        None => None,
    };
    let resuming_cursor = state.is_some_and(|s| s.cursor.is_some());
    if stream.backfill.is_some()
        || (stream.parallelism <= 1 && ranges.is_none())
        || (ranges.is_none() && resuming_cursor)
    {
        return Ok(None);
    }
    let columns = &reader.table.columns;
    let key = match stream.primary_key.as_slice() {
        [key] => columns.iter().position(|c| &c.name == key),
        _ => None,
    };
    match key.filter(|&i| matches!(columns[i].kind, Kind::Int16 | Kind::Int32 | Kind::Int64)) {
        Some(key) => Ok(Some((key, ranges))),
        None => {
            out.note(
                "`parallelism` splits a single-column integer primary key into ranges; this \
                 stream has none, so it was read on one connection",
            );
            Ok(None)
        }
    }
}
