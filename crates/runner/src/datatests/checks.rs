//! The tests of a block as a list of checks, each with the name reports and `--select` use
//! (`kind(arguments)`), and running one check against its table.

use elt_core::capability::SqlQueries;
use elt_core::{Error, Result, quote_ident};

use super::TestOutcome;
use super::anomalies;
use super::config::{
    Drift, FreshnessAnomaly, Range, Relationship, SqlTest, StreamTests, ValueRange, VolumeAnomaly,
};
use super::measures::{Measure, custom_sql, measure, row_count};
use super::queries::{Target, count_rows, freshness, unique};

/// One test of a block.
pub(super) enum Check<'a> {
    NotNull(&'a str),
    Unique(Vec<String>),
    AcceptedValues(&'a str, &'a [String]),
    Relationship(&'a Relationship),
    Freshness(f64),
    RowCount(Range),
    Between(&'a str, &'a ValueRange),
    Regex(&'a str, &'a str),
    Measure(Measure, &'a str, Range),
    Expression(&'a str),
    Sql(&'a SqlTest),
    VolumeAnomaly(&'a VolumeAnomaly),
    FreshnessAnomaly(&'a FreshnessAnomaly),
    Drift(&'a str, &'a Drift),
}

/// The checks of `tests`, in the order reports list them.
pub(super) fn checks(tests: &StreamTests) -> Vec<Check<'_>> {
    let mut all: Vec<Check<'_>> = Vec::new();
    all.extend(tests.not_null.iter().map(|c| Check::NotNull(c)));
    all.extend(tests.unique.iter().map(|c| Check::Unique(c.list())));
    all.extend(
        tests
            .accepted_values
            .iter()
            .map(|(c, v)| Check::AcceptedValues(c, v)),
    );
    all.extend(tests.relationships.iter().map(Check::Relationship));
    all.extend(tests.freshness_hours.map(Check::Freshness));
    all.extend(tests.row_count.map(Check::RowCount));
    all.extend(tests.between.iter().map(|(c, r)| Check::Between(c, r)));
    all.extend(tests.regex.iter().map(|(c, p)| Check::Regex(c, p)));
    for (measure, map) in [
        (Measure::DistinctCount, &tests.distinct_count),
        (Measure::NullFraction, &tests.null_fraction),
        (Measure::Mean, &tests.mean),
        (Measure::Stddev, &tests.stddev),
    ] {
        all.extend(map.iter().map(|(c, r)| Check::Measure(measure, c, *r)));
    }
    all.extend(tests.expression.iter().map(|e| Check::Expression(e)));
    all.extend(tests.sql.iter().map(Check::Sql));
    all.extend(tests.volume_anomaly.iter().map(Check::VolumeAnomaly));
    all.extend(tests.freshness_anomaly.iter().map(Check::FreshnessAnomaly));
    all.extend(
        tests
            .distribution_drift
            .iter()
            .map(|(c, d)| Check::Drift(c, d)),
    );
    all
}

impl Check<'_> {
    /// The kind, as elt.toml spells it.
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Check::NotNull(_) => "not_null",
            Check::Unique(_) => "unique",
            Check::AcceptedValues(..) => "accepted_values",
            Check::Relationship(_) => "relationships",
            Check::Freshness(_) => "freshness_hours",
            Check::RowCount(_) => "row_count",
            Check::Between(..) => "between",
            Check::Regex(..) => "regex",
            Check::Measure(m, ..) => m.kind(),
            Check::Expression(_) => "expression",
            Check::Sql(_) => "sql",
            Check::VolumeAnomaly(_) => "volume_anomaly",
            Check::FreshnessAnomaly(_) => "freshness_anomaly",
            Check::Drift(..) => "distribution_drift",
        }
    }

    /// The name in reports, such as `unique(id)` or `regex(email)`.
    pub(super) fn name(&self) -> String {
        let argument = match self {
            Check::NotNull(c) | Check::AcceptedValues(c, _) | Check::Between(c, _) => {
                (*c).to_owned()
            }
            Check::Regex(c, _) | Check::Measure(_, c, _) | Check::Drift(c, _) => (*c).to_owned(),
            Check::Unique(cs) => cs.join(", "),
            Check::Relationship(r) => format!("{} -> {}.{}", r.column, r.to, r.field),
            Check::Freshness(hours) => hours.to_string(),
            Check::RowCount(range) => range.describe(),
            Check::Expression(e) => (*e).to_owned(),
            Check::Sql(t) => t.name.clone(),
            Check::VolumeAnomaly(rule) => format!("last {} runs", rule.runs),
            Check::FreshnessAnomaly(rule) => format!("last {} runs", rule.runs),
        };
        format!("{}({argument})", self.kind())
    }

    /// Runs the check against `target`'s rows.
    pub(super) async fn run(
        &self,
        session: &mut dyn SqlQueries,
        target: &Target<'_>,
        other: Option<&Target<'_>>,
    ) -> Result<TestOutcome> {
        let name = self.name();
        match self {
            Check::NotNull(column) => {
                let filter = format!("{} IS NULL", quote_ident(column));
                count_rows(session, target, &name, &filter, &target.key(column), &[]).await
            }
            Check::Unique(columns) => unique(session, target, columns).await,
            Check::AcceptedValues(column, values) => {
                let placeholders: Vec<String> =
                    (1..=values.len()).map(|i| format!("${i}")).collect();
                let c = quote_ident(column);
                let filter = format!(
                    "{c} IS NOT NULL AND CAST({c} AS VARCHAR) NOT IN ({})",
                    placeholders.join(", ")
                );
                let shown = [(*column).to_owned()];
                count_rows(session, target, &name, &filter, &shown, values).await
            }
            Check::Relationship(relation) => {
                let other = other.ok_or_else(|| {
                    Error::bug(format!(
                        "data test {name}: the referenced stream was not resolved"
                    ))
                })?;
                let c = quote_ident(&relation.column);
                let filter = format!(
                    "t.{c} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {} p WHERE p.{} = t.{c} AND {})",
                    other.table,
                    quote_ident(&relation.field),
                    other.live("p")
                );
                let shown = [relation.column.clone()];
                count_rows(session, target, &name, &filter, &shown, &[]).await
            }
            Check::Freshness(hours) => freshness(session, target, *hours).await,
            Check::RowCount(range) => row_count(session, target, &name, *range).await,
            Check::Between(column, range) => {
                let c = quote_ident(column);
                let sql_type = target.sql_type(column)?;
                let mut conditions = Vec::new();
                let mut params = Vec::new();
                for (bound, op) in [(&range.min, "<"), (&range.max, ">")] {
                    if let Some(bound) = bound {
                        params.push(bound.text());
                        conditions.push(format!("{c} {op} CAST(${} AS {sql_type})", params.len()));
                    }
                }
                if conditions.is_empty() {
                    return Err(Error::config(format!(
                        "data test {name} of stream {}: `between` needs `min`, `max` or both",
                        target.stream_name()
                    )));
                }
                let filter = format!("{c} IS NOT NULL AND ({})", conditions.join(" OR "));
                let shown = target.key(column);
                count_rows(session, target, &name, &filter, &shown, &params).await
            }
            Check::Regex(column, pattern) => {
                // Anchored, so that both DuckDB's `~` (a full match) and PostgreSQL's (a
                // search) test the whole value.
                let c = quote_ident(column);
                let filter = format!(
                    "{c} IS NOT NULL AND NOT (CAST({c} AS VARCHAR) ~ ('^(?:' || $1 || ')$'))"
                );
                let shown = target.key(column);
                let pattern = [(*pattern).to_owned()];
                count_rows(session, target, &name, &filter, &shown, &pattern).await
            }
            Check::Measure(m, column, range) => {
                if matches!(m, Measure::Mean | Measure::Stddev) {
                    target.numeric(column, &name)?;
                }
                measure(session, target, &name, *m, column, *range).await
            }
            Check::Expression(expression) => {
                let filter = format!("NOT coalesce(({expression}), false)");
                let shown = target.primary_key();
                count_rows(session, target, &name, &filter, &shown, &[]).await
            }
            Check::Sql(test) => custom_sql(session, target, &name, &test.query).await,
            Check::VolumeAnomaly(rule) => anomalies::volume(session, target, &name, rule).await,
            Check::FreshnessAnomaly(rule) => {
                anomalies::freshness(session, target, &name, rule).await
            }
            Check::Drift(column, rule) => {
                target.numeric(column, &name)?;
                anomalies::drift(session, target, &name, column, rule).await
            }
        }
    }
}
