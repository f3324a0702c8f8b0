//! What `elt ui`'s pages show, read through the library's reading API (the destination
//! session's run log, state, dead letters and test history, `elt_runner::plan`), the same
//! calls `elt runs`, `elt state show`, `elt dead-letter list` and `elt plan` make. Sessions
//! are opened with `open_published`, so the page never takes or waits for a sync's lock,
//! and dropped after each page.

use elt_core::capability::{RecordedTest, StoredDeadLetter};
use elt_core::{DestinationSession, Result, RunRecord, StateMap};
use elt_runner::Project;

/// Runs read for a page (each with its streams).
const RUNS: usize = 50;
/// Dead letters and test results read for a page.
const ROWS: usize = 200;

/// A connection's session for reading what its syncs published.
async fn published(project: &Project, connection: &str) -> Result<Box<dyn DestinationSession>> {
    let (config, _, destination) = project.connection(connection)?;
    destination
        .open_published(connection, &config.dataset)
        .await
}

/// The newest runs' stream records, newest first.
pub async fn runs(project: &Project, connection: &str) -> Result<Vec<RunRecord>> {
    let mut session = published(project, connection).await?;
    match session.run_log() {
        Some(log) => log.runs(RUNS).await,
        None => Ok(Vec::new()),
    }
}

/// The committed state of each stream.
pub async fn state(project: &Project, connection: &str) -> Result<StateMap> {
    published(project, connection).await?.state().await
}

/// The newest dead letters.
pub async fn dead_letters(project: &Project, connection: &str) -> Result<Vec<StoredDeadLetter>> {
    let mut session = published(project, connection).await?;
    match session.dead_letters() {
        Some(store) => store.list(None, ROWS).await,
        None => Ok(Vec::new()),
    }
}

/// The newest data test results.
pub async fn tests(project: &Project, connection: &str) -> Result<Vec<RecordedTest>> {
    let mut session = published(project, connection).await?;
    match session.test_results() {
        Some(log) => log.test_history(ROWS).await,
        None => Ok(Vec::new()),
    }
}

/// `elt plan` of the connection (the source is discovered now).
pub async fn plan(
    project: &Project,
    connection: &str,
) -> Result<Vec<elt_runner::plan::StreamPlan>> {
    let mut session = published(project, connection).await?;
    elt_runner::plan::schema_plan(project, connection, session.as_mut()).await
}

/// One stream's freshness on the overview.
pub struct Freshness {
    pub stream: String,
    /// The stream's newest record.
    pub last: RunRecord,
    /// When its last successful run ended (µs since the epoch).
    pub last_success_us: Option<i64>,
    /// The stream's `freshness_hours` test, if it has one.
    pub limit_hours: Option<f64>,
}

/// Each stream's newest run and last success, from `runs` (newest first), in stream order.
pub fn freshness(project: &Project, connection: &str, runs: &[RunRecord]) -> Vec<Freshness> {
    let tests = project
        .connections
        .get(connection)
        .map(|c| c.tests.as_slice())
        .unwrap_or_default();
    let mut streams: Vec<&str> = runs.iter().map(|r| r.stream.as_str()).collect();
    streams.sort_unstable();
    streams.dedup();
    streams
        .into_iter()
        .filter_map(|stream| {
            let mut of_stream = runs.iter().filter(|r| r.stream == stream);
            let last = of_stream.next()?.clone();
            let last_success_us = std::iter::once(&last)
                .chain(of_stream)
                .find(|r| r.status == elt_core::RunStatus::Succeeded)
                .and_then(|r| r.ended_at_us);
            let limit_hours = tests
                .iter()
                .filter(|t| t.stream == stream)
                .find_map(|t| t.freshness_hours);
            Some(Freshness {
                stream: stream.to_owned(),
                last,
                last_success_us,
                limit_hours,
            })
        })
        .collect()
}
