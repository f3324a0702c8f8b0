//! The sync engine: discovers, plans the streams, opens one destination session for the
//! run, and syncs the streams one after another in it (each in `stream.rs`: a source task
//! and a destination task joined by a bounded channel, with retries of transient errors
//! from the last committed checkpoint), then runs the data tests when asked.
//!
//! The session holds the destination's lock for the whole run. A
//! stream that fails does not stop the others unless the failure is about the whole run
//! (configuration, lock); the report says which streams committed. Memory is bounded by the
//! channel's capacity in batches plus what the source and destination hold for one batch.

use std::sync::Arc;
use std::time::{Duration, Instant};

use elt_core::{
    BatchObserver, ConfiguredStream, Destination, DestinationSession, Error, ErrorKind, Result,
    RunInfo, bounds,
};
use tracing::Instrument;

use crate::config::Project;
pub use crate::options::{DeadLetterLimit, Observer, SyncOptions};
use crate::plan::plan_streams;
use crate::report::SyncReport;
use crate::retry::with_retries;
use crate::stream::{RunContext, run_stream};

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
        started_at_us: chrono::Utc::now().timestamp_micros(),
    };
    let span = tracing::info_span!("sync", connection, run_id = %run.run_id);
    let reports = async {
        tracing::info!("sync starting");
        let catalog = with_retries(config.max_retries, || source.discover()).await?;
        let streams = plan_streams(&catalog, config, options)?;
        if let Some((stream, _)) = streams
            .iter()
            .find(|(s, _)| s.parallelism > 1 && !source.reads_in_parallel())
        {
            return Err(Error::config(format!(
                "stream {}: `parallelism` needs a source that reads key ranges on several \
                 connections (postgres); source {:?} reads on one: remove the option",
                stream.name(),
                config.source
            )));
        }
        if let Some((stream, _)) = streams
            .iter()
            .find(|(s, _)| s.backfill.is_some() && !source.reads_windows())
        {
            return Err(Error::config(format!(
                "stream {}: a backfill needs a source that reads a cursor window (postgres, \
                 mysql); source {:?} reads everything: run a plain sync instead",
                stream.name(),
                config.source
            )));
        }
        if let Some((stream, _)) = streams
            .iter()
            .find(|(s, _)| s.sync_mode == elt_core::SyncMode::Cdc && !source.reads_changes())
        {
            return Err(Error::config(format!(
                "stream {}: `sync = \"cdc\"` needs a source that reads a change log \
                 (postgres); source {:?} cannot: use incremental or full_refresh",
                stream.name(),
                config.source
            )));
        }
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
        let ctx = RunContext {
            source,
            run: &run,
            config,
            options,
        };
        let mut sketches = Vec::new();
        for (stream, notes) in streams {
            let before = states.remove(stream.name());
            // Profiled streams sketch their distinct values as the rows stream.
            let profiled =
                config.profile || crate::datatests::needs_profiles(&config.tests, stream.name());
            let sketch = profiled.then(|| {
                crate::datatests::DistinctSketches::for_fields(crate::datatests::profiled_fields(
                    &stream,
                ))
            });
            let observer = sketch.clone().map(|s| s as Arc<dyn BatchObserver>);
            if let Some(sketch) = sketch {
                sketches.push((stream.name().to_owned(), sketch));
            }
            let report =
                sync_stream(session.as_mut(), &ctx, stream, before, notes, observer).await?;
            if let Some(observer) = &options.observer {
                observer.stream_finished(&report);
            }
            if let Some(metrics) = &options.metrics {
                metrics.stream_finished(connection, &report, unix_now());
            }
            // A stream locked by another worker does not stop the others; a bug does.
            let fatal = report.error_kind == Some(ErrorKind::Bug);
            reports.push(report);
            if fatal {
                break;
            }
        }
        let scope = crate::datatests::Scope {
            connection,
            dataset: &config.dataset,
        };
        // Profiles come after the commit: one that fails is a note, not a failed load.
        for report in reports
            .iter_mut()
            .filter(|r| r.error.is_none() && r.rows_loaded > 0)
        {
            let Some(stream) = planned.iter().find(|s| s.name() == report.stream) else {
                continue;
            };
            if let Some((_, sketch)) = sketches.iter().find(|(name, _)| name == stream.name()) {
                let profiled =
                    crate::datatests::profile(session.as_mut(), scope, stream, &run.run_id, sketch)
                        .await;
                if let Err(e) = profiled {
                    tracing::warn!(stream = stream.name(), error = %e, "no column profile");
                    report.notes.push(format!(
                        "no column profile recorded (`profile`, distribution_drift): {}",
                        e.detail()
                    ));
                }
            }
        }
        let mut tests = Vec::new();
        if config.test_after_sync {
            let synced: Vec<String> = planned.iter().map(|s| s.name().to_owned()).collect();
            tests = crate::datatests::run(
                session.as_mut(),
                scope,
                &planned,
                &config.tests,
                crate::datatests::Selection {
                    streams: Some(&synced),
                    select: None,
                },
            )
            .await?;
            crate::datatests::record(session.as_mut(), &run.run_id, &tests).await?;
        }
        Ok::<_, Error>((reports, tests))
    }
    .instrument(span.clone())
    .await
    .inspect_err(|_| {
        if let Some(metrics) = &options.metrics {
            metrics.run_finished(connection, "failed", started.elapsed().as_secs_f64());
        }
    })?;
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
    if let Some(metrics) = &options.metrics {
        metrics.run_finished(connection, report.status.as_str(), report.duration_secs);
    }
    Ok(report)
}

/// Syncs one stream: planned anew and run on while its source says its columns changed
/// mid-read (at most [`MAX_REPLANS`] times, one report for all), then, for a cdc stream,
/// its slot moved to what it committed.
async fn sync_stream(
    session: &mut dyn DestinationSession,
    ctx: &RunContext<'_>,
    mut stream: ConfiguredStream,
    before: Option<elt_core::StreamState>,
    notes: Vec<String>,
    observer: Option<Arc<dyn BatchObserver>>,
) -> Result<crate::report::StreamReport> {
    let span = tracing::info_span!("stream", stream = stream.name());
    let mut report = run_stream(session, ctx, &stream, before, notes, observer.clone())
        .instrument(span.clone())
        .await;
    for _ in 0..MAX_REPLANS {
        if !report.replan || report.error.is_some() {
            break;
        }
        // The stream's columns changed mid-read: plan it anew and read on.
        match replanned(ctx.source, ctx.config, ctx.options, stream.name()).await {
            Ok(again) => stream = again,
            Err(e) => {
                report
                    .notes
                    .push(format!("could not plan the stream again: {e}"));
                break;
            }
        }
        let before = session.state().await?.remove(stream.name());
        report = run_stream(session, ctx, &stream, before, Vec::new(), observer.clone())
            .instrument(span.clone())
            .await
            .after(report);
    }
    if report.error.is_none() && stream.sync_mode == elt_core::SyncMode::Cdc {
        let state = session.state().await?.remove(stream.name());
        after_commit(ctx.source, &stream, state, ctx.options, &mut report).await;
    }
    Ok(report)
}

/// Tells the source what a cdc stream committed (its slot moves there at once) and notes
/// the WAL the slot still keeps; above `--max-slot-lag`, the stream fails (what it
/// committed stays).
async fn after_commit(
    source: &dyn elt_core::Source,
    stream: &ConfiguredStream,
    state: Option<elt_core::StreamState>,
    options: &SyncOptions,
    report: &mut crate::report::StreamReport,
) {
    let Some(state) = state else {
        return;
    };
    let kept = match source.committed(stream, &state).await {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return,
        Err(e) => {
            report
                .notes
                .push(format!("the replication slot did not move: {e}"));
            return;
        }
    };
    report.measures.source_lag_bytes = Some(kept);
    let megabytes = kept as f64 / 1e6;
    report.notes.push(format!(
        "the replication slot keeps {megabytes:.1} MB of WAL on the source"
    ));
    if let Some(limit) = options.max_slot_lag.filter(|limit| kept > *limit) {
        let error = Error::data(format!(
            "stream {}: its replication slot keeps {megabytes:.1} MB of WAL, above --max-slot-lag \
             {:.1} MB: the source's disk fills until the stream catches up (sync more often) or \
             `elt cdc drop` removes the slot; what the stream loaded is committed",
            stream.name(),
            limit as f64 / 1e6
        ));
        report.status = "failed";
        report.error_kind = Some(error.kind());
        report.error = Some(error.detail());
    }
}

/// Now, in Unix seconds.
fn unix_now() -> f64 {
    chrono::Utc::now().timestamp_micros() as f64 / 1e6
}

/// Times one run plans a stream again after its columns changed mid-read.
const MAX_REPLANS: usize = 3;

/// Stream `name` discovered and planned again.
async fn replanned(
    source: &dyn elt_core::Source,
    config: &crate::config::Connection,
    options: &SyncOptions,
    name: &str,
) -> Result<ConfiguredStream> {
    let catalog = with_retries(config.max_retries, || source.discover()).await?;
    plan_streams(&catalog, config, options)?
        .into_iter()
        .map(|(stream, _)| stream)
        .find(|s| s.name() == name)
        .ok_or_else(|| Error::permanent(format!("stream {name} is gone from the source")))
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
