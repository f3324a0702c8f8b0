//! How data tests are declared: one `[[connections.NAME.tests]]` block per stream (or
//! several, for different severities or `where` filters), each key a kind of test.
//! Parsing and validation only; running them is `checks.rs`'s.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The tests of one block.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamTests {
    /// The stream (as the source names it).
    pub stream: String,
    /// What a failure of this block's tests does: `error` fails `elt test` (and a sync with
    /// `test_after_sync`), `warn` is reported and fails nothing.
    #[serde(default)]
    pub severity: Severity,
    /// A SQL condition on the stream's columns that narrows every test of the block to the
    /// rows it holds for, such as `"status <> 'cancelled'"`.
    #[serde(default, rename = "where")]
    pub filter: Option<String>,
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
    /// Bounds on the number of rows.
    #[serde(default)]
    pub row_count: Option<Range>,
    /// Column -> bounds every non-NULL value lies within (numbers, or dates and times as
    /// text).
    #[serde(default)]
    pub between: BTreeMap<String, ValueRange>,
    /// Column -> a regular expression every non-NULL value matches in full.
    #[serde(default)]
    pub regex: BTreeMap<String, String>,
    /// Column -> bounds on the number of distinct non-NULL values.
    #[serde(default)]
    pub distinct_count: BTreeMap<String, Range>,
    /// Column -> bounds on the fraction of rows (0 to 1) where it is NULL.
    #[serde(default)]
    pub null_fraction: BTreeMap<String, Range>,
    /// Column -> bounds on the mean of its values.
    #[serde(default)]
    pub mean: BTreeMap<String, Range>,
    /// Column -> bounds on the sample standard deviation of its values.
    #[serde(default)]
    pub stddev: BTreeMap<String, Range>,
    /// SQL conditions every row satisfies, such as `"total >= 0"`.
    #[serde(default)]
    pub expression: Vec<String>,
    /// Custom queries whose rows are failures (dbt's singular tests); `{{ table }}` names
    /// the stream's raw table.
    #[serde(default)]
    pub sql: Vec<SqlTest>,
    /// The rows the latest run loaded against the connection's earlier runs.
    #[serde(default)]
    pub volume_anomaly: Option<VolumeAnomaly>,
    /// The age of the newest cursor value against its usual age when a sync ends.
    #[serde(default)]
    pub freshness_anomaly: Option<FreshnessAnomaly>,
    /// Column -> how far the mean and null fraction of what the latest run loaded may move
    /// from earlier runs' (`_elt_profiles`).
    #[serde(default)]
    pub distribution_drift: BTreeMap<String, Drift>,
}

/// `distribution_drift = { column = { runs, deviations, tolerance, null_fraction } }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Drift {
    /// Earlier profiles to compare with.
    #[serde(default = "default_runs")]
    pub runs: usize,
    /// Robust standard deviations of the earlier means allowed.
    #[serde(default = "default_deviations")]
    pub deviations: f64,
    /// A relative band around the median mean that always passes.
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
    /// How far (absolute, 0 to 1) the null fraction may move from its median.
    #[serde(default = "default_null_fraction")]
    pub null_fraction: f64,
}

fn default_null_fraction() -> f64 {
    0.1
}

/// `volume_anomaly = { runs, deviations, tolerance }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeAnomaly {
    /// Earlier runs to compare with.
    #[serde(default = "default_runs")]
    pub runs: usize,
    /// Robust standard deviations (1.4826 × the median absolute deviation) allowed.
    #[serde(default = "default_deviations")]
    pub deviations: f64,
    /// A relative band around the median that always passes (0.5: ±50%), so that runs
    /// that all loaded the same count do not fail on the slightest change.
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
}

/// `freshness_anomaly = { runs, factor }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreshnessAnomaly {
    /// Earlier runs whose end tells the usual age.
    #[serde(default = "default_runs")]
    pub runs: usize,
    /// How many times the usual age the newest value may be.
    #[serde(default = "default_factor")]
    pub factor: f64,
}

fn default_runs() -> usize {
    10
}
fn default_deviations() -> f64 {
    3.0
}
fn default_tolerance() -> f64 {
    0.5
}
fn default_factor() -> f64 {
    3.0
}

/// What a failing test does to the exit code.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// A failure fails the run.
    #[default]
    Error,
    /// A failure is reported only.
    Warn,
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
    pub fn list(&self) -> Vec<String> {
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

/// Inclusive bounds on a measure; either may be left out.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Range {
    /// The smallest value allowed.
    #[serde(default)]
    pub min: Option<f64>,
    /// The largest value allowed.
    #[serde(default)]
    pub max: Option<f64>,
}

impl Range {
    /// Whether `value` lies within.
    pub(super) fn holds(&self, value: f64) -> bool {
        self.min.is_none_or(|min| value >= min) && self.max.is_none_or(|max| value <= max)
    }

    /// `between 1 and 5`, `at least 1`, `at most 5`.
    pub(super) fn describe(&self) -> String {
        match (self.min, self.max) {
            (Some(min), Some(max)) => format!("between {min} and {max}"),
            (Some(min), None) => format!("at least {min}"),
            (None, Some(max)) => format!("at most {max}"),
            (None, None) => "anything".to_owned(),
        }
    }
}

/// Inclusive bounds on a column's values: numbers, or text (dates, times) that the
/// destination casts to the column's type.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueRange {
    /// The smallest value allowed.
    #[serde(default)]
    pub min: Option<Bound>,
    /// The largest value allowed.
    #[serde(default)]
    pub max: Option<Bound>,
}

/// A bound as written in elt.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Bound {
    /// An integer.
    Integer(i64),
    /// A number with a fraction.
    Float(f64),
    /// Text, such as a date.
    Text(String),
}

impl Bound {
    /// The bound as text, to bind.
    pub(super) fn text(&self) -> String {
        match self {
            Bound::Integer(i) => i.to_string(),
            Bound::Float(f) => f.to_string(),
            Bound::Text(t) => t.clone(),
        }
    }
}

/// A custom query whose rows are failures.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlTest {
    /// The test's name in reports.
    pub name: String,
    /// The query; `{{ table }}` stands for the stream's raw table.
    pub query: String,
}
