//! Column profiles of what a run loaded, for `_elt_profiles` and `distribution_drift`: one
//! query per table over the rows whose `_elt_run_id` is the run's, counting rows and NULLs
//! of every column, with the minimum and maximum of orderable columns and the mean of
//! numeric ones. It runs after the load, in the destination; a run that loaded nothing has
//! no profile. The distinct-value estimates come from the sketches made while the rows
//! streamed (`sketches.rs`).

use elt_core::arrow::datatypes::{DataType, Field};
use elt_core::capability::{ColumnProfile, missing};
use elt_core::catalog::{is_json_field, is_uuid_field};
use elt_core::{ConfiguredStream, DestinationSession, Error, Result, quote_ident};

use super::{DistinctSketches, Scope};

/// What a profile computes for a column of this type.
#[derive(Clone, Copy, PartialEq)]
enum Shape {
    /// Count, distinct, min, max and mean.
    Numeric,
    /// Count, distinct, min and max.
    Ordered,
    /// Count and distinct.
    Comparable,
    /// Count only (JSON, lists, structs: no portable ordering or equality).
    Opaque,
}

fn shape(field: &Field) -> Shape {
    match field.data_type() {
        _ if is_json_field(field) => Shape::Opaque,
        _ if is_uuid_field(field) => Shape::Comparable,
        t if t.is_numeric() => Shape::Numeric,
        DataType::Utf8
        | DataType::LargeUtf8
        | DataType::Date32
        | DataType::Date64
        | DataType::Timestamp(..) => Shape::Ordered,
        DataType::Boolean => Shape::Comparable,
        _ => Shape::Opaque,
    }
}

/// The columns of `stream` a profile describes.
pub fn profiled_fields(stream: &ConfiguredStream) -> Vec<&Field> {
    stream
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref())
        .filter(|f| !f.name().starts_with("_elt_"))
        .collect()
}

/// Profiles the rows `run_id` loaded into `stream`'s table, with the distinct estimates of
/// `sketches`, and appends them to `_elt_profiles`.
pub async fn profile(
    session: &mut dyn DestinationSession,
    scope: Scope<'_>,
    stream: &ConfiguredStream,
    run_id: &str,
    sketches: &DistinctSketches,
) -> Result<()> {
    let fields = profiled_fields(stream);
    let queries = session
        .sql()
        .ok_or_else(|| missing("SQL over its tables", "column profiles (`profile`)"))?;
    let mut select = vec!["CAST(count(*) AS VARCHAR)".to_owned()];
    for field in &fields {
        let c = quote_ident(field.name());
        let shape = shape(field);
        let text = |expression: String| format!("CAST({expression} AS VARCHAR)");
        select.push(text(format!("count({c})")));
        for aggregate in ["min", "max"] {
            select.push(match shape {
                Shape::Numeric | Shape::Ordered => text(format!("{aggregate}({c})")),
                _ => "NULL".to_owned(),
            });
        }
        select.push(match shape {
            Shape::Numeric => text(format!("avg(CAST({c} AS DOUBLE PRECISION))")),
            _ => "NULL".to_owned(),
        });
    }
    let sql = format!(
        "SELECT {} FROM {}.{} WHERE _elt_run_id = CAST($1 AS UUID)",
        select.join(", "),
        quote_ident(scope.dataset),
        quote_ident(&stream.table)
    );
    let started = std::time::Instant::now();
    let rows = queries.query_text(&sql, &[run_id.to_owned()]).await?;
    tracing::debug!(
        stream = stream.name(),
        columns = fields.len(),
        secs = started.elapsed().as_secs_f64(),
        "profiled the run's rows"
    );
    let row = rows
        .into_iter()
        .next()
        .ok_or_else(|| Error::bug("a profile query returned no row"))?;
    let number = |value: &Option<String>| value.as_deref().and_then(|v| v.parse::<u64>().ok());
    let total = number(&row[0]).unwrap_or(0);
    if total == 0 {
        return Ok(());
    }
    let profiles: Vec<ColumnProfile> = fields
        .iter()
        .enumerate()
        .map(|(i, field)| {
            let at = 1 + i * 4;
            ColumnProfile {
                stream: stream.name().to_owned(),
                column: field.name().to_owned(),
                rows: total,
                nulls: total - number(&row[at]).unwrap_or(0),
                distinct: match shape(field) {
                    Shape::Opaque => None,
                    _ => sketches.estimate(field.name()),
                },
                min: row[at + 1].clone(),
                max: row[at + 2].clone(),
                mean: row[at + 3].as_deref().and_then(|v| v.parse().ok()),
            }
        })
        .collect();
    let log = session
        .profiles()
        .ok_or_else(|| missing("column profiles (`_elt_profiles`)", "`profile`"))?;
    log.record_profiles(run_id, &profiles).await
}
