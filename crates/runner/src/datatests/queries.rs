//! The SQL of the row-listing data tests (`count_rows`, `unique`, `freshness`), the
//! tested table with its live-row and `where` filters, and the query helpers every test
//! uses.

use elt_core::arrow::datatypes::{DataType, Field};
use elt_core::capability::SqlQueries;
use elt_core::{ConfiguredStream, Error, Result, quote_ident};

use super::config::Severity;
use super::{Scope, TestOutcome};

/// How many failing rows a test shows.
pub(super) const SAMPLES: usize = 5;

/// A planned stream's table, and the block's `where` filter.
pub(super) struct Target<'a> {
    stream: &'a ConfiguredStream,
    pub(super) table: String,
    filter: Option<&'a str>,
    pub(super) scope: Scope<'a>,
}

impl<'a> Target<'a> {
    pub(super) fn new(
        stream: &'a ConfiguredStream,
        scope: Scope<'a>,
        filter: Option<&'a str>,
    ) -> Self {
        Self {
            stream,
            table: format!(
                "{}.{}",
                quote_ident(scope.dataset),
                quote_ident(&stream.table)
            ),
            filter,
            scope,
        }
    }

    /// A bookkeeping table of the dataset, such as `_elt_runs`, quoted.
    pub(super) fn bookkeeping(&self, name: &str) -> String {
        format!("{}.{name}", quote_ident(self.scope.dataset))
    }

    /// The stream's cursor, if it has one.
    pub(super) fn cursor(&self) -> Option<&str> {
        self.stream.cursor.as_deref()
    }

    pub(super) fn stream_name(&self) -> &str {
        self.stream.name()
    }

    /// The condition that keeps the live rows of the table aliased `alias`.
    pub(super) fn live(&self, alias: &str) -> String {
        match self.stream.write_mode.live_rows() {
            Some(rows) => format!("{alias}.{rows}"),
            None => "TRUE".to_owned(),
        }
    }

    /// The live rows the block's `where` keeps, of the table aliased `alias`.
    pub(super) fn rows(&self, alias: &str) -> String {
        match self.filter {
            Some(filter) => format!("{} AND ({filter})", self.live(alias)),
            None => self.live(alias),
        }
    }

    /// The columns that identify a row: its primary key, else `fallback`.
    pub(super) fn key(&self, fallback: &str) -> Vec<String> {
        if self.stream.primary_key.is_empty() {
            vec![fallback.to_owned()]
        } else {
            self.stream.primary_key.clone()
        }
    }

    /// The primary key, which may be empty (no samples then).
    pub(super) fn primary_key(&self) -> Vec<String> {
        self.stream.primary_key.clone()
    }

    /// The stream's column `name`; a config error naming the test's stream when it has none.
    pub(super) fn column(&self, name: &str) -> Result<&Field> {
        self.stream.schema().field_with_name(name).map_err(|_| {
            Error::config(format!(
                "data tests of stream {} name column {name:?}, which the stream does not load",
                self.stream.name()
            ))
        })
    }

    /// The SQL type both databases cast a bound value to for comparing with `name`.
    pub(super) fn sql_type(&self, name: &str) -> Result<String> {
        let field = self.column(name)?;
        Ok(match field.data_type() {
            DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => "BIGINT".into(),
            DataType::UInt8 | DataType::UInt16 | DataType::UInt32 => "BIGINT".into(),
            DataType::UInt64 => "DECIMAL(20, 0)".into(),
            DataType::Float16 | DataType::Float32 | DataType::Float64 => "DOUBLE PRECISION".into(),
            DataType::Decimal128(p, s) => format!("DECIMAL({p}, {s})"),
            DataType::Date32 | DataType::Date64 => "DATE".into(),
            DataType::Timestamp(_, Some(_)) => "TIMESTAMPTZ".into(),
            DataType::Timestamp(_, None) => "TIMESTAMP".into(),
            DataType::Utf8 | DataType::LargeUtf8 => "VARCHAR".into(),
            other => {
                return Err(Error::config(format!(
                    "column {name} of stream {} has type {other}, which `between` cannot compare; \
                     test numbers, dates, times or text",
                    self.stream.name()
                )));
            }
        })
    }

    /// Checks that `name` holds numbers (for `mean`, `stddev`).
    pub(super) fn numeric(&self, name: &str, test: &str) -> Result<()> {
        let field = self.column(name)?;
        if field.data_type().is_numeric() {
            Ok(())
        } else {
            Err(Error::config(format!(
                "data test {test} of stream {}: column {name} has type {}, not a number",
                self.stream.name(),
                field.data_type()
            )))
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

/// A test that fails the live rows matching `filter`; the samples are the first distinct
/// values of `shown` (columns) among them, in their order.
pub(super) async fn count_rows(
    session: &mut dyn SqlQueries,
    target: &Target<'_>,
    test: &str,
    filter: &str,
    shown: &[String],
    params: &[String],
) -> Result<TestOutcome> {
    let from = format!(
        "FROM {} t WHERE {} AND ({filter})",
        target.table,
        target.rows("t")
    );
    let count = scalar(
        session,
        &format!("SELECT CAST(count(*) AS VARCHAR) {from}"),
        params,
        test,
    )
    .await?;
    let failing: u64 = count.as_deref().unwrap_or("0").parse().unwrap_or(0);
    let samples = if failing == 0 || shown.is_empty() {
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

pub(super) async fn unique(
    session: &mut dyn SqlQueries,
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
        target.rows("t"),
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

pub(super) async fn freshness(
    session: &mut dyn SqlQueries,
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
        target.rows("t")
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

pub(super) fn outcome(
    target: &Target<'_>,
    test: &str,
    failing: u64,
    samples: Vec<String>,
    detail: Option<String>,
) -> TestOutcome {
    TestOutcome {
        stream: target.stream.name().to_owned(),
        test: test.to_owned(),
        severity: Severity::Error,
        passed: failing == 0,
        failing_rows: failing,
        samples,
        observed: None,
        detail,
    }
}

/// The first column of each row of a data test's query (None for NULL).
pub(super) async fn first_column(
    session: &mut dyn SqlQueries,
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

pub(super) async fn texts(
    session: &mut dyn SqlQueries,
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

pub(super) async fn scalar(
    session: &mut dyn SqlQueries,
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
