//! Answers a reconciliation's questions about a table's primary keys (see
//! `elt_core::reconcile`), as the `postgres` source's `keys.rs` does: the digest of each
//! key range (a count and a sum per range; no row data leaves the server), and the keys in
//! one range. Rows the stream's soft-delete column marks deleted are left out.
//!
//! Ranges are in the order the destinations use: integers and dates compare natively (the
//! primary-key index serves them), text and UUIDs compare as their UTF-8 bytes
//! (`CAST(... AS BINARY)`: no collation, no pad space, and not MariaDB's own UUID order).

use elt_core::reconcile::{Key, KeyRange, RangeDigest};
use elt_core::{ConfiguredStream, Error, Result};
use sqlx::Row;
use sqlx::mysql::{MySqlConnection, MySqlRow};

use super::config::MysqlConfig;
use super::conn::{IdleConnection, Target};
use super::discover;
use super::types::{Column, Kind, qualified};

/// A key column as the range SQL sees it.
struct KeyColumn {
    /// The expression ranges compare.
    ordered: String,
    /// The cast a bound key text goes through to compare with `ordered`.
    param: String,
    /// The column as text, as the destinations cast it.
    text: String,
}

impl KeyColumn {
    fn of(column: &Column) -> Self {
        let quoted = column.quoted();
        let text = format!("CAST({quoted} AS CHAR CHARACTER SET utf8mb4)");
        let (ordered, param) = match column.kind {
            Kind::Int { .. } | Kind::Year | Kind::Date => (quoted, column.kind.param()),
            _ => (
                format!("CAST({text} AS BINARY)"),
                "CAST(? AS BINARY)".to_owned(),
            ),
        };
        Self {
            ordered,
            param,
            text,
        }
    }
}

/// The table, key columns and live-row filter of a stream.
struct KeyedTable {
    table: String,
    columns: Vec<KeyColumn>,
    live: String,
}

async fn keyed_table(
    conn: &mut MySqlConnection,
    target: &Target,
    config: &MysqlConfig,
    stream: &ConfiguredStream,
) -> Result<KeyedTable> {
    let (database, name) = stream.name().split_once('.').ok_or_else(|| {
        Error::config(format!(
            "stream {} is not named database.table",
            stream.name()
        ))
    })?;
    let table = discover::tables(conn, target, config, Some((database, name)))
        .await?
        .pop()
        .ok_or_else(|| {
            Error::permanent(format!("table {database}.{name} does not exist (any more)"))
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
        .map(|k| column(k).map(KeyColumn::of))
        .collect::<Result<Vec<_>>>()?;
    let live = match &stream.deletes.soft_delete_column {
        None => "TRUE".to_owned(),
        Some(marker) => {
            let marker = column(marker)?;
            match marker.kind {
                Kind::Bool => format!("NOT COALESCE({}, 0)", marker.quoted()),
                _ => format!("{} IS NULL", marker.quoted()),
            }
        }
    };
    Ok(KeyedTable {
        table: qualified(database, name),
        columns,
        live,
    })
}

impl KeyedTable {
    /// `(k1, k2, …) OP (CAST(? AS t1), …)`.
    fn compare(&self, op: &str) -> String {
        let left: Vec<&str> = self.columns.iter().map(|c| c.ordered.as_str()).collect();
        let right: Vec<&str> = self.columns.iter().map(|c| c.param.as_str()).collect();
        format!("({}) {op} ({})", left.join(", "), right.join(", "))
    }

    /// Runs `SELECT {list}` over the live rows of `range`.
    async fn select(
        &self,
        conn: &mut MySqlConnection,
        target: &Target,
        list: &str,
        range: &KeyRange,
        doing: &'static str,
    ) -> Result<Vec<MySqlRow>> {
        let mut conditions = vec![self.live.clone()];
        let mut params: Vec<&String> = Vec::new();
        for (bound, op) in [(&range.from, ">="), (&range.to, "<")] {
            if let Some(key) = bound {
                conditions.push(self.compare(op));
                params.extend(key);
            }
        }
        let sql = format!(
            "SELECT {list} FROM {} WHERE {}",
            self.table,
            conditions.join(" AND ")
        );
        let mut query = sqlx::query(&sql);
        for p in params {
            query = query.bind(p);
        }
        query
            .fetch_all(conn)
            .await
            .map_err(|e| target.error(doing, e))
    }

    /// The key count and the sum of the first 60 bits of each key text's MD5, as text.
    fn digest_list(&self) -> String {
        let texts: Vec<&str> = self.columns.iter().map(|c| c.text.as_str()).collect();
        let hash = format!(
            "CAST(CONV(LEFT(MD5(CONCAT_WS(CHAR(31), {})), 15), 16, 10) AS UNSIGNED)",
            texts.join(", ")
        );
        format!("COUNT(*), CAST(COALESCE(SUM({hash}), 0) AS CHAR)")
    }
}

/// The digest of each range.
pub async fn digests(
    config: &MysqlConfig,
    idle: &IdleConnection,
    stream: &ConfiguredStream,
    ranges: &[KeyRange],
) -> Result<Vec<RangeDigest>> {
    let target = Target::new(config)?;
    let mut conn = idle.take_or(target.connect()).await?;
    let keyed = keyed_table(&mut conn, &target, config, stream).await?;
    let list = keyed.digest_list();
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
    config: &MysqlConfig,
    idle: &IdleConnection,
    stream: &ConfiguredStream,
    range: &KeyRange,
) -> Result<Vec<Key>> {
    let target = Target::new(config)?;
    let mut conn = idle.take_or(target.connect()).await?;
    let keyed = keyed_table(&mut conn, &target, config, stream).await?;
    let texts: Vec<&str> = keyed.columns.iter().map(|c| c.text.as_str()).collect();
    let rows = keyed
        .select(
            &mut conn,
            &target,
            &texts.join(", "),
            range,
            "reading the keys of a range",
        )
        .await?;
    idle.put(conn).await;
    Ok(rows
        .iter()
        .map(|row| (0..texts.len()).map(|i| row.get::<String, _>(i)).collect())
        .collect())
}
