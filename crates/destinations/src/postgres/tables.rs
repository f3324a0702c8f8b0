//! The raw table's DDL: creating it (under an advisory lock, so concurrent workers do not
//! collide), adding the columns a source gained, widening grown types and refusing other
//! type changes, the unique key
//! index a merge upserts on and the one a history table keeps its current versions unique
//! by; and the dry run of that evolution (`changes`). No rows are written here.

use elt_core::arrow::datatypes::SchemaRef;
use elt_core::changes::{DELETED_AT, IS_CURRENT, MetaKind, VALID_FROM, meta_columns};
use elt_core::{Error, Result, SchemaChange, WriteMode, quote_ident};

use super::session::PgSession;
use super::sql::locked_ddl;
use super::types::{PgType, pg_name};
use crate::keyed::check_history_layout;
use crate::widen::widens;

/// `(name, type [NOT NULL])` of each metadata column a raw table of `mode` carries.
pub fn meta_definitions(mode: WriteMode) -> Vec<(String, String)> {
    meta_columns(mode)
        .into_iter()
        .map(|c| {
            let ty = match c.kind {
                MetaKind::Timestamp => "timestamptz",
                MetaKind::Uuid => "uuid",
                MetaKind::Boolean => "boolean",
                MetaKind::Text => "text",
            };
            let not_null = if c.nullable { "" } else { " NOT NULL" };
            (c.name.to_owned(), format!("{ty}{not_null}"))
        })
        .collect()
}

/// A raw table as a load wants it.
#[derive(Debug)]
pub struct RawTable<'a> {
    /// The table, quoted, in the dataset.
    pub table: &'a str,
    /// Its name, unquoted.
    pub name: &'a str,
    /// Every column's name: the stream's, then the write mode's.
    pub names: &'a [String],
    /// The PostgreSQL types of the stream's columns.
    pub types: &'a [PgType],
    /// `name type` of every column.
    pub definitions: &'a [String],
    /// The quoted primary-key columns.
    pub key: &'a [String],
    /// The write mode.
    pub mode: WriteMode,
    /// The quoted cursor column to index (backfill windows clear and compare by it).
    pub cursor_index: Option<&'a str>,
    /// The `PARTITION BY` clause of a new table (`partition_by`).
    pub partitioned: Option<&'a str>,
}

/// Creates the raw table when missing, adds the columns it lacks and, for a merge, its
/// unique index on the key (for history, on the key of current versions), and the cursor
/// index when asked. Only what is missing runs, under the advisory lock: a DDL statement
/// waits for every open transaction on the table, and the windows of a backfill load
/// one table in several at once.
pub async fn create_raw_table(session: &mut PgSession, raw: &RawTable<'_>) -> Result<()> {
    let RawTable {
        table,
        name,
        names,
        types,
        definitions,
        key,
        mode,
        cursor_index,
        partitioned,
    } = *raw;
    let existing = columns(session, table).await?;
    let mut ddl = String::new();
    if existing.is_empty() {
        ddl.push_str(&format!(
            "CREATE TABLE IF NOT EXISTS {table} ({}) {};",
            definitions.join(", "),
            partitioned.unwrap_or_default()
        ));
    }
    ddl.push_str(&evolve(&existing, table, names, types, mode)?);
    let index = |suffix: &str| quote_ident(&pg_name(&format!("{name}{suffix}")));
    let keys = key.join(", ");
    let mut indexes = Vec::new();
    if mode.is_merge() {
        if !existing.is_empty() && !existing.iter().any(|(n, _)| n == DELETED_AT) {
            ddl.push_str(&format!(
                "ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {DELETED_AT} timestamptz;"
            ));
        }
        let key_index = index("__elt_key");
        indexes.push((
            key_index.clone(),
            format!("CREATE UNIQUE INDEX IF NOT EXISTS {key_index} ON {table} ({keys})"),
        ));
    }
    if mode == WriteMode::History {
        let current = index("__elt_current");
        indexes.push((
            current.clone(),
            format!(
                "CREATE UNIQUE INDEX IF NOT EXISTS {current} ON {table} ({keys}) WHERE {IS_CURRENT}"
            ),
        ));
    }
    if let Some(cursor) = cursor_index {
        let by_cursor = index("__elt_cursor");
        indexes.push((
            by_cursor.clone(),
            format!("CREATE INDEX IF NOT EXISTS {by_cursor} ON {table} ({cursor})"),
        ));
    }
    for (index, create) in indexes {
        if existing.is_empty() || !exists(session, &format!("{}.{index}", session.ds)).await? {
            ddl.push_str(&create);
            ddl.push(';');
        }
    }
    if ddl.is_empty() {
        return Ok(());
    }
    locked_ddl(
        &mut session.conn,
        &session.target,
        format!("elt:{table}"),
        ddl,
        "creating the raw table",
    )
    .await
    .map_err(|e| match mode {
        WriteMode::Merge | WriteMode::Previous if e.message().contains("23505") => {
            Error::data(format!(
                "the raw table {table} has repeated primary keys (loaded with `append`?), so it \
             cannot be merged into; rebuild it with --full-refresh"
            ))
        }
        _ => e,
    })
}

/// `(name, type)` of each column of `table` (quoted); none when it does not exist.
async fn columns(session: &mut PgSession, table: &str) -> Result<Vec<(String, String)>> {
    sqlx::query_as(
        "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute
         WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
    )
    .bind(table)
    .fetch_all(&mut session.conn)
    .await
    .map_err(|e| session.target.error("reading the raw table's columns", e))
}

/// Whether relation `name` (quoted, schema-qualified) exists.
async fn exists(session: &mut PgSession, name: &str) -> Result<bool> {
    sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(name)
        .fetch_one(&mut session.conn)
        .await
        .map_err(|e| session.target.error("reading the raw table's indexes", e))
}

/// ALTER statements adding the stream's new columns to an existing table (`existing`
/// columns); an error for a column whose type changed.
fn evolve(
    existing: &[(String, String)],
    table: &str,
    names: &[String],
    types: &[PgType],
    mode: WriteMode,
) -> Result<String> {
    if existing.is_empty() {
        return Ok(String::new());
    }
    let has_versions = existing.iter().any(|(n, _)| n == VALID_FROM);
    check_history_layout(has_versions, mode, table)?;
    let mut ddl = String::new();
    for (name, pg) in names.iter().zip(types) {
        match existing.iter().find(|(n, _)| n == name) {
            None => ddl.push_str(&format!(
                "ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {} {};",
                quote_ident(name),
                pg.sql()
            )),
            Some((_, current))
                if *current != pg.catalog_name() && widens(current, &pg.catalog_name()) =>
            {
                ddl.push_str(&format!(
                    "ALTER TABLE {table} ALTER COLUMN {} TYPE {};",
                    quote_ident(name),
                    pg.sql()
                ));
            }
            Some((_, current)) if *current != pg.catalog_name() => {
                return Err(Error::data(format!(
                    "column {name} of {table} is {current} but the source now sends {}; rebuild \
                     the table with --full-refresh",
                    pg.catalog_name()
                )));
            }
            Some(_) => {}
        }
    }
    Ok(ddl)
}

/// How `schema` differs from the raw table `table` (quoted, in the dataset), the `_elt_`
/// columns aside; changes nothing. Types are compared as PostgreSQL names them.
pub async fn changes(
    session: &mut PgSession,
    table: &str,
    schema: &SchemaRef,
) -> Result<Vec<SchemaChange>> {
    let existing = columns(session, table).await?;
    if existing.is_empty() {
        return Ok(vec![SchemaChange::NewTable]);
    }
    let mut changes = Vec::new();
    let mut sent = Vec::new();
    for field in schema.fields() {
        let name = pg_name(field.name());
        let wanted = PgType::of(field)?.catalog_name();
        match existing.iter().find(|(n, _)| *n == name) {
            None => changes.push(SchemaChange::AddedColumn {
                column: name.clone(),
                column_type: wanted,
            }),
            Some((_, stored)) if *stored != wanted && widens(stored, &wanted) => {
                changes.push(SchemaChange::Widened {
                    column: name.clone(),
                    table_type: stored.clone(),
                    source_type: wanted,
                });
            }
            Some((_, stored)) if *stored != wanted => changes.push(SchemaChange::TypeChanged {
                column: name.clone(),
                table_type: stored.clone(),
                source_type: wanted,
            }),
            Some(_) => {}
        }
        sent.push(name);
    }
    for (name, _) in &existing {
        if !name.starts_with("_elt_") && !sent.contains(name) {
            changes.push(SchemaChange::RemovedColumn {
                column: name.clone(),
            });
        }
    }
    Ok(changes)
}
