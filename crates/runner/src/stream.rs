//! One stream of a sync: its `_elt_runs` row, its checks (schema contract, JSON Schema),
//! attempts that each run the source and the destination over a bounded channel and resume
//! from the last committed checkpoint after a transient error, then the limits and the
//! hard-delete reconciliation it asks for, and its report.
//!
//! What it does not do: choose the streams (`plan.rs`) or hold the destination session
//! (`engine.rs` opens one per run and hands it to each stream in turn).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use backoff::backoff::Backoff;
use elt_core::hashing::Hasher;
use elt_core::message::ReadStats;
use elt_core::{
    BatchCheck, BatchObserver, ConfiguredStream, DestinationSession, Emitter, Error, ErrorKind,
    Message, Result, RunInfo, RunRecord, RunStatus, Source, StreamState, SyncMode, WriteSummary,
    bounds,
};
use tokio::sync::mpsc;

use crate::config::{Connection, SchemaContract};
use crate::options::SyncOptions;
use crate::reconcile::Reconciled;
use crate::report::StreamReport;
use crate::retry::retry_backoff;

/// What every stream of one run shares.
pub(crate) struct RunContext<'a> {
    pub source: &'a dyn Source,
    pub run: &'a RunInfo,
    pub config: &'a Connection,
    pub options: &'a SyncOptions,
}

/// Syncs one stream, starting from its committed state `before`, showing every batch that
/// goes to the destination to `observer`; a failure is in the report, not an `Err`.
pub(crate) async fn run_stream(
    session: &mut dyn DestinationSession,
    ctx: &RunContext<'_>,
    stream: &ConfiguredStream,
    before: Option<StreamState>,
    notes: Vec<String>,
    observer: Option<Arc<dyn BatchObserver>>,
) -> StreamReport {
    let mut this = StreamRun::new(ctx, stream, before, notes);
    this.observer = observer;
    tracing::info!(
        sync_mode = %stream.sync_mode,
        write_mode = %stream.write_mode,
        watermark_before = this.record.watermark_before.as_deref(),
        "stream starting"
    );
    let outcome = this.run(session).await;
    this.finish(session, outcome).await
}

/// A stream's progress through one run.
struct StreamRun<'a> {
    ctx: &'a RunContext<'a>,
    stream: &'a ConfiguredStream,
    started: Instant,
    record: RunRecord,
    notes: Vec<String>,
    /// The last committed state.
    state: Option<StreamState>,
    attempts: u32,
    /// Rows the destination received and committed, over every attempt.
    received: u64,
    dead_lettered: u64,
    observer: Option<Arc<dyn BatchObserver>>,
    replan: bool,
    measures: crate::report::Measures,
}

/// The stream as the destination gets it: in the checks' schema, with the checks.
struct Checked {
    write_stream: ConfiguredStream,
    /// The hashing of the stream's `hash` columns, with the resolved salt.
    hasher: Option<Hasher>,
    check: Option<Arc<dyn BatchCheck>>,
    /// Succeeded runs since the last reconciliation, when the stream reconciles.
    runs_since_reconcile: Option<u64>,
}

impl<'a> StreamRun<'a> {
    fn new(
        ctx: &'a RunContext<'a>,
        stream: &'a ConfiguredStream,
        before: Option<StreamState>,
        notes: Vec<String>,
    ) -> Self {
        let record = RunRecord {
            run_id: ctx.run.run_id.clone(),
            connection: ctx.run.connection.clone(),
            stream: stream.name().to_owned(),
            started_at_us: chrono::Utc::now().timestamp_micros(),
            ended_at_us: None,
            status: RunStatus::Running,
            rows_read: 0,
            rows_loaded: 0,
            watermark_before: before.as_ref().and_then(StreamState::watermark),
            watermark_after: None,
            extract_secs: 0.0,
            load_secs: 0.0,
            error: None,
        };
        Self {
            ctx,
            stream,
            started: Instant::now(),
            record,
            notes,
            state: before,
            attempts: 0,
            received: 0,
            dead_lettered: 0,
            observer: None,
            replan: false,
            measures: Default::default(),
        }
    }

    async fn run(&mut self, session: &mut dyn DestinationSession) -> Result<Option<Reconciled>> {
        record_run(session, &self.record).await?;
        let checked = self.prepare(session).await?;
        self.attempt_until_done(session, &checked).await?;
        if let Some(limit) = self.ctx.options.max_dead_letter
            && limit.exceeded(self.dead_lettered, self.record.rows_read)
        {
            return Err(Error::data(format!(
                "stream {}: {} of {} records went to _elt_dead_letter, above --max-dead-letter \
                 {limit} (they and the loaded rows are committed; see `elt dead-letter list`)",
                self.stream.name(),
                self.dead_lettered,
                self.record.rows_read
            )));
        }
        let reconciled = self
            .reconcile_if_due(session, checked.runs_since_reconcile)
            .await?;
        // Every extracted record is loaded or dead-lettered: checked on every clean run (a
        // retried attempt re-reads rows that its failed predecessor read but did not commit).
        if self.attempts == 1 && self.record.rows_read != self.received + self.dead_lettered {
            return Err(Error::bug(format!(
                "stream {}: {} records extracted but {} reached the raw table and {} the \
                 dead-letter table",
                self.stream.name(),
                self.record.rows_read,
                self.received,
                self.dead_lettered
            )));
        }
        Ok(reconciled)
    }

    /// Asks what must be known before reading: whether reconciliation is due (so a
    /// destination that cannot reconcile fails early), a frozen schema, the checks.
    async fn prepare(&mut self, session: &mut dyn DestinationSession) -> Result<Checked> {
        let stream = self.stream;
        elt_core::cdc::refuse_switch_off(stream, self.state.as_ref(), &self.ctx.run.connection)?;
        let runs_since_reconcile = match stream.deletes.reconcile_every {
            Some(_) => Some(
                crate::reconcile::key_digests(session)?
                    .runs_since_reconcile(stream)
                    .await?,
            ),
            None => None,
        };
        if self.ctx.config.contract_of(stream.name()) == SchemaContract::Freeze {
            crate::checks::frozen(session, stream).await?;
        }
        let mut write_stream = stream.clone();
        let check = crate::checks::for_stream(session, self.ctx.config, stream, &mut self.notes)
            .await?
            .map(|c| {
                write_stream.stream.schema = c.output_schema();
                Arc::new(c) as Arc<dyn BatchCheck>
            });
        let hasher = match (&self.ctx.config.hash_salt, stream.hashed.is_empty()) {
            (Some(salt), false) => {
                let salt = salt
                    .resolve()
                    .map_err(|e| Error::config(format!("`hash_salt`: {}", e.message())))?;
                Some(Hasher::new(stream.hashed.clone(), salt.expose()))
            }
            _ => None,
        };
        Ok(Checked {
            write_stream,
            hasher,
            check,
            runs_since_reconcile,
        })
    }

    /// Attempts the stream until it completes, retrying transient errors (and waiting for
    /// a stream lease held elsewhere, within --wait-for-lock) from the last commit.
    async fn attempt_until_done(
        &mut self,
        session: &mut dyn DestinationSession,
        checked: &Checked,
    ) -> Result<()> {
        let (name, options) = (self.stream.name(), self.ctx.options);
        let mut backoff = retry_backoff();
        let lock_deadline = options
            .wait_for_lock
            .map(|w| bounds::deadline(self.started, w));
        loop {
            self.attempts += 1;
            let stats = Arc::new(ReadStats::default());
            if let Some(observer) = &options.observer {
                observer.stream_started(name, stats.clone());
            }
            if self.attempts > 1 {
                // What the failed attempt committed is the truth: resume from there.
                self.state = session.state().await?.remove(name);
            }
            let error = match self.attempt(session, checked, stats).await {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            let wait = if error.kind() == ErrorKind::Locked
                && lock_deadline.is_some_and(|d| Instant::now() < d)
            {
                tracing::info!(stream = %name, %error, "waiting for the stream's lock");
                Duration::from_secs(1)
            } else if error.is_retryable() && self.attempts <= self.ctx.config.max_retries {
                let wait = backoff.next_backoff().unwrap_or(Duration::from_secs(30));
                if let Some(observer) = &options.observer {
                    observer.retrying(name, &error, wait);
                }
                tracing::warn!(stream = %name, %error, ?wait, "retrying from the last checkpoint");
                wait
            } else {
                return Err(error);
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// One try: the source and the destination run concurrently over a bounded channel.
    async fn attempt(
        &mut self,
        session: &mut dyn DestinationSession,
        checked: &Checked,
        stats: Arc<ReadStats>,
    ) -> Result<()> {
        let (stream, source) = (self.stream, self.ctx.source);
        let read_from = match stream.sync_mode {
            SyncMode::Incremental | SyncMode::Cdc => self.state.clone(),
            SyncMode::FullRefresh => None,
        };
        let (tx, rx) = mpsc::channel(self.ctx.config.channel_batches);
        let mut emitter = Emitter::new(tx.clone(), stream.schema().clone(), stats.clone());
        if let Some(discovered) = &stream.discovered {
            emitter = emitter.with_source_schema(discovered.clone());
        }
        if let Some(hasher) = &checked.hasher {
            emitter = emitter.with_hasher(hasher.clone());
        }
        if let Some(check) = checked.check.clone() {
            emitter = emitter.with_check(check);
        }
        if let Some(observer) = self.observer.clone() {
            emitter = emitter.with_observer(observer);
        }
        if stream.backfill.is_some() {
            let frozen = read_from.clone().unwrap_or_else(StreamState::empty);
            emitter = emitter.with_frozen_state(frozen);
        }
        let read = async move {
            let started = Instant::now();
            let mut result = source.read(stream, read_from, &mut emitter).await;
            drop(emitter);
            if result.is_ok() && tx.send(Message::Complete).await.is_err() {
                result = Err(Error::permanent(
                    "the destination stopped before the source finished",
                ));
            }
            (result, started.elapsed().as_secs_f64())
        };
        let write = session.write(self.ctx.run, &checked.write_stream, rx);
        let ((read_result, extract_secs), (summary, write_result)) = tokio::join!(read, write);
        self.count(&stats, extract_secs, summary);
        // A destination failure makes the source fail too ("destination stopped"): report
        // the cause.
        write_result.and(read_result.map_err(|e| e.in_stream(stream.name())))
    }

    /// Adds one attempt's numbers to the stream's.
    fn count(&mut self, stats: &ReadStats, extract_secs: f64, mut summary: WriteSummary) {
        self.record.rows_read += stats.rows();
        self.measures.bytes_read += stats.bytes.load(Ordering::Relaxed);
        self.measures.commit_secs.append(&mut summary.commit_secs);
        self.measures.batch_secs.append(&mut summary.batch_secs);
        self.replan |= stats.replan.load(Ordering::Relaxed);
        self.dead_lettered += stats.dead_lettered.load(Ordering::Relaxed);
        self.notes.extend(stats.notes());
        self.notes.append(&mut summary.notes);
        self.record.extract_secs += extract_secs;
        self.record.rows_loaded += summary.rows_loaded;
        self.received += summary.rows_received;
        self.record.load_secs += summary.load_secs;
        if summary.state.is_some() {
            self.state = summary.state;
        }
    }

    /// Looks for hard deletes when the stream asks for it this run: `--reconcile-deletes`,
    /// or at least every `reconcile_deletes_every` runs (counting this one; `runs_since`
    /// counts the succeeded runs since the last reconciliation).
    async fn reconcile_if_due(
        &self,
        session: &mut dyn DestinationSession,
        runs_since: Option<u64>,
    ) -> Result<Option<Reconciled>> {
        let stream = self.stream;
        let (Some(every), Some(runs_since)) = (stream.deletes.reconcile_every, runs_since) else {
            return Ok(None);
        };
        if runs_since + 1 < u64::from(every) {
            return Ok(None);
        }
        let keys = crate::reconcile::key_digests(session)?;
        let done = crate::reconcile::reconcile(self.ctx.source, keys, self.ctx.run, stream).await?;
        tracing::info!(
            rows_deleted = done.rows_deleted,
            ranges_digested = done.ranges_digested,
            source_keys_listed = done.source_keys_listed,
            secs = done.secs,
            "deletes reconciled"
        );
        Ok(Some(done))
    }

    /// Closes the stream's `_elt_runs` row and builds its report.
    async fn finish(
        mut self,
        session: &mut dyn DestinationSession,
        outcome: Result<Option<Reconciled>>,
    ) -> StreamReport {
        let (error, reconciled) = match outcome {
            Ok(reconciled) => (None, reconciled),
            Err(e) => (Some(e), None),
        };
        let record = &mut self.record;
        record.ended_at_us = Some(chrono::Utc::now().timestamp_micros());
        record.status = match error {
            Some(_) => RunStatus::Failed,
            None => RunStatus::Succeeded,
        };
        record.watermark_after = self.state.as_ref().and_then(StreamState::watermark);
        record.error = error.as_ref().map(elt_core::Error::detail);
        tracing::info!(
            status = record.status.as_str(),
            rows_read = record.rows_read,
            rows_loaded = record.rows_loaded,
            watermark_after = record.watermark_after.as_deref(),
            duration_secs = self.started.elapsed().as_secs_f64(),
            error = record.error.as_deref(),
            "stream finished"
        );
        if let Err(e) = record_run(session, record).await {
            tracing::warn!(stream = %record.stream, error = %e, "could not record the run in _elt_runs");
        }
        let record = self.record;
        StreamReport {
            stream: record.stream,
            table: self.stream.table.clone(),
            sync_mode: self.stream.sync_mode,
            write_mode: self.stream.write_mode,
            status: record.status.as_str(),
            rows_read: record.rows_read,
            rows_loaded: record.rows_loaded,
            rows_dead_lettered: self.dead_lettered,
            deletes_reconciled: reconciled.is_some(),
            rows_deleted: reconciled.map_or(0, |r| r.rows_deleted),
            watermark_before: record.watermark_before,
            watermark_after: record.watermark_after,
            duration_secs: self.started.elapsed().as_secs_f64(),
            attempts: self.attempts,
            notes: self.notes,
            error_kind: error.as_ref().map(Error::kind),
            error: record.error,
            replan: self.replan,
            measures: self.measures,
        }
    }
}

/// Records `record` in the destination's run log, when it keeps one.
async fn record_run(session: &mut dyn DestinationSession, record: &RunRecord) -> Result<()> {
    match session.run_log() {
        Some(log) => log.record_run(record).await,
        None => Ok(()),
    }
}
