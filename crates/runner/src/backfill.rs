//! `elt backfill`: cutting one stream's history into cursor windows (`plan`), loading some
//! of them, each as its own sync that replaces the window's rows and records the window
//! with them (`run`), and what is done, running and missing (`status`).
//!
//! A plan is computed, not stored: from the same arguments and the same calendar step,
//! every worker computes the same windows, so an orchestrator can hand each worker only an
//! index. Row-sized plans come from the source's statistics, which change when the source
//! analyzes the table; save those (`plan --json`) and give every worker the file.
//!
//! What it does not do: decide how windows share a destination (PostgreSQL leases each
//! window and refuses overlapping ones; a DuckDB file takes one writer, the others wait
//! with `wait_for_lock`), or read rows itself (each window is an ordinary [`crate::sync`]).

use std::ops::RangeInclusive;

use elt_core::capability::CompletedWindow;
use elt_core::windows::{self, Step, Window, WindowSet};
use elt_core::{Backfill, ConfiguredStream, Error, Result};
use serde::{Deserialize, Serialize};

use crate::config::Project;
use crate::engine::SyncOptions;
use crate::plan::plan_streams;
use crate::report::SyncReport;
use crate::retry::with_retries;

/// The windows of one stream's backfill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// The connection.
    pub connection: String,
    /// The stream.
    pub stream: String,
    /// Its cursor column, which the windows cut.
    pub cursor: String,
    /// The windows, in order; `elt backfill run --window K` names them by index.
    pub windows: Vec<Window>,
}

/// How a plan cuts a range: `--from`, `--to` (as the user wrote them) and `--by`.
#[derive(Debug, Clone)]
pub struct Cut {
    /// The first cursor value.
    pub from: String,
    /// The first cursor value after the range.
    pub to: String,
    /// The window size.
    pub by: Step,
}

/// The stream as the connection syncs it, from a fresh discovery.
pub(crate) async fn configured(
    project: &Project,
    connection: &str,
    stream: &str,
) -> Result<ConfiguredStream> {
    let (config, source, _) = project.connection(connection)?;
    if !source.reads_windows() {
        return Err(Error::config(format!(
            "connection {connection}: source {:?} reads everything at once, so it cannot \
             load a window; backfills need a source that filters on the cursor (postgres, \
             mysql)",
            config.source
        )));
    }
    let catalog = with_retries(config.max_retries, || source.discover()).await?;
    let options = SyncOptions {
        streams: Some(vec![stream.to_owned()]),
        ..SyncOptions::default()
    };
    let (configured, _) = plan_streams(&catalog, config, &options)?
        .into_iter()
        .next()
        .ok_or_else(|| Error::config(format!("connection {connection} has no stream {stream}")))?;
    Ok(configured)
}

/// Plans the windows of `stream`: calendar steps from the bounds alone, row-sized ones
/// from the source's statistics (no scan of the table).
pub async fn plan(project: &Project, connection: &str, stream: &str, cut: &Cut) -> Result<Plan> {
    let configured = configured(project, connection, stream).await?;
    let (cursor, kind) = windows::cursor_kind(&configured)?;
    let cursor = cursor.name().clone();
    let from = windows::canonical(kind, &cut.from, "--from")?;
    let to = windows::canonical(kind, &cut.to, "--to")?;
    let range = windows::range(&from, &to)?;
    let windows = match cut.by {
        Step::Rows(rows) => {
            let (_, source, _) = project.connection(connection)?;
            let cuts = source
                .cursor_cut_points(&configured, rows)
                .await?
                .ok_or_else(|| {
                    Error::config(format!(
                        "--by {rows}-rows sizes windows from the source's statistics, which \
                         this source does not keep: use --by day, week or month"
                    ))
                })?;
            windows::from_cut_points(&range.from, &range.to, &cuts)
        }
        step => windows::calendar(kind, &from, &to, step)?,
    };
    Ok(Plan {
        connection: connection.to_owned(),
        stream: stream.to_owned(),
        cursor,
        windows,
    })
}

/// Where one window stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowState {
    /// Loaded and recorded.
    Done,
    /// Being loaded under a live lease.
    Running,
    /// Neither.
    Missing,
}

/// One window of a plan and where it stands.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedWindow {
    /// Its index in the plan.
    pub index: usize,
    /// The window.
    #[serde(flatten)]
    pub window: Window,
    /// Where it stands.
    pub state: WindowState,
    /// The worker loading it, when it runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
}

/// What the destination records of a stream's windows.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// The stream.
    pub stream: String,
    /// The completed windows, in order.
    pub completed: Vec<CompletedWindow>,
    /// Their union: overlapping and adjacent windows merged.
    pub done: Vec<Window>,
    /// What the union misses: inside the plan's range with a plan, else between its ends.
    pub holes: Vec<Window>,
    /// Windows being loaded now, with their holders.
    pub running: Vec<(Window, String)>,
    /// With a plan: each of its windows and where it stands.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<PlannedWindow>,
}

/// Reads where the windows of `stream` stand, against `plan` when there is one.
pub async fn status(
    project: &Project,
    connection: &str,
    stream: &str,
    plan: Option<&Plan>,
) -> Result<(Status, Option<String>)> {
    let mut reading = crate::read::bookkeeping(project, connection).await?;
    let log = reading.session.windows().ok_or_else(|| {
        Error::config(format!(
            "the destination of connection {connection} does not record backfill windows"
        ))
    })?;
    let mut completed = log.windows(Some(stream)).await?;
    let running = log.leased(stream).await?;
    completed.sort_by(|a, b| a.window.cmp(&b.window));
    let set = WindowSet::new(completed.iter().map(|c| &c.window));
    let span =
        plan.and_then(|p| Some(Window::new(&p.windows.first()?.from, &p.windows.last()?.to)));
    let windows = plan
        .map(|p| p.windows.as_slice())
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(index, window)| {
            let holder = running
                .iter()
                .find(|(w, _)| w == window)
                .map(|(_, h)| h.clone());
            let state = if set.covers(window) {
                WindowState::Done
            } else if holder.is_some() {
                WindowState::Running
            } else {
                WindowState::Missing
            };
            PlannedWindow {
                index,
                window: window.clone(),
                state,
                holder,
            }
        })
        .collect();
    let status = Status {
        stream: stream.to_owned(),
        done: set.ranges().cloned().collect(),
        holes: set.holes(span.as_ref()),
        completed,
        running,
        windows,
    };
    Ok((status, reading.note))
}

/// What became of one window of `run`.
#[derive(Debug, Serialize)]
pub struct WindowRun {
    /// Its index in the plan.
    pub index: usize,
    /// The window.
    #[serde(flatten)]
    pub window: Window,
    /// Its sync, or none when it was done already (and not forced).
    pub report: Option<SyncReport>,
}

/// Loads windows `which` of `plan`, one after another, each an ordinary sync of the stream
/// with the window as its backfill. A window the destination records as done is skipped
/// unless `force`. Stops at the first window that does not succeed.
pub async fn run(
    project: &Project,
    plan: &Plan,
    which: RangeInclusive<usize>,
    force: bool,
    options: &SyncOptions,
) -> Result<Vec<WindowRun>> {
    let count = plan.windows.len();
    if *which.end() >= count || which.is_empty() {
        return Err(Error::config(format!(
            "--window(s) {}..{}: the plan has windows 0..{} (see `elt backfill plan`)",
            which.start(),
            which.end(),
            count.saturating_sub(1)
        )));
    }
    let mut runs = Vec::new();
    for index in which {
        let window = plan.windows[index].clone();
        if !force {
            let (status, _) = status(project, &plan.connection, &plan.stream, None).await?;
            let set = WindowSet::new(&status.done);
            if set.covers(&window) {
                tracing::info!(%window, index, "window already done; --force reloads it");
                runs.push(WindowRun {
                    index,
                    window,
                    report: None,
                });
                continue;
            }
        }
        let options = SyncOptions {
            streams: Some(vec![plan.stream.clone()]),
            backfill: Some(Backfill {
                from: window.from.clone(),
                to: window.to.clone(),
                window: true,
            }),
            ..options.clone()
        };
        let report = crate::sync(project, &plan.connection, &options).await?;
        let succeeded = report.status == crate::RunOutcome::Succeeded;
        runs.push(WindowRun {
            index,
            window,
            report: Some(report),
        });
        if !succeeded {
            break;
        }
    }
    Ok(runs)
}
