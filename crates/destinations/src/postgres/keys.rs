//! A reconciliation's questions about a raw table's live keys (see `elt_core::reconcile`),
//! answered by PostgreSQL: range digests, the keys of a range, cut points, and marking the
//! keys the source no longer has, under the stream's lease and fenced like every commit.
//! Live rows: merge rows without `_elt_deleted_at`, history's current versions. Text keys
//! are compared and ordered with `COLLATE "C"`, the byte order the other side uses.

use std::time::Duration;

use async_trait::async_trait;
use elt_core::capability::KeyDigests;
use elt_core::changes::{DELETED_AT, IS_CURRENT, VALID_TO};
use elt_core::reconcile::{Key, KeyRange, RangeDigest, SPLIT_SAMPLE, cut_points, live_rows};
use elt_core::{ConfiguredStream, Error, OnDelete, Result, RunInfo, WriteMode, quote_ident};
use elt_postgres::key_ranges::{KeyColumn, digest_list, range_sql};
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::lock::StreamLock;
use super::session::PgSession;
use super::types::pg_name;

/// The raw table of a stream, its key columns and its live-row filter.
pub struct LiveKeys {
    table: String,
    columns: Vec<KeyColumn>,
    live: &'static str,
}

impl LiveKeys {
    /// Reads the key columns' types from the catalog.
    pub async fn of(session: &mut PgSession, stream: &ConfiguredStream) -> Result<Self> {
        let live = live_rows(stream)?;
        let table = format!("{}.{}", session.ds, quote_ident(&pg_name(&stream.table)));
        let mut columns = Vec::new();
        for k in &stream.primary_key {
            let name = pg_name(k);
            let sql_type: Option<String> = sqlx::query_scalar(
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute
                 WHERE attrelid = to_regclass($1) AND attname = $2 AND NOT attisdropped",
            )
            .bind(table.clone())
            .bind(name.clone())
            .fetch_optional(&mut session.conn)
            .await
            .map_err(|e| session.target.error("reading the key columns", e))?;
            let sql_type = sql_type.ok_or_else(|| {
                Error::permanent(format!(
                    "table {table} has no key column {name}; sync it first"
                ))
            })?;
            columns.push(KeyColumn {
                quoted: quote_ident(&name),
                is_text: matches!(sql_type.as_str(), "text" | "character varying"),
                sql_type,
            });
        }
        Ok(Self {
            table,
            columns,
            live,
        })
    }

    /// Runs `SELECT {list}` over the live rows of `range`, then `tail`.
    async fn select(
        &self,
        session: &mut PgSession,
        list: &str,
        range: &KeyRange,
        tail: &str,
        doing: &'static str,
    ) -> Result<Vec<PgRow>> {
        let range = range_sql(&self.columns, range, 1);
        let sql = format!(
            "SELECT {list} FROM {} WHERE {} AND {}{tail}",
            self.table, self.live, range.predicate
        );
        let mut query = sqlx::query(&sql);
        for p in &range.params {
            query = query.bind(p.clone());
        }
        match query.fetch_all(&mut session.conn).await {
            Ok(rows) => Ok(rows),
            Err(e) => Err(session.target.error(doing, e)),
        }
    }

    /// The digest of each range.
    pub async fn digests(
        &self,
        session: &mut PgSession,
        ranges: &[KeyRange],
    ) -> Result<Vec<RangeDigest>> {
        let list = digest_list(&self.columns);
        let mut out = Vec::with_capacity(ranges.len());
        for range in ranges {
            let rows = self
                .select(session, &list, range, "", "digesting a key range")
                .await?;
            out.push(RangeDigest {
                keys: rows[0].get::<i64, _>(0) as u64,
                hash: rows[0].get(1),
            });
        }
        Ok(out)
    }

    fn texts(&self) -> String {
        let texts: Vec<String> = self
            .columns
            .iter()
            .map(|c| format!("CAST({} AS VARCHAR)", c.quoted))
            .collect();
        format!("ARRAY[{}]", texts.join(", "))
    }

    /// The live keys in `range`.
    pub async fn keys(&self, session: &mut PgSession, range: &KeyRange) -> Result<Vec<Key>> {
        let rows = self
            .select(session, &self.texts(), range, "", "reading keys")
            .await?;
        Ok(rows.iter().map(|r| r.get::<Vec<String>, _>(0)).collect())
    }

    /// The live key count of `range` and the keys that cut it into `parts` even ranges.
    pub async fn split(
        &self,
        session: &mut PgSession,
        range: &KeyRange,
        parts: usize,
    ) -> Result<(u64, Vec<Key>)> {
        let counted = self
            .select(session, "count(*)", range, "", "counting keys")
            .await?;
        let count = counted[0].get::<i64, _>(0) as u64;
        if count <= 1 || parts <= 1 {
            return Ok((count, Vec::new()));
        }
        let order: Vec<String> = self
            .columns
            .iter()
            .map(|c| {
                let collate = if c.is_text { " COLLATE \"C\"" } else { "" };
                format!("{}{collate}", c.quoted)
            })
            .collect();
        let quoted: Vec<&str> = self.columns.iter().map(|c| c.quoted.as_str()).collect();
        let list = format!("{} AS k, {}", self.texts(), quoted.join(", "));
        let range = range_sql(&self.columns, range, 1);
        // A random sample of the range's keys (a top-N by random(), no full sort), in order.
        let sql = format!(
            "SELECT k FROM (SELECT {list} FROM {} WHERE {} AND {} ORDER BY random()
             LIMIT {SPLIT_SAMPLE}) AS sample ORDER BY {}",
            self.table,
            self.live,
            range.predicate,
            order.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for p in &range.params {
            query = query.bind(p.clone());
        }
        let rows = match query.fetch_all(&mut session.conn).await {
            Ok(rows) => rows,
            Err(e) => return Err(session.target.error("sampling a key range", e)),
        };
        let sample = rows.iter().map(|r| r.get::<Vec<String>, _>(0)).collect();
        Ok((count, cut_points(sample, parts)))
    }

    /// Marks `deleted` as deleted and records the reconciliation, in one transaction
    /// holding the stream's lease (so no worker loads the stream meanwhile).
    pub async fn finish(
        &self,
        session: &mut PgSession,
        run: &RunInfo,
        stream: &ConfiguredStream,
        deleted: Vec<Key>,
    ) -> Result<u64> {
        let lease = Duration::from_secs(session.config.lease_secs);
        let lock = StreamLock::acquire(
            &mut session.conn,
            &session.target,
            &session.ds,
            run,
            stream,
            lease,
        )
        .await?;
        let result = self.mark(session, run, stream, deleted, &lock).await;
        if result.is_err() {
            let _ = session.exec("ROLLBACK".to_owned(), "rolling back").await;
        }
        lock.release(&mut session.conn).await;
        result
    }

    async fn mark(
        &self,
        session: &mut PgSession,
        run: &RunInfo,
        stream: &ConfiguredStream,
        deleted: Vec<Key>,
        lock: &StreamLock,
    ) -> Result<u64> {
        let width = self.columns.len();
        let definitions: Vec<String> = (0..width).map(|i| format!("k{i} text")).collect();
        let same: Vec<String> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| format!("t.{} = CAST(d.k{i} AS {})", c.quoted, c.sql_type))
            .collect();
        let (table, same) = (&self.table, same.join(" AND "));
        let now = "(timestamptz 'epoch' + $1::bigint * interval '1 microsecond')";
        let change = match (stream.write_mode, stream.deletes.on_delete) {
            (WriteMode::History, _) => format!(
                "UPDATE {table} AS t SET {VALID_TO} = {now}, {IS_CURRENT} = false
                 FROM pg_temp._elt_deleted_keys AS d WHERE {same} AND t.{IS_CURRENT}"
            ),
            (_, OnDelete::Remove) => format!(
                "DELETE FROM {table} AS t USING pg_temp._elt_deleted_keys AS d
                 WHERE {same} AND t.{DELETED_AT} IS NULL"
            ),
            (_, OnDelete::Mark) => format!(
                "UPDATE {table} AS t SET {DELETED_AT} = {now}
                 FROM pg_temp._elt_deleted_keys AS d WHERE {same} AND t.{DELETED_AT} IS NULL"
            ),
        };
        session
            .exec(
                format!(
                    "BEGIN; DROP TABLE IF EXISTS pg_temp._elt_deleted_keys;
                 CREATE TEMP TABLE _elt_deleted_keys ({}) ON COMMIT DROP",
                    definitions.join(", ")
                ),
                "staging deleted keys",
            )
            .await?;
        let columns: Vec<Vec<String>> = (0..width)
            .map(|i| deleted.iter().map(|k| k[i].clone()).collect())
            .collect();
        let arrays: Vec<String> = (1..=width).map(|i| format!("${i}::text[]")).collect();
        let insert = format!(
            "INSERT INTO pg_temp._elt_deleted_keys SELECT * FROM unnest({})",
            arrays.join(", ")
        );
        let mut query = sqlx::query(&insert);
        for column in columns {
            query = query.bind(column);
        }
        if let Err(e) = query.execute(&mut session.conn).await {
            return Err(session.target.error("staging deleted keys", e));
        }
        lock.fence(&mut session.conn, &session.target).await?;
        let mut query = sqlx::query(&change);
        if change.contains("$1") {
            query = query.bind(run.started_at_us);
        }
        let changed = match query.execute(&mut session.conn).await {
            Ok(done) => done.rows_affected(),
            Err(e) => return Err(session.target.error("marking deleted keys", e)),
        };
        let record = format!(
            "INSERT INTO {}._elt_reconciliations VALUES ($1::uuid, $2, $3, clock_timestamp(), $4)",
            session.ds
        );
        let recorded = sqlx::query(&record)
            .bind(run.run_id.clone())
            .bind(run.connection.clone())
            .bind(stream.name().to_owned())
            .bind(changed as i64)
            .execute(&mut session.conn)
            .await;
        if let Err(e) = recorded {
            return Err(session.target.error("recording the reconciliation", e));
        }
        session.exec("COMMIT".to_owned(), "committing").await?;
        Ok(changed)
    }
}

/// Succeeded runs of `stream` since its last reconciliation.
pub async fn runs_since_reconcile(session: &mut PgSession, stream: &str) -> Result<u64> {
    let ds = session.ds.clone();
    let sql = format!(
        "SELECT count(*) FROM {ds}._elt_runs WHERE connection = $1 AND stream = $2
         AND status = 'succeeded' AND started_at > coalesce(
           (SELECT max(reconciled_at) FROM {ds}._elt_reconciliations
            WHERE connection = $1 AND stream = $2), '-infinity')"
    );
    let connection = session.connection.clone();
    match sqlx::query_scalar::<_, i64>(&sql)
        .bind(connection)
        .bind(stream.to_owned())
        .fetch_one(&mut session.conn)
        .await
    {
        Ok(n) => Ok(n as u64),
        Err(e) => Err(session
            .target
            .error("counting runs since the last reconciliation", e)),
    }
}

#[async_trait]
impl KeyDigests for PgSession {
    async fn key_digests(
        &mut self,
        stream: &ConfiguredStream,
        ranges: &[KeyRange],
    ) -> Result<Vec<RangeDigest>> {
        let live = LiveKeys::of(self, stream).await?;
        live.digests(self, ranges).await
    }

    async fn keys_in_range(
        &mut self,
        stream: &ConfiguredStream,
        range: &KeyRange,
    ) -> Result<Vec<Key>> {
        let live = LiveKeys::of(self, stream).await?;
        live.keys(self, range).await
    }

    async fn split_range(
        &mut self,
        stream: &ConfiguredStream,
        range: &KeyRange,
        parts: usize,
    ) -> Result<(u64, Vec<Key>)> {
        let live = LiveKeys::of(self, stream).await?;
        live.split(self, range, parts).await
    }

    async fn finish_reconcile(
        &mut self,
        run: &RunInfo,
        stream: &ConfiguredStream,
        deleted: Vec<Key>,
    ) -> Result<u64> {
        let live = LiveKeys::of(self, stream).await?;
        live.finish(self, run, stream, deleted).await
    }

    async fn runs_since_reconcile(&mut self, stream: &ConfiguredStream) -> Result<u64> {
        runs_since_reconcile(self, stream.name()).await
    }
}
