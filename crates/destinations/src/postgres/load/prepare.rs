//! Readying one PostgreSQL load: the column lists and types of the raw table and the
//! stage, the raw table created or evolved, the stage of a keyed load, the overwrite's new
//! table, and whether a merge may copy straight into a table that is empty; the partitions a
//! backfill window needs, and the emptying of a partitioned table that is overwritten. The
//! flow that follows is in `load.rs`.

use elt_core::changes::{EXTRACTED_AT, RUN_ID, change_fields};
use elt_core::{ConfiguredStream, Error, Result, RunInfo, WriteMode, quote_ident};

use super::super::lock::StreamLock;
use super::super::partitions::{Partitions, partition_clause};
use super::super::session::PgSession;
use super::super::tables::{RawTable, create_raw_table, meta_definitions};
use super::super::types::{PgType, pg_name};
use super::super::windows::window_cursor_index;
use super::{Loader, uuid_bytes};

/// The columns of one stream's raw table and stage.
struct Columns {
    /// The PostgreSQL types of the stream's columns.
    types: Vec<PgType>,
    /// `types`, then those of the change columns the stage takes (merge, history).
    staged_types: Vec<PgType>,
    /// The raw table's column names: the stream's, then the write mode's.
    names: Vec<String>,
    /// `name type` of the stream's columns.
    source_definitions: Vec<String>,
    /// `name type` of every column of the raw table.
    definitions: Vec<String>,
    /// The quoted stream columns.
    quoted: Vec<String>,
    /// The quoted primary-key columns.
    key: Vec<String>,
}

impl Columns {
    fn of(stream: &ConfiguredStream) -> Result<Self> {
        let schema = &elt_core::previous::table_schema(stream)?;
        let types: Vec<PgType> = schema
            .fields()
            .iter()
            .map(|f| PgType::of(f))
            .collect::<Result<_>>()?;
        let mut staged_types = types.clone();
        for field in &change_fields(stream) {
            staged_types.push(PgType::of(field)?);
        }
        let source_names: Vec<String> = schema.fields().iter().map(|f| pg_name(f.name())).collect();
        let meta = meta_definitions(stream.write_mode);
        let names = source_names
            .iter()
            .cloned()
            .chain(meta.iter().map(|(n, _)| n.clone()))
            .collect();
        let source_definitions: Vec<String> = source_names
            .iter()
            .zip(&types)
            .map(|(n, t)| format!("{} {}", quote_ident(n), t.sql()))
            .collect();
        let definitions = source_definitions
            .iter()
            .cloned()
            .chain(meta.iter().map(|(n, t)| format!("{n} {t}")))
            .collect();
        let key: Vec<String> = stream
            .primary_key
            .iter()
            .map(|k| quote_ident(&pg_name(k)))
            .collect();
        let mode = stream.write_mode;
        if mode.is_keyed() && key.is_empty() {
            return Err(Error::config(format!(
                "write mode `{mode}` needs a primary key; set `primary_key` on the stream or use `append`"
            )));
        }
        Ok(Self {
            quoted: source_names.iter().map(|n| quote_ident(n)).collect(),
            types,
            staged_types,
            names,
            source_definitions,
            definitions,
            key,
        })
    }

    /// The stage's `name type` list: the stream's columns, the change columns, the run's.
    fn stage_definitions(&self, stream: &ConfiguredStream) -> Vec<String> {
        let change = change_fields(stream);
        let change_definitions = change
            .iter()
            .zip(&self.staged_types[self.types.len()..])
            .map(|(f, t)| format!("{} {}", f.name(), t.sql()));
        self.source_definitions
            .iter()
            .cloned()
            .chain(change_definitions)
            .chain([
                format!("{EXTRACTED_AT} timestamptz"),
                format!("{RUN_ID} uuid"),
            ])
            .collect()
    }
}

impl<'a> Loader<'a> {
    /// Creates or evolves the raw table (and a keyed load's stage, or the overwrite's new
    /// table) and opens the first transaction.
    pub(super) async fn prepare(
        session: &'a mut PgSession,
        run: &'a RunInfo,
        stream: &'a ConfiguredStream,
        lock: &'a StreamLock,
    ) -> Result<Self> {
        let mode = stream.write_mode;
        let c = Columns::of(stream)?;
        let ds = session.ds.clone();
        let table_name = pg_name(&stream.table);
        let table = format!("{ds}.{}", quote_ident(&table_name));
        // A partitioned table is overwritten in place: emptied in the load's transaction.
        let in_place = stream.partition_by.is_some();
        let into = match mode {
            WriteMode::Overwrite if !in_place => format!(
                "{ds}.{}",
                quote_ident(&pg_name(&format!("_elt_new__{}", stream.table)))
            ),
            mode => {
                let cursor_index = window_cursor_index(stream)?;
                let partitioned = partition_clause(stream);
                let raw = RawTable {
                    table: &table,
                    name: &table_name,
                    names: &c.names,
                    types: &c.types,
                    definitions: &c.definitions,
                    key: &c.key,
                    mode,
                    cursor_index: cursor_index.as_deref(),
                    partitioned: partitioned.as_deref(),
                };
                create_raw_table(session, &raw).await?;
                if mode.is_keyed() {
                    let stage = quote_ident(&pg_name(&format!("_elt_stage__{}", stream.table)));
                    let sql = format!(
                        "DROP TABLE IF EXISTS pg_temp.{stage}; CREATE TEMP TABLE {stage} ({})",
                        c.stage_definitions(stream).join(", ")
                    );
                    session.exec(sql, "creating the staging table").await?;
                    format!("pg_temp.{stage}")
                } else {
                    table.clone()
                }
            }
        };
        let mut partitions = Partitions::read(session, (&table, &table_name), stream).await?;
        if let (Some(partitions), Some(window)) = (&mut partitions, stream.window()) {
            partitions.create_for_window(session, &window).await?;
        }
        let direct = mode.is_merge()
            && stream.deletes.soft_delete_column.is_none()
            && is_empty(session, &table).await?;
        session
            .exec("BEGIN".to_owned(), "starting a transaction")
            .await?;
        if mode == WriteMode::Overwrite && in_place {
            session
                .exec(format!("TRUNCATE {table}"), "emptying the table")
                .await?;
        } else if mode == WriteMode::Overwrite {
            let sql = format!(
                "DROP TABLE IF EXISTS {into}; CREATE TABLE {into} ({})",
                c.definitions.join(", ")
            );
            session.exec(sql, "creating the new table").await?;
        }
        let change = change_fields(stream);
        let staged_columns = c
            .quoted
            .iter()
            .cloned()
            .chain(change.iter().map(|f| f.name().clone()))
            .chain([EXTRACTED_AT.to_owned(), RUN_ID.to_owned()])
            .collect::<Vec<_>>()
            .join(", ");
        Ok(Self {
            columns: format!("{}, {EXTRACTED_AT}, {RUN_ID}", c.quoted.join(", ")),
            staged_columns,
            run_id: uuid_bytes(&run.run_id)?,
            session,
            run,
            stream,
            lock,
            types: c.types,
            staged_types: c.staged_types,
            table,
            into,
            quoted: c.quoted,
            staged_rows: 0,
            direct,
            partitions,
        })
    }
}

/// Whether `table` (quoted) holds no row.
async fn is_empty(session: &mut PgSession, table: &str) -> Result<bool> {
    let sql = format!("SELECT NOT EXISTS (SELECT 1 FROM {table})");
    sqlx::query_scalar::<_, bool>(&sql)
        .fetch_one(&mut session.conn)
        .await
        .map_err(|e| session.error("checking whether the table is empty", e))
}
