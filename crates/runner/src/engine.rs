//! The sync engine: for each stream, a source task and a destination task joined by a
//! bounded channel, with retries of transient errors from the last committed checkpoint.
//!
//! Streams run one after another in one destination session (which holds the lock). A
//! stream that fails does not stop the others unless the failure is about the whole run
//! (configuration, lock); the report says which streams committed. Memory is bounded by the
//! channel's capacity in batches plus what the source and destination hold for one batch.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use backoff::backoff::Backoff;
use elt_core::capability::KeyDigests;
use elt_core::message::ReadStats;
use elt_core::{
    BatchCheck, ConfiguredStream, Destination, DestinationSession, Emitter, Error, ErrorKind,
    Message, Result, RunInfo, RunRecord, RunStatus, Source, StreamState, SyncMode, bounds,
};
use tokio::sync::mpsc;
use tracing::Instrument;

pub use crate::checks::DeadLetterLimit;
use crate::config::{Connection, Project, SchemaContract};
use crate::plan::plan_streams;
use crate::report::{StreamReport, SyncReport};

/// What a caller may choose for one sync.
#[derive(Clone, Default)]
pub struct SyncOptions {
    /// Only these streams (of those the connection syncs).
    pub streams: Option<Vec<String>>,
    /// Ignore saved state and rebuild each stream's table.
    pub full_refresh: bool,
    /// Re-read this cursor window of each stream without moving its watermark.
    pub backfill: Option<elt_core::Backfill>,
    /// Told about progress; the CLI draws bars or prints lines.
    pub observer: Option<Arc<dyn Observer>>,
    /// How long to wait for a destination lock another run holds (none: fail at once).
    pub wait_for_lock: Option<Duration>,
    /// Look for hard deletes in every merge and history stream after it syncs.
    pub reconcile_deletes: bool,
    /// Fail a stream whose dead-lettered records exceed this count or share.
    pub max_dead_letter: Option<crate::checks::DeadLetterLimit>,
}

/// Hooks for progress display. Every method has an empty default.
pub trait Observer: Send + Sync {
    /// A stream began; `stats` counts its rows as they are read.
    fn stream_started(&self, _stream: &str, _stats: Arc<ReadStats>) {}
    /// A stream ended.
    fn stream_finished(&self, _report: &StreamReport) {}
    /// A transient error will be retried after `wait`.
    fn retrying(&self, _stream: &str, _error: &Error, _wait: Duration) {}
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// Syncs `connection` of `project`. Returns `Err` only when the run could not start or
/// could not go on at all (configuration, lock, discovery); a stream's failure is in the
/// report.
pub async fn sync(
    project: &Project,
    connection: &str,
    options: &SyncOptions,
) -> Result<SyncReport> {
    let started = Instant::now();
    let (config, source, destination) = project.connection(connection)?;
    let run = RunInfo {
        run_id: uuid::Uuid::now_v7().to_string(),
        connection: connection.to_owned(),
        started_at_us: now_us(),
    };
    let span = tracing::info_span!("sync", connection, run_id = %run.run_id);
    let reports = async {
        tracing::info!("sync starting");
        let catalog = with_retries(config.max_retries, || source.discover()).await?;
        let streams = plan_streams(&catalog, config, options)?;
        let mut session = open_waiting(
            destination,
            connection,
            &config.dataset,
            options.wait_for_lock,
        )
        .await?;
        let mut states = session.state().await?;
        let planned: Vec<ConfiguredStream> = streams.iter().map(|(s, _)| s.clone()).collect();
        let mut reports = Vec::new();
        for (stream, notes) in streams {
            let before = states.remove(stream.name());
            let report = run_stream(
                session.as_mut(),
                source,
                &run,
                config,
                &stream,
                before,
                notes,
                options,
            )
            .instrument(tracing::info_span!("stream", stream = stream.name()))
            .await;
            if let Some(observer) = &options.observer {
                observer.stream_finished(&report);
            }
            // A stream locked by another worker does not stop the others; a bug does.
            let fatal = report.error_kind == Some(ErrorKind::Bug);
            reports.push(report);
            if fatal {
                break;
            }
        }
        let mut tests = Vec::new();
        if config.test_after_sync {
            let synced: Vec<String> = planned.iter().map(|s| s.name().to_owned()).collect();
            tests = crate::datatests::run(
                session.as_mut(),
                &config.dataset,
                &planned,
                &config.tests,
                Some(&synced),
            )
            .await?;
        }
        Ok::<_, Error>((reports, tests))
    }
    .instrument(span.clone())
    .await?;
    let (reports, tests) = reports;
    let report = SyncReport {
        version: crate::report::REPORT_VERSION,
        run_id: run.run_id,
        connection: connection.to_owned(),
        status: SyncReport::outcome(&reports),
        // The run got this far, so both built their targets; an error here prints nothing.
        source: source.endpoint().ok().flatten(),
        destination: destination.endpoint().ok().flatten(),
        duration_secs: started.elapsed().as_secs_f64(),
        streams: reports,
        tests,
    };
    span.in_scope(|| tracing::info!(status = report.status.as_str(), "sync finished"));
    Ok(report)
}

/// Opens a destination session; while another run holds the lock, tries again every
/// second until `wait` has passed.
async fn open_waiting(
    destination: &dyn Destination,
    connection: &str,
    dataset: &str,
    wait: Option<Duration>,
) -> Result<Box<dyn DestinationSession>> {
    let deadline = wait.map(|w| bounds::deadline(Instant::now(), w));
    let mut told = false;
    loop {
        match destination.open(connection, dataset).await {
            Err(e) if e.kind() == ErrorKind::Locked => {
                let left = deadline
                    .map(|d| d.saturating_duration_since(Instant::now()))
                    .unwrap_or_default();
                if left.is_zero() {
                    let hint = match wait {
                        Some(w) => format!("still locked after waiting {}s", w.as_secs()),
                        None => "pass --wait-for-lock SECS to wait for it".to_owned(),
                    };
                    return Err(Error::locked(format!("{}; {hint}", e.message())));
                }
                if !told {
                    told = true;
                    tracing::warn!(error = %e, "waiting up to {}s for the lock", left.as_secs());
                }
                tokio::time::sleep(left.min(Duration::from_secs(1))).await;
            }
            other => return other,
        }
    }
}

/// Retries `work` on transient errors with exponential backoff.
async fn with_retries<T, F, Fut>(max_retries: u32, mut work: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut backoff = retry_backoff();
    let mut attempt = 0;
    loop {
        match work().await {
            Err(e) if e.is_retryable() && attempt < max_retries => {
                attempt += 1;
                let wait = backoff.next_backoff().unwrap_or(Duration::from_secs(30));
                tracing::warn!(error = %e, ?wait, "retrying after a transient error");
                tokio::time::sleep(wait).await;
            }
            other => return other,
        }
    }
}

fn retry_backoff() -> backoff::ExponentialBackoff {
    backoff::ExponentialBackoff {
        initial_interval: Duration::from_millis(500),
        max_interval: Duration::from_secs(30),
        max_elapsed_time: None,
        ..Default::default()
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_stream(
    session: &mut dyn DestinationSession,
    source: &dyn Source,
    run: &RunInfo,
    config: &Connection,
    stream: &ConfiguredStream,
    before: Option<StreamState>,
    mut notes: Vec<String>,
    options: &SyncOptions,
) -> StreamReport {
    let started = Instant::now();
    let name = stream.name().to_owned();
    let mut record = RunRecord {
        run_id: run.run_id.clone(),
        connection: run.connection.clone(),
        stream: name.clone(),
        started_at_us: now_us(),
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
    tracing::info!(
        sync_mode = %stream.sync_mode,
        write_mode = %stream.write_mode,
        watermark_before = record.watermark_before.as_deref(),
        "stream starting"
    );
    let mut error = record_run(session, &record).await.err();
    // Asked before reading, so a destination that cannot reconcile fails the stream early.
    let mut runs_since_reconcile = None;
    if error.is_none() && stream.deletes.reconcile_every.is_some() {
        match key_digests(session).map(|keys| keys.runs_since_reconcile(stream)) {
            Ok(asked) => match asked.await {
                Ok(n) => runs_since_reconcile = Some(n),
                Err(e) => error = Some(e),
            },
            Err(e) => error = Some(e),
        }
    }
    if error.is_none() && config.contract_of(&name) == SchemaContract::Freeze {
        error = crate::checks::frozen(session, stream).await.err();
    }
    // The destination gets the checked rows, in the checks' schema.
    let mut check: Option<Arc<dyn BatchCheck>> = None;
    let mut write_stream = stream.clone();
    if error.is_none() {
        match crate::checks::for_stream(session, config, stream, &mut notes).await {
            Ok(Some(c)) => {
                write_stream.stream.schema = c.output_schema();
                check = Some(Arc::new(c));
            }
            Ok(None) => {}
            Err(e) => error = Some(e),
        }
    }
    let mut dead_lettered = 0;
    let mut received = 0;
    let mut state = before.clone();
    let mut attempts = 0;
    let mut backoff = retry_backoff();
    let lock_deadline = options.wait_for_lock.map(|w| bounds::deadline(started, w));
    while error.is_none() {
        attempts += 1;
        let stats = Arc::new(ReadStats::default());
        if let Some(observer) = &options.observer {
            observer.stream_started(&name, stats.clone());
        }
        if attempts > 1 {
            // What the failed attempt committed is the truth: resume from there.
            match session.state().await {
                Ok(mut states) => state = states.remove(&name),
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        let read_from = if stream.sync_mode == SyncMode::Incremental {
            state.clone()
        } else {
            None
        };
        let attempt = run_attempt(
            session,
            source,
            run,
            config,
            (stream, &write_stream, check.clone()),
            read_from,
            stats.clone(),
        )
        .await;
        record.rows_read += stats.rows();
        dead_lettered += stats
            .dead_lettered
            .load(std::sync::atomic::Ordering::Relaxed);
        notes.extend(stats.notes());
        record.extract_secs += attempt.extract_secs;
        record.rows_loaded += attempt.summary.rows_loaded;
        received += attempt.summary.rows_received;
        record.load_secs += attempt.summary.load_secs;
        if attempt.summary.state.is_some() {
            state = attempt.summary.state;
        }
        match attempt.result {
            Ok(()) => break,
            // A stream lease held elsewhere (PostgreSQL): wait for it within --wait-for-lock.
            Err(e)
                if e.kind() == ErrorKind::Locked
                    && lock_deadline.is_some_and(|d| Instant::now() < d) =>
            {
                tracing::info!(stream = %name, error = %e, "waiting for the stream's lock");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) if e.is_retryable() && attempts <= config.max_retries => {
                let wait = backoff.next_backoff().unwrap_or(Duration::from_secs(30));
                if let Some(observer) = &options.observer {
                    observer.retrying(&name, &e, wait);
                }
                tracing::warn!(stream = %name, error = %e, ?wait, "retrying from the last checkpoint");
                tokio::time::sleep(wait).await;
            }
            Err(e) => error = Some(e),
        }
    }
    if error.is_none()
        && let Some(limit) = options.max_dead_letter
        && limit.exceeded(dead_lettered, record.rows_read)
    {
        error = Some(Error::data(format!(
            "stream {name}: {dead_lettered} of {} records went to _elt_dead_letter, above \
             --max-dead-letter {limit} (they and the loaded rows are committed; see `elt dead-letter list`)",
            record.rows_read
        )));
    }
    let mut reconciled = None;
    if error.is_none() {
        match reconcile_if_due(session, source, run, stream, runs_since_reconcile).await {
            Ok(done) => reconciled = done,
            Err(e) => error = Some(e),
        }
    }
    // Every extracted record is loaded or dead-lettered: checked on every clean run (a
    // retried attempt re-reads rows that its failed predecessor read but did not commit).
    if error.is_none() && attempts == 1 && record.rows_read != received + dead_lettered {
        error = Some(Error::bug(format!(
            "stream {name}: {} records extracted but {received} reached the raw table and \
             {dead_lettered} the dead-letter table",
            record.rows_read
        )));
    }
    record.ended_at_us = Some(now_us());
    record.status = if error.is_some() {
        RunStatus::Failed
    } else {
        RunStatus::Succeeded
    };
    record.watermark_after = state.as_ref().and_then(StreamState::watermark);
    record.error = error.as_ref().map(|e| format!("{e:#}"));
    tracing::info!(
        status = record.status.as_str(),
        rows_read = record.rows_read,
        rows_loaded = record.rows_loaded,
        watermark_after = record.watermark_after.as_deref(),
        duration_secs = started.elapsed().as_secs_f64(),
        error = record.error.as_deref(),
        "stream finished"
    );
    if let Err(e) = record_run(session, &record).await {
        tracing::warn!(stream = %name, error = %e, "could not record the run in _elt_runs");
    }
    StreamReport {
        stream: name,
        table: stream.table.clone(),
        sync_mode: stream.sync_mode,
        write_mode: stream.write_mode,
        status: record.status.as_str(),
        rows_read: record.rows_read,
        rows_loaded: record.rows_loaded,
        rows_dead_lettered: dead_lettered,
        deletes_reconciled: reconciled.is_some(),
        rows_deleted: reconciled.map_or(0, |r| r.rows_deleted),
        watermark_before: record.watermark_before,
        watermark_after: record.watermark_after,
        duration_secs: started.elapsed().as_secs_f64(),
        attempts,
        notes,
        error_kind: error.as_ref().map(Error::kind),
        error: record.error,
    }
}

/// Looks for hard deletes when the stream asks for it this run: `--reconcile-deletes`, or
/// at least every `reconcile_deletes_every` runs (counting this one; `runs_since` counts
/// the succeeded runs since the last reconciliation).
async fn reconcile_if_due(
    session: &mut dyn DestinationSession,
    source: &dyn Source,
    run: &RunInfo,
    stream: &ConfiguredStream,
    runs_since: Option<u64>,
) -> Result<Option<crate::reconcile::Reconciled>> {
    let (Some(every), Some(runs_since)) = (stream.deletes.reconcile_every, runs_since) else {
        return Ok(None);
    };
    if runs_since + 1 < u64::from(every) {
        return Ok(None);
    }
    let done = crate::reconcile::reconcile(source, key_digests(session)?, run, stream).await?;
    tracing::info!(
        rows_deleted = done.rows_deleted,
        ranges_digested = done.ranges_digested,
        source_keys_listed = done.source_keys_listed,
        secs = done.secs,
        "deletes reconciled"
    );
    Ok(Some(done))
}

/// Records `record` in the destination's run log, when it keeps one.
async fn record_run(session: &mut dyn DestinationSession, record: &RunRecord) -> Result<()> {
    match session.run_log() {
        Some(log) => log.record_run(record).await,
        None => Ok(()),
    }
}

/// The destination's key digests, for `reconcile_deletes_every`.
fn key_digests(session: &mut dyn DestinationSession) -> Result<&mut dyn KeyDigests> {
    session.key_digests().ok_or_else(|| {
        elt_core::capability::missing(
            "digests of its keys",
            "reconciling deletes (`reconcile_deletes_every`, `--reconcile-deletes`)",
        )
    })
}

struct Attempt {
    result: Result<()>,
    summary: elt_core::WriteSummary,
    extract_secs: f64,
}

/// One try at a stream: the source and destination run concurrently over a bounded channel.
/// The source's stream, the destination's (in the checks' schema), and the checks.
type Streams<'a> = (
    &'a ConfiguredStream,
    &'a ConfiguredStream,
    Option<Arc<dyn BatchCheck>>,
);

async fn run_attempt(
    session: &mut dyn DestinationSession,
    source: &dyn Source,
    run: &RunInfo,
    config: &Connection,
    (stream, write_stream, check): Streams<'_>,
    state: Option<StreamState>,
    stats: Arc<ReadStats>,
) -> Attempt {
    let (tx, rx) = mpsc::channel(config.channel_batches);
    let read = async move {
        let started = Instant::now();
        let mut emitter = Emitter::new(tx.clone(), stream.schema().clone(), stats);
        if let Some(check) = check {
            emitter = emitter.with_check(check);
        }
        if stream.backfill.is_some() {
            emitter = emitter.with_frozen_state(state.clone().unwrap_or_else(StreamState::empty));
        }
        let mut result = source.read(stream, state, &mut emitter).await;
        drop(emitter);
        if result.is_ok() && tx.send(Message::Complete).await.is_err() {
            result = Err(Error::permanent(
                "the destination stopped before the source finished",
            ));
        }
        (
            result.map_err(|e| e.in_stream(stream.name())),
            started.elapsed().as_secs_f64(),
        )
    };
    let (read, (summary, write_result)) = tokio::join!(read, session.write(run, write_stream, rx));
    let (read_result, extract_secs) = read;
    // A destination failure makes the source fail too ("destination stopped"): report the cause.
    let result = write_result.and(read_result);
    Attempt {
        result,
        summary,
        extract_secs,
    }
}
