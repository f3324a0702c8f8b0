//! Post-load data tests: checks declared per stream in `elt.toml`
//! (`[[connections.NAME.tests]]`, see `config.rs`) and run against the destination's raw
//! tables, by `elt test` or after every sync (`test_after_sync = true`).
//!
//! Kinds that list failing rows: `not_null`, `unique` (rows with a NULL in a tested column
//! are never duplicates, as with SQL's UNIQUE), `accepted_values` (compared as text),
//! `relationships`, `between`, `regex` (the whole value matches), `expression` (a SQL
//! condition every row satisfies) and `sql` (a custom query whose rows are failures).
//! Kinds that measure: `freshness_hours`, `row_count`, `distinct_count`, `null_fraction`,
//! `mean` and `stddev` (`measures.rs`). Tests look at live rows only (a merge table's rows
//! not marked deleted, a history table's current versions), narrowed by the block's
//! `where`. Each failing test reports how many rows fail (for `unique`: how many values
//! repeat; for a measure: 1) and the first five distinct failing keys or values. A block's
//! `severity` decides whether its failures fail the run (`error`) or are only reported
//! (`warn`).
//!
//! The SQL is the subset DuckDB and PostgreSQL share; identifiers are quoted, values bound;
//! `where`, `expression` and `sql` are SQL the project's author wrote, run as written.
//! Every run's results are appended to the destination's `_elt_test_results` ([`record`]).
//! What it does not do: fix data, or test anything but the raw tables of one connection.

use elt_core::capability::{TestResult, missing};
use elt_core::{ConfiguredStream, DestinationSession, Error, Result};
use serde::Serialize;

mod anomalies;
mod checks;
mod config;
mod measures;
mod profiles;
mod queries;
mod sketches;

pub use config::{
    Bound, Columns, Drift, FreshnessAnomaly, Range, Relationship, Severity, SqlTest, StreamTests,
    ValueRange, VolumeAnomaly,
};
pub use profiles::{profile, profiled_fields};
use queries::Target;
pub(crate) use queries::parse_time;
pub use sketches::DistinctSketches;

/// The result of one test.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct TestOutcome {
    /// The stream.
    pub stream: String,
    /// The test, such as `unique(id)`.
    pub test: String,
    /// Whether a failure fails the run (`error`) or is only reported (`warn`).
    pub severity: Severity,
    /// Whether it passed.
    pub passed: bool,
    /// Rows (for `unique`, repeated values; for a measure, 1) that fail it.
    pub failing_rows: u64,
    /// Up to five failing rows or values, as text.
    pub samples: Vec<String>,
    /// The measured value, for `row_count`, `distinct_count`, `null_fraction`, `mean` and
    /// `stddev`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed: Option<f64>,
    /// What was measured and expected, for the measuring kinds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl TestOutcome {
    /// Whether it fails the run: a failed test of severity `error`.
    pub fn fails_run(&self) -> bool {
        !self.passed && self.severity == Severity::Error
    }
}

/// The outcomes as text: one line per test, the samples of a failing one under it, and a
/// closing count.
pub fn render(outcomes: &[TestOutcome]) -> String {
    let mut out = String::new();
    for o in outcomes {
        let verdict = match (o.passed, o.severity) {
            (true, _) => "pass",
            (false, Severity::Error) => "FAIL",
            (false, Severity::Warn) => "WARN",
        };
        let count = if o.passed {
            String::new()
        } else {
            format!(": {} failing", o.failing_rows)
        };
        let detail = o
            .detail
            .as_deref()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        out.push_str(&format!(
            "{verdict} {}: {}{count}{detail}\n",
            o.stream, o.test
        ));
        for sample in &o.samples {
            out.push_str(&format!("       {sample}\n"));
        }
    }
    let failed = outcomes.iter().filter(|o| o.fails_run()).count();
    let warned = outcomes.iter().filter(|o| !o.passed).count() - failed;
    let warned_text = if warned > 0 {
        format!(", {warned} warned")
    } else {
        String::new()
    };
    out.push_str(&format!(
        "data tests: {} passed, {failed} failed{warned_text}\n",
        outcomes.len() - failed - warned
    ));
    out
}

/// Which tests to run: those of the listed `streams` (all when None) that `select` names
/// by stream, kind (`regex`) or name (`regex(email)`) (all when None).
#[derive(Debug, Clone, Copy, Default)]
pub struct Selection<'a> {
    /// Only the tests of these streams.
    pub streams: Option<&'a [String]>,
    /// Only the tests matching one of these.
    pub select: Option<&'a [String]>,
}

impl Selection<'_> {
    fn wants(&self, stream: &str, kind: &str, name: &str) -> bool {
        self.streams
            .is_none_or(|only| only.iter().any(|s| s == stream))
            && self
                .select
                .is_none_or(|only| only.iter().any(|s| s == stream || s == kind || s == name))
    }
}

/// Appends `outcomes` to the destination's `_elt_test_results` under `run_id` (nothing to
/// do when there are none).
pub async fn record(
    session: &mut dyn DestinationSession,
    run_id: &str,
    outcomes: &[TestOutcome],
) -> Result<()> {
    if outcomes.is_empty() {
        return Ok(());
    }
    let log = session
        .test_results()
        .ok_or_else(|| missing("a test result history (`_elt_test_results`)", "data tests"))?;
    let results: Vec<TestResult> = outcomes
        .iter()
        .map(|o| TestResult {
            stream: o.stream.clone(),
            test: o.test.clone(),
            severity: match o.severity {
                Severity::Error => "error",
                Severity::Warn => "warn",
            }
            .to_owned(),
            passed: o.passed,
            failing_rows: o.failing_rows,
            samples: o.samples.clone(),
            observed: o.observed,
            detail: o.detail.clone(),
        })
        .collect();
    log.record_test_results(run_id, &results).await
}

/// Whether a test of `tests` needs profiles of `stream` (`distribution_drift`).
pub fn needs_profiles(tests: &[StreamTests], stream: &str) -> bool {
    tests
        .iter()
        .any(|t| t.stream == stream && !t.distribution_drift.is_empty())
}

/// The connection whose tables are tested, and their dataset.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// The connection (its runs in `_elt_runs` are the history of the anomaly tests).
    pub connection: &'a str,
    /// The dataset its raw tables are in.
    pub dataset: &'a str,
}

/// Runs the selected tests of `tests` against `streams`' tables in `scope`.
pub async fn run(
    session: &mut dyn DestinationSession,
    scope: Scope<'_>,
    streams: &[ConfiguredStream],
    tests: &[StreamTests],
    selection: Selection<'_>,
) -> Result<Vec<TestOutcome>> {
    let find =
        |name: &str, what: &str| {
            streams.iter().find(|s| s.name() == name).ok_or_else(|| {
            Error::config(format!(
                "{what} names stream {name}, which the connection does not sync (its streams: {})",
                streams.iter().map(|s| s.name().to_owned()).collect::<Vec<_>>().join(", ")
            ))
        })
        };
    let planned: Vec<(&StreamTests, Vec<checks::Check<'_>>)> = tests
        .iter()
        .map(|block| {
            let chosen = checks::checks(block)
                .into_iter()
                .filter(|c| selection.wants(&block.stream, c.kind(), &c.name()))
                .collect();
            (block, chosen)
        })
        .filter(|(_, chosen): &(_, Vec<_>)| !chosen.is_empty())
        .collect();
    let mut outcomes = Vec::new();
    if planned.is_empty() {
        return Ok(outcomes);
    }
    let session = session.sql().ok_or_else(|| {
        missing(
            "SQL over its tables",
            "data tests (`tests` in elt.toml, `elt test`)",
        )
    })?;
    for (block, chosen) in planned {
        let target = Target::new(
            find(&block.stream, "`tests`")?,
            scope,
            block.filter.as_deref(),
        );
        for check in chosen {
            let other = match &check {
                checks::Check::Relationship(r) => {
                    Some(Target::new(find(&r.to, "`relationships.to`")?, scope, None))
                }
                _ => None,
            };
            let mut outcome = check.run(session, &target, other.as_ref()).await?;
            outcome.severity = block.severity;
            outcomes.push(outcome);
        }
    }
    Ok(outcomes)
}
