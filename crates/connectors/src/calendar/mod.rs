//! The `calendar` source: a date dimension, one row per day between two dates, for joins and
//! date spines (dbt models often need one). It is also the connector that
//! docs/writing-a-connector.md builds from zero, so it stays in one small file.
//!
//! What it reads: one stream, `dates`, with `date` (primary key and cursor), `year`,
//! `quarter`, `month`, `day`, `day_of_week` (1 = Monday), `iso_week`, `month_name` and
//! `is_weekend`.
//!
//! How it checkpoints: after every batch, with the batch's last date; an incremental read
//! starts the day after the saved date, so moving `to` later adds only the new days.
//!
//! Limits: dates between years 1 and 9999; at most `batch_rows` days per batch.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{Datelike, NaiveDate};
use elt_core::arrow::array::{ArrayRef, BooleanArray, Date32Array, Int32Array, StringArray};
use elt_core::arrow::datatypes::{DataType, Field};
use elt_core::arrow::record_batch::RecordBatch;
use elt_core::catalog::schema;
use elt_core::{
    Catalog, ConfiguredStream, ConnectorConfig, Emitter, Error, Result, Source, SourceFactory,
    StreamDescriptor, StreamState,
};
use schemars::JsonSchema;
use serde::Deserialize;

/// Options of the `calendar` source.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CalendarConfig {
    /// The first day, `YYYY-MM-DD`.
    pub from: String,
    /// The last day, `YYYY-MM-DD` (included).
    pub to: String,
    /// Days per batch.
    #[serde(default = "default_batch_rows")]
    pub batch_rows: usize,
}

fn default_batch_rows() -> usize {
    10_000
}

fn parse_day(option: &str, text: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        Error::config(format!(
            "`{option}` is {text:?}; expected a date such as \"2024-01-31\""
        ))
    })
}

impl ConnectorConfig for CalendarConfig {
    fn validate(&self) -> Result<()> {
        let (from, to) = (parse_day("from", &self.from)?, parse_day("to", &self.to)?);
        if from > to {
            return Err(Error::config(format!(
                "`to` ({to}) is before `from` ({from}); swap them"
            )));
        }
        if self.batch_rows == 0 || self.batch_rows > 1_000_000 {
            return Err(Error::config(format!(
                "`batch_rows` is {}; expected 1 to 1000000",
                self.batch_rows
            )));
        }
        Ok(())
    }
}

/// Registers the `calendar` source type.
pub fn factory() -> SourceFactory {
    SourceFactory::new(
        "calendar",
        "A date dimension: one row per day between two dates",
        |config: CalendarConfig| Ok(Box::new(CalendarSource { config })),
    )
}

/// The `calendar` source.
#[derive(Debug)]
pub struct CalendarSource {
    config: CalendarConfig,
}

#[async_trait]
impl Source for CalendarSource {
    async fn check(&self) -> Result<()> {
        Ok(())
    }

    async fn discover(&self) -> Result<Catalog> {
        let int = |name: &str| Field::new(name, DataType::Int32, false);
        let fields = vec![
            Field::new("date", DataType::Date32, false),
            int("year"),
            int("quarter"),
            int("month"),
            int("day"),
            int("day_of_week"),
            int("iso_week"),
            Field::new("month_name", DataType::Utf8, false),
            Field::new("is_weekend", DataType::Boolean, false),
        ];
        Ok(Catalog {
            streams: vec![StreamDescriptor {
                name: "dates".into(),
                schema: schema(fields),
                primary_key: vec!["date".into()],
                cursor_candidates: vec!["date".into()],
                append_only: false,
                delete_marker: None,
            }],
        })
    }

    async fn read(
        &self,
        stream: &ConfiguredStream,
        state: Option<StreamState>,
        out: &mut Emitter,
    ) -> Result<()> {
        let to = parse_day("to", &self.config.to)?;
        let mut day = match state.as_ref().and_then(|s| s.cursor.as_ref()) {
            Some(saved) => {
                let text = saved.as_str().unwrap_or_default();
                parse_day("state cursor", text)?
                    .succ_opt()
                    .ok_or_else(|| Error::data("the saved date is the last one there is"))?
            }
            None => parse_day("from", &self.config.from)?,
        };
        while day <= to {
            let days: Vec<NaiveDate> = day
                .iter_days()
                .take_while(|d| *d <= to)
                .take(self.config.batch_rows)
                .collect();
            let last = *days.last().expect("at least one day");
            out.batch(batch(stream, &days)?).await?;
            let cursor = last.format("%Y-%m-%d").to_string();
            out.checkpoint(StreamState::at(cursor.into(), vec![]))
                .await?;
            match last.succ_opt() {
                Some(next) => day = next,
                None => break,
            }
        }
        Ok(())
    }
}

/// One batch of `days` in the stream's schema.
fn batch(stream: &ConfiguredStream, days: &[NaiveDate]) -> Result<RecordBatch> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("a valid date");
    let ints = |f: &dyn Fn(&NaiveDate) -> u32| -> ArrayRef {
        Arc::new(Int32Array::from_iter_values(
            days.iter().map(|d| f(d) as i32),
        ))
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Date32Array::from_iter_values(
            days.iter().map(|d| (*d - epoch).num_days() as i32),
        )),
        Arc::new(Int32Array::from_iter_values(days.iter().map(|d| d.year()))),
        ints(&|d| d.month0() / 3 + 1),
        ints(&|d| d.month()),
        ints(&|d| d.day()),
        ints(&|d| d.weekday().number_from_monday()),
        ints(&|d| d.iso_week().week()),
        Arc::new(StringArray::from_iter_values(
            days.iter().map(|d| d.format("%B").to_string()),
        )),
        Arc::new(BooleanArray::from_iter(
            days.iter()
                .map(|d| Some(d.weekday().number_from_monday() >= 6)),
        )),
    ];
    RecordBatch::try_new(stream.source_schema().clone(), columns)
        .map_err(|e| Error::bug("building a calendar batch").caused_by(e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use elt_core::arrow::util::display::array_value_to_string;

    #[test]
    fn days_have_their_calendar_attributes() {
        let descriptor = futures_util::FutureExt::now_or_never(
            CalendarSource {
                config: CalendarConfig {
                    from: "2023-12-31".into(),
                    to: "2024-01-01".into(),
                    batch_rows: 10,
                },
            }
            .discover(),
        )
        .expect("ready")
        .expect("discovered")
        .streams
        .remove(0);
        let stream = ConfiguredStream::with_defaults(descriptor);
        let days = [
            NaiveDate::from_ymd_opt(2023, 12, 31).unwrap(),
            NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
        ];
        let batch = batch(&stream, &days).unwrap();
        let row = |i: usize| -> Vec<String> {
            (0..batch.num_columns())
                .map(|c| array_value_to_string(batch.column(c), i).unwrap())
                .collect()
        };
        assert_eq!(
            row(0),
            [
                "2023-12-31",
                "2023",
                "4",
                "12",
                "31",
                "7",
                "52",
                "December",
                "true"
            ]
        );
        assert_eq!(
            row(1),
            [
                "2024-01-01",
                "2024",
                "1",
                "1",
                "1",
                "1",
                "1",
                "January",
                "false"
            ]
        );
    }
}
