//! Tests that learn from the connection's earlier runs: `volume_anomaly` (this run's rows
//! loaded against the median of the last runs in `_elt_runs`, with a robust spread),
//! `freshness_anomaly` (how old the newest cursor value is against how old it usually was
//! when a sync ended) and `distribution_drift` (a column's mean and null fraction in the
//! latest `_elt_profiles` row against earlier ones). Each passes, saying so, until there
//! are `MIN_HISTORY` earlier runs.

use elt_core::capability::SqlQueries;
use elt_core::{Error, Result, quote_ident};

use super::TestOutcome;
use super::config::{Drift, FreshnessAnomaly, VolumeAnomaly};
use super::queries::{Target, first_column, outcome, parse_time, scalar};

/// Earlier runs needed before a history test judges.
const MIN_HISTORY: usize = 3;

/// The median of `values` (not empty).
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

/// The median of `earlier` and how far from it a value may lie: `deviations` robust
/// standard deviations (1.4826 × the median absolute deviation) or `tolerance` × the
/// median, whichever is wider.
fn band(earlier: &mut [f64], deviations: f64, tolerance: f64) -> (f64, f64) {
    let middle = median(earlier);
    let mut distances: Vec<f64> = earlier.iter().map(|v| (v - middle).abs()).collect();
    let spread = 1.4826 * median(&mut distances);
    (middle, (deviations * spread).max(tolerance * middle.abs()))
}

/// Up to `limit` values of `expression` from the stream's succeeded runs, newest first.
async fn recent_runs(
    session: &mut dyn SqlQueries,
    target: &Target<'_>,
    test: &str,
    expression: &str,
    limit: usize,
) -> Result<Vec<Option<String>>> {
    let sql = format!(
        "SELECT {expression} FROM {} WHERE connection = $1 AND stream = $2 AND status = 'succeeded'
         ORDER BY started_at DESC LIMIT {limit}",
        target.bookkeeping("_elt_runs")
    );
    let params = [
        target.scope.connection.to_owned(),
        target.stream_name().to_owned(),
    ];
    first_column(session, &sql, &params, test).await
}

fn not_enough(target: &Target<'_>, test: &str, earlier: usize) -> TestOutcome {
    let detail = format!("not enough history: {earlier} earlier runs, {MIN_HISTORY} needed");
    outcome(target, test, 0, Vec::new(), Some(detail))
}

/// `volume_anomaly`: fails when the latest run's rows loaded lie further from the median
/// of the `runs` before it than both `deviations` robust standard deviations (1.4826 ×
/// the median absolute deviation) and `tolerance` × the median.
pub(super) async fn volume(
    session: &mut dyn SqlQueries,
    target: &Target<'_>,
    test: &str,
    rule: &VolumeAnomaly,
) -> Result<TestOutcome> {
    let loaded = recent_runs(
        session,
        target,
        test,
        "CAST(rows_loaded AS VARCHAR)",
        rule.runs + 1,
    )
    .await?;
    let mut loaded: Vec<f64> = loaded
        .into_iter()
        .map(|v| v.and_then(|v| v.parse().ok()).unwrap_or(0.0))
        .collect();
    if loaded.len() <= MIN_HISTORY {
        return Ok(not_enough(target, test, loaded.len().saturating_sub(1)));
    }
    let latest = loaded.remove(0);
    let (middle, allowed) = band(&mut loaded, rule.deviations, rule.tolerance);
    let failing = u64::from((latest - middle).abs() > allowed);
    let detail = format!(
        "{latest} rows loaded; median of the {} runs before: {middle}, allowed ±{allowed:.1}",
        loaded.len()
    );
    let mut result = outcome(target, test, failing, Vec::new(), Some(detail));
    result.observed = Some(latest);
    Ok(result)
}

/// `freshness_anomaly`: fails when the newest cursor value is more than `factor` times as
/// old as it usually was when a sync ended (the median over the last `runs` runs).
pub(super) async fn freshness(
    session: &mut dyn SqlQueries,
    target: &Target<'_>,
    test: &str,
    rule: &FreshnessAnomaly,
) -> Result<TestOutcome> {
    let cursor = target.cursor().ok_or_else(|| {
        Error::config(format!(
            "`freshness_anomaly` of stream {}: the stream has no cursor to measure",
            target.stream_name()
        ))
    })?;
    let pairs = recent_runs(
        session,
        target,
        test,
        "CAST(ended_at AS VARCHAR) || '|' || watermark_after",
        rule.runs,
    )
    .await?;
    let mut usual: Vec<f64> = pairs
        .into_iter()
        .flatten()
        .filter_map(|pair| {
            let (ended, watermark) = pair.split_once('|')?;
            let age = parse_time(ended)? - parse_time(watermark)?;
            Some(age.num_seconds() as f64 / 3600.0)
        })
        .collect();
    if usual.len() < MIN_HISTORY {
        return Ok(not_enough(target, test, usual.len()));
    }
    let usual_hours = median(&mut usual);
    let sql = format!(
        "SELECT CAST(max({}) AS VARCHAR) FROM {} t WHERE {}",
        quote_ident(cursor),
        target.table,
        target.rows("t")
    );
    let Some(newest) = scalar(session, &sql, &[], test).await? else {
        let detail = Some("the table has no rows".to_owned());
        return Ok(outcome(target, test, 1, Vec::new(), detail));
    };
    let at = parse_time(&newest).ok_or_else(|| {
        Error::config(format!(
            "`freshness_anomaly` of stream {}: the cursor {cursor} holds {newest:?}, not a date or time",
            target.stream_name()
        ))
    })?;
    let age_hours = (chrono::Utc::now() - at).num_seconds() as f64 / 3600.0;
    let failing = u64::from(age_hours > rule.factor * usual_hours.max(1.0 / 60.0));
    let detail = format!(
        "newest {cursor} is {age_hours:.1} hours old; usually {usual_hours:.1} hours when a sync ends (median of {} runs), allowed {}×",
        usual.len(),
        rule.factor
    );
    let mut result = outcome(target, test, failing, Vec::new(), Some(detail));
    result.observed = Some(age_hours);
    Ok(result)
}

/// `distribution_drift`: fails when the mean of what the latest run loaded lies outside
/// the band of the earlier runs' means, or its null fraction moved more than
/// `null_fraction` from their median.
pub(super) async fn drift(
    session: &mut dyn SqlQueries,
    target: &Target<'_>,
    test: &str,
    column: &str,
    rule: &Drift,
) -> Result<TestOutcome> {
    let sql = format!(
        "SELECT CAST(mean AS VARCHAR) || '|' || CAST(CAST(nulls AS DOUBLE PRECISION) / rows AS VARCHAR)
         FROM {} WHERE connection = $1 AND stream = $2 AND column_name = $3 AND mean IS NOT NULL
         ORDER BY profiled_at DESC LIMIT {}",
        target.bookkeeping("_elt_profiles"),
        rule.runs + 1
    );
    let params = [
        target.scope.connection.to_owned(),
        target.stream_name().to_owned(),
        column.to_owned(),
    ];
    let profiles: Vec<(f64, f64)> = first_column(session, &sql, &params, test)
        .await?
        .into_iter()
        .flatten()
        .filter_map(|pair| {
            let (mean, nulls) = pair.split_once('|')?;
            Some((mean.parse().ok()?, nulls.parse().ok()?))
        })
        .collect();
    if profiles.len() <= MIN_HISTORY {
        return Ok(not_enough(target, test, profiles.len().saturating_sub(1)));
    }
    let (mean, nulls) = profiles[0];
    let mut means: Vec<f64> = profiles[1..].iter().map(|p| p.0).collect();
    let mut fractions: Vec<f64> = profiles[1..].iter().map(|p| p.1).collect();
    let (usual_mean, allowed) = band(&mut means, rule.deviations, rule.tolerance);
    let usual_nulls = median(&mut fractions);
    let mean_moved = (mean - usual_mean).abs() > allowed;
    let nulls_moved = (nulls - usual_nulls).abs() > rule.null_fraction;
    let detail = format!(
        "mean {mean} (usually {usual_mean}, allowed ±{allowed:.3}); null fraction {nulls:.3} \
         (usually {usual_nulls:.3}, allowed ±{}); {} earlier runs",
        rule.null_fraction,
        profiles.len() - 1
    );
    let mut result = outcome(
        target,
        test,
        u64::from(mean_moved || nulls_moved),
        Vec::new(),
        Some(detail),
    );
    result.observed = Some(mean);
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
    }
}
