//! The columns of write mode `previous` (slowly changing dimension type 3), shared by every
//! destination: for each tracked column `c` of a stream, the raw table also holds
//! `c_previous` (the value before the last change, same type) and `c_changed_at` (the start
//! of the run that saw the last change, UTC). Both are NULL until the value first changes.
//!
//! Destinations create, evolve and compare tables in [`table_schema`] and pad each batch
//! with [`with_columns`] before staging it; their merge then fills the two columns from the
//! stored row (the SQL is in the destinations' `keyed` module). What it does not do: decide
//! whether a value changed; that happens in SQL, where the stored row is.

use std::sync::Arc;

use arrow::array::{ArrayRef, new_null_array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;

use crate::catalog::ConfiguredStream;
use crate::error::{Error, Result};

/// The column holding `column`'s value before its last change.
pub fn previous_name(column: &str) -> String {
    format!("{column}_previous")
}

/// The column holding when `column` last changed.
pub fn changed_at_name(column: &str) -> String {
    format!("{column}_changed_at")
}

/// The type of every `_changed_at` column: a UTC timestamp in microseconds.
pub fn changed_at_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// The two columns per tracked column, in the order of `previous_columns`; empty unless the
/// stream tracks columns.
pub fn fields(stream: &ConfiguredStream) -> Result<Vec<Field>> {
    let schema = stream.schema();
    let mut fields = Vec::with_capacity(stream.previous.len() * 2);
    for column in &stream.previous {
        let field = schema.field_with_name(column).map_err(|_| {
            Error::config(format!(
                "stream {}: `previous_columns` names {column:?}, which the stream does not have",
                stream.name()
            ))
        })?;
        fields.push(
            Field::new(previous_name(column), field.data_type().clone(), true)
                .with_metadata(field.metadata().clone()),
        );
        fields.push(Field::new(changed_at_name(column), changed_at_type(), true));
    }
    Ok(fields)
}

/// The columns of the stream's raw table before the metadata columns: the stream's, then
/// [`fields`]. The stream's own schema when it tracks no column.
pub fn table_schema(stream: &ConfiguredStream) -> Result<SchemaRef> {
    let added = fields(stream)?;
    if added.is_empty() {
        return Ok(stream.schema().clone());
    }
    let mut all: Vec<Field> = stream
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    all.extend(added);
    Ok(Arc::new(Schema::new(all)))
}

/// `batch` in [`table_schema`]: the tracked columns' NULL companions appended, for the
/// merge to fill.
pub fn with_columns(batch: RecordBatch, stream: &ConfiguredStream) -> Result<RecordBatch> {
    let added = fields(stream)?;
    if added.is_empty() {
        return Ok(batch);
    }
    let rows = batch.num_rows();
    let mut columns = batch.columns().to_vec();
    columns.extend(
        added
            .iter()
            .map(|f| new_null_array(f.data_type(), rows) as ArrayRef),
    );
    RecordBatch::try_new(table_schema(stream)?, columns)
        .map_err(|e| Error::bug("adding the previous-value columns").caused_by(e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::StreamDescriptor;
    use arrow::array::{Array, Int64Array, StringArray};

    fn stream(previous: &[&str]) -> ConfiguredStream {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("country", DataType::Utf8, true),
        ]));
        let mut s = ConfiguredStream::with_defaults(StreamDescriptor {
            name: "customers".into(),
            schema,
            primary_key: vec!["id".into()],
            cursor_candidates: vec![],
            append_only: false,
            delete_marker: None,
        });
        s.previous = previous.iter().map(|c| c.to_string()).collect();
        s
    }

    #[test]
    fn tracked_columns_get_a_typed_previous_and_a_timestamp() {
        let s = stream(&["country"]);
        let schema = table_schema(&s).unwrap();
        let names: Vec<_> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(
            names,
            ["id", "country", "country_previous", "country_changed_at"]
        );
        assert_eq!(schema.field(2).data_type(), &DataType::Utf8);
        assert_eq!(schema.field(3).data_type(), &changed_at_type());
        let batch = RecordBatch::try_new(
            s.schema().clone(),
            vec![
                Arc::new(Int64Array::from(vec![1, 2])),
                Arc::new(StringArray::from(vec!["NL", "DE"])),
            ],
        )
        .unwrap();
        let padded = with_columns(batch, &s).unwrap();
        assert_eq!(padded.schema(), schema);
        assert_eq!(padded.column(2).null_count(), 2);
        assert_eq!(padded.column(3).null_count(), 2);
    }

    #[test]
    fn untracked_streams_keep_their_schema_and_unknown_columns_are_refused() {
        let s = stream(&[]);
        assert!(Arc::ptr_eq(&table_schema(&s).unwrap(), s.schema()));
        let e = fields(&stream(&["city"])).unwrap_err();
        assert!(e.message().contains("previous_columns"), "{e}");
    }
}
