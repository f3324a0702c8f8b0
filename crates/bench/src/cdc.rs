//! The change data capture workload (`--cdc-updates N`): a table of 100,000 accounts in a
//! database of its own, `elt_bench_cdc`, loaded into DuckDB twice (a cdc stream and an
//! incremental stream on `updated_at`); then N single-row updates, each its own
//! transaction, and both synced again: the cdc sync replays every change (changes per
//! second, peak RSS), the watermark sync reads each changed row once, in its last version.
//! What it does not do: measure the initial loads (W1 does that) or `--follow`.

use std::path::Path;

use anyhow::{Result, bail};
use sqlx::Executor;

use super::{Measure, measure};

/// The database the workload uses.
pub const DATABASE: &str = "elt_bench_cdc";
/// Rows of the `accounts` table.
const ACCOUNTS: u64 = 100_000;

/// Creates the table, loads it with both connections, then makes `updates` single-row
/// updates; returns the two measured syncs (cdc, watermark).
pub async fn run(admin: &str, dir: &Path, updates: u64) -> Result<(Measure, Measure)> {
    let url = &super::database::url_of(admin, DATABASE);
    let mut db = super::database::fresh(admin, DATABASE).await?;
    db.execute(
        format!(
            "CREATE TABLE accounts (id bigint PRIMARY KEY, balance numeric(12,2) NOT NULL,
               owner text NOT NULL, updated_at timestamptz NOT NULL);
             CREATE INDEX ON accounts (updated_at);
             INSERT INTO accounts SELECT g, 0, 'owner ' || g, now() FROM generate_series(1, {ACCOUNTS}) g"
        )
        .as_str(),
    )
    .await?;
    db.execute("VACUUM ANALYZE accounts").await?;
    let config = write_config(dir, url)?;
    for connection in ["cdc", "watermark"] {
        let first = measure(&["sync", &config, connection])?;
        if first.output != ACCOUNTS {
            bail!("the first {connection} sync read {} rows", first.output);
        }
    }
    eprintln!("making {updates} single-row updates ...");
    let started = std::time::Instant::now();
    db.execute("SET synchronous_commit = off").await?;
    db.execute(
        format!(
            "DO $$ BEGIN FOR i IN 0 .. {updates} - 1 LOOP
               UPDATE accounts SET balance = balance + 1, updated_at = clock_timestamp()
                 WHERE id = i % {ACCOUNTS} + 1;
               COMMIT;
             END LOOP; END $$"
        )
        .as_str(),
    )
    .await?;
    // A synchronous commit flushes the WAL of the asynchronous ones before it, so the
    // syncs see every update (decoding reads flushed WAL only).
    db.execute("SET synchronous_commit = on").await?;
    db.execute("CREATE TABLE flushed (); DROP TABLE flushed")
        .await?;
    eprintln!("updated in {:.1}s", started.elapsed().as_secs_f64());
    let cdc = measure(&["sync", &config, "cdc"])?;
    let watermark = measure(&["sync", &config, "watermark"])?;
    if cdc.output != updates {
        bail!(
            "the cdc sync read {} changes, expected {updates}",
            cdc.output
        );
    }
    if watermark.output != updates.min(ACCOUNTS) {
        bail!("the watermark sync read {} rows", watermark.output);
    }
    Ok((cdc, watermark))
}

fn write_config(dir: &Path, url: &str) -> Result<String> {
    super::project::write(
        dir,
        "cdc.toml",
        &format!(
            r#"
[sources.pg]
type = "postgres"
url = "{url}"

[destinations.cdc]
type = "duckdb"
path = "cdc.duckdb"

[destinations.watermark]
type = "duckdb"
path = "watermark.duckdb"

[connections.cdc]
source = "pg"
destination = "cdc"
streams = [{{ name = "public.accounts", sync = "cdc" }}]

[connections.watermark]
source = "pg"
destination = "watermark"
streams = [{{ name = "public.accounts" }}]
"#
        ),
    )
}

/// Prints both syncs: changes (or rows) per second and peak RSS.
pub fn report(updates: u64, cdc: &Measure, watermark: &Measure) {
    for (name, m) in [
        ("cdc: single-row updates replayed", cdc),
        ("watermark sync of the same updates", watermark),
    ] {
        println!(
            "{name:<34} {:>10} {:>9.2} {:>12.0} {:>9} {:>10.1} {:>8.2} {:>8.2}",
            m.output,
            m.secs,
            m.output as f64 / m.secs.max(f64::EPSILON),
            "-",
            m.peak_rss_mb,
            m.cpu_secs,
            m.server_cpu_secs
        );
    }
    println!(
        "cdc replayed {updates} updates at {:.0} changes/s; the watermark sync read {} rows (each \
         changed row's last version) in {:.2}s",
        updates as f64 / cdc.secs.max(f64::EPSILON),
        watermark.output,
        watermark.secs
    );
}
