//! Change data capture of one table (`sync = "cdc"`), through PostgreSQL's logical
//! replication: a publication of the table and a `pgoutput` slot per stream.
//!
//! A first read (no position in the destination's state) creates the slot, then copies the
//! table with binary COPY in a snapshot taken after it, and records which transactions
//! that snapshot saw ([`elt_core::cdc::SnapshotXids`]): the log repeats those from the
//! slot's start, and they are skipped, so nothing is lost or applied twice between the
//! copy and the log. The copy is one checkpoint (a kill during it starts it again). Every
//! read then sends the changes up to the WAL flushed at its start (`changes.rs`).
//!
//! Reads go over an ordinary connection with the SQL functions of logical decoding, not
//! the streaming replication protocol: no REPLICATION connection, and the slot moves only
//! when a read starts from a committed position. What it does not do: columns read in a
//! fallback form (`::text`).

use elt_core::cdc::{CdcNames, CdcPosition, LogStatus, SnapshotXids, format_lsn};
use elt_core::{ConfiguredStream, Emitter, Error, Result, StreamState};
use sqlx::postgres::PgConnection;
use sqlx::{Executor, Row};

use super::config::PostgresConfig;
use super::conn::{IdleConnection, Target};
use super::copy::{CopyBatches, CopyDecoder};
use super::discover::{self, Table};
use super::types::Kind;

mod changes;
pub mod check;
mod rows;
mod slot;

/// Reads cdc stream `stream` into `out`, from `state` when the destination has one.
pub async fn read(
    config: &PostgresConfig,
    idle: &IdleConnection,
    stream: &ConfiguredStream,
    state: Option<StreamState>,
    out: &mut Emitter,
) -> Result<()> {
    let target = super::conn::target(config)?;
    let mut conn = idle.take_or(target.connect()).await?;
    let names = names_of(&mut conn, &target, stream).await?;
    let table = table_of(&mut conn, &target, config, stream).await?;
    let position = match state
        .as_ref()
        .map(CdcPosition::from_state)
        .transpose()?
        .flatten()
    {
        Some(position) => position,
        None => {
            let copy = Snapshot {
                conn: &mut conn,
                target: &target,
                table: &table,
                names: &names,
                batch_rows: config.batch_rows,
            };
            copy.copy(out).await?
        }
    };
    prepare_slot(&mut conn, &target, &names, stream, &position).await?;
    changes::Changes {
        target: &target,
        table: &table,
        stream,
        slot: &names.slot,
        publication: &names.publication,
        batch_rows: config.batch_rows,
    }
    .read(&mut conn, position, out)
    .await?;
    idle.put(conn).await;
    Ok(())
}

/// The destination committed `state`: moves the slot there at once (instead of at the
/// next read), so the server frees the WAL before it; returns the WAL the slot still keeps.
pub async fn committed(
    config: &PostgresConfig,
    idle: &IdleConnection,
    stream: &ConfiguredStream,
    state: &StreamState,
) -> Result<Option<u64>> {
    let Some(position) = CdcPosition::from_state(state)? else {
        return Ok(None);
    };
    let target = super::conn::target(config)?;
    let mut conn = idle.take_or(target.connect()).await?;
    let names = names_of(&mut conn, &target, stream).await?;
    prepare_slot(&mut conn, &target, &names, stream, &position).await?;
    let retained = slot::status(&mut conn, &target, &names.slot)
        .await?
        .map(|s| s.retained_bytes.max(0) as u64);
    idle.put(conn).await;
    Ok(retained)
}

/// The slot of `stream` as the server sees it now (None: it does not exist).
pub async fn log_status(
    config: &PostgresConfig,
    idle: &IdleConnection,
    stream: &ConfiguredStream,
) -> Result<Option<LogStatus>> {
    let target = super::conn::target(config)?;
    let mut conn = idle.take_or(target.connect()).await?;
    let names = names_of(&mut conn, &target, stream).await?;
    let status = slot::status(&mut conn, &target, &names.slot).await?;
    idle.put(conn).await;
    Ok(status.map(|s| LogStatus {
        slot: names.slot,
        confirmed_lsn: format_lsn(s.confirmed),
        kept_bytes: s.retained_bytes.max(0) as u64,
        behind_bytes: s.behind_bytes.max(0) as u64,
    }))
}

/// Drops the slot and the publication of `stream`, if they exist; says which did.
pub async fn drop_objects(
    config: &PostgresConfig,
    stream: &ConfiguredStream,
) -> Result<Vec<String>> {
    let target = super::conn::target(config)?;
    let mut conn = target.connect().await?;
    let names = names_of(&mut conn, &target, stream).await?;
    let mut dropped = Vec::new();
    if let Some(status) = slot::status(&mut conn, &target, &names.slot).await? {
        slot::drop_slot(&mut conn, &target, &names.slot).await?;
        dropped.push(format!(
            "replication slot {} (it kept {} of WAL)",
            names.slot,
            bytes(status.retained_bytes)
        ));
    }
    if slot::drop_publication(&mut conn, &target, &names.publication).await? {
        dropped.push(format!("publication {}", names.publication));
    }
    Ok(dropped)
}

/// A byte count for people: `12.3 MB`.
fn bytes(n: i64) -> String {
    format!("{:.1} MB", n as f64 / 1e6)
}

/// The stream's slot and publication, the slot's name as it is on this server.
async fn names_of(
    conn: &mut PgConnection,
    target: &Target,
    stream: &ConfiguredStream,
) -> Result<CdcNames> {
    let mut names = stream
        .cdc
        .clone()
        .ok_or_else(|| Error::bug("a cdc stream without slot and publication names"))?;
    let database: String = sqlx::query_scalar("SELECT current_database()::text")
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| target.error("reading the database name", e))?;
    names.slot = names.slot_in(&database);
    names.derived_slot = false;
    Ok(names)
}

/// The stream's table, narrowed to the columns it reads; columns read in a fallback form
/// are refused (the log sends them in their own binary form).
async fn table_of(
    conn: &mut PgConnection,
    target: &Target,
    config: &PostgresConfig,
    stream: &ConfiguredStream,
) -> Result<Table> {
    let table =
        discover::table_for(conn, target, config, &elt_core::cdc::table_part(stream)).await?;
    if let Some(column) = table.columns.iter().find(|c| c.fallback.is_some()) {
        return Err(Error::config(format!(
            "column {} ({}) is read as text, which cdc streams cannot do yet; leave it out \
             with `columns = {{ exclude = [\"{}\"] }}`",
            column.name, column.sql_type, column.name
        )));
    }
    Ok(table)
}

/// The schema the stream's batches are built in: the columns it reads (the emitter puts
/// them in the stream's schema, hashing what it hashes), then the change columns.
fn batch_schema(table: &Table) -> Result<elt_core::arrow::datatypes::SchemaRef> {
    elt_core::cdc::with_change_fields(&elt_core::catalog::schema(table.fields()))
}

/// Moves the slot to the destination's position; refuses a slot that is gone or that
/// went past it (something else consumed changes the destination does not have).
async fn prepare_slot(
    conn: &mut PgConnection,
    target: &Target,
    names: &CdcNames,
    stream: &ConfiguredStream,
    position: &CdcPosition,
) -> Result<()> {
    let reset = format!(
        "run `elt state reset --stream {}` and sync to copy the table again from a new snapshot",
        stream.name()
    );
    let Some(status) = slot::status(conn, target, &names.slot).await? else {
        return Err(Error::permanent(format!(
            "replication slot {} is gone, so the changes after {} cannot be read; {reset}",
            names.slot,
            format_lsn(position.lsn)
        )));
    };
    if status.confirmed > position.lsn {
        return Err(Error::permanent(format!(
            "replication slot {} was consumed up to {}, past the destination's position {}: \
             something else reads it; give the stream its own `cdc_slot`, then {reset}",
            names.slot,
            format_lsn(status.confirmed),
            format_lsn(position.lsn)
        )));
    }
    if status.confirmed < position.lsn {
        slot::advance(conn, target, &names.slot, position.lsn).await?;
    }
    Ok(())
}

/// The initial copy of a table, consistent with its new slot.
struct Snapshot<'a> {
    conn: &'a mut PgConnection,
    target: &'a Target,
    table: &'a Table,
    names: &'a CdcNames,
    batch_rows: usize,
}

impl Snapshot<'_> {
    /// Creates the publication and the slot, copies the table in a snapshot taken after
    /// the slot, and returns the position to read the log from (checkpointed).
    async fn copy(self, out: &mut Emitter) -> Result<CdcPosition> {
        let (conn, target, table) = (self.conn, self.target, self.table);
        slot::ensure_publication(conn, target, self.names, &table.schema, &table.name).await?;
        let start = slot::recreate(conn, target, &self.names.slot).await?;
        elt_core::failpoint::hit("postgres.cdc.after_slot");
        let failed = |e| target.error("starting the snapshot", e);
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await
            .map_err(failed)?;
        let row = sqlx::query(
            "SELECT pg_current_snapshot()::text, \
             (extract(epoch FROM statement_timestamp()) * 1000000)::bigint",
        )
        .fetch_one(&mut *conn)
        .await
        .map_err(failed)?;
        let snapshot = SnapshotXids::parse(row.get::<&str, _>(0))?;
        let taken_at_us: i64 = row.get(1);
        let select: Vec<_> = table.columns.iter().map(|c| c.select.as_str()).collect();
        let sql = format!(
            "COPY (SELECT {} FROM {}.{}) TO STDOUT (FORMAT binary)",
            select.join(", "),
            elt_core::quote_ident(&table.schema),
            elt_core::quote_ident(&table.name)
        );
        let kinds: Vec<Kind> = table.columns.iter().map(|c| c.kind.clone()).collect();
        let decoder = CopyDecoder::new(elt_core::catalog::schema(table.fields()), &kinds);
        let what = format!("the snapshot of {}.{}", table.schema, table.name);
        let schema = batch_schema(table)?;
        let mut batches =
            CopyBatches::start(conn, target, &what, &sql, decoder, self.batch_rows).await?;
        while let Some((batch, _)) = batches.next().await? {
            out.batch(rows::snapshot_rows(batch, &schema, taken_at_us)?)
                .await?;
        }
        drop(batches);
        conn.execute("COMMIT").await.map_err(failed)?;
        let position = CdcPosition {
            lsn: start,
            snapshot,
        };
        out.checkpoint(position.to_state()).await?;
        out.note(format!(
            "copied the table in a snapshot; slot {} reads the changes from {}",
            self.names.slot,
            format_lsn(start)
        ));
        Ok(position)
    }
}
