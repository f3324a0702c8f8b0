//! What flows from a source to a destination, and the [`Emitter`] sources send it with.
//!
//! One sync of one stream is a source task and a destination task joined by a bounded
//! channel of [`Message`]s: its capacity (in batches) is the backpressure that keeps memory
//! flat. A checkpoint promises that every row before it was sent; the destination commits
//! the rows and that state together. [`Message::Complete`] is sent by the runner, never by
//! a connector, once the source has returned without error.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::state::StreamState;

/// One item on the channel between source and destination.
#[derive(Debug)]
pub enum Message {
    /// Rows of the stream, in the stream's schema.
    Batch(RecordBatch),
    /// Records that failed a check, for `_elt_dead_letter`; committed with the rows of the
    /// same checkpoint, so a record is in the raw table or the dead-letter table, never
    /// both or neither.
    DeadLetters(Vec<DeadLetter>),
    /// Ids of `_elt_dead_letter` records that were replayed (or are superseded): deleted in
    /// the same commit as the rows sent with them, so a replay loads a record exactly once.
    Replayed(Vec<String>),
    /// Every row before this was sent; commit them together with this state.
    Checkpoint(StreamState),
    /// The source emptied the stream's table (a TRUNCATE seen by change data capture):
    /// every row loaded before this is deleted, as a delete of each would (merge marks or
    /// removes them). Rows sent after it are loaded as usual.
    Truncate,
    /// The source finished the stream without error: commit what is pending.
    Complete,
}

/// A record that failed a check (a JSON Schema, a schema contract), on its way to the
/// dead-letter table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Why it failed, readable (`/amount: "12" is not of type "number"`).
    pub reason: String,
    /// The record as JSON, as the source sent it.
    pub record: String,
}

/// Checks each batch a source sends before the destination gets it: the rows that pass go
/// on (in [`BatchCheck::output_schema`]), the others to the dead-letter table.
pub trait BatchCheck: Send + Sync {
    /// The schema of the batches that go on.
    fn output_schema(&self) -> SchemaRef;
    /// Splits a batch into the rows that pass (None when none do) and dead letters.
    fn check(&self, batch: RecordBatch) -> Result<(Option<RecordBatch>, Vec<DeadLetter>)>;
}

/// Sees every batch on its way to the destination, after the checks (such as the
/// runner's column sketches for profiles). It runs on the source's task, so it should hand
/// any heavy work elsewhere and return (waiting, at most, for room in a short queue).
pub trait BatchObserver: Send + Sync {
    /// Looks at a batch that goes on to the destination.
    fn observe(&self, batch: &RecordBatch);
}

/// Counters of one stream's read, shared with the runner's progress display.
#[derive(Debug, Default)]
pub struct ReadStats {
    /// Rows the source sent so far (extracted), dead-lettered ones included.
    pub rows: AtomicU64,
    /// Rows that went to the dead-letter table.
    pub dead_lettered: AtomicU64,
    /// Approximate Arrow bytes sent so far.
    pub bytes: AtomicU64,
    /// The source stopped early because the stream's columns changed at the source (seen
    /// in a change log): the runner plans the stream again and reads on.
    pub replan: std::sync::atomic::AtomicBool,
    notes: Mutex<Vec<String>>,
}

impl ReadStats {
    /// Rows sent so far.
    pub fn rows(&self) -> u64 {
        self.rows.load(Ordering::Relaxed)
    }

    /// The notes the source left for the run summary.
    pub fn notes(&self) -> Vec<String> {
        self.notes.lock().map(|n| n.clone()).unwrap_or_default()
    }
}

/// The sending side a source writes its stream to.
pub struct Emitter {
    tx: mpsc::Sender<Message>,
    schema: SchemaRef,
    /// The schema sources build batches in, when it differs from `schema` (columns left
    /// out, columns hashed).
    source_schema: Option<SchemaRef>,
    /// The columns of `source_schema` the stream leaves out.
    left_out: Vec<String>,
    hasher: Option<crate::hashing::Hasher>,
    stats: Arc<ReadStats>,
    frozen: Option<StreamState>,
    check: Option<Arc<dyn BatchCheck>>,
    observer: Option<Arc<dyn BatchObserver>>,
}

impl Emitter {
    /// An emitter for a stream with `schema`, sending on `tx`.
    pub fn new(tx: mpsc::Sender<Message>, schema: SchemaRef, stats: Arc<ReadStats>) -> Self {
        Self {
            tx,
            schema,
            source_schema: None,
            left_out: Vec::new(),
            hasher: None,
            stats,
            frozen: None,
            check: None,
            observer: None,
        }
    }

    /// Passes every batch through `check` before sending it.
    #[must_use]
    pub fn with_check(mut self, check: Arc<dyn BatchCheck>) -> Self {
        self.check = Some(check);
        self
    }

    /// Shows every batch that goes on to the destination to `observer`.
    #[must_use]
    pub fn with_observer(mut self, observer: Arc<dyn BatchObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Lets the source build batches in `source_schema`, the discovered schema of a stream
    /// that reads only some columns or hashes some: each batch is put in the stream's
    /// schema (its columns by name, hashed ones hashed) before it is checked or sent, so
    /// left-out columns and clear values never reach a check, a dead letter or the
    /// destination. Sources that select columns themselves send just those columns.
    #[must_use]
    pub fn with_source_schema(mut self, source_schema: SchemaRef) -> Self {
        self.left_out = crate::catalog::left_out(&source_schema, &self.schema);
        self.source_schema = Some(source_schema);
        self
    }

    /// Hashes columns of every batch, and of the records of dead letters the source sends,
    /// before anything else sees them (see [`crate::hashing`]).
    #[must_use]
    pub fn with_hasher(mut self, hasher: crate::hashing::Hasher) -> Self {
        self.hasher = Some(hasher);
        self
    }

    /// Makes every checkpoint carry `state` instead of the source's position: a backfill
    /// commits its rows without moving the watermark.
    #[must_use]
    pub fn with_frozen_state(mut self, state: StreamState) -> Self {
        self.frozen = Some(state);
        self
    }

    /// Sends a batch; waits while the destination is behind. A batch whose schema differs
    /// from the discovered one is refused (a connector bug), as is an empty batch's waste.
    pub async fn batch(&mut self, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let batch = if self.source_schema.is_some() {
            self.conform(batch)?
        } else {
            batch
        };
        if !Arc::ptr_eq(&batch.schema(), &self.schema)
            && batch.schema().fields() != self.schema.fields()
        {
            return Err(Error::bug(format!(
                "the source emitted a batch with schema {:?}, but discovered {:?}",
                batch.schema(),
                self.schema
            )));
        }
        let rows = batch.num_rows() as u64;
        let bytes = batch.get_array_memory_size() as u64;
        let (batch, dead) = match &self.check {
            Some(check) => check.check(batch)?,
            None => (Some(batch), Vec::new()),
        };
        let dead_count = dead.len() as u64;
        if !dead.is_empty() {
            self.send(Message::DeadLetters(dead)).await?;
        }
        if let Some(batch) = batch.filter(|b| b.num_rows() > 0) {
            if let Some(observer) = &self.observer {
                observer.observe(&batch);
            }
            self.send(Message::Batch(batch)).await?;
        }
        self.stats.rows.fetch_add(rows, Ordering::Relaxed);
        self.stats
            .dead_lettered
            .fetch_add(dead_count, Ordering::Relaxed);
        self.stats.bytes.fetch_add(bytes, Ordering::Relaxed);
        Ok(())
    }

    /// Sends records the source read but cannot put in the stream's schema (a value of the
    /// wrong type) to the dead-letter table; they count as read. Columns the stream leaves
    /// out are removed from them first.
    pub async fn dead_letters(&mut self, mut dead: Vec<DeadLetter>) -> Result<()> {
        if dead.is_empty() {
            return Ok(());
        }
        if !self.left_out.is_empty() {
            for letter in &mut dead {
                letter.record = without_fields(&letter.record, &self.left_out);
            }
        }
        if let Some(hasher) = &self.hasher {
            for letter in &mut dead {
                letter.record = hasher.record(&letter.record);
            }
        }
        let count = dead.len() as u64;
        self.send(Message::DeadLetters(dead)).await?;
        self.stats.rows.fetch_add(count, Ordering::Relaxed);
        self.stats.dead_lettered.fetch_add(count, Ordering::Relaxed);
        Ok(())
    }

    /// Sends a checkpoint: every row sent before it is covered by `state`.
    pub async fn checkpoint(&mut self, state: StreamState) -> Result<()> {
        let state = self.frozen.clone().unwrap_or(state);
        self.send(Message::Checkpoint(state)).await
    }

    /// Sends [`Message::Truncate`]: every row sent before it, and every row already loaded,
    /// is deleted.
    pub async fn truncate(&mut self) -> Result<()> {
        self.send(Message::Truncate).await
    }

    /// Says that the read stopped early because the stream's columns changed at the source
    /// (after a checkpoint of everything before the change): the runner discovers the
    /// stream again, plans it (the schema contract decides) and reads on in the same run.
    pub fn replan(&self) {
        self.stats.replan.store(true, Ordering::Relaxed);
    }

    /// Leaves a note for the run summary (such as "42 rows with a NULL cursor were not read").
    pub fn note(&self, text: impl Into<String>) {
        if let Ok(mut notes) = self.stats.notes.lock() {
            notes.push(text.into());
        }
    }

    /// The schema the source builds batches in: the stream's, or the discovered one of a
    /// stream that selects or hashes columns (see [`Self::with_source_schema`]).
    pub fn schema(&self) -> &SchemaRef {
        self.source_schema.as_ref().unwrap_or(&self.schema)
    }

    /// A batch in the discovered schema, or in a narrower one a source selected, as the
    /// stream's: its columns by name, the hashed ones hashed. A batch that lacks a column
    /// is left for the schema check to refuse.
    fn conform(&self, batch: RecordBatch) -> Result<RecordBatch> {
        let mut columns = Vec::with_capacity(self.schema.fields().len());
        for field in self.schema.fields() {
            let Ok(index) = batch.schema().index_of(field.name()) else {
                return Ok(batch);
            };
            let column = batch.column(index);
            match &self.hasher {
                Some(h) if h.hashes(field.name()) => columns.push(h.column(column)?),
                _ => columns.push(column.clone()),
            }
        }
        RecordBatch::try_new(self.schema.clone(), columns)
            .map_err(|e| Error::bug(format!("putting a batch in the stream's columns: {e}")))
    }

    async fn send(&self, message: Message) -> Result<()> {
        self.tx
            .send(message)
            .await
            .map_err(|_| Error::permanent("the destination stopped before the source finished"))
    }
}

/// `record` (JSON text) without the top-level `fields`; a record that is not a JSON object
/// cannot hold them and stays as it is.
fn without_fields(record: &str, fields: &[String]) -> String {
    match serde_json::from_str::<serde_json::Value>(record) {
        Ok(serde_json::Value::Object(mut object)) => {
            for field in fields {
                object.remove(field);
            }
            serde_json::Value::Object(object).to_string()
        }
        _ => record.to_owned(),
    }
}
