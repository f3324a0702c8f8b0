//! Helpers that turn rows into Arrow batches, so connector authors rarely touch builders.
//!
//! - [`FlushPolicy`]: a batch is ready at `max_rows`, at `max_bytes`, or `max_linger` after
//!   its first row, whichever comes first.
//! - [`JsonBatcher`]: JSON documents (bytes or serde values) decoded straight into Arrow
//!   with `arrow-json`, never through one `serde_json::Value` per row.
//! - [`RowBatcher`]: typed builders for a schema, filled a row at a time.
//!
//! Neither keeps more than one batch in memory.

use std::time::{Duration, Instant};

use arrow::array::{ArrayBuilder, GenericByteBuilder, make_builder};
use arrow::datatypes::{DataType, GenericBinaryType, GenericStringType, SchemaRef};
use arrow::json::reader::{Decoder, ReaderBuilder};
use arrow::record_batch::RecordBatch;

use crate::error::{Error, Result};

/// When a batch under construction is handed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlushPolicy {
    /// Rows per batch at most.
    pub max_rows: usize,
    /// Approximate Arrow bytes per batch at most.
    pub max_bytes: usize,
    /// How long the first row of a batch may wait.
    pub max_linger: Duration,
}

impl Default for FlushPolicy {
    fn default() -> Self {
        Self {
            max_rows: 65_536,
            max_bytes: 32 << 20,
            max_linger: Duration::from_secs(5),
        }
    }
}

impl FlushPolicy {
    /// A policy flushing at `max_rows`, with the default byte and time limits.
    pub fn rows(max_rows: usize) -> Self {
        Self {
            max_rows: max_rows.max(1),
            ..Self::default()
        }
    }

    fn is_due(&self, rows: usize, bytes: usize, first_row_at: Option<Instant>) -> bool {
        rows >= self.max_rows
            || bytes >= self.max_bytes
            || first_row_at.is_some_and(|t| t.elapsed() >= self.max_linger)
    }
}

/// Decodes JSON documents into batches of a fixed schema.
pub struct JsonBatcher {
    decoder: Decoder,
    policy: FlushPolicy,
    bytes: usize,
    first_row_at: Option<Instant>,
}

impl JsonBatcher {
    /// A batcher for `schema`. Fields missing from a document become NULL; a value of the
    /// wrong type is an error naming the column.
    pub fn new(schema: SchemaRef, policy: FlushPolicy) -> Result<Self> {
        let decoder = ReaderBuilder::new(schema)
            .with_batch_size(policy.max_rows)
            .build_decoder()
            .map_err(|e| Error::bug("cannot build a JSON decoder").caused_by(e))?;
        Ok(Self {
            decoder,
            policy,
            bytes: 0,
            first_row_at: None,
        })
    }

    /// Decodes newline-delimited or concatenated JSON objects; returns the batches that
    /// became ready.
    pub fn push_bytes(&mut self, mut data: &[u8]) -> Result<Vec<RecordBatch>> {
        let mut ready = Vec::new();
        while !data.is_empty() {
            let used = self.decoder.decode(data).map_err(decode_error)?;
            self.note_rows(used);
            data = &data[used..];
            if !data.is_empty() || self.is_due() {
                ready.extend(self.flush()?);
            }
        }
        Ok(ready)
    }

    /// Encodes serde values (structs, maps) as rows; returns the batches that became ready.
    pub fn push_values<T: serde::Serialize>(&mut self, rows: &[T]) -> Result<Vec<RecordBatch>> {
        let mut ready = Vec::new();
        for chunk in rows.chunks(self.policy.max_rows) {
            let room = self.policy.max_rows - self.decoder.len();
            let (now, later) = chunk.split_at(room.min(chunk.len()));
            for part in [now, later] {
                if part.is_empty() {
                    continue;
                }
                self.decoder.serialize(part).map_err(decode_error)?;
                self.note_rows(std::mem::size_of_val(part));
                if self.is_due() {
                    ready.extend(self.flush()?);
                }
            }
        }
        Ok(ready)
    }

    /// Whether the policy says the pending rows should go now (for time-based flushing by
    /// a caller that is waiting for input).
    pub fn is_due(&self) -> bool {
        self.policy
            .is_due(self.decoder.len(), self.bytes, self.first_row_at)
    }

    /// Hands on the pending rows, if any.
    pub fn flush(&mut self) -> Result<Option<RecordBatch>> {
        self.bytes = 0;
        self.first_row_at = None;
        self.decoder.flush().map_err(decode_error)
    }

    fn note_rows(&mut self, bytes: usize) {
        self.bytes += bytes;
        if self.first_row_at.is_none() && !self.decoder.is_empty() {
            self.first_row_at = Some(Instant::now());
        }
    }
}

fn decode_error(e: arrow::error::ArrowError) -> Error {
    Error::data(format!("a record does not match the stream's schema: {e}"))
}

/// Typed Arrow builders for a schema, filled one row at a time.
///
/// ```
/// # use elt_core::batch::{FlushPolicy, RowBatcher};
/// # use elt_core::arrow::array::{Int64Builder, StringBuilder};
/// # use elt_core::arrow::datatypes::{DataType, Field};
/// let schema = elt_core::catalog::schema(vec![
///     Field::new("id", DataType::Int64, false),
///     Field::new("name", DataType::Utf8, true),
/// ]);
/// let mut rows = RowBatcher::new(schema, FlushPolicy::rows(2));
/// rows.column::<Int64Builder>(0).append_value(1);
/// rows.column::<StringBuilder>(1).append_value("ada");
/// assert!(rows.end_row().unwrap().is_none());
/// rows.column::<Int64Builder>(0).append_value(2);
/// rows.column::<StringBuilder>(1).append_null();
/// let batch = rows.end_row().unwrap().expect("two rows make a batch");
/// assert_eq!(batch.num_rows(), 2);
/// ```
pub struct RowBatcher {
    schema: SchemaRef,
    builders: Vec<Box<dyn ArrayBuilder>>,
    policy: FlushPolicy,
    fixed_row_bytes: usize,
    rows: usize,
    first_row_at: Option<Instant>,
}

impl RowBatcher {
    /// Builders for every column of `schema`.
    pub fn new(schema: SchemaRef, policy: FlushPolicy) -> Self {
        let capacity = policy.max_rows.min(65_536);
        let builders = schema
            .fields()
            .iter()
            .map(|f| make_builder(f.data_type(), capacity))
            .collect();
        let fixed_row_bytes = schema
            .fields()
            .iter()
            .filter_map(|f| f.data_type().primitive_width())
            .sum();
        Self {
            schema,
            builders,
            policy,
            fixed_row_bytes,
            rows: 0,
            first_row_at: None,
        }
    }

    /// The builder of column `index`, as its concrete type (`Int64Builder`,
    /// `StringBuilder`, `Decimal128Builder` ...).
    ///
    /// # Panics
    /// When `B` is not the builder type of that column: a bug in the connector, caught by
    /// its first test.
    pub fn column<B: ArrayBuilder>(&mut self, index: usize) -> &mut B {
        match self.builders[index].as_any_mut().downcast_mut::<B>() {
            Some(builder) => builder,
            None => panic!(
                "column {}: wrong builder type {}",
                self.schema.field(index).name(),
                std::any::type_name::<B>()
            ),
        }
    }

    /// Ends the current row (every column must have had one value appended); returns a
    /// batch when the policy says so.
    pub fn end_row(&mut self) -> Result<Option<RecordBatch>> {
        self.rows += 1;
        if self.first_row_at.is_none() {
            self.first_row_at = Some(Instant::now());
        }
        // Measuring variable-width bytes walks the builders: do it every 1024 rows only.
        let check = self.rows >= self.policy.max_rows || self.rows.is_multiple_of(1024);
        if check
            && self
                .policy
                .is_due(self.rows, self.approximate_bytes(), self.first_row_at)
        {
            return self.flush();
        }
        Ok(None)
    }

    /// Hands on the pending rows, if any.
    pub fn flush(&mut self) -> Result<Option<RecordBatch>> {
        if self.rows == 0 {
            return Ok(None);
        }
        let columns = self.builders.iter_mut().map(|b| b.finish()).collect();
        self.rows = 0;
        self.first_row_at = None;
        RecordBatch::try_new(self.schema.clone(), columns)
            .map(Some)
            .map_err(|e| Error::bug("rows do not fit the schema").caused_by(e))
    }

    /// Rows pending.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no row is pending.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    fn approximate_bytes(&self) -> usize {
        let variable: usize = self
            .schema
            .fields()
            .iter()
            .zip(&self.builders)
            .map(|(field, builder)| match field.data_type() {
                DataType::Utf8 => byte_len::<GenericStringType<i32>>(builder.as_ref()),
                DataType::Binary => byte_len::<GenericBinaryType<i32>>(builder.as_ref()),
                _ => 0,
            })
            .sum();
        self.fixed_row_bytes * self.rows + variable
    }
}

fn byte_len<T: arrow::datatypes::ByteArrayType>(builder: &dyn ArrayBuilder) -> usize {
    builder
        .as_any()
        .downcast_ref::<GenericByteBuilder<T>>()
        .map_or(0, |b| b.values_slice().len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{AsArray, Int64Builder};
    use arrow::datatypes::{Field, Int64Type};

    fn schema() -> SchemaRef {
        crate::catalog::schema(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ])
    }

    #[test]
    fn json_batcher_splits_by_rows_and_keeps_nulls() {
        let mut batcher = JsonBatcher::new(schema(), FlushPolicy::rows(2)).unwrap();
        let input = br#"{"id":1,"name":"a"} {"id":2} {"id":3,"name":"\u00e9"}"#;
        let mut batches = batcher.push_bytes(input).unwrap();
        batches.extend(batcher.flush().unwrap());
        let sizes: Vec<_> = batches.iter().map(|b| b.num_rows()).collect();
        assert_eq!(sizes, vec![2, 1]);
        assert!(batches[0].column(1).is_null(1));
        assert_eq!(batches[1].column(1).as_string::<i32>().value(0), "é");
    }

    #[test]
    fn json_batcher_names_the_column_of_a_type_error() {
        let mut batcher = JsonBatcher::new(schema(), FlushPolicy::rows(10)).unwrap();
        let err = batcher
            .push_bytes(br#"{"id":"x"}"#)
            .and_then(|_| batcher.flush())
            .unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Data);
    }

    #[test]
    fn json_batcher_reads_utc_timestamps() {
        let utc = DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, Some("UTC".into()));
        let schema = crate::catalog::schema(vec![Field::new("at", utc, true)]);
        let mut batcher = JsonBatcher::new(schema, FlushPolicy::rows(10)).unwrap();
        batcher
            .push_bytes(br#"{"at":"2024-01-01T00:00:00.000001+02:00"} {"at":null}"#)
            .unwrap();
        let batch = batcher.flush().unwrap().unwrap();
        let at = batch
            .column(0)
            .as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
        assert_eq!(at.value(0), 1_704_060_000_000_001);
        assert!(batch.column(0).is_null(1));
    }

    #[test]
    fn json_batcher_serializes_values() {
        let rows: Vec<_> = (0..5)
            .map(|i| serde_json::json!({"id": i, "name": "n"}))
            .collect();
        let mut batcher = JsonBatcher::new(schema(), FlushPolicy::rows(2)).unwrap();
        let mut batches = batcher.push_values(&rows).unwrap();
        batches.extend(batcher.flush().unwrap());
        let ids: Vec<i64> = batches
            .iter()
            .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
            .collect();
        assert_eq!(ids, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn row_batcher_flushes_by_bytes() {
        let policy = FlushPolicy {
            max_rows: 1_000_000,
            max_bytes: 8 * 1024,
            ..FlushPolicy::default()
        };
        let mut batcher = RowBatcher::new(schema(), policy);
        let mut flushed = None;
        for i in 0..10_000 {
            batcher.column::<Int64Builder>(0).append_value(i);
            batcher
                .column::<arrow::array::StringBuilder>(1)
                .append_value("0123456789");
            if let Some(batch) = batcher.end_row().unwrap() {
                flushed = Some(batch.num_rows());
                break;
            }
        }
        // 18 bytes a row: due at the first check past 8 KiB (row 1024).
        assert_eq!(flushed, Some(1024));
    }
}
