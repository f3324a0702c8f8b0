//! Record checks between a stream's source and its destination: the stream's JSON Schema
//! (`json_schema_path`) and the `discard_row` / `discard_value` schema contracts. Rows that
//! pass go on; the others become dead letters (the record as exact JSON from
//! `elt_core::record`, and why), which the
//! destination commits to `_elt_dead_letter` with the rows of the same checkpoint. Every
//! extracted record ends in the raw table or the dead-letter table. Also the limits around
//! them: `freeze` refusing a changed schema before anything is read, and
//! `--max-dead-letter`.
//!
//! Under `discard_row`, a row with a value in a new or retyped column is dead-lettered and
//! the column is not loaded; under `discard_value`, the column is not loaded and the rows
//! go on without it (the run's notes say so). What it does not do: `evolve` (the
//! destination adds and widens columns).

use std::borrow::Cow;
use std::sync::Arc;

use elt_core::arrow::array::{Array, BooleanArray, RecordBatch};
use elt_core::arrow::compute::filter_record_batch;
use elt_core::arrow::datatypes::{DataType, Schema, SchemaRef};
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
    if stream.partition_by.is_some() && !session.partitions_tables() {
        return Err(Error::config(format!(
            "stream {}: `partition_by` needs a destination that partitions tables (postgres); \
             this destination does not: remove `partition_by`, or load into postgres",
            stream.name()
        )));
    }
    let contract = config.contract_of(stream.name());
    let json_schema = config
        .stream_config(stream.name())
        .and_then(|s| s.json_schema.as_ref());
    let changes = match contract {
        SchemaContract::DiscardRow | SchemaContract::DiscardValue => {
            schema_changes(session, stream, contract).await?
        }
        SchemaContract::Evolve | SchemaContract::Freeze => Vec::new(),
    };
    StreamCheck::new(stream.schema(), &changes, contract, json_schema, notes)
}

/// How `stream` differs from its raw table, for `contract`: an error naming the fix when
/// the destination cannot compare schemas.
async fn schema_changes(
    session: &mut dyn DestinationSession,
    stream: &ConfiguredStream,
    contract: SchemaContract,
) -> Result<Vec<SchemaChange>> {
    let Some(schemas) = session.schemas() else {
        return Err(Error::config(format!(
            "stream {}: this destination type cannot compare a stream's schema with its table, \
             which `schema_contract = \"{}\"` needs; use `schema_contract = \"evolve\"`",
            stream.name(),
            contract.as_str()
        )));
    };
    schemas.schema_changes(stream).await
}

/// A limit on dead-lettered records: a count, or a share of the records read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DeadLetterLimit {
    /// At most this many.
    Count(u64),
    /// At most this share (0 to 1).
    Ratio(f64),
}

impl DeadLetterLimit {
    /// Parses `100` (a count), `0.05` or `5%` (a share).
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let bad = || format!("{text:?} is neither a count (100) nor a share (0.05 or 5%)");
        if let Some(percent) = text.strip_suffix('%') {
            let p: f64 = percent.trim().parse().map_err(|_| bad())?;
            return (0.0..=100.0)
                .contains(&p)
                .then_some(Self::Ratio(p / 100.0))
                .ok_or_else(bad);
        }
        if text.contains('.') {
            let r: f64 = text.parse().map_err(|_| bad())?;
            return (0.0..=1.0)
                .contains(&r)
                .then_some(Self::Ratio(r))
                .ok_or_else(bad);
        }
        text.parse().map(Self::Count).map_err(|_| bad())
    }

    /// Whether `dead` of `read` records is too many.
    pub fn exceeded(self, dead: u64, read: u64) -> bool {
        match self {
            Self::Count(n) => dead > n,
            Self::Ratio(r) => read > 0 && dead as f64 / read as f64 > r,
        }
    }
}

impl std::fmt::Display for DeadLetterLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Count(n) => write!(f, "{n}"),
            Self::Ratio(r) => write!(f, "{}%", r * 100.0),
        }
    }
}

/// Refuses a stream under `schema_contract = "freeze"` whose schema no longer matches its
/// raw table (a new table is no change), before anything is read.
pub async fn frozen(session: &mut dyn DestinationSession, stream: &ConfiguredStream) -> Result<()> {
    let changes: Vec<String> = schema_changes(session, stream, SchemaContract::Freeze)
        .await?
        .into_iter()
        .filter(|c| *c != SchemaChange::NewTable)
        .map(|c| c.to_string())
        .collect();
    if changes.is_empty() {
        return Ok(());
    }
    Err(Error::data(format!(
        "stream {}: schema_contract is \"freeze\" and the schema changed ({}); nothing was read or loaded. \
         Fix the source, or set schema_contract = \"evolve\" for the stream to apply the changes (`elt plan` shows them)",
        stream.name(),
        changes.join("; ")
    )))
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
            elt_core::record::encode(&batch)?
        } else {
            Vec::new()
        };
        // A cdc delete or truncate carries no values but its key: nothing to validate.
        let no_values = elt_core::cdc::without_values(&batch);
        if let Some(validator) = &self.validator {
            for ((record, reason), _) in records
                .iter()
                .zip(reasons.iter_mut())
                .zip(&no_values)
                .filter(|(_, skip)| !**skip)
            {
                let seen = for_validation(&self.input, record);
                reason.extend(validator.iter_errors(&seen).map(|e| {
                    let at = e.instance_path().to_string();
                    let why = short(&e.to_string());
                    if at.is_empty() {
                        why
                    } else {
                        format!("{at}: {why}")
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

/// A validation message cut to 300 characters: some quote the whole record (`not`, `oneOf`),
/// which the dead letter keeps in full beside the reason anyway.
fn short(message: &str) -> String {
    match message.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &message[..cut]),
        None => message.to_owned(),
    }
}

/// `record` (exact, from [`elt_core::record::encode`]) as the JSON Schema sees it: decimals,
/// which the record keeps as exact text, as JSON numbers, so that `"type": "number"` and
/// `maximum` apply to them.
fn for_validation<'a>(schema: &Schema, record: &'a Value) -> Cow<'a, Value> {
    let mut seen = Cow::Borrowed(record);
    for field in schema.fields() {
        if matches!(
            field.data_type(),
            DataType::Decimal128(..) | DataType::Decimal256(..)
        ) && let Some(Value::String(text)) = record.get(field.name())
            && let Some(number) = text
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
        {
            seen.to_mut()[field.name()] = Value::Number(number);
        }
    }
    seen
}
