//! A PostgreSQL database per test, on the local server (`ELT_TEST_PG_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`). A server that is down fails the test loudly.

use sqlx::{Connection, Executor, PgConnection};

use crate::common::DESTINATION;

/// The admin URL tests create their databases through.
pub fn admin_url() -> String {
    std::env::var("ELT_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// The URL of database `name` on the same server.
pub fn url_of(name: &str) -> String {
    let admin = admin_url();
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    format!("{base}/{name}")
}

/// Runs async work on a small runtime (tests are synchronous: they drive the binary).
pub fn block_on<T>(work: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(work)
}

/// A fresh database named `elt_<name>`; returns its URL.
pub fn fresh_database(name: &str) -> String {
    let db = format!("elt_{name}");
    block_on(async {
        let mut admin = PgConnection::connect(&admin_url())
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {} is not reachable: {e}", admin_url()));
        // A database with replication slots (cdc tests) cannot be dropped.
        sqlx::query(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
             WHERE database = $1",
        )
        .bind(&db)
        .execute(&mut admin)
        .await
        .expect("drop the database's replication slots");
        admin
            .execute(format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)").as_str())
            .await
            .expect("drop");
        admin
            .execute(format!("CREATE DATABASE \"{db}\"").as_str())
            .await
            .expect("create");
    });
    url_of(&db)
}

/// Runs SQL statements (separated by `;`) against `url`.
pub fn execute(url: &str, sql: &str) {
    block_on(async {
        let mut conn = PgConnection::connect(url).await.expect("connect");
        conn.execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{e}: {sql}"));
    });
}

/// The first column of every row of a query, as text.
pub fn query(url: &str, sql: &str) -> Vec<String> {
    block_on(async {
        let mut conn = PgConnection::connect(url).await.expect("connect");
        let rows: Vec<(String,)> = sqlx::query_as(sql)
            .fetch_all(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{e}: {sql}"));
        rows.into_iter().map(|r| r.0).collect()
    })
}

/// A project syncing database `url` into `data/demo.duckdb` as connection `pg`.
pub fn project_toml(url: &str, extra_source: &str, streams: &str) -> String {
    format!(
        r#"
[sources.pg]
type = "postgres"
url = "{url}"
{extra_source}

{DESTINATION}
[connections.pg]
source = "pg"
destination = "local"
{streams}
"#
    )
}
