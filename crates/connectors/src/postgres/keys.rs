//! Answers a reconciliation's questions about a table's primary keys (see
//! `elt_core::reconcile`): the digest of each key range, and the keys in one range. Each
//! range is one query the primary-key index can serve; no row data leaves the server, only
//! a count and a sum per range, or the keys of a small range. Rows the stream's soft-delete
//! column marks deleted are left out, as the destination leaves them out of its live rows.

use elt_core::reconcile::{Key, KeyRange, RangeDigest};
use elt_core::{ConfiguredStream, Error, Result, quote_ident};
use elt_postgres::key_ranges::{KeyColumn, digest_list, range_sql};
use sqlx::Row;
use sqlx::postgres::{PgConnection, PgRow};

use super::config::PostgresConfig;
use super::conn::{IdleConnection, Target, target};
use super::discover;
use super::types::Kind;

/// The table, key columns and live-row filter of a stream.
struct KeyedTable {
    table: String,
    columns: Vec<KeyColumn>,
    live: String,
}

async fn keyed_table(
    conn: &mut PgConnection,
    config: &PostgresConfig,
    stream: &ConfiguredStream,
) -> Result<KeyedTable> {
    let target = target(config)?;
    let (schema, name) = stream.name().split_once('.').ok_or_else(|| {
        Error::config(format!(
            "stream {} is not named schema.table",
            stream.name()
        ))
    })?;
    let table = discover::tables(conn, &target, config, Some((schema, name)))
        .await?
        .pop()
        .ok_or_else(|| {
            Error::permanent(format!("table {schema}.{name} does not exist (any more)"))
        })?;
    let column = |name: &str| {
        table
            .columns
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| {
                Error::config(format!(
                    "stream {}: column {name} is not in the table",
                    stream.name()
                ))
            })
    };
    let columns = stream
        .primary_key
        .iter()
        .map(|k| {
            let c = column(k)?;
            Ok(KeyColumn {
                quoted: quote_ident(k),
                sql_type: c.sql_type.clone(),
                is_text: matches!(c.kind, Kind::Text),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let live = match &stream.deletes.soft_delete_column {
        None => "true".to_owned(),
        Some(marker) if matches!(column(marker)?.kind, Kind::Bool) => {
            format!("NOT coalesce({}, false)", quote_ident(marker))
        }
        Some(marker) => format!("{} IS NULL", quote_ident(marker)),
    };
    Ok(KeyedTable {
        table: format!("{}.{}", quote_ident(schema), quote_ident(name)),
        columns,
        live,
    })
}

impl KeyedTable {
    /// Runs `SELECT {list}` over the live rows of `range`.
    async fn select(
        &self,
        conn: &mut PgConnection,
        target: &Target,
        list: &str,
        range: &KeyRange,
        doing: &'static str,
    ) -> Result<Vec<PgRow>> {
        let range = range_sql(&self.columns, range, 1);
        let sql = format!(
            "SELECT {list} FROM {} WHERE {} AND {}",
            self.table, self.live, range.predicate
        );
        let mut query = sqlx::query(&sql);
        for p in &range.params {
            query = query.bind(p);
        }
        query
            .fetch_all(conn)
            .await
            .map_err(|e| target.error(doing, e))
    }
}

/// The digest of each range.
pub async fn digests(
    config: &PostgresConfig,
    idle: &IdleConnection,
    stream: &ConfiguredStream,
    ranges: &[KeyRange],
) -> Result<Vec<RangeDigest>> {
    let target = target(config)?;
    let mut conn = idle.take_or(target.connect()).await?;
    let keyed = keyed_table(&mut conn, config, stream).await?;
    let list = digest_list(&keyed.columns);
    let mut out = Vec::with_capacity(ranges.len());
    for range in ranges {
        let rows = keyed
            .select(&mut conn, &target, &list, range, "digesting a key range")
            .await?;
        out.push(RangeDigest {
            keys: rows[0].get::<i64, _>(0) as u64,
            hash: rows[0].get(1),
        });
    }
    idle.put(conn).await;
    Ok(out)
}

/// The keys in `range`.
pub async fn keys(
    config: &PostgresConfig,
    idle: &IdleConnection,
    stream: &ConfiguredStream,
    range: &KeyRange,
) -> Result<Vec<Key>> {
    let target = target(config)?;
    let mut conn = idle.take_or(target.connect()).await?;
    let keyed = keyed_table(&mut conn, config, stream).await?;
    let texts: Vec<String> = keyed
        .columns
        .iter()
        .map(|c| format!("CAST({} AS VARCHAR)", c.quoted))
        .collect();
    let list = format!("ARRAY[{}]", texts.join(", "));
    let rows = keyed
        .select(
            &mut conn,
            &target,
            &list,
            range,
            "reading the keys of a range",
        )
        .await?;
    idle.put(conn).await;
    Ok(rows.iter().map(|r| r.get::<Vec<String>, _>(0)).collect())
}
