//! Change data capture (`sync = "cdc"`): the columns every change row carries, the names
//! of the source-side objects a stream reads through, and its position in state.
//!
//! A cdc stream's batches have the table's columns followed by [`LSN`], [`OP`],
//! [`COMMIT_TS`] and [`UNCHANGED`]. Rows of the initial snapshot have op `snapshot` and LSN 0, so any change
//! of the same key wins over them in a merge (the plan makes [`LSN`] the merge's cursor and
//! [`OP`] its delete marker). What this module does not do: read a log; that is the
//! source's (the postgres source reads PostgreSQL's logical replication).

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::{Deserialize, Serialize};

use crate::catalog::ConfiguredStream;
use crate::error::{Error, Result};
use crate::state::StreamState;

/// The source log position of the change (PostgreSQL: the LSN of its WAL record, as a
/// number); 0 for snapshot rows.
pub const LSN: &str = "_elt_lsn";
/// What the change did: `snapshot`, `insert`, `update` or `delete`.
pub const OP: &str = "_elt_op";
/// The commit time of the source transaction (snapshot rows: the snapshot's time).
pub const COMMIT_TS: &str = "_elt_commit_ts";

/// The columns whose values the source did not send because they did not change
/// (PostgreSQL's unchanged TOASTed values), as `,name,other,`; NULL when every value was
/// sent. Merges fill them from the key's previous change or stored row.
pub const UNCHANGED: &str = "_elt_unchanged";

/// The marker of `column` inside [`UNCHANGED`].
pub fn unchanged_marker(column: &str) -> String {
    format!(",{column},")
}

/// The value of [`OP`] on a delete.
pub const DELETE: &str = "delete";

/// The change columns, in order.
pub fn fields() -> Vec<Field> {
    vec![
        Field::new(LSN, DataType::Int64, false),
        Field::new(OP, DataType::Utf8, false),
        Field::new(
            COMMIT_TS,
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new(UNCHANGED, DataType::Utf8, true),
    ]
}

/// The columns of a cdc stream whose values a source may leave unsent when unchanged
/// (variable-length ones, which PostgreSQL may TOAST), key columns excepted.
pub fn fillable_columns(stream: &ConfiguredStream) -> Vec<String> {
    if stream.sync_mode != crate::SyncMode::Cdc {
        return Vec::new();
    }
    let change_columns = fields();
    stream
        .schema()
        .fields()
        .iter()
        .filter(|f| !stream.primary_key.contains(f.name()))
        .filter(|f| !change_columns.iter().any(|c| c.name() == f.name()))
        .filter(|f| {
            matches!(
                f.data_type(),
                DataType::Utf8
                    | DataType::LargeUtf8
                    | DataType::Binary
                    | DataType::LargeBinary
                    | DataType::List(_)
                    | DataType::Decimal128(_, _)
            )
        })
        .map(|f| f.name().clone())
        .collect()
}

/// `schema` with the change columns appended; refuses a table that already has one.
pub fn with_change_fields(schema: &SchemaRef) -> Result<SchemaRef> {
    let mut all: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    for field in fields() {
        if schema.field_with_name(field.name()).is_ok() {
            return Err(Error::config(format!(
                "the table has a column named {}, which change data capture adds; rename it",
                field.name()
            )));
        }
        all.push(field);
    }
    Ok(std::sync::Arc::new(Schema::new(all)))
}

/// For each row of `batch`, whether it is a cdc change that carries no values (a delete,
/// which sends only the key, or a truncate): checks of the values skip such rows. All
/// false for batches without an [`OP`] column.
pub fn without_values(batch: &arrow::record_batch::RecordBatch) -> Vec<bool> {
    use arrow::array::AsArray;
    match batch.column_by_name(OP) {
        Some(ops) if ops.data_type() == &DataType::Utf8 => ops
            .as_string::<i32>()
            .iter()
            .map(|op| matches!(op, Some(DELETE | "truncate")))
            .collect(),
        _ => vec![false; batch.num_rows()],
    }
}

/// `schema` with every field nullable: a delete carries only the key's values, and a
/// TRUNCATE in a change log none.
pub fn nullable(schema: &SchemaRef) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_nullable(true))
        .collect();
    std::sync::Arc::new(Schema::new(fields))
}

/// The stream as the table's columns alone (its schema, and the discovered one, without
/// the change columns): what a source reads the snapshot and the tuples of.
pub fn table_part(stream: &ConfiguredStream) -> ConfiguredStream {
    let strip = |schema: &SchemaRef| -> SchemaRef {
        let kept: Vec<Field> = schema
            .fields()
            .iter()
            .filter(|f| !fields().iter().any(|c| c.name() == f.name()))
            .map(|f| f.as_ref().clone())
            .collect();
        std::sync::Arc::new(Schema::new(kept))
    };
    let mut table = stream.clone();
    table.stream.schema = strip(&stream.stream.schema);
    table.discovered = stream.discovered.as_ref().map(strip);
    table
}

/// The source-side objects one cdc stream reads through (PostgreSQL: a publication of the
/// table and a logical replication slot), named by the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdcNames {
    /// The replication slot.
    pub slot: String,
    /// The publication.
    pub publication: String,
    /// Whether the slot's name was derived rather than configured: slot names are unique
    /// per server, not per database, so a source adds its database to a derived one
    /// ([`Self::slot_in`]).
    pub derived_slot: bool,
}

impl CdcNames {
    /// The default names of stream `table` of `connection`: `elt_<connection>_<table>`,
    /// lower case letters, digits and `_` only, at most 63 bytes (PostgreSQL's limit), with
    /// a short hash of the full name when it had to be cut.
    pub fn derived(connection: &str, table: &str) -> Self {
        let name = slot_name(&format!("elt_{connection}_{table}"));
        Self {
            slot: name.clone(),
            publication: name,
            derived_slot: true,
        }
    }

    /// The slot's name on a server where the stream's table is in `database`: a derived
    /// name gets the database appended (`elt_<connection>_<table>_<database>`).
    pub fn slot_in(&self, database: &str) -> String {
        if self.derived_slot {
            slot_name(&format!("{}_{database}", self.slot))
        } else {
            self.slot.clone()
        }
    }
}

/// `text` as a valid replication slot name (see [`CdcNames::derived`]).
pub fn slot_name(text: &str) -> String {
    const MAX: usize = 63;
    let clean: String = text
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '_') => c,
            _ => '_',
        })
        .collect();
    if clean.len() <= MAX {
        return clean;
    }
    use md5::Digest;
    let digest: String = md5::Md5::digest(text.as_bytes())[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{}_{digest}", &clean[..MAX - digest.len() - 1])
}

/// What a source's change log keeps for one stream, for `elt runs` (PostgreSQL: the slot).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogStatus {
    /// The replication slot.
    pub slot: String,
    /// Changes before this are consumed (`X/Y`).
    pub confirmed_lsn: String,
    /// WAL bytes the slot keeps on the server's disk.
    pub kept_bytes: u64,
    /// WAL bytes written since the confirmed position: how far the stream is behind.
    pub behind_bytes: u64,
}

impl std::fmt::Display for LogStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "slot {} keeps {:.1} MB of WAL, {:.1} MB behind the server (consumed up to {})",
            self.slot,
            self.kept_bytes as f64 / 1e6,
            self.behind_bytes as f64 / 1e6,
            self.confirmed_lsn
        )
    }
}

/// Where a cdc stream stands, kept in its state: the log position up to which every change
/// is in the destination, and the snapshot the initial copy read (whose transactions the
/// log must not apply again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CdcPosition {
    /// The end of the last applied transaction (PostgreSQL LSN as a number).
    pub lsn: u64,
    /// The transactions the initial snapshot saw.
    pub snapshot: SnapshotXids,
}

/// The transactions a snapshot saw: every transaction below `xmin`, and those below
/// `xmax` that were not running (`running`). Ids are 64-bit (epoch included), so they
/// never wrap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotXids {
    /// Every transaction before this had ended.
    pub xmin: u64,
    /// No transaction from this on had ended.
    pub xmax: u64,
    /// Transactions between `xmin` and `xmax` that were still running.
    pub running: Vec<u64>,
}

impl SnapshotXids {
    /// Parses PostgreSQL's `pg_current_snapshot()` text, `xmin:xmax:xip,xip,...`.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = || Error::bug(format!("cannot read snapshot {text:?}"));
        let mut parts = text.split(':');
        let number = |part: Option<&str>| part.and_then(|p| p.parse::<u64>().ok());
        let xmin = number(parts.next()).ok_or_else(bad)?;
        let xmax = number(parts.next()).ok_or_else(bad)?;
        let running = match parts.next() {
            Some("") | None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(|x| x.parse::<u64>().map_err(|_| bad()))
                .collect::<Result<_>>()?,
        };
        Ok(Self {
            xmin,
            xmax,
            running,
        })
    }

    /// Whether the snapshot saw the committed transaction `xid` (its effects are in the
    /// initial copy).
    pub fn saw(&self, xid: u64) -> bool {
        xid < self.xmin || (xid < self.xmax && !self.running.contains(&xid))
    }
}

impl CdcPosition {
    /// Reads the position from a stream's state (None for a state without one).
    pub fn from_state(state: &StreamState) -> Result<Option<Self>> {
        match state.extra.get("cdc") {
            None => Ok(None),
            Some(value) => serde_json::from_value(value.clone())
                .map(Some)
                .map_err(|e| {
                    Error::config(format!(
                        "the stream's saved cdc position is not readable ({e}); reset the stream \
                     with `elt state reset`"
                    ))
                }),
        }
    }

    /// The state that holds this position; its watermark is the LSN in PostgreSQL's
    /// `X/Y` form.
    pub fn to_state(&self) -> StreamState {
        let mut state = StreamState::empty();
        state.cursor = Some(format_lsn(self.lsn).into());
        state.extra.insert(
            "cdc".to_owned(),
            serde_json::to_value(self).expect("a position always serializes"),
        );
        state
    }
}

/// Refuses to read a stream that is no longer cdc while its state still holds a cdc
/// position: its slot would keep WAL on the source forever, and a log position is no
/// cursor. The error names the command that removes both.
pub fn refuse_switch_off(
    stream: &ConfiguredStream,
    state: Option<&StreamState>,
    connection: &str,
) -> Result<()> {
    let was_cdc = match state {
        Some(state) => CdcPosition::from_state(state)?.is_some(),
        None => false,
    };
    if was_cdc && stream.sync_mode != crate::SyncMode::Cdc {
        return Err(Error::config(format!(
            "stream {} was synced with `sync = \"cdc\"`: run `elt cdc drop --connection \
             {connection} --stream {}` to remove its replication slot and position first",
            stream.name(),
            stream.name()
        )));
    }
    Ok(())
}

/// An LSN in PostgreSQL's text form, `16/B374D848`.
pub fn format_lsn(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF)
}

/// Reads PostgreSQL's text form of an LSN.
pub fn parse_lsn(text: &str) -> Result<u64> {
    let (high, low) = text
        .split_once('/')
        .ok_or_else(|| Error::bug(format!("{text:?} is not an LSN")))?;
    let part = |p: &str| {
        u64::from_str_radix(p, 16).map_err(|_| Error::bug(format!("{text:?} is not an LSN")))
    };
    Ok((part(high)? << 32) | part(low)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_visibility_follows_xmin_xmax_and_the_running_list() {
        let snap = SnapshotXids::parse("100:105:101,103").unwrap();
        assert!(snap.saw(99));
        assert!(snap.saw(100) && snap.saw(102) && snap.saw(104));
        assert!(!snap.saw(101) && !snap.saw(103));
        assert!(!snap.saw(105) && !snap.saw(200));
        assert_eq!(
            SnapshotXids::parse("7:7:").unwrap().running,
            Vec::<u64>::new()
        );
        assert!(SnapshotXids::parse("x:1:").is_err());
    }

    #[test]
    fn lsn_text_round_trips_and_positions_live_in_state() {
        let lsn = parse_lsn("16/B374D848").unwrap();
        assert_eq!(lsn, 0x16_B374_D848);
        assert_eq!(format_lsn(lsn), "16/B374D848");
        let position = CdcPosition {
            lsn,
            snapshot: SnapshotXids::parse("5:9:6").unwrap(),
        };
        let state = StreamState::from_json(&position.to_state().to_json()).unwrap();
        assert_eq!(state.watermark().as_deref(), Some("16/B374D848"));
        assert_eq!(CdcPosition::from_state(&state).unwrap(), Some(position));
        assert_eq!(
            CdcPosition::from_state(&StreamState::empty()).unwrap(),
            None
        );
    }

    #[test]
    fn derived_names_are_valid_slot_names() {
        let names = CdcNames::derived("pg-to-duck", "public.Orders");
        assert_eq!(names.slot, "elt_pg_to_duck_public_orders");
        assert_eq!(names.slot_in("App"), "elt_pg_to_duck_public_orders_app");
        let long = CdcNames::derived(&"c".repeat(40), &"t".repeat(40));
        assert!(long.slot.len() <= 63, "{}", long.slot);
        assert_ne!(
            long.slot,
            CdcNames::derived(&"c".repeat(40), &"t".repeat(41)).slot
        );
    }
}
