//! Arrow batches as the DuckDB appender takes them: metadata columns added, intervals as
//! text, and the append itself.

use std::sync::Arc;

use elt_core::arrow::array::{
    ArrayRef, AsArray, BooleanArray, FixedSizeBinaryArray, StringArray, TimestampMicrosecondArray,
};
use elt_core::arrow::compute::cast;
use elt_core::arrow::datatypes::{
    DataType, Field, IntervalMonthDayNanoType, IntervalUnit, Schema, TimeUnit,
};
use elt_core::arrow::record_batch::RecordBatch;
use elt_core::catalog::uuid_field;
use elt_core::changes::{IS_CURRENT, ROW_HASH, RUN_ID, meta_columns, row_hashes};
use elt_core::{Error, Result, RunInfo, WriteMode};

use super::db::db_error;
use super::types::staged_as_text;

/// Appends a batch through an appender and flushes it.
pub fn append(appender: duckdb::Result<duckdb::Appender<'_>>, batch: RecordBatch) -> Result<()> {
    let mut appender = appender.map_err(|e| db_error("opening the appender", e))?;
    appender
        .append_record_batch(batch)
        .and_then(|()| appender.flush())
        .map_err(|e| Error::data("DuckDB refused a batch").caused_by(e))
}

/// The batch with the metadata columns of `mode` added, as a load that appends straight into
/// the table writes them: the run's start and id, no deletion, and for history a current
/// version from the run's start with the row's hash (only loads without a soft-delete
/// column append straight into the table).
pub fn with_meta_columns(
    batch: RecordBatch,
    run: &RunInfo,
    mode: WriteMode,
) -> Result<RecordBatch> {
    let rows = batch.num_rows();
    let utc = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let now = || {
        Arc::new(
            TimestampMicrosecondArray::from_value(run.started_at_us, rows).with_timezone("UTC"),
        ) as ArrayRef
    };
    let none =
        || Arc::new(TimestampMicrosecondArray::new_null(rows).with_timezone("UTC")) as ArrayRef;
    let mut fields: Vec<Field> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    let mut columns = batch.columns().to_vec();
    for meta in meta_columns(mode) {
        let (field, column) = match meta.name {
            RUN_ID => {
                let run_id = uuid_bytes(&run.run_id)
                    .ok_or_else(|| Error::bug(format!("run id {:?} is not a UUID", run.run_id)))?;
                let run_ids =
                    FixedSizeBinaryArray::try_from_iter(std::iter::repeat_n(run_id, rows))
                        .map_err(|e| Error::bug("building the run id column").caused_by(e))?;
                (uuid_field(RUN_ID, false), Arc::new(run_ids) as ArrayRef)
            }
            IS_CURRENT => (
                Field::new(IS_CURRENT, DataType::Boolean, false),
                Arc::new(BooleanArray::from(vec![true; rows])) as ArrayRef,
            ),
            ROW_HASH => (
                Field::new(ROW_HASH, DataType::Utf8, false),
                Arc::new(row_hashes(&batch)?) as ArrayRef,
            ),
            name if meta.nullable => (Field::new(name, utc.clone(), true), none()),
            name => (Field::new(name, utc.clone(), false), now()),
        };
        fields.push(field);
        columns.push(column);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| Error::bug("adding the metadata columns").caused_by(e))
}

/// The 16 bytes of a UUID in its hyphenated text form.
pub fn uuid_bytes(text: &str) -> Option<[u8; 16]> {
    let hex: Vec<u8> = text.bytes().filter(|b| *b != b'-').collect();
    let mut out = [0u8; 16];
    if hex.len() != 32 {
        return None;
    }
    for (i, pair) in hex.chunks(2).enumerate() {
        out[i] = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
}

/// Replaces interval and duration columns by text DuckDB casts back (see
/// [`staged_as_text`]): `M months D days U microseconds`, NULLs kept.
pub fn intervals_as_text(batch: RecordBatch) -> Result<RecordBatch> {
    if !batch.schema().fields().iter().any(|f| staged_as_text(f)) {
        return Ok(batch);
    }
    let mut fields = Vec::new();
    let mut columns = Vec::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if !staged_as_text(field) {
            fields.push(field.as_ref().clone());
            columns.push(column.clone());
            continue;
        }
        let as_mdn =
            cast(column, &DataType::Interval(IntervalUnit::MonthDayNano)).map_err(|e| {
                Error::data(format!(
                    "column {}: cannot convert to an interval",
                    field.name()
                ))
                .caused_by(e)
            })?;
        let text: StringArray = as_mdn
            .as_primitive::<IntervalMonthDayNanoType>()
            .iter()
            .map(|v| {
                v.map(|v| {
                    format!(
                        "{} months {} days {} microseconds",
                        v.months,
                        v.days,
                        v.nanoseconds / 1000
                    )
                })
            })
            .collect();
        fields.push(Field::new(
            field.name(),
            DataType::Utf8,
            field.is_nullable(),
        ));
        columns.push(Arc::new(text) as ArrayRef);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| Error::bug("restaging intervals").caused_by(e))
}
