//! Post-load data tests: checks declared per stream in `elt.toml`
//! (`[[connections.NAME.tests]]`) and run against the destination's raw tables, by
//! `elt test` or after every sync (`test_after_sync = true`).
//!
//! Kinds: `not_null` (columns), `unique` (columns, or column lists for a combination;
//! rows with a NULL in a tested column are never duplicates, as with SQL's UNIQUE),
//! `accepted_values` (column -> allowed values, compared as text; NULL is `not_null`'s
//! business), `relationships` (a column whose values must exist in another stream's
//! column) and `freshness_hours` (the newest cursor value is at most that old). Tests look
//! at live rows only: a merge table's rows not marked deleted, a history table's current
//! versions. Each failing test reports how many rows fail (for `unique`: how many values
//! repeat) and the first five distinct failing keys or values.
//!
//! The SQL (`queries.rs`) is the subset DuckDB and PostgreSQL share; identifiers are
//! quoted, values bound.
//! What it does not do: fix data, or test anything but the raw tables of one connection.

use std::collections::BTreeMap;

use elt_core::capability::missing;
use elt_core::{ConfiguredStream, DestinationSession, Error, Result, quote_ident};
use serde::{Deserialize, Serialize};

mod queries;

pub(crate) use queries::parse_time;
use queries::{Target, count_rows, freshness, unique};

/// The tests of one stream.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamTests {
    /// The stream (as the source names it).
    pub stream: String,
    /// Columns that must hold no NULL.
    #[serde(default)]
    pub not_null: Vec<String>,
    /// Columns (or lists of columns, for a combination) whose values must not repeat.
    #[serde(default)]
    pub unique: Vec<Columns>,
    /// Column -> the values it may hold (NULL is left to `not_null`).
    #[serde(default)]
    pub accepted_values: BTreeMap<String, Vec<String>>,
    /// Columns whose values must exist in another stream's column.
    #[serde(default)]
    pub relationships: Vec<Relationship>,
    /// The newest value of the stream's cursor is at most this many hours old.
    #[serde(default)]
    pub freshness_hours: Option<f64>,
}

/// One column, or a combination.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Columns {
    /// One column.
    One(String),
    /// A combination of columns.
    Many(Vec<String>),
}

impl Columns {
    fn list(&self) -> Vec<String> {
        match self {
            Columns::One(c) => vec![c.clone()],
            Columns::Many(cs) => cs.clone(),
        }
    }
}

/// A reference from a column to another stream's column.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Relationship {
    /// The column of this stream.
    pub column: String,
    /// The stream it refers to.
    pub to: String,
    /// The column of that stream.
    pub field: String,
}

/// The result of one test.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct TestOutcome {
    /// The stream.
    pub stream: String,
    /// The test, such as `unique(id)`.
    pub test: String,
    /// Whether it passed.
    pub passed: bool,
    /// Rows (or, for `unique`, repeated values) that fail it.
    pub failing_rows: u64,
    /// Up to five failing rows or values, as text.
    pub samples: Vec<String>,
    /// What was measured, for `freshness_hours`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The outcomes as text: one line per test, the samples of a failing one under it, and a
/// closing count.
pub fn render(outcomes: &[TestOutcome]) -> String {
    let mut out = String::new();
    for o in outcomes {
        let verdict = if o.passed { "pass" } else { "FAIL" };
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
    let failed = outcomes.iter().filter(|o| !o.passed).count();
    out.push_str(&format!(
        "data tests: {} passed, {failed} failed\n",
        outcomes.len() - failed
    ));
    out
}

/// How many failing rows a test shows.
const SAMPLES: usize = 5;

/// Runs the tests of `tests` (of the streams in `only`, when given) against `streams`'
/// tables in `dataset`.
pub async fn run(
    session: &mut dyn DestinationSession,
    dataset: &str,
    streams: &[ConfiguredStream],
    tests: &[StreamTests],
    only: Option<&[String]>,
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
    let mut outcomes = Vec::new();
    let selected: Vec<&StreamTests> = tests
        .iter()
        .filter(|t| only.is_none_or(|o| o.contains(&t.stream)))
        .collect();
    if selected.is_empty() {
        return Ok(outcomes);
    }
    let session = session.sql().ok_or_else(|| {
        missing(
            "SQL over its tables",
            "data tests (`tests` in elt.toml, `elt test`)",
        )
    })?;
    for tests in selected {
        let target = Target::new(find(&tests.stream, "`tests`")?, dataset);
        for column in &tests.not_null {
            let filter = format!("{} IS NULL", quote_ident(column));
            let key = target.key(column);
            outcomes.push(
                count_rows(
                    session,
                    &target,
                    &format!("not_null({column})"),
                    &filter,
                    &key,
                    &[],
                )
                .await?,
            );
        }
        for columns in &tests.unique {
            outcomes.push(unique(session, &target, &columns.list()).await?);
        }
        for (column, values) in &tests.accepted_values {
            let placeholders: Vec<String> = (1..=values.len()).map(|i| format!("${i}")).collect();
            let c = quote_ident(column);
            let filter = format!(
                "{c} IS NOT NULL AND CAST({c} AS VARCHAR) NOT IN ({})",
                placeholders.join(", ")
            );
            let name = format!("accepted_values({column})");
            outcomes.push(
                count_rows(
                    session,
                    &target,
                    &name,
                    &filter,
                    std::slice::from_ref(column),
                    values,
                )
                .await?,
            );
        }
        for relation in &tests.relationships {
            let other = Target::new(find(&relation.to, "`relationships.to`")?, dataset);
            let c = quote_ident(&relation.column);
            let filter = format!(
                "t.{c} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {} p WHERE p.{} = t.{c} AND {})",
                other.table,
                quote_ident(&relation.field),
                other.live("p")
            );
            let name = format!(
                "relationships({} -> {}.{})",
                relation.column, relation.to, relation.field
            );
            outcomes.push(
                count_rows(
                    session,
                    &target,
                    &name,
                    &filter,
                    std::slice::from_ref(&relation.column),
                    &[],
                )
                .await?,
            );
        }
        if let Some(hours) = tests.freshness_hours {
            outcomes.push(freshness(session, &target, hours).await?);
        }
    }
    Ok(outcomes)
}
