//! Change rows into Arrow: the table's columns decoded from pgoutput's binary tuples (the
//! same send format binary COPY uses, so the COPY decoders serve) followed by the change
//! columns `_elt_lsn`, `_elt_op`, `_elt_commit_ts` and `_elt_unchanged` (the columns whose
//! unchanged TOASTed values PostgreSQL did not send); and the same columns added to the
//! batches of the initial snapshot. One batch is held at a time.

use std::sync::Arc;

use elt_core::arrow::array::{
    ArrayRef, Int64Array, Int64Builder, StringArray, StringBuilder, TimestampMicrosecondArray,
    TimestampMicrosecondBuilder,
};
use elt_core::arrow::datatypes::SchemaRef;
use elt_core::arrow::record_batch::RecordBatch;
use elt_core::{Error, Result};
use pg_walstream::TupleData;

use super::super::types::Kind;
use super::super::values::Builder;

/// What a change did, as `_elt_op` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Insert,
    Update,
    Delete,
    Truncate,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Insert => "insert",
            Op::Update => "update",
            Op::Delete => elt_core::cdc::DELETE,
            Op::Truncate => "truncate",
        }
    }
}

/// Builds batches of change rows in the stream's schema (table columns, then the three
/// change columns).
pub struct ChangeRows {
    schema: SchemaRef,
    builders: Vec<Builder>,
    lsn: Int64Builder,
    op: StringBuilder,
    commit_ts: TimestampMicrosecondBuilder,
    unchanged: StringBuilder,
    rows: usize,
}

impl ChangeRows {
    /// A builder for `schema`, whose first columns are of `kinds`.
    pub fn new(schema: SchemaRef, kinds: &[Kind]) -> Self {
        Self {
            builders: super::super::values::builders(&schema, kinds),
            schema,
            lsn: Int64Builder::new(),
            op: StringBuilder::new(),
            commit_ts: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            unchanged: StringBuilder::new(),
            rows: 0,
        }
    }

    /// Rows in the current batch.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Appends one change: `tuple` holds the relation's columns, and `positions[i]` says
    /// where the table's column `i` is in it (None: not sent, as the non-key columns of a
    /// delete).
    pub fn append(
        &mut self,
        tuple: &TupleData,
        positions: &[Option<usize>],
        op: Op,
        lsn: u64,
        commit_ts_us: i64,
    ) -> Result<()> {
        let mut unchanged = String::new();
        let schema = self.schema.clone();
        let name = |index: usize| schema.field(index).name().as_str();
        for (index, builder) in self.builders.iter_mut().enumerate() {
            let value = positions[index].and_then(|p| tuple.get_column(p));
            match value {
                Some(v) if v.is_binary() => builder
                    .append(v.as_bytes())
                    .map_err(|why| Error::data(format!("column {}: {why}", name(index))))?,
                Some(v) if v.is_text() => {
                    return Err(Error::bug(format!(
                        "column {} arrived as text although binary was asked for",
                        name(index)
                    )));
                }
                Some(v) if v.is_unchanged() => {
                    if unchanged.is_empty() {
                        unchanged.push(',');
                    }
                    unchanged.push_str(name(index));
                    unchanged.push(',');
                    builder.append_null();
                }
                _ => builder.append_null(),
            }
        }
        self.lsn.append_value(lsn as i64);
        self.op.append_value(op.as_str());
        self.commit_ts.append_value(commit_ts_us);
        self.unchanged
            .append_option((!unchanged.is_empty()).then_some(unchanged));
        self.rows += 1;
        Ok(())
    }

    /// Appends a TRUNCATE to a change log: every table column NULL.
    pub fn append_truncate(&mut self, lsn: u64, commit_ts_us: i64) -> Result<()> {
        self.builders.iter_mut().for_each(Builder::append_null);
        self.lsn.append_value(lsn as i64);
        self.op.append_value(Op::Truncate.as_str());
        self.commit_ts.append_value(commit_ts_us);
        self.unchanged.append_null();
        self.rows += 1;
        Ok(())
    }

    /// Hands over the rows as a batch (None when there are none).
    pub fn finish_batch(&mut self) -> Result<Option<RecordBatch>> {
        if self.rows == 0 {
            return Ok(None);
        }
        self.rows = 0;
        let mut columns: Vec<ArrayRef> = self.builders.iter_mut().map(Builder::finish).collect();
        columns.push(Arc::new(self.lsn.finish()));
        columns.push(Arc::new(self.op.finish()));
        columns.push(Arc::new(self.commit_ts.finish()));
        columns.push(Arc::new(self.unchanged.finish()));
        RecordBatch::try_new(self.schema.clone(), columns)
            .map(Some)
            .map_err(|e| Error::bug("change rows do not fit the schema").caused_by(e))
    }
}

/// A batch of the initial snapshot in the stream's schema: the table's columns, LSN 0,
/// op `snapshot`, and the snapshot's time as the commit time.
pub fn snapshot_rows(
    batch: RecordBatch,
    schema: &SchemaRef,
    taken_at_us: i64,
) -> Result<RecordBatch> {
    let rows = batch.num_rows();
    let mut columns = batch.columns().to_vec();
    columns.push(Arc::new(Int64Array::from(vec![0; rows])));
    columns.push(Arc::new(StringArray::from(vec!["snapshot"; rows])));
    columns.push(Arc::new(
        TimestampMicrosecondArray::from(vec![taken_at_us; rows]).with_timezone("UTC"),
    ));
    columns.push(Arc::new(StringArray::new_null(rows)));
    RecordBatch::try_new(schema.clone(), columns)
        .map_err(|e| Error::bug("snapshot rows do not fit the schema").caused_by(e))
}
