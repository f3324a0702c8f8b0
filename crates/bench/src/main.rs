//! `elt-bench`: measures elt against the physical floor on the local PostgreSQL and prints a
//! table. It asserts nothing; it is run by hand (`make bench`) and by `.ci/run` at a small
//! size so that it cannot rot.
//!
//! Workloads, each in a child process so its peak RSS (VmHWM from /proc) is its own:
//! - floor: `COPY orders TO STDOUT (FORMAT binary)`, bytes discarded;
//! - W1: `elt sync` full load into a fresh DuckDB file (also with metrics recorded and
//!   written as with `--metrics-file`, and with `parallelism = 4`), and
//!   into PostgreSQL (schema `elt_raw` of the same database: binary COPY in, binary COPY
//!   out);
//! - W2: incremental merge after 1% updates and 1% inserts;
//! - W3: incremental with nothing changed;
//! - W4: W3 plus hard-delete reconciliation of the unchanged table (the source blocks it
//!   touched, against the table's size); W5: the same after deleting 10 rows, which it
//!   must find;
//! - sample: the `sample` source's `orders` into DuckDB (our own overhead, no PostgreSQL);
//! - with `--lineitem-rows N`, a TPC-H lineitem-shaped table against its own floor
//!   (`lineitem.rs`);
//! - with `--cdc-updates N`, N single-row updates replayed by change data capture, next to a
//!   watermark sync of the same changes (`cdc.rs`);
//! - with `--kafka-messages N`, a topic of N JSON messages into DuckDB against a plain fetch
//!   loop (`kafka.rs`).
//!
//! Next to wall time it reports CPU seconds (user + system) of the child (elt, or the
//! floor's reader) and of the local PostgreSQL server (every `postgres` process, with the
//! backends it reaped), read from /proc before and after each run: on a machine where the
//! two share the cores, CPU is what the wall time is made of.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::{Parser, Subcommand};
use futures_util::StreamExt;
use sqlx::{Connection, Executor, PgConnection};

mod cdc;
mod database;
mod kafka;
mod lineitem;
mod measure;
mod procfs;
mod project;
use measure::{Measure, measure};

#[derive(Parser)]
#[command(about = "Benchmarks elt against the binary COPY floor")]
struct Args {
    /// Rows in the orders table (e.g. 100000, 1000000, 10000000).
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// A PostgreSQL URL whose server can host the `elt_bench` database.
    #[arg(
        long,
        env = "ELT_BENCH_PG_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    pg_url: String,
    /// Rows of the TPC-H lineitem-shaped table (0 leaves the workload out).
    #[arg(long, default_value_t = 0)]
    lineitem_rows: u64,
    /// Single-row updates replayed by change data capture, next to a watermark sync of the
    /// same changes (0 leaves the workload out; needs `wal_level = logical`).
    #[arg(long, default_value_t = 0)]
    cdc_updates: u64,
    /// JSON messages on a topic of the local Kafka broker, synced into DuckDB (0 leaves
    /// the workload out; needs `scripts/kafka.sh start`).
    #[arg(long, default_value_t = 0)]
    kafka_messages: u64,
    /// The Kafka broker of `--kafka-messages`.
    #[arg(long, env = "ELT_TEST_KAFKA", default_value = "127.0.0.1:9092")]
    kafka: String,
    #[command(subcommand)]
    child: Option<Child>,
}

/// What a child process runs (the parent re-executes itself).
#[derive(Subcommand)]
enum Child {
    /// Read a table with binary COPY and discard the bytes.
    Floor {
        url: String,
        #[arg(long, default_value = "orders")]
        table: String,
    },
    /// Run one sync through the library; prints rows read (rows deleted with
    /// `--reconcile-deletes`).
    Sync {
        config: String,
        connection: String,
        #[arg(long)]
        reconcile_deletes: bool,
        /// Record the run's metrics and write them here (the cost of `--metrics-file`).
        #[arg(long)]
        metrics_file: Option<String>,
    },
    /// Fetch every message of a topic and discard it; prints the count.
    KafkaFloor { broker: String, topic: String },
}

fn main() -> Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match args.child {
        Some(Child::Floor { url, table }) => runtime.block_on(floor(&url, &table)),
        Some(Child::Sync {
            config,
            connection,
            reconcile_deletes,
            metrics_file,
        }) => runtime.block_on(sync(
            &config,
            &connection,
            reconcile_deletes,
            metrics_file.as_deref(),
        )),
        Some(Child::KafkaFloor { broker, topic }) => {
            runtime.block_on(kafka::floor(&broker, &topic))
        }
        None => runtime.block_on(run(&args)),
    }
}

async fn floor(url: &str, table: &str) -> Result<()> {
    let mut conn = PgConnection::connect(url).await?;
    let mut bytes = 0usize;
    let quoted = format!("\"{}\"", table.replace('"', "\"\""));
    let copy = format!("COPY {quoted} TO STDOUT (FORMAT binary)");
    let mut chunks = conn.copy_out_raw(&copy).await?;
    while let Some(chunk) = chunks.next().await {
        bytes += chunk?.len();
    }
    println!("{bytes}");
    Ok(())
}

async fn sync(
    config: &str,
    connection: &str,
    reconcile_deletes: bool,
    metrics_file: Option<&str>,
) -> Result<()> {
    let project = elt_runner::Project::load(config)?;
    let options = elt_runner::SyncOptions {
        reconcile_deletes,
        metrics: metrics_file.map(|_| elt_runner::Metrics::new()),
        ..Default::default()
    };
    let report = elt_runner::sync(&project, connection, &options).await?;
    if let (Some(path), Some(metrics)) = (metrics_file, &options.metrics) {
        metrics.write_textfile(Path::new(path))?;
    }
    if report.status != elt_runner::RunOutcome::Succeeded {
        bail!("sync failed: {}", report.to_table());
    }
    let count: u64 = if reconcile_deletes {
        report.streams.iter().map(|s| s.rows_deleted).sum()
    } else {
        report.streams.iter().map(|s| s.rows_read).sum()
    };
    println!("{count}");
    Ok(())
}

/// Blocks of `public.orders` and its indexes read or found in cache so far (a child's
/// statistics flush when its connection closes, which the pause leaves time for).
async fn source_blocks(db: &mut PgConnection) -> Result<i64> {
    tokio::time::sleep(Duration::from_secs(1)).await;
    db.execute("SELECT pg_stat_clear_snapshot()").await?;
    Ok(sqlx::query_scalar(
        "SELECT (coalesce(heap_blks_read, 0) + coalesce(heap_blks_hit, 0) + coalesce(idx_blks_read, 0)
                 + coalesce(idx_blks_hit, 0))::bigint
         FROM pg_statio_user_tables WHERE schemaname = 'public' AND relname = 'orders'",
    )
    .fetch_one(db)
    .await?)
}

async fn seed(admin: &str, rows: u64) -> Result<()> {
    let mut db = database::fresh(admin, "elt_bench").await?;
    db.execute(
        "CREATE TABLE orders (
           id bigint PRIMARY KEY, customer_id bigint NOT NULL, status varchar(16) NOT NULL,
           sku text NOT NULL, amount numeric(12,2) NOT NULL, quantity integer NOT NULL,
           paid boolean NOT NULL, region text, created_at timestamptz NOT NULL,
           updated_at timestamptz NOT NULL, attrs jsonb, note text)",
    )
    .await?;
    db.execute(insert_sql(1, rows, "timestamptz '2024-01-01' + g * interval '10 ms'").as_str())
        .await?;
    db.execute("CREATE INDEX orders_updated_at ON orders (updated_at)")
        .await?;
    db.execute("VACUUM ANALYZE orders").await?;
    Ok(())
}

fn insert_sql(from: u64, to: u64, updated_at: &str) -> String {
    format!(
        "INSERT INTO orders SELECT g, g % 50000, (ARRAY['placed','paid','shipped','delivered'])[1 + g % 4],
           'SKU-' || lpad((g % 10000)::text, 6, '0'), (g % 100000) / 100.0, 1 + g % 9, g % 3 = 0,
           (ARRAY['eu','us','apac'])[1 + g % 3], timestamptz '2023-01-01' + g * interval '1 s', {updated_at},
           jsonb_build_object('channel', 'web', 'campaign', g % 20, 'gift', g % 7 = 0),
           CASE WHEN g % 4 = 0 THEN NULL ELSE 'note ' || g END
         FROM generate_series({from}, {to}) g"
    )
}

async fn run(args: &Args) -> Result<()> {
    let url = database::url_of(&args.pg_url, "elt_bench");
    let rows = args.rows;
    eprintln!("seeding {rows} rows into elt_bench.orders ...");
    let started = Instant::now();
    seed(&args.pg_url, rows).await?;
    eprintln!("seeded in {:.1}s", started.elapsed().as_secs_f64());
    let dir = tempfile::tempdir()?;
    let config = project::orders(dir.path(), &url, rows)?;
    let sync = |connection: &str| measure(&["sync", &config, connection]);

    let floor = measure(&["floor", &url])?;
    let w1 = sync("bench")?;
    let metrics_file = dir.path().join("elt.prom");
    let w1_metrics = measure(&[
        "sync",
        &config,
        "bench_metrics",
        "--metrics-file",
        &metrics_file.to_string_lossy(),
    ])?;
    let w1_parallel = sync("bench_parallel")?;
    let w1_pg = sync("bench_pg")?;
    let changed = (rows / 100).max(1);
    let mut db = PgConnection::connect(&url).await?;
    db.execute("UPDATE orders SET amount = amount + 1, status = 'delivered', updated_at = now() WHERE id % 100 = 0").await?;
    db.execute(insert_sql(rows + 1, rows + changed, "now()").as_str())
        .await?;
    let w2 = sync("bench")?;
    let w3 = sync("bench")?;
    let reconcile = || measure(&["sync", &config, "bench", "--reconcile-deletes"]);
    let before = source_blocks(&mut db).await?;
    let w4 = reconcile()?;
    let touched = source_blocks(&mut db).await? - before;
    let step = (rows / 10).max(1);
    let deleted = sqlx::query(&format!("DELETE FROM orders WHERE id % {step} = 0"))
        .execute(&mut db)
        .await?
        .rows_affected();
    let w5 = reconcile()?;
    let heap_blocks: i64 = sqlx::query_scalar("SELECT pg_relation_size('orders') / 8192")
        .fetch_one(&mut db)
        .await?;
    let sample = sync("sample")?;

    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "elt-bench: {rows} rows, {cpus} cores, {} build",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    println!(
        "{:<34} {:>10} {:>9} {:>12} {:>9} {:>10} {:>8} {:>8}",
        "workload", "rows", "seconds", "rows/s", "x floor", "peak MB", "CPU s", "PG CPU s"
    );
    let line = |name: &str, m: &Measure, rows: u64| {
        let rate = if m.secs > 0.0 {
            rows as f64 / m.secs
        } else {
            0.0
        };
        println!(
            "{name:<34} {rows:>10} {:>9.2} {rate:>12.0} {:>9.2} {:>10.1} {:>8.2} {:>8.2}",
            m.secs,
            m.secs / floor.secs,
            m.peak_rss_mb,
            m.cpu_secs,
            m.server_cpu_secs
        );
    };
    line(
        &format!("floor: binary COPY ({} MB)", floor.output / 1_000_000),
        &floor,
        rows,
    );
    line("W1: full load into DuckDB", &w1, w1.output);
    line(
        "W1 with metrics (--metrics-file)",
        &w1_metrics,
        w1_metrics.output,
    );
    line("W1 with parallelism = 4", &w1_parallel, w1_parallel.output);
    line("W1: full load into PostgreSQL", &w1_pg, w1_pg.output);
    line("W2: 1% updated + 1% new, merge", &w2, w2.output);
    line("W3: incremental, nothing changed", &w3, w3.output);
    line("W4: W3 + reconcile, none deleted", &w4, rows);
    line("W5: W3 + reconcile, rows deleted", &w5, w5.output);
    line("sample source into DuckDB", &sample, sample.output);
    println!(
        "W1/floor {:.2} (target <= 2.0); W3/W1 {:.1}% (target < 5%); sample {:.0} rows/s (target >= 1000000)",
        w1.secs / floor.secs,
        100.0 * w3.secs / w1.secs,
        sample.output as f64 / sample.secs
    );
    println!(
        "W4 touched {touched} blocks of orders and its indexes (the table alone has {heap_blocks}); \
         W5 found {} of {deleted} deleted rows",
        w5.output
    );
    if w5.output != deleted {
        bail!("W5 marked {} rows deleted, expected {deleted}", w5.output);
    }
    if args.lineitem_rows > 0 {
        let url = database::url_of(&args.pg_url, lineitem::DATABASE);
        eprintln!("seeding {} rows into lineitem ...", args.lineitem_rows);
        lineitem::seed(&args.pg_url, args.lineitem_rows).await?;
        let floor = measure(&["floor", &url, "--table", "lineitem"])?;
        let config = lineitem::config(dir.path(), &url)?;
        let load = measure(&["sync", &config, "lineitem"])?;
        lineitem::report(&floor, &load);
    }
    if args.cdc_updates > 0 {
        let (changes, watermark) = cdc::run(&args.pg_url, dir.path(), args.cdc_updates).await?;
        cdc::report(args.cdc_updates, &changes, &watermark);
    }
    if args.kafka_messages > 0 {
        let (floor, load) = kafka::run(&args.kafka, dir.path(), args.kafka_messages).await?;
        kafka::report(&floor, &load);
    }
    if w1_parallel.output != w1.output {
        bail!(
            "W1 with parallelism = 4 read {} rows, one connection {}",
            w1_parallel.output,
            w1.output
        );
    }
    if w2.output != 2 * changed {
        bail!("W2 read {} rows, expected {}", w2.output, 2 * changed);
    }
    Ok(())
}
