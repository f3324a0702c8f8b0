//! Tests that measure the table rather than list failing rows: `row_count`, and per column
//! `distinct_count`, `null_fraction`, `mean` and `stddev` (one aggregate query each,
//! compared with the bounds in Rust); and custom `sql` tests, whose rows are the failures.

use elt_core::capability::SqlQueries;
use elt_core::{Error, Result, quote_ident};

use super::TestOutcome;
use super::config::Range;
use super::queries::{SAMPLES, Target, outcome, scalar, texts};

/// A per-column measure.
#[derive(Debug, Clone, Copy)]
pub(super) enum Measure {
    DistinctCount,
    NullFraction,
    Mean,
    Stddev,
}

impl Measure {
    pub(super) fn kind(self) -> &'static str {
        match self {
            Measure::DistinctCount => "distinct_count",
            Measure::NullFraction => "null_fraction",
            Measure::Mean => "mean",
            Measure::Stddev => "stddev",
        }
    }

    /// The aggregate over `c` (quoted), as SQL both databases accept.
    fn aggregate(self, c: &str) -> String {
        match self {
            Measure::DistinctCount => format!("count(DISTINCT {c})"),
            Measure::NullFraction => {
                format!("CAST(count(*) - count({c}) AS DOUBLE PRECISION) / NULLIF(count(*), 0)")
            }
            Measure::Mean => format!("avg(CAST({c} AS DOUBLE PRECISION))"),
            Measure::Stddev => format!("stddev_samp(CAST({c} AS DOUBLE PRECISION))"),
        }
    }
}

/// Runs `sql` (one value) and judges it against `range`; no value (an empty table, a
/// column without values) passes, as the aggregate has nothing to hold against.
async fn judge(
    session: &mut dyn SqlQueries,
    target: &Target<'_>,
    test: &str,
    sql: &str,
    range: Range,
) -> Result<TestOutcome> {
    let text = scalar(session, sql, &[], test).await?;
    let Some(text) = text else {
        let detail = Some("nothing to measure".to_owned());
        return Ok(outcome(target, test, 0, Vec::new(), detail));
    };
    let value: f64 = text.trim().parse().map_err(|_| {
        Error::bug(format!(
            "data test {test}: the measure {text:?} is not a number"
        ))
    })?;
    let failing = u64::from(!range.holds(value));
    let detail = Some(format!("observed {value}, expected {}", range.describe()));
    let mut result = outcome(target, test, failing, Vec::new(), detail);
    result.observed = Some(value);
    Ok(result)
}

/// `row_count`: the number of rows the block's filter keeps.
pub(super) async fn row_count(
    session: &mut dyn SqlQueries,
    target: &Target<'_>,
    test: &str,
    range: Range,
) -> Result<TestOutcome> {
    let sql = format!(
        "SELECT CAST(count(*) AS VARCHAR) FROM {} t WHERE {}",
        target.table,
        target.rows("t")
    );
    judge(session, target, test, &sql, range).await
}

/// A per-column measure against its bounds.
pub(super) async fn measure(
    session: &mut dyn SqlQueries,
    target: &Target<'_>,
    test: &str,
    measure: Measure,
    column: &str,
    range: Range,
) -> Result<TestOutcome> {
    target.column(column)?;
    let sql = format!(
        "SELECT CAST({} AS VARCHAR) FROM {} t WHERE {}",
        measure.aggregate(&quote_ident(column)),
        target.table,
        target.rows("t")
    );
    judge(session, target, test, &sql, range).await
}

/// A custom query: every row it returns is a failure; the samples are its first rows as
/// text. `{{ table }}` is replaced by the quoted raw table (all its rows: filter live rows
/// in the query where it matters).
pub(super) async fn custom_sql(
    session: &mut dyn SqlQueries,
    target: &Target<'_>,
    test: &str,
    query: &str,
) -> Result<TestOutcome> {
    if !query.contains("{{ table }}") {
        return Err(Error::config(format!(
            "data test {test} of stream {}: the query must name its table as {{{{ table }}}}",
            target.stream_name()
        )));
    }
    let query = query.replace("{{ table }}", &target.table);
    let count = scalar(
        session,
        &format!("SELECT CAST(count(*) AS VARCHAR) FROM ({query}) q"),
        &[],
        test,
    )
    .await?;
    let failing: u64 = count.as_deref().unwrap_or("0").parse().unwrap_or(0);
    let samples = if failing == 0 {
        Vec::new()
    } else {
        let sql = format!("SELECT CAST(q AS VARCHAR) FROM ({query}) q LIMIT {SAMPLES}");
        texts(session, &sql, &[], test).await?
    };
    Ok(outcome(target, test, failing, samples, None))
}
