//! Reading one table: binary COPY of a keyset-ordered query inside one REPEATABLE READ,
//! read-only transaction, decoded into batches with a checkpoint after each; or, with
//! `parallelism`, key ranges of that snapshot on several connections (`parallel.rs`).
//!
//! Values from state reach SQL through `set_config` parameters (COPY takes no bind
//! parameters), never through string interpolation.

use std::sync::Arc;

use elt_core::catalog::schema;
use elt_core::sql::mid_read_checkpoint;
use elt_core::{ConfiguredStream, Emitter, Result, StreamState, SyncMode, quote_ident};
use sqlx::postgres::PgConnection;
use sqlx::{Executor, Row};

use super::config::PostgresConfig;
use super::conn::{IdleConnection, Target};
use super::copy::{CopyBatches, CopyDecoder};
use super::discover::{self, Table};
use super::position::{Keyset, last_row_state};
use super::types::{Column, Kind};

mod parallel;
mod ranges;

/// Reads `stream` into `out`.
pub async fn read(
    config: &PostgresConfig,
    idle: &IdleConnection,
    stream: &ConfiguredStream,
    state: Option<StreamState>,
    out: &mut Emitter,
) -> Result<()> {
    let target = Arc::new(super::conn::target(config)?);
    let mut conn = idle.take_or(target.connect()).await?;
    if let Some(note) = target.plaintext_fallback(&mut conn).await? {
        out.note(note);
    }
    let table = discover::table_for(&mut conn, &target, config, stream).await?;
    let mut reader = Reader {
        conn: &mut conn,
        target: &target,
        table: &table,
        stream,
        config,
    };
    reader.begin().await?;
    let result = match parallel::plan(&reader, state.as_ref(), out)? {
        Some((key, ranges)) => reader.copy_parallel(&target, key, ranges, out).await,
        None => reader.copy(state, out).await,
    };
    // Read-only: ending the transaction either way loses nothing.
    let ended = reader.conn.execute("COMMIT").await;
    if result.is_ok() && ended.is_ok() {
        idle.put(conn).await;
    }
    result
}

struct Reader<'a> {
    conn: &'a mut PgConnection,
    target: &'a Target,
    table: &'a Table,
    stream: &'a ConfiguredStream,
    config: &'a PostgresConfig,
}

impl<'a> Reader<'a> {
    async fn begin(&mut self) -> Result<()> {
        self.conn
            .execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await
            .map(drop)
            .map_err(|e| self.target.error("starting a snapshot", e))
    }

    fn keyset(&self) -> Result<Option<Keyset<'a>>> {
        let columns = &self.table.columns;
        Ok(self.table.keyset(self.stream)?.map(|(cursor, key)| Keyset {
            cursor: (cursor, &columns[cursor]),
            key: key.into_iter().map(|i| (i, &columns[i])).collect(),
        }))
    }

    async fn set(&mut self, name: &str, value: &str) -> Result<()> {
        set_parameter(self.conn, self.target, name, value).await
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

    /// The table's name, quoted.
    fn quoted_name(&self) -> String {
        format!(
            "{}.{}",
            quote_ident(&self.table.schema),
            quote_ident(&self.table.name)
        )
    }

    /// The select list of every column the stream reads.
    fn select_list(&self) -> String {
        let select: Vec<_> = self
            .table
            .columns
            .iter()
            .map(|c| c.select.as_str())
            .collect();
        select.join(", ")
    }

    /// A decoder of the table's columns.
    fn decoder(&self) -> CopyDecoder {
        let kinds: Vec<Kind> = self.table.columns.iter().map(|c| c.kind.clone()).collect();
        CopyDecoder::new(schema(self.table.fields()), &kinds)
    }

    /// The highest cursor value of the snapshot, which an incremental read goes up to,
    /// noting rows whose cursor is NULL (not read incrementally). None for an empty table.
    async fn upper(&mut self, ks: &Keyset<'_>, out: &Emitter) -> Result<Option<String>> {
        let (table, c) = (self.quoted_name(), quote_ident(&ks.cursor.1.name));
        let nulls = self
            .scalar(&format!(
                "SELECT count(*)::text FROM {table} WHERE {c} IS NULL"
            ))
            .await?;
        if let Some(n) = nulls.filter(|n| n != "0") {
            out.note(format!(
                "{n} rows have a NULL {c} and are not read incrementally; --full-refresh loads them"
            ));
        }
        self.scalar(&format!("SELECT max({c})::text FROM {table}"))
            .await
    }

    async fn copy(&mut self, state: Option<StreamState>, out: &mut Emitter) -> Result<()> {
        let table = self.quoted_name();
        let keyset = self.keyset()?;
        let incremental = self.stream.sync_mode == SyncMode::Incremental;
        let mut filters = Vec::new();
        let mut order = String::new();
        let mut final_state = None;
        if let Some(ks) = &keyset {
            let (c, cursor_type) = (quote_ident(&ks.cursor.1.name), &ks.cursor.1.sql_type);
            if let Some(window) = self.stream.backfill.clone().filter(|_| incremental) {
                self.set("elt.from", &window.from).await?;
                self.set("elt.to", &window.to).await?;
                filters.push(format!("{c} >= {}", setting("from", cursor_type)));
                let below = if window.window { "<" } else { "<=" };
                filters.push(format!("{c} {below} {}", setting("to", cursor_type)));
            } else if incremental {
                let Some(upper) = self.upper(ks, out).await? else {
                    return Ok(());
                };
                self.set("elt.upper", &upper).await?;
                filters.push(format!("{c} <= {}", setting("upper", cursor_type)));
                if let Some(position) = state.as_ref().filter(|s| s.cursor.is_some()) {
                    filters.push(self.after(ks, position).await?);
                }
            }
            if incremental {
                let key: Vec<_> = ks.key.iter().map(|(_, k)| quote_ident(&k.name)).collect();
                order = format!(
                    " ORDER BY {}",
                    std::iter::once(c.clone())
                        .chain(key)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            } else {
                final_state = self.last_row(ks, false).await?;
            }
        }
        let filter = if filters.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", filters.join(" AND "))
        };
        let sql = format!(
            "COPY (SELECT {} FROM {table}{filter}{order}) TO STDOUT (FORMAT binary)",
            self.select_list()
        );
        tracing::debug!(stream = self.stream.name(), %sql, "reading");
        let keyed = keyset.as_ref().is_some_and(|k| !k.key.is_empty());
        let mut last_position = None;
        let (target, batch_rows) = (self.target, self.config.batch_rows);
        let decoder = self.decoder();
        let what = self.stream.name();
        let mut batches =
            CopyBatches::start(self.conn, target, what, &sql, decoder, batch_rows).await?;
        while let Some((batch, full)) = batches.next().await? {
            if let Some(ks) = keyset.as_ref().filter(|_| incremental) {
                last_position = last_row_state(&batch, ks).or(last_position);
            }
            out.batch(batch).await?;
            let checkpoint = mid_read_checkpoint(incremental, keyed, last_position.as_ref());
            if let (true, Some(state)) = (full, checkpoint) {
                out.checkpoint(state).await?;
            }
        }
        if let Some(state) = last_position.or(final_state) {
            out.checkpoint(state).await?;
        }
        Ok(())
    }

    /// The filter that starts after the saved position (or `lookback_secs` before it).
    async fn after(&mut self, ks: &Keyset<'_>, position: &StreamState) -> Result<String> {
        let cursor = position
            .cursor
            .as_ref()
            .map(elt_core::sql::state_text)
            .unwrap_or_default();
        self.set("elt.cursor", &cursor).await?;
        let (c, ty) = (
            quote_ident(&ks.cursor.1.name),
            ks.cursor.1.sql_type.as_str(),
        );
        let lookback = self.config.lookback_secs;
        if lookback > 0
            && matches!(
                ks.cursor.1.kind,
                Kind::Timestamp | Kind::TimestampTz | Kind::Date
            )
        {
            return Ok(format!(
                "{c} >= {} - make_interval(secs => {lookback})",
                setting("cursor", ty)
            ));
        }
        let keys = position.key.clone().unwrap_or_default();
        if ks.key.is_empty() || keys.len() != ks.key.len() {
            return Ok(format!("{c} > {}", setting("cursor", ty)));
        }
        let mut left = vec![c.clone()];
        let mut right = vec![setting("cursor", ty)];
        for (i, ((_, column), value)) in ks.key.iter().zip(&keys).enumerate() {
            self.set(&format!("elt.key{i}"), &elt_core::sql::state_text(value))
                .await?;
            left.push(quote_ident(&column.name));
            right.push(setting(&format!("key{i}"), &column.sql_type));
        }
        // The first condition lets an index on the cursor alone narrow the scan.
        Ok(format!(
            "{c} >= {} AND ({}) > ({})",
            setting("cursor", ty),
            left.join(", "),
            right.join(", ")
        ))
    }

    /// The keyset position of the last row in the snapshot (with `bounded`, the last up to
    /// the `elt.upper` setting): a full refresh, and a parallel incremental read, ends
    /// there. Read through binary COPY like the rows themselves, so the state has the same
    /// form.
    async fn last_row(&mut self, ks: &Keyset<'_>, bounded: bool) -> Result<Option<StreamState>> {
        let table = self.quoted_name();
        let cursor = quote_ident(&ks.cursor.1.name);
        let upper = if bounded {
            format!(
                " AND {cursor} <= {}",
                setting("upper", &ks.cursor.1.sql_type)
            )
        } else {
            String::new()
        };
        let columns: Vec<&Column> = std::iter::once(ks.cursor.1)
            .chain(ks.key.iter().map(|(_, c)| *c))
            .collect();
        let select: Vec<_> = columns.iter().map(|c| c.select.as_str()).collect();
        let order: Vec<_> = columns
            .iter()
            .map(|c| format!("{} DESC", quote_ident(&c.name)))
            .collect();
        let sql = format!(
            "COPY (SELECT {} FROM {table} WHERE {cursor} IS NOT NULL{upper} ORDER BY {} LIMIT 1) \
             TO STDOUT (FORMAT binary)",
            select.join(", "),
            order.join(", ")
        );
        let schema = elt_core::catalog::schema(
            columns
                .iter()
                .map(|c| c.kind.field(&c.name, true))
                .collect(),
        );
        let kinds: Vec<Kind> = columns.iter().map(|c| c.kind.clone()).collect();
        let decoder = CopyDecoder::new(schema, &kinds);
        let position = Keyset {
            cursor: (0, ks.cursor.1),
            key: ks
                .key
                .iter()
                .enumerate()
                .map(|(i, (_, c))| (i + 1, *c))
                .collect(),
        };
        let what = format!("the last row of {}", self.stream.name());
        let mut batches =
            CopyBatches::start(self.conn, self.target, &what, &sql, decoder, usize::MAX).await?;
        let mut last = None;
        while let Some((batch, _)) = batches.next().await? {
            last = last_row_state(&batch, &position);
        }
        Ok(last)
    }
}

/// A read parameter set with `set_config` (COPY takes no bind parameters), cast to `ty`.
fn setting(name: &str, ty: &str) -> String {
    format!("current_setting('elt.{name}')::{ty}")
}

/// Sets a transaction-local read parameter (`elt.*`) that [`setting`] reads back.
async fn set_parameter(
    conn: &mut PgConnection,
    target: &Target,
    name: &str,
    value: &str,
) -> Result<()> {
    sqlx::query("SELECT set_config($1, $2, true)")
        .bind(name)
        .bind(value)
        .execute(&mut *conn)
        .await
        .map(drop)
        .map_err(|e| target.error("setting a read parameter", e))
}
