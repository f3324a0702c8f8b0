//! DDL and catalog questions about raw tables: column lists, schema evolution and its dry
//! run (`changes`), emptiness and primary-key checks. No loading happens here.

use std::collections::HashMap;

use duckdb::{Connection, params};
use elt_core::arrow::datatypes::SchemaRef;
use elt_core::changes::{MetaKind, VALID_FROM, meta_columns};
use elt_core::{Error, Result, SchemaChange, WriteMode, quote_ident};

use super::db::db_error;
use super::types::{Use, column_type};
use crate::keyed::check_history_layout;
use crate::widen::widens;

/// `name TYPE [NOT NULL]` of each metadata column a raw table of `mode` carries.
pub fn meta_definitions(mode: WriteMode) -> Vec<String> {
    meta_columns(mode)
        .into_iter()
        .map(|c| {
            let ty = match c.kind {
                MetaKind::Timestamp => "TIMESTAMPTZ",
                MetaKind::Uuid => "UUID",
                MetaKind::Boolean => "BOOLEAN",
                MetaKind::Text => "VARCHAR",
            };
            let not_null = if c.nullable { "" } else { " NOT NULL" };
            format!("{} {ty}{not_null}", c.name)
        })
        .collect()
}

/// Whether a table has no row.
pub fn is_empty(conn: &Connection, table: &str) -> Result<bool> {
    conn.query_row(
        &format!("SELECT count(*) = 0 FROM (SELECT 1 FROM {table} LIMIT 1)"),
        [],
        |r| r.get(0),
    )
    .map_err(|e| db_error("checking whether the table is empty", e))
}

/// For a table that held no repeated or NULL key before the rows from row id `from` on
/// were appended: the appended rows with a NULL in the key, and the rows whose key repeats
/// (among the appended ones, or between them and the earlier ones). The work is a pass over
/// the appended rows and a semi-join of the earlier ones against them, instead of a
/// distinct count over the whole table: at every commit of a large first load, that count
/// made the checks grow with the square of the rows.
pub fn appended_key_counts(
    conn: &Connection,
    table: &str,
    key: &[String],
    from: i64,
) -> Result<(i64, i64)> {
    let nulls: Vec<_> = key.iter().map(|k| format!("{k} IS NULL")).collect();
    let keys = key.join(", ");
    // The row id is written as a literal (an integer of ours): DuckDB skips row groups for
    // literal bounds, not for parameters.
    let (old, new) = (format!("rowid < {from}"), format!("rowid >= {from}"));
    let sql = format!(
        "SELECT (SELECT count(*) FILTER (WHERE {}) FROM {table} WHERE {new}),
           (SELECT count(*) - count(DISTINCT ({keys})) FROM {table} WHERE {new})
           + (SELECT count(*) FROM {table} WHERE {old} AND ({keys}) IN (
                SELECT {keys} FROM {table} WHERE {new}))",
        nulls.join(" OR ")
    );
    conn.query_row(&sql, [], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(|e| db_error("checking primary keys", e))
}

/// The row id the next appended row of `table` gets (one past the highest).
pub fn next_row_id(conn: &Connection, table: &str) -> Result<i64> {
    conn.query_row(
        &format!("SELECT coalesce(max(rowid) + 1, 0) FROM {table}"),
        [],
        |r| r.get(0),
    )
    .map_err(|e| db_error("reading the table's last row id", e))
}

/// In one pass over `table`: rows with a NULL in the key, and rows whose key repeats.
pub fn key_counts(conn: &Connection, table: &str, key: &[String]) -> Result<(i64, i64)> {
    let nulls: Vec<_> = key.iter().map(|k| format!("{k} IS NULL")).collect();
    conn.query_row(
        &format!(
            "SELECT count(*) FILTER (WHERE {}), count(*) - count(DISTINCT ({})) FROM {table}",
            nulls.join(" OR "),
            key.join(", ")
        ),
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .map_err(|e| db_error("checking primary keys", e))
}

pub fn null_key_error(rows: i64, key: &[String]) -> Error {
    Error::data(format!(
        "{rows} rows have a NULL in the primary key ({}); merge cannot place them. Use `append`, or fix the key",
        key.join(", ")
    ))
}

/// The column names of a table in order (empty when it does not exist).
pub fn column_names(conn: &Connection, dataset: &str, table: &str) -> Result<Vec<String>> {
    let mut stmt = conn
        .prepare(
            "SELECT column_name FROM duckdb_columns()
             WHERE schema_name = ? AND table_name = ? ORDER BY column_index",
        )
        .map_err(|e| db_error("reading columns", e))?;
    let names = stmt
        .query_map(params![dataset, table], |r| r.get::<_, String>(0))
        .map_err(|e| db_error("reading columns", e))?;
    names
        .collect::<duckdb::Result<_>>()
        .map_err(|e| db_error("reading columns", e))
}

/// The column list of a `CREATE TABLE` for `schema`, with the metadata columns of a raw
/// table of `meta` when given.
pub fn columns(schema: &SchemaRef, usage: Use, meta: Option<WriteMode>) -> Result<String> {
    let mut out = Vec::new();
    for field in schema.fields() {
        let not_null = if field.is_nullable() { "" } else { " NOT NULL" };
        out.push(format!(
            "{} {}{not_null}",
            quote_ident(field.name()),
            column_type(field, usage)?
        ));
    }
    if let Some(mode) = meta {
        out.extend(meta_definitions(mode));
    }
    Ok(out.join(", "))
}

/// Adds the columns the source now sends to an existing raw table, and the metadata
/// columns `mode` needs that it lacks (a merge table from before `_elt_deleted_at`);
/// widens a column whose type grew (`crate::widen`) and refuses any other type change, and a history table written in another mode or
/// the other way round. Types are compared as DuckDB names them, through the staging table.
pub fn evolve(
    conn: &Connection,
    dataset: &str,
    table: &str,
    stage_name: &str,
    schema: &SchemaRef,
    mode: WriteMode,
) -> Result<()> {
    let types_of = |schema_name: &str, table_name: &str| -> Result<HashMap<String, String>> {
        let mut stmt = conn
            .prepare("SELECT column_name, data_type FROM duckdb_columns() WHERE schema_name = ? AND table_name = ?")
            .map_err(|e| db_error("reading columns", e))?;
        let rows = stmt
            .query_map(params![schema_name, table_name], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(|e| db_error("reading columns", e))?;
        rows.collect::<duckdb::Result<_>>()
            .map_err(|e| db_error("reading columns", e))
    };
    let existing = types_of(dataset, table)?;
    let incoming = types_of("main", stage_name)?;
    let target = format!("{}.{}", quote_ident(dataset), quote_ident(table));
    check_history_layout(
        existing.contains_key(VALID_FROM),
        mode,
        &format!("{dataset}.{table}"),
    )?;
    for (column, definition) in meta_columns(mode).iter().zip(meta_definitions(mode)) {
        if !existing.contains_key(column.name) && column.nullable {
            conn.execute_batch(&format!("ALTER TABLE {target} ADD COLUMN {definition}"))
                .map_err(|e| db_error("adding a metadata column", e))?;
        }
    }
    for field in schema.fields() {
        let incoming_type = &incoming[field.name()];
        match existing.get(field.name()) {
            None => {
                let ty = column_type(field, Use::Raw)?;
                conn.execute_batch(&format!(
                    "ALTER TABLE {target} ADD COLUMN {} {ty}",
                    quote_ident(field.name())
                ))
                .map_err(|e| db_error("adding a column", e))?;
            }
            Some(stored)
                if stored == incoming_type
                    || (matches!(stored.as_str(), "JSON" | "INTERVAL")
                        && incoming_type == "VARCHAR") => {}
            Some(stored) if widens(stored, incoming_type) => {
                conn.execute_batch(&format!(
                    "ALTER TABLE {target} ALTER COLUMN {} SET DATA TYPE {incoming_type}",
                    quote_ident(field.name())
                ))
                .map_err(|e| db_error("widening a column", e))?;
            }
            Some(stored) => {
                return Err(Error::data(format!(
                    "column {} is {stored} in {dataset}.{table} but the source now sends {incoming_type}; \
                     rebuild the table with `elt sync --full-refresh`",
                    field.name()
                )));
            }
        }
    }
    Ok(())
}

/// How `schema` differs from the raw table `dataset.table`, the `_elt_` columns aside;
/// changes nothing. Types are compared as DuckDB names them (`typeof`).
pub fn changes(
    conn: &Connection,
    dataset: &str,
    table: &str,
    schema: &SchemaRef,
) -> Result<Vec<SchemaChange>> {
    let read = |e| db_error("reading the raw table's columns", e);
    let mut stmt = conn
        .prepare(
            "SELECT column_name, data_type FROM duckdb_columns()
             WHERE schema_name = ? AND table_name = ? ORDER BY column_index",
        )
        .map_err(read)?;
    let existing: Vec<(String, String)> = stmt
        .query_map(params![dataset, table], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(read)?
        .collect::<duckdb::Result<_>>()
        .map_err(read)?;
    if existing.is_empty() {
        return Ok(vec![SchemaChange::NewTable]);
    }
    let mut changes = Vec::new();
    for field in schema.fields() {
        let declared = column_type(field, Use::Raw)?;
        let wanted: String = conn
            .query_row(
                &format!("SELECT typeof(CAST(NULL AS {declared}))"),
                [],
                |r| r.get(0),
            )
            .map_err(|e| db_error("naming a column type", e))?;
        match existing.iter().find(|(name, _)| name == field.name()) {
            None => changes.push(SchemaChange::AddedColumn {
                column: field.name().clone(),
                column_type: wanted,
            }),
            Some((_, stored)) if *stored != wanted && widens(stored, &wanted) => {
                changes.push(SchemaChange::Widened {
                    column: field.name().clone(),
                    table_type: stored.clone(),
                    source_type: wanted,
                });
            }
            Some((_, stored)) if *stored != wanted => changes.push(SchemaChange::TypeChanged {
                column: field.name().clone(),
                table_type: stored.clone(),
                source_type: wanted,
            }),
            Some(_) => {}
        }
    }
    for (name, _) in &existing {
        if !name.starts_with("_elt_") && schema.field_with_name(name).is_err() {
            changes.push(SchemaChange::RemovedColumn {
                column: name.clone(),
            });
        }
    }
    Ok(changes)
}
