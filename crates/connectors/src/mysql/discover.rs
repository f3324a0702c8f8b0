//! Reading the catalog: tables and views of the configured databases from
//! `information_schema`, their columns, primary keys and cursor candidates.
//!
//! MariaDB stores `json` as `longtext` checked by `json_valid(col)`; such columns are
//! recognised by that check and read as JSON.

use elt_core::{Error, Result};
use sqlx::Row;
use sqlx::mysql::{MySql, MySqlArguments, MySqlConnection};
use sqlx::query::Query;

use super::config::MysqlConfig;
use super::conn::Target;
use super::types::Column;

/// A table or view as a stream (`schema` is its database).
pub type Table = elt_core::sql::Table<Column>;

/// The databases to read: the configured ones, else the URL's.
pub fn databases(config: &MysqlConfig, target: &Target) -> Result<Vec<String>> {
    if !config.databases.is_empty() {
        return Ok(config.databases.clone());
    }
    match target.database() {
        Some(db) if !db.is_empty() => Ok(vec![db.to_owned()]),
        _ => Err(Error::config(
            "the `url` names no database and `databases` is empty: add `/database` to the URL or list `databases`",
        )),
    }
}

/// The tables of the configured databases (or only `only`, `(database, table)`) that pass
/// `include`/`exclude`, with their columns and keys.
pub async fn tables(
    conn: &mut MySqlConnection,
    target: &Target,
    config: &MysqlConfig,
    only: Option<(&str, &str)>,
) -> Result<Vec<Table>> {
    let databases = match only {
        Some((db, _)) => vec![db.to_owned()],
        None => databases(config, target)?,
    };
    let in_list = vec!["?"; databases.len()].join(", ");
    let table_filter = if only.is_some() {
        " AND c.TABLE_NAME = ?"
    } else {
        ""
    };
    let columns_sql = format!(
        "SELECT CAST(c.TABLE_SCHEMA AS CHAR), CAST(c.TABLE_NAME AS CHAR), CAST(c.COLUMN_NAME AS CHAR),
                CAST(c.DATA_TYPE AS CHAR), CAST(c.COLUMN_TYPE AS CHAR), c.IS_NULLABLE = 'YES',
                CAST(c.NUMERIC_PRECISION AS UNSIGNED), CAST(c.NUMERIC_SCALE AS UNSIGNED)
         FROM information_schema.COLUMNS c
         JOIN information_schema.TABLES t
           ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME
         WHERE c.TABLE_SCHEMA IN ({in_list}){table_filter}
           AND t.TABLE_TYPE IN ('BASE TABLE', 'VIEW', 'SYSTEM VERSIONED')
         ORDER BY c.TABLE_SCHEMA, c.TABLE_NAME, c.ORDINAL_POSITION"
    );
    let keys_sql = format!(
        "SELECT CAST(TABLE_SCHEMA AS CHAR), CAST(TABLE_NAME AS CHAR), CAST(COLUMN_NAME AS CHAR)
         FROM information_schema.KEY_COLUMN_USAGE
         WHERE CONSTRAINT_NAME = 'PRIMARY' AND TABLE_SCHEMA IN ({in_list})
         ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION"
    );
    let mut column_binds = databases.clone();
    column_binds.extend(only.map(|(_, table)| table.to_owned()));
    let rows = bound(&columns_sql, &column_binds)
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| target.error("reading the catalog", e))?;
    let key_rows = bound(&keys_sql, &databases)
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| target.error("reading primary keys", e))?;
    let json_checks = mariadb_json_columns(conn, target, &databases).await?;

    let mut tables: Vec<Table> = Vec::new();
    for row in rows {
        let (database, name, column): (String, String, String) =
            (row.get(0), row.get(1), row.get(2));
        let data_type: String = row.get(3);
        let is_json = json_checks.contains(&(database.clone(), name.clone(), column.clone()));
        let col = Column::new(
            column,
            if is_json { "json" } else { &data_type },
            row.get(4),
            row.get::<i64, _>(5) != 0,
            row.get(6),
            row.get(7),
        );
        match tables.last_mut() {
            Some(t) if t.schema == database && t.name == name => t.columns.push(col),
            _ => tables.push(Table {
                schema: database,
                name,
                columns: vec![col],
                primary_key: Vec::new(),
            }),
        }
    }
    for row in key_rows {
        let (database, name, column): (String, String, String) =
            (row.get(0), row.get(1), row.get(2));
        if let Some(t) = tables
            .iter_mut()
            .find(|t| t.schema == database && t.name == name)
        {
            t.primary_key.push(column);
        }
    }
    tables.retain(|t| {
        elt_core::sql::table_selected(&config.include, &config.exclude, &t.stream_name())
    });
    Ok(tables)
}

/// `(database, table, column)` of MariaDB's JSON columns: `longtext` with a
/// `json_valid(col)` check. Empty on MySQL, whose JSON is a type of its own.
async fn mariadb_json_columns(
    conn: &mut MySqlConnection,
    target: &Target,
    databases: &[String],
) -> Result<Vec<(String, String, String)>> {
    let version: String = sqlx::query_scalar("SELECT CAST(VERSION() AS CHAR)")
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| target.error("reading the server version", e))?;
    if !version.contains("MariaDB") {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT CAST(CONSTRAINT_SCHEMA AS CHAR), CAST(TABLE_NAME AS CHAR), CAST(CHECK_CLAUSE AS CHAR)
         FROM information_schema.CHECK_CONSTRAINTS
         WHERE CONSTRAINT_SCHEMA IN ({}) AND CHECK_CLAUSE LIKE 'json_valid(%'",
        vec!["?"; databases.len()].join(", ")
    );
    let rows = bound(&sql, databases)
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| target.error("reading JSON checks", e))?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let clause: String = row.get(2);
            let column = clause.strip_prefix("json_valid(")?.strip_suffix(')')?;
            let column = column
                .strip_prefix('`')?
                .strip_suffix('`')?
                .replace("``", "`");
            Some((row.get(0), row.get(1), column))
        })
        .collect())
}

/// `sql` with `values` bound to its placeholders in order.
fn bound<'q>(sql: &'q str, values: &[String]) -> Query<'q, MySql, MySqlArguments> {
    values
        .iter()
        .fold(sqlx::query(sql), |query, value| query.bind(value.clone()))
}
