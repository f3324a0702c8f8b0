//! Reading one table: a keyset-ordered SELECT inside one consistent-snapshot, read-only
//! transaction, streamed row by row into batches with a checkpoint after each.
//!
//! Every value from state or from a backfill window is checked (`params.rs`), bound as text
//! and cast by MySQL to the column's type (`CAST(? AS DATETIME(6))`); nothing is
//! interpolated into SQL but quoted identifiers and integers from the validated config.

use elt_core::batch::{FlushPolicy, RowBatcher};
use elt_core::catalog::schema;
use elt_core::sql::{last_row_position, mid_read_checkpoint, state_text};
use elt_core::{ConfiguredStream, Emitter, Result, StreamState, SyncMode};
use futures_util::TryStreamExt;
use sqlx::mysql::MySqlConnection;
use sqlx::{Executor, Row};

use super::config::MysqlConfig;
use super::conn::{IdleConnection, Target};
use super::discover::{self, Table};
use super::params::{Filter, param};
use super::types::{Column, qualified};
use super::values::append_row;

/// Reads `stream` into `out`.
pub async fn read(
    config: &MysqlConfig,
    idle: &IdleConnection,
    stream: &ConfiguredStream,
    state: Option<StreamState>,
    out: &mut Emitter,
) -> Result<()> {
    let target = Target::new(config)?;
    let mut conn = idle.take_or(target.connect()).await?;
    if let Some(note) = target.plaintext_fallback(&mut conn).await? {
        out.note(note);
    }
    let (database, name) = elt_core::sql::stream_parts(stream, "database")?;
    let found = discover::tables(&mut conn, &target, config, Some((database, name)))
        .await?
        .pop();
    let table = Table::found_for(found, stream)?;
    conn.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        .await
        .map_err(|e| target.error("starting a snapshot", e))?;
    let mut reader = Reader {
        conn: &mut conn,
        target: &target,
        table: &table,
        stream,
        config,
    };
    let result = reader.select(state, out).await;
    // Read-only: ending the transaction either way loses nothing.
    let ended = conn.execute("COMMIT").await;
    if result.is_ok() && ended.is_ok() {
        idle.put(conn).await;
    }
    result
}

/// The keyset of an ordered read: indexes of the cursor and key columns.
struct Keyset {
    cursor: usize,
    key: Vec<usize>,
}

struct Reader<'a> {
    conn: &'a mut MySqlConnection,
    target: &'a Target,
    table: &'a Table,
    stream: &'a ConfiguredStream,
    config: &'a MysqlConfig,
}

impl Reader<'_> {
    fn column(&self, index: usize) -> &Column {
        &self.table.columns[index]
    }

    fn keyset(&self) -> Result<Option<Keyset>> {
        Ok(self
            .table
            .keyset(self.stream)?
            .map(|(cursor, key)| Keyset { cursor, key }))
    }

    async fn scalar(&mut self, sql: &str) -> Result<Option<String>> {
        sqlx::query(sql)
            .fetch_optional(&mut *self.conn)
            .await
            .map(|row| row.and_then(|r| r.get::<Option<String>, _>(0)))
            .map_err(|e| {
                self.target
                    .error("reading the bounds", e)
                    .in_stream(self.stream.name())
            })
    }

    async fn select(&mut self, state: Option<StreamState>, out: &mut Emitter) -> Result<()> {
        let table = qualified(&self.table.schema, &self.table.name);
        let keyset = self.keyset()?;
        let incremental = self.stream.sync_mode == SyncMode::Incremental;
        let mut filter = Filter::default();
        let mut order = String::new();
        let mut final_state = None;
        if let Some(ks) = &keyset {
            let cursor = self.column(ks.cursor).clone();
            let c = cursor.quoted();
            if let Some(window) = self.stream.backfill.clone().filter(|_| incremental) {
                filter.push(
                    format!("{c} >= {}", cursor.kind.param()),
                    param(&cursor, &window.from, "`--backfill-from`")?,
                );
                let below = if window.window { "<" } else { "<=" };
                filter.push(
                    format!("{c} {below} {}", cursor.kind.param()),
                    param(&cursor, &window.to, "`--backfill-to`")?,
                );
            } else if incremental {
                let nulls = self
                    .scalar(&format!(
                        "SELECT CAST(count(*) AS CHAR) FROM {table} WHERE {c} IS NULL"
                    ))
                    .await?;
                if let Some(n) = nulls.filter(|n| n != "0") {
                    out.note(format!("{n} rows have a NULL {c} and are not read incrementally; --full-refresh loads them"));
                }
                let Some(upper) = self
                    .scalar(&format!("SELECT CAST(max({c}) AS CHAR) FROM {table}"))
                    .await?
                else {
                    return Ok(());
                };
                filter.push(format!("{c} <= {}", cursor.kind.param()), upper);
                if let Some(position) = state.as_ref().filter(|s| s.cursor.is_some()) {
                    self.after(ks, position, &mut filter)?;
                }
            }
            if incremental {
                let order_by: Vec<String> = std::iter::once(ks.cursor)
                    .chain(ks.key.iter().copied())
                    .map(|i| self.column(i).quoted())
                    .collect();
                order = format!(" ORDER BY {}", order_by.join(", "));
            } else {
                final_state = self.last_row(&table, ks).await?;
            }
        }
        let select: Vec<&str> = self
            .table
            .columns
            .iter()
            .map(|c| c.select.as_str())
            .collect();
        let sql = format!(
            "SELECT {} FROM {table}{}{order}",
            select.join(", "),
            filter.sql()
        );
        tracing::debug!(stream = self.stream.name(), %sql, "reading");
        let keyed = keyset.as_ref().is_some_and(|k| !k.key.is_empty());
        let position = keyset.as_ref().filter(|_| incremental);
        let batch_rows = self.config.batch_rows;
        let mut rows = RowBatcher::new(schema(self.table.fields()), FlushPolicy::rows(batch_rows));
        let mut zero_dates = vec![0_u64; self.table.columns.len()];
        let mut last_position = None;
        let (target, name) = (self.target, self.stream.name().to_owned());
        let mut query = sqlx::query(&sql);
        for value in &filter.binds {
            query = query.bind(value.as_str());
        }
        let mut fetched = query.fetch(&mut *self.conn);
        loop {
            let row = fetched
                .try_next()
                .await
                .map_err(|e| target.error("reading", e).in_stream(&name))?;
            let batch = match &row {
                Some(row) => {
                    append_row(row, &self.table.columns, &mut rows, &mut zero_dates)?;
                    rows.end_row()?
                }
                None => rows.flush()?,
            };
            if let Some(batch) = batch {
                // Mid-stream batches end where a resumed read can start.
                let mid_stream = row.is_some();
                if let Some(ks) = position {
                    last_position = last_row_position(&batch, ks.cursor, &ks.key).or(last_position);
                }
                out.batch(batch).await?;
                let checkpoint = mid_read_checkpoint(incremental, keyed, last_position.as_ref());
                if let (true, Some(state)) = (mid_stream, checkpoint) {
                    out.checkpoint(state).await?;
                }
            }
            if row.is_none() {
                break;
            }
        }
        drop(fetched);
        for (column, n) in self
            .table
            .columns
            .iter()
            .zip(zero_dates)
            .filter(|(_, n)| *n > 0)
        {
            out.note(format!(
                "{n} rows have a zero date in {} ('0000-00-00' and similar, which no calendar has); they were loaded as NULL",
                column.name
            ));
        }
        if let Some(state) = last_position.or(final_state) {
            out.checkpoint(state).await?;
        }
        Ok(())
    }

    /// Adds the conditions that start after the saved position (or `lookback_secs` before
    /// it).
    fn after(&self, ks: &Keyset, position: &StreamState, filter: &mut Filter) -> Result<()> {
        let cursor = self.column(ks.cursor);
        let c = cursor.quoted();
        let saved = position.cursor.as_ref().map(state_text).unwrap_or_default();
        let saved = param(cursor, &saved, "the saved cursor")?;
        let lookback = self.config.lookback_secs;
        if lookback > 0 && cursor.kind.is_temporal() {
            filter.push(
                format!(
                    "{c} >= {} - INTERVAL {lookback} SECOND",
                    cursor.kind.param()
                ),
                saved,
            );
            return Ok(());
        }
        let keys = position.key.clone().unwrap_or_default();
        if ks.key.is_empty() || keys.len() != ks.key.len() {
            filter.push(format!("{c} > {}", cursor.kind.param()), saved);
            return Ok(());
        }
        // The first condition lets an index on the cursor alone narrow the scan.
        filter.push(format!("{c} >= {}", cursor.kind.param()), saved.clone());
        let mut left = vec![c];
        let mut right = vec![cursor.kind.param()];
        let mut binds = vec![saved];
        for (i, value) in ks.key.iter().zip(&keys) {
            let column = self.column(*i);
            left.push(column.quoted());
            right.push(column.kind.param());
            binds.push(param(column, &state_text(value), "the saved key")?);
        }
        filter
            .conditions
            .push(format!("({}) > ({})", left.join(", "), right.join(", ")));
        filter.binds.extend(binds);
        Ok(())
    }

    /// The keyset position of the last row in the snapshot: a full refresh ends there.
    async fn last_row(&mut self, table: &str, ks: &Keyset) -> Result<Option<StreamState>> {
        let columns: Vec<Column> = std::iter::once(ks.cursor)
            .chain(ks.key.iter().copied())
            .map(|i| self.column(i).clone())
            .collect();
        let select: Vec<&str> = columns.iter().map(|c| c.select.as_str()).collect();
        let order: Vec<String> = columns
            .iter()
            .map(|c| format!("{} DESC", c.quoted()))
            .collect();
        let sql = format!(
            "SELECT {} FROM {table} WHERE {} IS NOT NULL ORDER BY {} LIMIT 1",
            select.join(", "),
            columns[0].quoted(),
            order.join(", ")
        );
        let row = sqlx::query(&sql)
            .fetch_optional(&mut *self.conn)
            .await
            .map_err(|e| self.target.error("reading the last row", e))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let schema = elt_core::catalog::schema(
            columns
                .iter()
                .map(|c| c.kind.field(&c.name, true))
                .collect(),
        );
        let mut rows = RowBatcher::new(schema, FlushPolicy::rows(1));
        append_row(&row, &columns, &mut rows, &mut vec![0; columns.len()])?;
        let key: Vec<usize> = (1..columns.len()).collect();
        Ok(rows
            .end_row()?
            .and_then(|batch| last_row_position(&batch, 0, &key)))
    }
}
