//! What the SQL database sources share, free of any driver: the TLS mode option, the
//! `include`/`exclude` table patterns, a discovered table ([`Table`]: its stream descriptor,
//! cursor candidates and keyset columns), the one idle connection kept between the calls of a
//! run, the keyset position (state) of a row of an Arrow batch, and which checkpoint
//! follows a batch in the middle of a table.
//!
//! It runs no SQL and knows no database: each source writes its own queries and maps its
//! own types to Arrow; this module starts where a value is already an Arrow value.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::arrow::array::{Array, ArrayRef, AsArray};
use crate::arrow::datatypes::Field;
use crate::arrow::datatypes::{
    DataType, Date32Type, Int8Type, Int16Type, Int32Type, Int64Type, TimeUnit,
    TimestampMicrosecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use crate::arrow::record_batch::RecordBatch;
use crate::catalog::{ConfiguredStream, StreamDescriptor};
use crate::error::{Error, Result};
use crate::state::{StreamState, timestamp_cursor};

/// How a connection uses TLS (libpq's `sslmode` names; MySQL's `ssl-mode` maps onto them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    /// Never TLS.
    Disable,
    /// TLS when the server offers it, else plaintext (silent fallback; refused with a
    /// password, see [`crate::tls`]).
    Prefer,
    /// TLS always, without verifying the certificate.
    Require,
    /// TLS with the certificate verified against trusted roots.
    VerifyCa,
    /// TLS with the certificate and the host name verified.
    VerifyFull,
}

/// Column names that become cursor candidates, best first, when their type can be a cursor.
pub const CURSOR_NAMES: &[&str] = &[
    "updated_at",
    "modified_at",
    "last_modified",
    "last_modified_at",
    "updated",
    "_updated_at",
];

/// A column of a SQL source's table, as the shared table helpers see it.
pub trait SqlColumn {
    /// Its name.
    fn name(&self) -> &str;
    /// Its type as the database prints it, for messages.
    fn sql_type(&self) -> &str;
    /// Whether its values can be a cursor or a key of a keyset read (ordered the same way
    /// by the database and by their state form, and exact in state JSON).
    fn orders_keyset(&self) -> bool;
    /// Its Arrow field.
    fn field(&self) -> Field;
    /// Why it is read in another form than its own type (as text, say), if it is.
    fn fallback(&self) -> Option<&str>;
}

/// The two parts of a SQL stream's name, `container.table`; `container` names the first
/// part ("schema", "database") in the error of a name without one.
pub fn stream_parts<'s>(
    stream: &'s ConfiguredStream,
    container: &str,
) -> Result<(&'s str, &'s str)> {
    stream.name().split_once('.').ok_or_else(|| {
        Error::config(format!(
            "stream {} is not named {container}.table",
            stream.name()
        ))
    })
}

/// A table or view of a SQL source, as a stream `schema.name`.
#[derive(Debug, Clone)]
pub struct Table<C> {
    /// Its schema (a database, in MySQL).
    pub schema: String,
    /// Its name.
    pub name: String,
    /// Its columns in order.
    pub columns: Vec<C>,
    /// Its primary key columns (empty for views and tables without one).
    pub primary_key: Vec<String>,
}

impl<C: SqlColumn> Table<C> {
    /// The stream name, `schema.table`.
    pub fn stream_name(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    /// The Arrow fields of its columns.
    pub fn fields(&self) -> Vec<Field> {
        self.columns.iter().map(SqlColumn::field).collect()
    }

    /// What discovery says of it: schema, key and cursor candidates (the [`CURSOR_NAMES`]
    /// among the columns that can order a keyset, best first).
    pub fn descriptor(&self) -> StreamDescriptor {
        let cursor_candidates = CURSOR_NAMES
            .iter()
            .filter(|name| {
                self.columns
                    .iter()
                    .any(|c| c.name() == **name && c.orders_keyset())
            })
            .map(|name| (*name).to_owned())
            .collect();
        StreamDescriptor {
            name: self.stream_name(),
            schema: crate::catalog::schema(self.fields()),
            primary_key: self.primary_key.clone(),
            cursor_candidates,
            append_only: false,
            delete_marker: None,
        }
    }

    /// The indexes of the cursor and key columns of an incremental read of `stream`; None
    /// without a cursor. A missing column, or one that cannot order a keyset, is a config
    /// error naming it.
    pub fn keyset(&self, stream: &ConfiguredStream) -> Result<Option<(usize, Vec<usize>)>> {
        let Some(cursor) = &stream.cursor else {
            return Ok(None);
        };
        let find = |name: &str, role: &str| match self.columns.iter().position(|c| c.name() == name)
        {
            Some(i) if self.columns[i].orders_keyset() => Ok(i),
            Some(i) => Err(Error::config(format!(
                "{role} column {name} has type {}, which cannot order an incremental read ({})",
                self.columns[i].sql_type(),
                if role == "cursor" {
                    "choose another `cursor` for the stream"
                } else {
                    "set the stream's `primary_key` to other columns, or to [] with \
                     sync = \"full_refresh\" and write = \"overwrite\""
                }
            ))
            .in_stream(stream.name())),
            None => Err(Error::config(format!("no {role} column {name}")).in_stream(stream.name())),
        };
        let cursor = find(cursor, "cursor")?;
        let key = stream
            .primary_key
            .iter()
            .map(|k| find(k, "primary key"))
            .collect::<Result<_>>()?;
        Ok(Some((cursor, key)))
    }

    /// The table a read of `stream` found (None: dropped since discovery), narrowed to the
    /// columns the stream reads (see [`Self::narrowed_to`]); each column read in a fallback
    /// form is logged.
    pub fn found_for(table: Option<Self>, stream: &ConfiguredStream) -> Result<Self> {
        let table = table
            .ok_or_else(|| {
                Error::permanent(format!("table {} does not exist (any more)", stream.name()))
            })?
            .narrowed_to(stream)?;
        for column in &table.columns {
            if let Some(why) = column.fallback() {
                tracing::info!(stream = stream.name(), column = column.name(), "{why}");
            }
        }
        Ok(table)
    }

    /// The table narrowed to the columns `stream` reads (all of them, unless it selects
    /// columns), so the query names no other column; its fields are the discovered ones
    /// (before any hashing). A read is refused when one of those columns changed since
    /// discovery; a column added since is left for the next run.
    pub fn narrowed_to(mut self, stream: &ConfiguredStream) -> Result<Self> {
        let (wanted, discovered) = (stream.schema().fields(), stream.source_schema());
        self.columns
            .retain(|c| wanted.iter().any(|f| f.name() == c.name()));
        let same = self.columns.len() == wanted.len()
            && self.columns.iter().zip(wanted).all(|(c, f)| {
                c.name() == f.name()
                    && discovered
                        .field_with_name(c.name())
                        .is_ok_and(|d| c.field() == *d)
            });
        if same {
            Ok(self)
        } else {
            Err(Error::data(format!(
                "the columns of {}.{} changed while the sync started; run it again",
                self.schema, self.name
            )))
        }
    }
}

/// Whether `name` (`schema.table`) passes `include` (every name when empty) and is not in
/// `exclude`; patterns match whole names, `*` matching any run of characters.
pub fn table_selected(include: &[String], exclude: &[String], name: &str) -> bool {
    (include.is_empty() || include.iter().any(|p| matches(p, name)))
        && !exclude.iter().any(|p| matches(p, name))
}

/// Whether `name` matches a pattern where `*` matches any run of characters.
pub fn matches(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            name.starts_with(head)
                && (head.len()..=name.len())
                    .any(|i| name.is_char_boundary(i) && matches(tail, &name[i..]))
        }
    }
}

/// One connection kept between the calls of a source (discovery, then each stream), so a
/// sync does not pay a new connection per stream. A connection that failed is never put
/// back.
pub struct IdleConnection<C>(tokio::sync::Mutex<Option<C>>);

impl<C> Default for IdleConnection<C> {
    fn default() -> Self {
        Self(tokio::sync::Mutex::new(None))
    }
}

impl<C> IdleConnection<C> {
    /// The idle connection, or a new one from `connect`.
    pub async fn take_or<F>(&self, connect: F) -> Result<C>
    where
        F: std::future::Future<Output = Result<C>>,
    {
        let idle = self.0.lock().await.take();
        match idle {
            Some(conn) => Ok(conn),
            None => connect.await,
        }
    }

    /// Keeps a healthy connection for the next call.
    pub async fn put(&self, conn: C) {
        *self.0.lock().await = Some(conn);
    }
}

/// The keyset position of the last row of `batch`: the value of column `cursor` and of
/// the `key` columns, as state. None when the batch is empty or a value is NULL.
pub fn last_row_position(batch: &RecordBatch, cursor: usize, key: &[usize]) -> Option<StreamState> {
    let row = batch.num_rows().checked_sub(1)?;
    let cursor = state_value(batch.column(cursor), row)?;
    let key = key
        .iter()
        .map(|i| state_value(batch.column(*i), row))
        .collect::<Option<Vec<_>>>()?;
    Some(StreamState::at(cursor, key))
}

/// The checkpoint after a batch in the middle of a table read. An incremental read in
/// keyset order with a primary key (`keyed`) checkpoints the last row's position; a full
/// refresh checkpoints an empty state, which only lets the destination flush (an
/// overwrite commits at the end anyway); an incremental read without a key cannot resume
/// in the middle, and a commit there would move the watermark past rows a rerun must not
/// read twice: none.
pub fn mid_read_checkpoint(
    incremental: bool,
    keyed: bool,
    last: Option<&StreamState>,
) -> Option<StreamState> {
    match (incremental, keyed) {
        (true, true) => last.cloned(),
        (false, _) => Some(StreamState::empty()),
        (true, false) => None,
    }
}

/// A state value as plain text, for a driver to bind or a database to cast.
pub fn state_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One value in state form: integers as numbers, timestamps as RFC 3339 with
/// microseconds (`Z` when the column has a zone, none when it has not), dates as
/// `YYYY-MM-DD`, UUIDs hyphenated, everything else as Arrow displays it. PostgreSQL's
/// infinite dates and timestamps (the extreme Arrow values) become `infinity`. None for
/// NULL.
pub fn state_value(array: &ArrayRef, row: usize) -> Option<serde_json::Value> {
    if array.is_null(row) {
        return None;
    }
    Some(match array.data_type() {
        DataType::Int8 => array.as_primitive::<Int8Type>().value(row).into(),
        DataType::Int16 => array.as_primitive::<Int16Type>().value(row).into(),
        DataType::Int32 => array.as_primitive::<Int32Type>().value(row).into(),
        DataType::Int64 => array.as_primitive::<Int64Type>().value(row).into(),
        DataType::UInt8 => array.as_primitive::<UInt8Type>().value(row).into(),
        DataType::UInt16 => array.as_primitive::<UInt16Type>().value(row).into(),
        DataType::UInt32 => array.as_primitive::<UInt32Type>().value(row).into(),
        DataType::UInt64 => array.as_primitive::<UInt64Type>().value(row).into(),
        DataType::Utf8 => array.as_string::<i32>().value(row).into(),
        DataType::Date32 => match array.as_primitive::<Date32Type>().value(row) {
            i32::MAX => "infinity".into(),
            d if d == -i32::MAX => "-infinity".into(),
            d => chrono::NaiveDate::from_num_days_from_ce_opt(d + 719_163)?
                .to_string()
                .into(),
        },
        DataType::Timestamp(TimeUnit::Microsecond, zone) => {
            match array.as_primitive::<TimestampMicrosecondType>().value(row) {
                i64::MAX => "infinity".into(),
                t if t == -i64::MAX => "-infinity".into(),
                t if zone.is_some() => timestamp_cursor(t),
                t => chrono::DateTime::from_timestamp_micros(t)?
                    .naive_utc()
                    .format("%Y-%m-%dT%H:%M:%S%.6f")
                    .to_string()
                    .into(),
            }
        }
        DataType::FixedSizeBinary(16) => {
            crate::record::uuid_text(array.as_fixed_size_binary().value(row)).into()
        }
        _ => crate::arrow::util::display::array_value_to_string(array, row)
            .ok()?
            .into(),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::arrow::array::{Date32Array, StringArray, TimestampMicrosecondArray, UInt64Array};

    #[test]
    fn patterns() {
        assert!(matches("public.*", "public.orders"));
        assert!(matches("*.orders", "sales.orders"));
        assert!(matches("public.ord*s", "public.orders"));
        assert!(!matches("public.ord*s", "public.order"));
        assert!(matches("public.orders", "public.orders"));
        assert!(!matches("public.orders", "public.orders2"));
        let (inc, exc) = (vec!["shop.*".to_owned()], vec!["shop.tmp_*".to_owned()]);
        assert!(table_selected(&inc, &exc, "shop.orders"));
        assert!(!table_selected(&inc, &exc, "shop.tmp_orders"));
        assert!(!table_selected(&inc, &exc, "crm.orders"));
        assert!(table_selected(&[], &[], "crm.orders"));
    }

    #[test]
    fn positions_keep_each_type_exact() {
        let ts: ArrayRef = Arc::new(TimestampMicrosecondArray::from(vec![
            1,
            1_700_000_000_000_001,
        ]));
        let tz: ArrayRef = Arc::new(
            TimestampMicrosecondArray::from(vec![1, 1_700_000_000_000_001]).with_timezone("UTC"),
        );
        let big: ArrayRef = Arc::new(UInt64Array::from(vec![0, u64::MAX]));
        let day: ArrayRef = Arc::new(Date32Array::from(vec![0, 19_782]));
        let text: ArrayRef = Arc::new(StringArray::from(vec!["a", "é"]));
        let batch = RecordBatch::try_from_iter([
            ("ts", ts),
            ("tz", tz),
            ("big", big),
            ("day", day),
            ("text", text),
        ])
        .unwrap();
        let state = last_row_position(&batch, 0, &[1, 2, 3, 4]).unwrap();
        assert_eq!(
            state.cursor,
            Some(serde_json::json!("2023-11-14T22:13:20.000001"))
        );
        assert_eq!(
            state.key,
            Some(vec![
                serde_json::json!("2023-11-14T22:13:20.000001Z"),
                serde_json::json!(u64::MAX),
                serde_json::json!("2024-02-29"),
                serde_json::json!("é"),
            ])
        );
        assert_eq!(
            state_text(&serde_json::json!(u64::MAX)),
            u64::MAX.to_string()
        );
    }
}
