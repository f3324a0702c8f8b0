//! The raw table's DDL: creating it (under an advisory lock, so concurrent workers do not
//! collide), adding the columns a source gained, refusing changed types, and the unique key
//! index a merge upserts on. No rows are written here.

use elt_core::{Error, Result, WriteMode, quote_ident};

use super::session::{PgSession, locked_ddl};
use super::types::{PgType, pg_name};

/// The metadata columns of every raw table.
pub const META_COLUMNS: [(&str, &str); 2] = [
    ("_elt_extracted_at", "timestamptz"),
    ("_elt_run_id", "uuid"),
];

/// Creates the raw table `table` (quoted, in the dataset; `name` unquoted) when missing,
/// adds the columns in `names` it lacks and, for a merge, its unique index on `key`
/// (quoted columns).
#[allow(clippy::too_many_arguments)]
pub async fn create_raw_table(
    session: &mut PgSession,
    table: &str,
    name: &str,
    names: &[String],
    types: &[PgType],
    definitions: &[String],
    key: &[String],
    mode: WriteMode,
) -> Result<()> {
    let mut ddl = format!(
        "CREATE TABLE IF NOT EXISTS {table} ({});",
        definitions.join(", ")
    );
    ddl.push_str(&evolve(session, table, names, types).await?);
    if mode == WriteMode::Merge {
        let index = quote_ident(&pg_name(&format!("{name}__elt_key")));
        ddl.push_str(&format!(
            "CREATE UNIQUE INDEX IF NOT EXISTS {index} ON {table} ({});",
            key.join(", ")
        ));
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
        WriteMode::Merge if e.message().contains("23505") => Error::data(format!(
            "the raw table {table} has repeated primary keys (loaded with `append`?), so it \
             cannot be merged into; rebuild it with --full-refresh"
        )),
        _ => e,
    })
}

/// ALTER statements adding the stream's new columns to an existing table; an error for a
/// column whose type changed.
async fn evolve(
    session: &mut PgSession,
    table: &str,
    names: &[String],
    types: &[PgType],
) -> Result<String> {
    let existing: Vec<(String, String)> = sqlx::query_as(
        "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute
         WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped",
    )
    .bind(table)
    .fetch_all(&mut session.conn)
    .await
    .map_err(|e| session.target.error("reading the raw table's columns", e))?;
    if existing.is_empty() {
        return Ok(String::new());
    }
    let mut ddl = String::new();
    for (name, pg) in names.iter().zip(types) {
        match existing.iter().find(|(n, _)| n == name) {
            None => ddl.push_str(&format!(
                "ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {} {};",
                quote_ident(name),
                pg.sql()
            )),
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
