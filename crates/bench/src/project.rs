//! The project files the workloads sync with: written into the bench's temporary
//! directory, whose DuckDB paths are relative to it. Nothing here runs a sync.

use std::path::Path;

use anyhow::{Context, Result};

/// Writes `toml` as `dir/name`; returns the path, for `elt-bench sync PATH CONNECTION`.
pub fn write(dir: &Path, name: &str, toml: &str) -> Result<String> {
    let path = dir.join(name);
    std::fs::write(&path, toml).with_context(|| format!("writing {}", path.display()))?;
    Ok(path.to_string_lossy().into_owned())
}

/// The project of the orders workloads (W1-W5, sample): the `bench*` connections from the
/// PostgreSQL `url` into DuckDB files and PostgreSQL, and `sample` of `rows` orders.
pub fn orders(dir: &Path, url: &str, rows: u64) -> Result<String> {
    write(
        dir,
        "elt.toml",
        &format!(
            r#"
[sources.pg]
type = "postgres"
url = "{url}"

[sources.sample]
type = "sample"
customers = 0
products = 0
orders = {rows}

[destinations.pg_duck]
type = "duckdb"
path = "pg.duckdb"

[destinations.pg_duck_metrics]
type = "duckdb"
path = "pg_metrics.duckdb"

[destinations.pg_duck_parallel]
type = "duckdb"
path = "pg_parallel.duckdb"

[destinations.pg_pg]
type = "postgres"
url = "{url}"

[destinations.sample_duck]
type = "duckdb"
path = "sample.duckdb"

[connections.bench]
source = "pg"
destination = "pg_duck"

[connections.bench_metrics]
source = "pg"
destination = "pg_duck_metrics"

[connections.bench_parallel]
source = "pg"
destination = "pg_duck_parallel"
streams = [{{ name = "public.orders", parallelism = 4 }}]

[connections.bench_pg]
source = "pg"
destination = "pg_pg"
dataset = "elt_raw"

[connections.sample]
source = "sample"
destination = "sample_duck"
streams = [{{ name = "orders", write = "append" }}]
"#
        ),
    )
}
