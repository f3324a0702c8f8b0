//! A reconciliation's questions about a raw table's live keys (see `elt_core::reconcile`):
//! range digests, the keys of a range, cut points that split a range evenly, and marking
//! the keys the source no longer has as deleted. Live rows: merge rows without
//! `_elt_deleted_at`, history's current versions; other write modes are refused.

use async_trait::async_trait;
use duckdb::{Connection, params, params_from_iter};
use elt_core::capability::KeyDigests;
use elt_core::changes::{DELETED_AT, IS_CURRENT, VALID_TO};
use elt_core::reconcile::{Key, KeyRange, RangeDigest, SPLIT_SAMPLE, cut_points, live_rows};
use elt_core::{ConfiguredStream, OnDelete, Result, RunInfo, WriteMode, quote_ident};

use super::db::{db_error, in_transaction};
use super::key_ranges::{KeyColumn, digest_list, range_sql};
use super::session::DuckDbSession;

/// The raw table of a stream, its key columns and its live-row filter.
pub struct LiveKeys {
    table: String,
    columns: Vec<KeyColumn>,
    live: &'static str,
}

impl LiveKeys {
    /// Reads the key columns' types from the catalog.
    pub fn of(conn: &Connection, dataset: &str, stream: &ConfiguredStream) -> Result<Self> {
        let live = live_rows(stream)?;
        let columns = stream
            .primary_key
            .iter()
            .map(|k| {
                let sql_type: String = conn
                    .query_row(
                        "SELECT data_type FROM duckdb_columns()
                         WHERE schema_name = ? AND table_name = ? AND column_name = ?",
                        params![dataset, stream.table, k],
                        |r| r.get(0),
                    )
                    .map_err(|e| db_error("reading the key columns", e))?;
                Ok(KeyColumn {
                    quoted: quote_ident(k),
                    sql_type,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            table: format!("{}.{}", quote_ident(dataset), quote_ident(&stream.table)),
            columns,
            live,
        })
    }

    /// The digest of each range.
    pub fn digests(&self, conn: &Connection, ranges: &[KeyRange]) -> Result<Vec<RangeDigest>> {
        ranges
            .iter()
            .map(|range| {
                let (predicate, params) = range_sql(&self.columns, range, 1);
                let sql = format!(
                    "SELECT {} FROM {} WHERE {} AND {}",
                    digest_list(&self.columns),
                    self.table,
                    self.live,
                    predicate
                );
                conn.query_row(&sql, params_from_iter(&params), |r| {
                    Ok(RangeDigest {
                        keys: r.get::<_, i64>(0)? as u64,
                        hash: r.get(1)?,
                    })
                })
                .map_err(|e| db_error("digesting a key range", e))
            })
            .collect()
    }

    /// The live keys of `range`, all of them or a random `sample` in key order.
    fn select_keys(
        &self,
        conn: &Connection,
        range: &KeyRange,
        sample: Option<usize>,
    ) -> Result<Vec<Key>> {
        let (predicate, params) = range_sql(&self.columns, range, 1);
        let quoted: Vec<&str> = self.columns.iter().map(|c| c.quoted.as_str()).collect();
        let texts: Vec<String> = quoted
            .iter()
            .map(|q| format!("CAST({q} AS VARCHAR)"))
            .collect();
        let rows = format!(
            "SELECT {} FROM {} WHERE {} AND {}",
            quoted.join(", "),
            self.table,
            self.live,
            predicate
        );
        let sql = match sample {
            None => format!("SELECT {} FROM ({rows})", texts.join(", ")),
            Some(n) => format!(
                "SELECT {} FROM ({rows}) USING SAMPLE reservoir({n} ROWS) ORDER BY {}",
                texts.join(", "),
                quoted.join(", ")
            ),
        };
        let mut statement = conn
            .prepare(&sql)
            .map_err(|e| db_error("reading keys", e))?;
        let width = self.columns.len();
        let rows = statement
            .query_map(params_from_iter(&params), |r| {
                (0..width)
                    .map(|i| r.get::<_, String>(i))
                    .collect::<duckdb::Result<Key>>()
            })
            .map_err(|e| db_error("reading keys", e))?;
        rows.collect::<duckdb::Result<_>>()
            .map_err(|e| db_error("reading keys", e))
    }

    /// The live keys in `range`.
    pub fn keys(&self, conn: &Connection, range: &KeyRange) -> Result<Vec<Key>> {
        self.select_keys(conn, range, None)
    }

    /// The live key count of `range` and keys that cut it into about `parts` even ranges
    /// (from a sample of its keys).
    pub fn split(
        &self,
        conn: &Connection,
        range: &KeyRange,
        parts: usize,
    ) -> Result<(u64, Vec<Key>)> {
        let (predicate, params) = range_sql(&self.columns, range, 1);
        let count: i64 = conn
            .query_row(
                &format!(
                    "SELECT count(*) FROM {} WHERE {} AND {}",
                    self.table, self.live, predicate
                ),
                params_from_iter(&params),
                |r| r.get(0),
            )
            .map_err(|e| db_error("counting keys", e))?;
        if count <= 1 || parts <= 1 {
            return Ok((count as u64, Vec::new()));
        }
        let sample = self.select_keys(conn, range, Some(SPLIT_SAMPLE))?;
        Ok((count as u64, cut_points(sample, parts)))
    }

    /// Marks `deleted` as deleted (see `DestinationSession::finish_reconcile`) and records
    /// the reconciliation, in one transaction.
    pub fn finish(
        &self,
        conn: &Connection,
        dataset: &str,
        run: &RunInfo,
        stream: &ConfiguredStream,
        deleted: &[Key],
    ) -> Result<u64> {
        let names: Vec<String> = (0..self.columns.len()).map(|i| format!("k{i}")).collect();
        let definitions: Vec<String> = names.iter().map(|n| format!("{n} VARCHAR")).collect();
        let same: Vec<String> = self
            .columns
            .iter()
            .zip(&names)
            .map(|(c, n)| format!("t.{} = CAST(d.{n} AS {})", c.quoted, c.sql_type))
            .collect();
        let (table, same) = (&self.table, same.join(" AND "));
        let now = "make_timestamp($1::BIGINT)::TIMESTAMPTZ";
        let change = match (stream.write_mode, stream.deletes.on_delete) {
            (WriteMode::History, _) => format!(
                "UPDATE {table} AS t SET {VALID_TO} = {now}, {IS_CURRENT} = false
                 FROM temp.main._elt_deleted_keys AS d WHERE {same} AND t.{IS_CURRENT}"
            ),
            (_, OnDelete::Remove) => format!(
                "DELETE FROM {table} AS t USING temp.main._elt_deleted_keys AS d
                 WHERE {same} AND t.{DELETED_AT} IS NULL"
            ),
            (_, OnDelete::Mark) => format!(
                "UPDATE {table} AS t SET {DELETED_AT} = {now}
                 FROM temp.main._elt_deleted_keys AS d WHERE {same} AND t.{DELETED_AT} IS NULL"
            ),
        };
        conn.execute_batch(&format!(
            "CREATE OR REPLACE TEMP TABLE _elt_deleted_keys ({})",
            definitions.join(", ")
        ))
        .map_err(|e| db_error("staging deleted keys", e))?;
        in_transaction(conn, "marking deleted keys", || {
            let marks = vec!["?"; names.len()].join(", ");
            let mut insert = conn.prepare(&format!(
                "INSERT INTO temp.main._elt_deleted_keys VALUES ({marks})"
            ))?;
            for key in deleted {
                insert.execute(params_from_iter(key))?;
            }
            let changed = if change.contains("$1") {
                conn.execute(&change, params![run.started_at_us])?
            } else {
                conn.execute(&change, [])?
            };
            conn.execute(
                &format!(
                    "INSERT INTO {}._elt_reconciliations VALUES (?::UUID, ?, ?, now(), ?)",
                    quote_ident(dataset)
                ),
                params![run.run_id, run.connection, stream.name(), changed as i64],
            )?;
            Ok(changed as u64)
        })
    }
}

/// Succeeded runs of `stream` since its last reconciliation.
pub fn runs_since_reconcile(
    conn: &Connection,
    dataset: &str,
    connection: &str,
    stream: &str,
) -> Result<u64> {
    let ds = quote_ident(dataset);
    conn.query_row(
        &format!(
            "SELECT count(*) FROM {ds}._elt_runs WHERE connection = $1 AND stream = $2
             AND status = 'succeeded' AND started_at > coalesce(
               (SELECT max(reconciled_at) FROM {ds}._elt_reconciliations
                WHERE connection = $1 AND stream = $2), '-infinity'::TIMESTAMPTZ)"
        ),
        params![connection, stream],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n as u64)
    .map_err(|e| db_error("counting runs since the last reconciliation", e))
}

#[async_trait]
impl KeyDigests for DuckDbSession {
    async fn key_digests(
        &mut self,
        stream: &ConfiguredStream,
        ranges: &[KeyRange],
    ) -> Result<Vec<RangeDigest>> {
        let (dataset, stream, ranges) = (self.dataset.clone(), stream.clone(), ranges.to_vec());
        self.with_conn(move |conn| LiveKeys::of(conn, &dataset, &stream)?.digests(conn, &ranges))
            .await
    }

    async fn keys_in_range(
        &mut self,
        stream: &ConfiguredStream,
        range: &KeyRange,
    ) -> Result<Vec<Key>> {
        let (dataset, stream, range) = (self.dataset.clone(), stream.clone(), range.clone());
        self.with_conn(move |conn| LiveKeys::of(conn, &dataset, &stream)?.keys(conn, &range))
            .await
    }

    async fn split_range(
        &mut self,
        stream: &ConfiguredStream,
        range: &KeyRange,
        parts: usize,
    ) -> Result<(u64, Vec<Key>)> {
        let (dataset, stream, range) = (self.dataset.clone(), stream.clone(), range.clone());
        self.with_conn(move |conn| {
            LiveKeys::of(conn, &dataset, &stream)?.split(conn, &range, parts)
        })
        .await
    }

    async fn finish_reconcile(
        &mut self,
        run: &RunInfo,
        stream: &ConfiguredStream,
        deleted: Vec<Key>,
    ) -> Result<u64> {
        let (dataset, stream, run) = (self.dataset.clone(), stream.clone(), run.clone());
        self.with_conn(move |conn| {
            LiveKeys::of(conn, &dataset, &stream)?.finish(conn, &dataset, &run, &stream, &deleted)
        })
        .await
    }

    async fn runs_since_reconcile(&mut self, stream: &ConfiguredStream) -> Result<u64> {
        let (dataset, connection, name) = (
            self.dataset.clone(),
            self.connection.clone(),
            stream.name().to_owned(),
        );
        self.with_conn(move |conn| runs_since_reconcile(conn, &dataset, &connection, &name))
            .await
    }
}
