//! Record checks between a stream's source and its destination: the stream's JSON Schema
//! (`json_schema_path`) and the `discard_row` / `discard_value` schema contracts. Rows that
//! pass go on; the others become dead letters (the record as JSON, and why), which the
//! destination commits to `_elt_dead_letter` with the rows of the same checkpoint. Every
//! extracted record ends in the raw table or the dead-letter table.
//!
//! Under `discard_row`, a row with a value in a new or retyped column is dead-lettered and
//! the column is not loaded; under `discard_value`, the column is not loaded and the rows
//! go on without it (the run's notes say so). What it does not do: `freeze` (the engine
//! refuses such a stream before reading) or `evolve` (the destination adds columns).

use std::sync::Arc;

use elt_core::arrow::array::{Array, BooleanArray, RecordBatch};
use elt_core::arrow::compute::filter_record_batch;
use elt_core::arrow::datatypes::{Schema, SchemaRef};
use elt_core::catalog::is_json_field;
use elt_core::{
    BatchCheck, ConfiguredStream, DeadLetter, DestinationSession, Error, Result, SchemaChange,
};
use serde_json::Value;

use crate::config::{Connection, SchemaContract};

/// The record checks of `stream` under `config` (its JSON Schema, a discard contract
/// against the raw table's current columns), if any.
pub async fn for_stream(
    session: &mut dyn DestinationSession,
    config: &Connection,
    stream: &ConfiguredStream,
    notes: &mut Vec<String>,
) -> Result<Option<StreamCheck>> {
    let contract = config.contract_of(stream.name());
    let json_schema = config
        .stream_config(stream.name())
        .and_then(|s| s.json_schema.as_ref());
    let changes = match contract {
        SchemaContract::DiscardRow | SchemaContract::DiscardValue => {
            session.schema_changes(stream).await?
        }
        SchemaContract::Evolve | SchemaContract::Freeze => Vec::new(),
    };
    StreamCheck::new(stream.schema(), &changes, contract, json_schema, notes)
}

/// The checks of one stream.
pub struct StreamCheck {
    input: SchemaRef,
    output: SchemaRef,
    /// Input columns that go on, in order.
    keep: Vec<usize>,
    /// Input columns whose values send a row to the dead-letter table, and why.
    reject: Vec<(usize, String)>,
    validator: Option<jsonschema::Validator>,
}

impl StreamCheck {
    /// The checks for a stream with `schema` whose raw table differs by `changes`, under
    /// `contract`, validating against `json_schema` when given; None when nothing is
    /// checked. Notes for the run summary go to `notes`.
    pub fn new(
        schema: &SchemaRef,
        changes: &[SchemaChange],
        contract: SchemaContract,
        json_schema: Option<&Value>,
        notes: &mut Vec<String>,
    ) -> Result<Option<Self>> {
        let mut dropped = Vec::new();
        let mut reject = Vec::new();
        if matches!(
            contract,
            SchemaContract::DiscardRow | SchemaContract::DiscardValue
        ) {
            for change in changes {
                let (column, why) = match change {
                    SchemaChange::AddedColumn { column, .. } => {
                        (column, format!("new column {column} is not in the table"))
                    }
                    SchemaChange::TypeChanged {
                        column,
                        table_type,
                        source_type,
                    }
                    | SchemaChange::Widened {
                        column,
                        table_type,
                        source_type,
                    } => (
                        column,
                        format!(
                            "column {column} is {source_type} in the source but {table_type} in the table"
                        ),
                    ),
                    _ => continue,
                };
                let Ok(index) = schema.index_of(column) else {
                    continue;
                };
                dropped.push(index);
                if contract == SchemaContract::DiscardRow {
                    reject.push((index, format!("{why} (schema_contract = \"discard_row\")")));
                    notes.push(format!(
                        "{why}: rows with a value there go to _elt_dead_letter"
                    ));
                } else {
                    notes.push(format!(
                        "{why}: its values are not loaded (schema_contract = \"discard_value\")"
                    ));
                }
            }
        }
        let validator = json_schema
            .map(|s| {
                jsonschema::validator_for(s).map_err(|e| {
                    Error::config(format!("`json_schema_path`: not a valid JSON Schema: {e}"))
                })
            })
            .transpose()?;
        if dropped.is_empty() && validator.is_none() {
            return Ok(None);
        }
        let keep: Vec<usize> = (0..schema.fields().len())
            .filter(|i| !dropped.contains(i))
            .collect();
        let output = Arc::new(Schema::new(
            keep.iter()
                .map(|i| schema.field(*i).clone())
                .collect::<Vec<_>>(),
        ));
        Ok(Some(Self {
            input: schema.clone(),
            output,
            keep,
            reject,
            validator,
        }))
    }
}

impl BatchCheck for StreamCheck {
    fn output_schema(&self) -> SchemaRef {
        self.output.clone()
    }

    fn check(&self, batch: RecordBatch) -> Result<(Option<RecordBatch>, Vec<DeadLetter>)> {
        let rows = batch.num_rows();
        let mut reasons: Vec<Vec<String>> = vec![Vec::new(); rows];
        for (index, why) in &self.reject {
            let column = batch.column(*index);
            for (row, reason) in reasons.iter_mut().enumerate() {
                if column.is_valid(row) {
                    reason.push(why.clone());
                }
            }
        }
        let records = if self.validator.is_some() || reasons.iter().any(|r| !r.is_empty()) {
            records(&batch)?
        } else {
            Vec::new()
        };
        if let Some(validator) = &self.validator {
            for (record, reason) in records.iter().zip(reasons.iter_mut()) {
                reason.extend(validator.iter_errors(record).map(|e| {
                    let at = e.instance_path().to_string();
                    if at.is_empty() {
                        e.to_string()
                    } else {
                        format!("{at}: {e}")
                    }
                }));
            }
        }
        let dead: Vec<DeadLetter> = reasons
            .iter()
            .zip(&records)
            .filter(|(r, _)| !r.is_empty())
            .map(|(reason, record)| DeadLetter {
                reason: reason.join("; "),
                record: record.to_string(),
            })
            .collect();
        let passed = BooleanArray::from(reasons.iter().map(|r| r.is_empty()).collect::<Vec<_>>());
        let batch = if dead.is_empty() {
            batch
        } else {
            filter_record_batch(&batch, &passed)
                .map_err(|e| Error::bug("filtering checked rows").caused_by(e))?
        };
        let columns = self.keep.iter().map(|i| batch.column(*i).clone()).collect();
        let kept = RecordBatch::try_new(self.output.clone(), columns)
            .map_err(|e| Error::bug("projecting checked rows").caused_by(e))?;
        debug_assert_eq!(self.input.fields().len(), batch.num_columns());
        Ok(((kept.num_rows() > 0).then_some(kept), dead))
    }
}

/// Each row as a JSON object, nulls explicit, JSON columns as their JSON values.
fn records(batch: &RecordBatch) -> Result<Vec<Value>> {
    let mut bytes = Vec::new();
    {
        let mut writer = elt_core::arrow::json::WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, elt_core::arrow::json::writer::JsonArray>(&mut bytes);
        writer
            .write(batch)
            .and_then(|()| writer.finish())
            .map_err(|e| Error::bug("rendering records as JSON").caused_by(e))?;
    }
    let mut rows: Vec<Value> = if bytes.is_empty() {
        Vec::new()
    } else {
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::bug("rendering records as JSON").caused_by(e))?
    };
    let json_columns: Vec<&str> = batch
        .schema_ref()
        .fields()
        .iter()
        .filter(|f| is_json_field(f))
        .map(|f| f.name().as_str())
        .collect();
    for row in &mut rows {
        for name in &json_columns {
            if let Some(Value::String(text)) = row.get(*name)
                && let Ok(parsed) = serde_json::from_str::<Value>(text)
            {
                row[*name] = parsed;
            }
        }
    }
    Ok(rows)
}
