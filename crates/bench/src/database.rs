//! The benchmark's databases on the local server: each workload gets a database of its own,
//! dropped and created anew (with any replication slot a cdc run left in it) before it
//! seeds. Nothing here measures.

use anyhow::{Context, Result};
use sqlx::{Connection, Executor, PgConnection};

/// The URL of database `name` on the server of `admin`.
pub fn url_of(admin: &str, name: &str) -> String {
    let base = admin.rsplit_once('/').map_or(admin, |(b, _)| b);
    format!("{base}/{name}")
}

/// Drops database `name` (and its replication slots), creates it empty, and connects to it.
pub async fn fresh(admin: &str, name: &str) -> Result<PgConnection> {
    let mut conn = PgConnection::connect(admin)
        .await
        .with_context(|| format!("connecting to {admin}"))?;
    sqlx::query(
        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1",
    )
    .bind(name)
    .execute(&mut conn)
    .await?;
    conn.execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str())
        .await?;
    conn.execute(format!("CREATE DATABASE \"{name}\"").as_str())
        .await?;
    Ok(PgConnection::connect(&url_of(admin, name)).await?)
}
