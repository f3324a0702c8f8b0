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
//! The SQL is the subset DuckDB and PostgreSQL share; identifiers are quoted, values bound.
//! What it does not do: fix data, or test anything but the raw tables of one connection.

use std::collections::BTreeMap;

use elt_core::{ConfiguredStream, DestinationSession, Error, Result, WriteMode, quote_ident};
use serde::{Deserialize, Serialize};

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

/// A planned stream's table.
struct Target<'a> {
    stream: &'a ConfiguredStream,
    table: String,
}

impl<'a> Target<'a> {
    fn new(stream: &'a ConfiguredStream, dataset: &str) -> Self {
        Self {
            stream,
            table: format!("{}.{}", quote_ident(dataset), quote_ident(&stream.table)),
        }
    }

    /// The condition that keeps the live rows of the table aliased `alias`.
    fn live(&self, alias: &str) -> String {
        match self.stream.write_mode {
            WriteMode::Merge => format!("{alias}._elt_deleted_at IS NULL"),
            WriteMode::History => format!("{alias}._elt_is_current"),
            WriteMode::Append | WriteMode::Overwrite => "TRUE".to_owned(),
        }
    }

    /// The columns that identify a row: its primary key, else `fallback`.
    fn key(&self, fallback: &str) -> Vec<String> {
        if self.stream.primary_key.is_empty() {
            vec![fallback.to_owned()]
        } else {
            self.stream.primary_key.clone()
        }
    }
}

/// `col1 || ', ' || col2` of the columns cast to text, NULL shown as `NULL`.
fn text_of(columns: &[String]) -> String {
    columns
        .iter()
        .map(|c| format!("coalesce(CAST({} AS VARCHAR), 'NULL')", quote_ident(c)))
        .collect::<Vec<_>>()
        .join(" || ', ' || ")
}

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
    for tests in tests
        .iter()
        .filter(|t| only.is_none_or(|o| o.contains(&t.stream)))
    {
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

/// A test that fails the live rows matching `filter`; the samples are the first distinct
/// values of `shown` (columns) among them, in their order.
async fn count_rows(
    session: &mut dyn DestinationSession,
    target: &Target<'_>,
    test: &str,
    filter: &str,
    shown: &[String],
    params: &[String],
) -> Result<TestOutcome> {
    let from = format!(
        "FROM {} t WHERE {} AND ({filter})",
        target.table,
        target.live("t")
    );
    let count = scalar(
        session,
        &format!("SELECT CAST(count(*) AS VARCHAR) {from}"),
        params,
        test,
    )
    .await?;
    let failing: u64 = count.as_deref().unwrap_or("0").parse().unwrap_or(0);
    let samples = if failing == 0 {
        Vec::new()
    } else {
        let columns: Vec<String> = shown.iter().map(|c| quote_ident(c)).collect();
        let sql = format!(
            "SELECT {} {from} GROUP BY {cols} ORDER BY {cols} LIMIT {SAMPLES}",
            text_of(shown),
            cols = columns.join(", ")
        );
        texts(session, &sql, params, test).await?
    };
    Ok(outcome(target, test, failing, samples, None))
}

async fn unique(
    session: &mut dyn DestinationSession,
    target: &Target<'_>,
    columns: &[String],
) -> Result<TestOutcome> {
    let test = format!("unique({})", columns.join(", "));
    let quoted: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
    // As SQL's UNIQUE: rows with a NULL in a tested column are never duplicates.
    let present: Vec<String> = quoted
        .iter()
        .map(|c| format!(" AND {c} IS NOT NULL"))
        .collect();
    let repeated = format!(
        "SELECT {} AS sample, count(*) AS n FROM {} t WHERE {}{} GROUP BY {} HAVING count(*) > 1",
        text_of(columns),
        target.table,
        target.live("t"),
        present.concat(),
        quoted.join(", ")
    );
    let count = scalar(
        session,
        &format!("SELECT CAST(count(*) AS VARCHAR) FROM ({repeated}) r"),
        &[],
        &test,
    )
    .await?;
    let failing: u64 = count.as_deref().unwrap_or("0").parse().unwrap_or(0);
    let samples = if failing == 0 {
        Vec::new()
    } else {
        let sql = format!(
            "SELECT sample || ' (' || CAST(n AS VARCHAR) || ' rows)' FROM ({repeated}) r ORDER BY n DESC, 1 LIMIT {SAMPLES}"
        );
        texts(session, &sql, &[], &test).await?
    };
    Ok(outcome(target, &test, failing, samples, None))
}

async fn freshness(
    session: &mut dyn DestinationSession,
    target: &Target<'_>,
    hours: f64,
) -> Result<TestOutcome> {
    let test = format!("freshness_hours({hours})");
    let cursor = target.stream.cursor.as_deref().ok_or_else(|| {
        Error::config(format!(
            "`freshness_hours` of stream {}: the stream has no cursor to measure",
            target.stream.name()
        ))
    })?;
    let sql = format!(
        "SELECT CAST(max({}) AS VARCHAR) FROM {} t WHERE {}",
        quote_ident(cursor),
        target.table,
        target.live("t")
    );
    let newest = scalar(session, &sql, &[], &test).await?;
    let Some(text) = newest else {
        let detail = Some("the table has no rows".to_owned());
        return Ok(outcome(target, &test, 1, Vec::new(), detail));
    };
    let at = parse_time(&text).ok_or_else(|| {
        Error::config(format!(
            "`freshness_hours` of stream {}: the cursor {cursor} holds {text:?}, not a date or time",
            target.stream.name()
        ))
    })?;
    let age_hours = (chrono::Utc::now() - at).num_seconds() as f64 / 3600.0;
    let stale = age_hours > hours;
    let detail = Some(format!(
        "newest {cursor} is {text}, {age_hours:.1} hours old"
    ));
    Ok(outcome(target, &test, u64::from(stale), Vec::new(), detail))
}

/// A timestamp as DuckDB or PostgreSQL print it (zone or not; a zone-less one is UTC), or a
/// date.
pub(crate) fn parse_time(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let text = text.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(t.to_utc());
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M:%S%.f%#z"] {
        if let Ok(t) = chrono::DateTime::parse_from_str(text, format) {
            return Some(t.to_utc());
        }
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return Some(t.and_utc());
        }
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

fn outcome(
    target: &Target<'_>,
    test: &str,
    failing: u64,
    samples: Vec<String>,
    detail: Option<String>,
) -> TestOutcome {
    TestOutcome {
        stream: target.stream.name().to_owned(),
        test: test.to_owned(),
        passed: failing == 0,
        failing_rows: failing,
        samples,
        detail,
    }
}

/// The first column of each row of a data test's query (None for NULL).
async fn first_column(
    session: &mut dyn DestinationSession,
    sql: &str,
    params: &[String],
    test: &str,
) -> Result<Vec<Option<String>>> {
    let rows = session
        .query_text(sql, params)
        .await
        .map_err(|e| Error::new(e.kind(), format!("data test {test}: {}", e.message())))?;
    Ok(rows
        .into_iter()
        .map(|r| r.into_iter().next().flatten())
        .collect())
}

async fn texts(
    session: &mut dyn DestinationSession,
    sql: &str,
    params: &[String],
    test: &str,
) -> Result<Vec<String>> {
    let values = first_column(session, sql, params, test).await?;
    Ok(values
        .into_iter()
        .map(|v| v.unwrap_or_else(|| "NULL".into()))
        .collect())
}

async fn scalar(
    session: &mut dyn DestinationSession,
    sql: &str,
    params: &[String],
    test: &str,
) -> Result<Option<String>> {
    let values = first_column(session, sql, params, test).await?;
    Ok(values.into_iter().next().flatten())
}

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn times_as_both_databases_print_them() {
        for text in [
            "2024-05-01 12:00:00+00",
            "2024-05-01 14:00:00+02",
            "2024-05-01 12:00:00",
            "2024-05-01T12:00:00.000000+00:00",
        ] {
            assert_eq!(
                parse_time(text).map(|t| t.timestamp()),
                Some(1_714_564_800),
                "{text}"
            );
        }
        assert_eq!(
            parse_time("2024-05-01").map(|t| t.timestamp()),
            Some(1_714_521_600)
        );
        assert_eq!(parse_time("17"), None);
    }
}
