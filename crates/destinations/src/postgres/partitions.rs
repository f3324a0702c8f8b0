//! Time-partitioned raw tables in PostgreSQL (`partition_by`): the raw table is a
//! declarative `PARTITION BY RANGE` table with one partition per UTC day or month, named
//! `<table>__p20240115` or `<table>__p202401`, created as rows need them.
//!
//! A partition is created as a plain table and then attached (`ATTACH PARTITION` takes a
//! SHARE UPDATE EXCLUSIVE lock on the raw table, which open loads do not conflict with;
//! `CREATE TABLE … PARTITION OF` would wait for every open transaction on it), under an
//! advisory lock so that two workers never create one twice. A backfill window creates
//! its partitions before its transaction begins (it knows its range when the partition
//! column is its cursor); other loads create them batch by batch inside their transaction.
//! A window's load then empties the partitions it covers wholly (`TRUNCATE`, in its
//! transaction: readers see the old month until the commit, then the new one) and deletes
//! its rows from those it covers in part.
//!
//! What it does not do: detach or drop partitions, or move rows between layouts (a table
//! that exists without partitions is refused, not converted).

use std::collections::HashSet;

use elt_core::arrow::record_batch::RecordBatch;
use elt_core::partitions::{Partition, PartitionBy, partitions_in, partitions_of};
use elt_core::windows::Window;
use elt_core::{ConfiguredStream, Error, Result, quote_ident};

use super::session::PgSession;
use super::types::{PgType, pg_name};

/// The partitions of one stream's raw table, as its load sees them.
pub(super) struct Partitions {
    by: PartitionBy,
    /// The quoted raw table, in the dataset.
    table: String,
    /// Its unquoted name.
    name: String,
    /// The column's PostgreSQL type, which the bounds are cast to.
    ty: String,
    /// Whether the partition column is the cursor a backfill window cuts.
    by_cursor: bool,
    /// The names of the partitions that exist (unquoted).
    existing: HashSet<String>,
}

/// The `PARTITION BY` clause a new raw table of `stream` is created with, if it has
/// `partition_by`.
pub(super) fn partition_clause(stream: &ConfiguredStream) -> Option<String> {
    let by = stream.partition_by.as_ref()?;
    Some(format!(
        "PARTITION BY RANGE ({})",
        quote_ident(&pg_name(&by.column))
    ))
}

impl Partitions {
    /// Reads the partitions of raw table `table` (quoted; unquoted `name`), after it was
    /// created; None for a stream without `partition_by`. Refuses a table whose layout is
    /// not the stream's: partitioned by another column, or not at all, or partitioned while
    /// the stream has no `partition_by`.
    pub(super) async fn read(
        session: &mut PgSession,
        (table, name): (&str, &str),
        stream: &ConfiguredStream,
    ) -> Result<Option<Self>> {
        let key: Option<String> = sqlx::query_scalar(
            "SELECT pg_get_partkeydef(oid) FROM pg_class WHERE oid = to_regclass($1)",
        )
        .bind(table)
        .fetch_optional(&mut session.conn)
        .await
        .map_err(|e| session.error("reading the raw table's partitioning", e))?
        .flatten();
        let Some(by) = stream.partition_by.clone() else {
            return match key {
                Some(key) => Err(Error::config(format!(
                    "stream {}: table {table} is partitioned ({key}) but the stream has no \
                     `partition_by`; set `partition_by` to match it",
                    stream.name()
                ))),
                None => Ok(None),
            };
        };
        let column = quote_ident(&pg_name(&by.column));
        let wanted = format!("RANGE ({column})");
        let unquoted = format!("RANGE ({})", pg_name(&by.column));
        match key {
            Some(key) if key == wanted || key == unquoted => {}
            other => {
                return Err(Error::config(format!(
                    "stream {}: `partition_by` partitions by {}, but table {table} exists {}; \
                     drop or rename the table and sync again (elt does not move rows between \
                     layouts)",
                    stream.name(),
                    by.column,
                    other.map_or("without partitions".to_owned(), |k| format!("as {k}"))
                )));
            }
        }
        let existing = sqlx::query_scalar(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = to_regclass($1)",
        )
        .bind(table)
        .fetch_all(&mut session.conn)
        .await
        .map_err(|e| session.error("reading the raw table's partitions", e))?;
        let field = stream.schema().field_with_name(&by.column).map_err(|_| {
            Error::config(format!(
                "stream {}: `partition_by` column {} is not in the stream",
                stream.name(),
                by.column
            ))
        })?;
        Ok(Some(Self {
            ty: PgType::of(field)?.sql(),
            by_cursor: stream.cursor.as_deref() == Some(by.column.as_str()),
            by,
            table: table.to_owned(),
            name: name.to_owned(),
            existing: existing.into_iter().collect(),
        }))
    }

    /// The unquoted name of partition `p`.
    fn name_of(&self, p: &Partition) -> String {
        pg_name(&format!(
            "{}__p{}",
            self.name,
            p.suffix(self.by.granularity)
        ))
    }

    /// The quoted partition `p`, in the dataset.
    fn quoted(&self, session: &PgSession, p: &Partition) -> String {
        format!("{}.{}", session.ds, quote_ident(&self.name_of(p)))
    }

    /// Creates the partitions `window` needs before its transaction begins, when the
    /// partition column is the cursor that cuts it.
    pub(super) async fn create_for_window(
        &mut self,
        session: &mut PgSession,
        window: &Window,
    ) -> Result<()> {
        if !self.by_cursor {
            return Ok(());
        }
        let Some(parts) = partitions_in(window, self.by.granularity) else {
            return Ok(());
        };
        let parts: Vec<Partition> = parts.into_iter().map(|(p, _)| p).collect();
        self.create(session, &parts, false).await
    }

    /// Creates, in the open transaction, the partitions the rows of `batch` need; refuses
    /// rows without a partition value.
    pub(super) async fn create_for_batch(
        &mut self,
        session: &mut PgSession,
        batch: &RecordBatch,
    ) -> Result<()> {
        let column = batch.column_by_name(&self.by.column).ok_or_else(|| {
            Error::bug(format!(
                "partition column {} is not in the batch",
                self.by.column
            ))
        })?;
        let (parts, nulls) = partitions_of(column, self.by.granularity)?;
        if nulls > 0 {
            return Err(Error::data(format!(
                "{nulls} row(s) have a NULL in partition column {}, which chooses each row's \
                 partition; partition by a column that is never NULL",
                self.by.column
            )));
        }
        let parts: Vec<Partition> = parts.into_iter().collect();
        self.create(session, &parts, true).await
    }

    /// Creates and attaches those of `parts` that do not exist, under the table's
    /// partition lock: inside the open transaction, or in one of its own.
    async fn create(
        &mut self,
        session: &mut PgSession,
        parts: &[Partition],
        in_transaction: bool,
    ) -> Result<()> {
        let missing: Vec<&Partition> = parts
            .iter()
            .filter(|p| !self.existing.contains(&self.name_of(p)))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let doing = "creating the table's partitions";
        if !in_transaction {
            session.exec("BEGIN".to_owned(), doing).await?;
        }
        let created = self.create_missing(session, &missing).await;
        let ended = match (&created, in_transaction) {
            (_, true) => Ok(()),
            (Ok(()), false) => session.exec("COMMIT".to_owned(), doing).await,
            (Err(_), false) => session.exec("ROLLBACK".to_owned(), doing).await,
        };
        created.and(ended)?;
        for p in missing {
            self.existing.insert(self.name_of(p));
        }
        Ok(())
    }

    async fn create_missing(&self, session: &mut PgSession, missing: &[&Partition]) -> Result<()> {
        let doing = "creating the table's partitions";
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(format!("elt:partitions:{}", self.table))
            .execute(&mut session.conn)
            .await
            .map_err(|e| session.error(doing, e))?;
        for p in missing {
            let partition = self.quoted(session, p);
            // Another worker may have made it while this one waited for the lock.
            let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
                .bind(&partition)
                .fetch_one(&mut session.conn)
                .await
                .map_err(|e| session.error(doing, e))?;
            if exists {
                continue;
            }
            let (table, ty) = (&self.table, &self.ty);
            let (from, to) = (bound(p.start, ty), bound(p.end, ty));
            let sql = format!(
                "CREATE TABLE {partition} (LIKE {table} INCLUDING DEFAULTS);
                 ALTER TABLE {table} ATTACH PARTITION {partition}
                     FOR VALUES FROM ({from}) TO ({to})"
            );
            session.exec(sql, doing).await?;
        }
        Ok(())
    }

    /// Empties, in the open transaction, the existing partitions that `window` covers
    /// wholly (when the partition column is its cursor); returns how many rows they held.
    /// The caller deletes the window's rows from the rest.
    pub(super) async fn truncate_covered(
        &self,
        session: &mut PgSession,
        window: &Window,
    ) -> Result<u64> {
        if !self.by_cursor {
            return Ok(0);
        }
        let covered: Vec<String> = partitions_in(window, self.by.granularity)
            .unwrap_or_default()
            .into_iter()
            .filter(|(p, whole)| *whole && self.existing.contains(&self.name_of(p)))
            .map(|(p, _)| self.quoted(session, &p))
            .collect();
        if covered.is_empty() {
            return Ok(0);
        }
        let list = covered.join(", ");
        let doing = "replacing the window's partitions";
        // Locked first, so that no row arrives between the count and the TRUNCATE.
        let lock = format!("LOCK TABLE {list} IN ACCESS EXCLUSIVE MODE");
        session.exec(lock, doing).await?;
        let counts = covered
            .iter()
            .map(|p| format!("(SELECT count(*) FROM {p})"))
            .collect::<Vec<_>>()
            .join(" + ");
        let rows: i64 = sqlx::query_scalar(&format!("SELECT ({counts})::bigint"))
            .fetch_one(&mut session.conn)
            .await
            .map_err(|e| session.error(doing, e))?;
        session.exec(format!("TRUNCATE {list}"), doing).await?;
        Ok(rows.max(0) as u64)
    }
}

/// A partition bound: midnight UTC of `day` as a literal of the column's type `ty`.
fn bound(day: impl std::fmt::Display, ty: &str) -> String {
    match ty {
        "date" => format!("'{day}'"),
        "timestamptz" => format!("'{day} 00:00:00+00'"),
        _ => format!("'{day} 00:00:00'"),
    }
}
