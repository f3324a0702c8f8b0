//! The TPC-H lineitem-shaped workload (`--lineitem-rows N`): a table of 16 columns like
//! TPC-H's `lineitem` (bigint keys, four `numeric(15,2)`, `char(1)` flags, three dates,
//! `char(25)`/`char(10)` and a `varchar(44)` comment; primary key `(l_orderkey,
//! l_linenumber)`) in a database of its own, `elt_bench_lineitem`, read by its own floor
//! (binary COPY) and loaded into DuckDB by a full refresh (no cursor). What it does not do:
//! generate TPC-H's exact value distributions; the values are deterministic from the row
//! number.

use std::path::Path;

use anyhow::Result;
use sqlx::Executor;

use super::Measure;

/// The database the workload uses.
pub const DATABASE: &str = "elt_bench_lineitem";

/// Creates `elt_bench_lineitem.lineitem` with `rows` rows.
pub async fn seed(admin: &str, rows: u64) -> Result<()> {
    let mut db = super::database::fresh(admin, DATABASE).await?;
    db.execute(
        "CREATE TABLE lineitem (
           l_orderkey bigint NOT NULL, l_partkey bigint NOT NULL, l_suppkey bigint NOT NULL,
           l_linenumber integer NOT NULL, l_quantity numeric(15,2) NOT NULL,
           l_extendedprice numeric(15,2) NOT NULL, l_discount numeric(15,2) NOT NULL,
           l_tax numeric(15,2) NOT NULL, l_returnflag char(1) NOT NULL,
           l_linestatus char(1) NOT NULL, l_shipdate date NOT NULL, l_commitdate date NOT NULL,
           l_receiptdate date NOT NULL, l_shipinstruct char(25) NOT NULL,
           l_shipmode char(10) NOT NULL, l_comment varchar(44) NOT NULL,
           PRIMARY KEY (l_orderkey, l_linenumber))",
    )
    .await?;
    db.execute(
        format!(
            "INSERT INTO lineitem SELECT g / 4 + 1, g % 200000 + 1, g % 10000 + 1, g % 4 + 1,
               (g % 50 + 1)::numeric(15,2), ((g % 50 + 1) * (900 + g % 1000) / 10.0)::numeric(15,2),
               (g % 11 / 100.0)::numeric(15,2), (g % 9 / 100.0)::numeric(15,2),
               (ARRAY['A','N','R'])[1 + g % 3], (ARRAY['F','O'])[1 + g % 2],
               date '1992-01-02' + (g % 2500), date '1992-01-31' + (g % 2500),
               date '1992-01-03' + (g % 2530),
               (ARRAY['DELIVER IN PERSON','COLLECT COD','NONE','TAKE BACK RETURN'])[1 + g % 4],
               (ARRAY['AIR','FOB','MAIL','RAIL','REG AIR','SHIP','TRUCK'])[1 + g % 7],
               'carefully final deposits ' || left(md5(g::text), 19)
             FROM generate_series(0, {} - 1) g",
            rows
        )
        .as_str(),
    )
    .await?;
    db.execute("VACUUM ANALYZE lineitem").await?;
    Ok(())
}

/// Writes the workload's project file into `dir`; returns its path.
pub fn config(dir: &Path, url: &str) -> Result<String> {
    super::project::write(
        dir,
        "lineitem.toml",
        &format!(
            r#"
[sources.lineitem]
type = "postgres"
url = "{url}"

[destinations.duck]
type = "duckdb"
path = "lineitem.duckdb"

[connections.lineitem]
source = "lineitem"
destination = "duck"
"#
        ),
    )
}

/// Prints the workload's floor and load, the load against this floor.
pub fn report(floor: &Measure, load: &Measure) {
    let rate = |m: &Measure, rows: u64| rows as f64 / m.secs.max(f64::EPSILON);
    for (name, m, rows) in [
        (
            format!("lineitem floor ({} MB)", floor.output / 1_000_000),
            floor,
            load.output,
        ),
        (
            "lineitem full refresh into DuckDB".to_owned(),
            load,
            load.output,
        ),
    ] {
        println!(
            "{name:<34} {rows:>10} {:>9.2} {:>12.0} {:>9.2} {:>10.1} {:>8.2} {:>8.2}",
            m.secs,
            rate(m, rows),
            m.secs / floor.secs,
            m.peak_rss_mb,
            m.cpu_secs,
            m.server_cpu_secs
        );
    }
    println!(
        "lineitem/floor {:.2} (target <= 1.2)",
        load.secs / floor.secs
    );
}
