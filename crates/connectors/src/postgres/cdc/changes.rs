//! Reading the changes of one cdc stream from its slot, up to the WAL flushed at the start
//! of the read: `pg_logical_slot_peek_binary_changes` with `pgoutput` in binary
//! mode (the messages parsed by `pg_walstream`), each committed transaction's rows sent in
//! order, a checkpoint at transaction ends once a batch is full and at the end.
//!
//! Peeking consumes nothing: the slot moves forward only at the start of the next read, to
//! the position the destination committed ([`super::slot::advance`]), so a kill at any
//! moment neither loses nor repeats a change. Transactions the initial snapshot saw, and
//! those before the saved position, are skipped. A change of the table's columns stops the
//! read before that transaction and asks the runner to plan the stream again and read on.
//! A TRUNCATE deletes every loaded row (merge, history) or is a `truncate` row of the
//! change log (append).

use elt_core::cdc::{CdcPosition, format_lsn};
use elt_core::{ConfiguredStream, Emitter, Error, Result, WriteMode};
use futures_util::TryStreamExt;
use pg_walstream::{
    ColumnInfo, LogicalReplicationMessage as Msg, LogicalReplicationParser, TupleData,
};
use sqlx::Row;
use sqlx::postgres::PgConnection;

use super::super::conn::Target;
use super::super::discover::Table;
use super::super::types::Kind;
use super::rows::{ChangeRows, Op};

/// Microseconds from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_US: i64 = 946_684_800_000_000;

/// One read of changes.
pub struct Changes<'a> {
    pub target: &'a Target,
    pub table: &'a Table,
    pub stream: &'a ConfiguredStream,
    pub slot: &'a str,
    pub publication: &'a str,
    pub batch_rows: usize,
}

/// The transaction being decoded.
struct Txn {
    skip: bool,
    commit_ts_us: i64,
    /// Rows of this transaction already in `rows` (not yet sent).
    first_row: usize,
    /// Whether some of its rows were sent before its commit (a transaction larger than a
    /// batch).
    sent_early: bool,
}

impl Changes<'_> {
    /// Sends every change committed after `position` and before the WAL flushed now,
    /// then a checkpoint at the furthest position read.
    pub async fn read(
        &self,
        conn: &mut PgConnection,
        mut position: CdcPosition,
        out: &mut Emitter,
    ) -> Result<()> {
        let failed = |e| self.target.error("reading changes", e);
        let row = sqlx::query(
            // Decoding reads flushed WAL only: an asynchronous commit can be inserted but
            // not yet flushed, and a position past the flush point would skip it.
            "SELECT (pg_current_wal_flush_lsn() - '0/0'::pg_lsn)::bigint, \
             pg_snapshot_xmax(pg_current_snapshot())::text::bigint",
        )
        .fetch_one(&mut *conn)
        .await
        .map_err(failed)?;
        let (upto, xmax) = (row.get::<i64, _>(0) as u64, row.get::<i64, _>(1) as u64);
        let schema = elt_core::cdc::nullable(&super::batch_schema(self.table)?);
        let mut rows = ChangeRows::new(schema, &self.kinds());
        let mut parser = LogicalReplicationParser::with_protocol_version(1);
        // The table's relation id and where its columns are in the tuples.
        let mut relation: Option<(u32, Vec<Option<usize>>)> = None;
        let mut txn: Option<Txn> = None;
        let (snapshot, start) = (position.snapshot.clone(), position.lsn);
        let mut messages = sqlx::query(
            "SELECT (lsn - '0/0'::pg_lsn)::bigint, data FROM \
             pg_logical_slot_peek_binary_changes($1, $2::pg_lsn, NULL, 'proto_version', '1', \
             'publication_names', $3, 'binary', 'true')",
        )
        .bind(self.slot)
        .bind(format_lsn(upto))
        .bind(self.publication)
        .fetch(&mut *conn);
        let mut stopped = None;
        while let Some(row) = messages.try_next().await.map_err(failed)? {
            let lsn = row.get::<i64, _>(0) as u64;
            let data: &[u8] = row.get(1);
            let message = parser
                .parse_wal_message(data)
                .map_err(|e| Error::bug(format!("cannot read a pgoutput message: {e}")))?
                .message;
            match message {
                Msg::Begin {
                    final_lsn,
                    timestamp,
                    xid,
                } => {
                    txn = Some(Txn {
                        skip: final_lsn < start || snapshot.saw(full_xid(xid, xmax)),
                        commit_ts_us: timestamp + PG_EPOCH_US,
                        first_row: rows.rows(),
                        sent_early: false,
                    });
                }
                Msg::Relation {
                    relation_id,
                    namespace,
                    relation_name,
                    columns,
                    ..
                } if *namespace == *self.table.schema && *relation_name == *self.table.name => {
                    let (found, unknown) = self.column_positions(&columns);
                    let added = self.still_there(&unknown).await?;
                    if !added.is_empty() {
                        stopped = Some(format!("the table has new columns ({})", added.join(", ")));
                        break;
                    }
                    relation = Some((relation_id, found));
                }
                Msg::Insert { relation_id, tuple } => {
                    let change = (&tuple, Op::Insert, lsn);
                    append(&mut rows, &txn, &relation, relation_id, change)?
                }
                Msg::Update {
                    relation_id,
                    new_tuple,
                    ..
                } => {
                    let change = (&new_tuple, Op::Update, lsn);
                    append(&mut rows, &txn, &relation, relation_id, change)?
                }
                Msg::Delete {
                    relation_id,
                    old_tuple,
                    ..
                } => {
                    let change = (&old_tuple, Op::Delete, lsn);
                    append(&mut rows, &txn, &relation, relation_id, change)?
                }
                Msg::Truncate { relation_ids, .. }
                    if relation
                        .as_ref()
                        .is_some_and(|(id, _)| relation_ids.contains(id)) =>
                {
                    if let Some(open) = txn.as_mut().filter(|t| !t.skip) {
                        self.truncate(&mut rows, out, lsn, open).await?;
                    }
                }
                Msg::Commit { end_lsn, .. } => {
                    // A transaction sent in parts is committed at its end, whatever is left.
                    let sent_early = txn.take().is_some_and(|t| t.sent_early);
                    position.lsn = position.lsn.max(end_lsn);
                    if rows.rows() >= self.batch_rows || sent_early {
                        send(&mut rows, out, None).await?;
                        out.checkpoint(position.to_state()).await?;
                    }
                }
                _ => {}
            }
            if rows.rows() >= self.batch_rows.saturating_mul(2)
                && let Some(open) = txn.as_mut()
            {
                // A transaction larger than a batch: send its rows before its commit.
                send(&mut rows, out, None).await?;
                open.first_row = 0;
                open.sent_early = true;
            }
        }
        drop(messages);
        if let Some(why) = stopped {
            let open = txn.take();
            if open.as_ref().is_some_and(|t| t.sent_early) {
                return Err(Error::permanent(format!(
                    "{why}; the transaction was larger than a batch and is partly sent: \
                     nothing of it was committed, so rerun after resolving it"
                )));
            }
            send(&mut rows, out, open.map(|t| t.first_row)).await?;
            out.checkpoint(position.to_state()).await?;
            out.note(format!("stopped at {}: {why}", format_lsn(position.lsn)));
            out.replan();
            return Ok(());
        }
        send(&mut rows, out, None).await?;
        // Every transaction committed before `upto` was read.
        position.lsn = position.lsn.max(upto);
        out.checkpoint(position.to_state()).await
    }

    /// How each column's value arrives in the log: in its type's binary send form, so an
    /// unbounded `numeric` (read as `::text` by a COPY) is decoded from binary into text.
    /// An enum sends its label, which the text decoder reads as it is.
    fn kinds(&self) -> Vec<Kind> {
        self.table
            .columns
            .iter()
            .map(|c| match c.kind {
                Kind::Text if c.sql_type == "numeric" => Kind::NumericText,
                ref kind => kind.clone(),
            })
            .collect()
    }

    /// Where each of the table's columns is in the relation's tuples (None: the column did
    /// not exist yet at that point of the log, so its value is NULL), and the relation's
    /// columns the stream was not planned with.
    fn column_positions(&self, columns: &[ColumnInfo]) -> (Vec<Option<usize>>, Vec<String>) {
        let discovered = self.stream.source_schema();
        let unknown = columns
            .iter()
            .filter(|c| discovered.field_with_name(&c.name).is_err())
            .map(|c| c.name.to_string())
            .collect();
        let positions = self
            .table
            .columns
            .iter()
            .map(|column| columns.iter().position(|c| *c.name == *column.name))
            .collect();
        (positions, unknown)
    }

    /// Which of `columns` the table has now (on a connection of its own: the log is being
    /// read on the other). Those are new since the stream was planned; the others were
    /// dropped since that point of the log, and their values are not read.
    async fn still_there(&self, columns: &[String]) -> Result<Vec<String>> {
        if columns.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.target.connect().await?;
        sqlx::query_scalar(
            "SELECT a.attname::text FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 \
             AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped \
             AND a.attname = ANY($3) ORDER BY a.attnum",
        )
        .bind(&self.table.schema)
        .bind(&self.table.name)
        .bind(columns)
        .fetch_all(&mut conn)
        .await
        .map_err(|e| self.target.error("looking up the table's columns", e))
    }

    /// A TRUNCATE of the table: the rows before it are sent, then (merge) a truncate
    /// message that deletes every loaded row, or (append) a `truncate` row in the log.
    async fn truncate(
        &self,
        rows: &mut ChangeRows,
        out: &mut Emitter,
        lsn: u64,
        txn: &mut Txn,
    ) -> Result<()> {
        if self.stream.write_mode == WriteMode::Append {
            return rows.append_truncate(lsn, txn.commit_ts_us);
        }
        send(rows, out, None).await?;
        txn.first_row = 0;
        txn.sent_early = true;
        out.truncate().await
    }
}

/// Appends one change of a transaction that is not skipped, if it is of the table.
fn append(
    rows: &mut ChangeRows,
    txn: &Option<Txn>,
    relation: &Option<(u32, Vec<Option<usize>>)>,
    relation_id: u32,
    (tuple, op, lsn): (&TupleData, Op, u64),
) -> Result<()> {
    let Some(txn) = txn.as_ref().filter(|t| !t.skip) else {
        return Ok(());
    };
    match relation {
        Some((id, positions)) if *id == relation_id => {
            rows.append(tuple, positions, op, lsn, txn.commit_ts_us)
        }
        Some(_) => Ok(()),
        None => Err(Error::bug(
            "a change arrived before the relation message of the table",
        )),
    }
}

/// Sends the rows built so far, or only the first `keep` of them.
async fn send(rows: &mut ChangeRows, out: &mut Emitter, keep: Option<usize>) -> Result<()> {
    if let Some(batch) = rows.finish_batch()? {
        let batch = match keep {
            Some(n) => batch.slice(0, n),
            None => batch,
        };
        out.batch(batch).await?;
    }
    Ok(())
}

/// The 64-bit id of a 32-bit transaction id seen in the log, given the current `xmax`
/// (every transaction in the log is older).
fn full_xid(xid: u32, xmax: u64) -> u64 {
    let full = (xmax & !0xFFFF_FFFF) | u64::from(xid);
    if full > xmax { full - (1 << 32) } else { full }
}

#[cfg(test)]
mod tests {
    use super::full_xid;

    #[test]
    fn transaction_ids_get_the_epoch_of_the_current_one() {
        assert_eq!(full_xid(700, 733), 700);
        let epoch = 3u64 << 32;
        assert_eq!(full_xid(5, epoch + 10), epoch + 5);
        assert_eq!(full_xid(u32::MAX - 1, epoch + 10), epoch - 2);
    }
}
