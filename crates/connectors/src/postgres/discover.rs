//! Reading the catalog: tables and views of the configured schemas, their columns (domains
//! resolved to base types), primary keys and cursor candidates.

use elt_core::Result;
use sqlx::Row;
use sqlx::postgres::PgConnection;

use super::config::PostgresConfig;
use super::conn::Target;
use super::types::{Column, TypeInfo, column};

/// A table or view as a stream.
pub type Table = elt_core::sql::Table<Column>;

const COLUMNS_SQL: &str = "
SELECT n.nspname, c.relname, a.attname, NOT a.attnotnull AS nullable,
       format_type(a.atttypid, a.atttypmod) AS sql_type,
       bt.typname AS base_name, bt.typtype::text AS typtype,
       CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END AS typmod,
       et.typname AS element_name
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
LEFT JOIN pg_type et ON et.oid = bt.typelem AND bt.typcategory = 'A'
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND n.nspname = ANY($1)
  AND ($2::text IS NULL OR (n.nspname = $2 AND c.relname = $3))
ORDER BY n.nspname, c.relname, a.attnum";

const KEYS_SQL: &str = "
SELECT n.nspname, c.relname, array_agg(a.attname::text ORDER BY k.ord) AS key
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
WHERE i.indisprimary AND n.nspname = ANY($1)
GROUP BY n.nspname, c.relname";

/// The table a read of `stream` finds now, narrowed to the columns the stream reads (see
/// `Table::found_for`).
pub async fn table_for(
    conn: &mut PgConnection,
    target: &Target,
    config: &PostgresConfig,
    stream: &elt_core::ConfiguredStream,
) -> Result<Table> {
    let (schema, name) = elt_core::sql::stream_parts(stream, "schema")?;
    let found = tables(conn, target, config, Some((schema, name)))
        .await?
        .pop();
    Table::found_for(found, stream)
}

/// The tables of the configured schemas that pass include/exclude; only `schema.table`
/// when `only` is given.
pub async fn tables(
    conn: &mut PgConnection,
    target: &Target,
    config: &PostgresConfig,
    only: Option<(&str, &str)>,
) -> Result<Vec<Table>> {
    let failed = |e| target.error("reading the catalog", e);
    let rows = sqlx::query(COLUMNS_SQL)
        .bind(&config.schemas)
        .bind(only.map(|o| o.0))
        .bind(only.map(|o| o.1))
        .fetch_all(&mut *conn)
        .await
        .map_err(failed)?;
    let keys = sqlx::query(KEYS_SQL)
        .bind(&config.schemas)
        .fetch_all(&mut *conn)
        .await
        .map_err(failed)?;
    let mut tables: Vec<Table> = Vec::new();
    for row in rows {
        let (schema, name): (String, String) = (row.get(0), row.get(1));
        let info = TypeInfo {
            name: row.get(5),
            typtype: row.get(6),
            typmod: row.get(7),
            element: row.get(8),
        };
        let col = column(
            row.get::<String, _>(2).as_str(),
            &info,
            row.get(3),
            row.get::<String, _>(4).as_str(),
        );
        match tables.last_mut() {
            Some(t) if t.schema == schema && t.name == name => t.columns.push(col),
            _ => tables.push(Table {
                schema,
                name,
                columns: vec![col],
                primary_key: Vec::new(),
            }),
        }
    }
    for row in keys {
        let (schema, name, key): (String, String, Vec<String>) =
            (row.get(0), row.get(1), row.get(2));
        if let Some(t) = tables
            .iter_mut()
            .find(|t| t.schema == schema && t.name == name)
        {
            t.primary_key = key;
        }
    }
    tables.retain(|t| {
        elt_core::sql::table_selected(&config.include, &config.exclude, &t.stream_name())
    });
    Ok(tables)
}
