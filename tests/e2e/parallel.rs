//! `parallelism = N` on the `postgres` source: key ranges read on N connections that share
//! one exported snapshot load exactly what one connection loads (every column compared),
//! see none of the changes made during the read, and a run killed in the middle resumes
//! only the unfinished ranges.

use crate::common::{Project, stream};
use crate::crash::kill_at;
use crate::pg::{execute, fresh_database, project_toml, query};

/// 40,000 rows whose keys run from -59,997 to 60,000 in steps of 3, and 50 with a NULL
/// cursor (not read incrementally).
const ORDERS: &str = "
CREATE TABLE orders (
  id bigint PRIMARY KEY, customer text NOT NULL, amount numeric(12,2), qty integer,
  status varchar(20), paid boolean, created_at timestamptz NOT NULL,
  updated_at timestamptz, doc jsonb, note text);
CREATE INDEX ON orders (updated_at);
INSERT INTO orders SELECT g * 3 - 60000, 'customer ' || (g % 1000), (g % 100000) / 100.0,
    g % 10, (ARRAY['new','paid','shipped'])[1 + g % 3], g % 2 = 0,
    timestamptz '1965-01-01' + g * interval '1 hour',
    CASE WHEN g % 800 = 0 THEN NULL ELSE timestamptz '2024-01-01' + (g % 5000) * interval '1 second' END,
    jsonb_build_object('k', g, 'tags', jsonb_build_array('a', g % 5)),
    CASE WHEN g % 7 = 0 THEN NULL ELSE 'nöte ' || g END
  FROM generate_series(1, 40050) g";

const LOADED: u64 = 40_000;

/// One stream `public.orders` read with `parallelism`, in batches of 1,000 rows.
fn project(url: &str, parallelism: usize) -> Project {
    Project::new(&project_toml(
        url,
        "batch_rows = 1000",
        &format!(
            "[[connections.pg.streams]]\nname = \"public.orders\"\nparallelism = {parallelism}"
        ),
    ))
}

fn sync(project: &Project) -> serde_json::Value {
    project
        .elt(&["sync", "--connection", "pg", "--json"])
        .expect_code(0)
        .json()
}

fn state(project: &Project) -> String {
    project.query("SELECT state::VARCHAR FROM raw._elt_state WHERE stream = 'public.orders'")[0]
        .clone()
}

fn notes(summary: &serde_json::Value) -> String {
    stream(summary, "public.orders")["notes"].to_string()
}

#[test]
fn four_connections_load_what_one_loads_and_resume_only_unfinished_ranges() {
    let url = fresh_database("pg_parallel");
    execute(&url, ORDERS);
    let single = project(&url, 1);
    let one = sync(&single);
    assert!(!notes(&one).contains("key ranges"), "{}", notes(&one));

    let parallel = project(&url, 4);
    let four = sync(&parallel);
    assert!(
        notes(&four).contains("read 16 of 16 key ranges on 4 connections"),
        "{}",
        notes(&four)
    );
    assert_eq!(stream(&four, "public.orders")["rows_read"], LOADED);
    assert_eq!(
        parallel.table_digest("public_orders"),
        single.table_digest("public_orders")
    );
    assert_eq!(state(&parallel), state(&single), "the same watermark");

    // Killed after its 10th commit (of about 40 batches), then rerun.
    let killed = project(&url, 4);
    kill_at(&killed, "pg", "duckdb.after_commit:10:pause");
    let partial: u64 = killed.query("SELECT count(*)::VARCHAR FROM raw.public_orders")[0]
        .parse()
        .unwrap();
    assert!(
        partial > 0 && partial < LOADED,
        "killed mid-load: {partial}"
    );
    let left = state(&killed);
    assert!(
        left.contains("\"ranges\"") && left.contains("\"after\""),
        "{left}"
    );
    let rerun = sync(&killed);
    assert_eq!(
        stream(&rerun, "public.orders")["rows_read"],
        LOADED - partial,
        "only the rest of the unfinished ranges was read"
    );
    assert!(
        notes(&rerun).contains("of 16 key ranges"),
        "{}",
        notes(&rerun)
    );
    assert_eq!(
        killed.table_digest("public_orders"),
        single.table_digest("public_orders")
    );
    assert_eq!(state(&killed), state(&single), "the same watermark");

    // Nothing changed: the next run is an ordinary incremental read on one connection.
    let again = sync(&killed);
    assert_eq!(stream(&again, "public.orders")["rows_read"], 0);
    assert!(!notes(&again).contains("key ranges"), "{}", notes(&again));
}

#[test]
fn ranges_started_after_a_change_still_read_the_snapshot() {
    let url = fresh_database("pg_parallel_snapshot");
    execute(&url, ORDERS);
    // Two connections for eight ranges: the last ones start after the first ones finished,
    // long after the change below.
    let project = project(&url, 2);
    let mut child = project.spawn_until(
        &["sync", "--connection", "pg"],
        "duckdb.after_commit:1:sleep=4000",
    );
    execute(
        &url,
        "UPDATE orders SET note = 'changed', updated_at = updated_at + interval '1 day';
         DELETE FROM orders WHERE id > 50000;
         INSERT INTO orders (id, customer, created_at, updated_at)
           SELECT g, 'new', now(), now() FROM generate_series(1, 100000, 3) g",
    );
    assert!(child.wait().expect("sync ends").success());
    let loaded = project.query(
        "SELECT count(*)::VARCHAR FROM raw.public_orders WHERE note IS DISTINCT FROM 'changed'
           AND customer <> 'new'",
    );
    assert_eq!(loaded[0], LOADED.to_string(), "only rows of the snapshot");
    assert_eq!(
        project.query("SELECT count(*)::VARCHAR FROM raw.public_orders")[0],
        LOADED.to_string(),
        "none of the rows inserted during the read"
    );
    // The next run reads the changes.
    let next = sync(&project);
    assert_eq!(
        stream(&next, "public.orders")["rows_read"],
        query(
            &url,
            "SELECT count(*)::text FROM orders WHERE updated_at IS NOT NULL"
        )[0]
        .parse::<u64>()
        .unwrap()
    );
}

#[test]
fn a_full_refresh_reads_in_parallel_and_other_keys_read_on_one_connection() {
    let url = fresh_database("pg_parallel_refresh");
    execute(
        &url,
        &format!(
            "{ORDERS}; CREATE TABLE tags (name text PRIMARY KEY, n int);
                  INSERT INTO tags SELECT 'tag ' || g, g FROM generate_series(1, 500) g"
        ),
    );
    let project = Project::new(&project_toml(
        &url,
        "batch_rows = 1000",
        "[[connections.pg.streams]]\nname = \"public.orders\"\nparallelism = 3
         sync = \"full_refresh\"\nwrite = \"overwrite\"
         [[connections.pg.streams]]\nname = \"public.tags\"\nparallelism = 3",
    ));
    let summary = sync(&project);
    assert!(
        notes(&summary).contains("12 of 12 key ranges on 3 connections"),
        "{}",
        notes(&summary)
    );
    // A full refresh also loads the rows whose cursor is NULL.
    assert_eq!(stream(&summary, "public.orders")["rows_read"], 40_050);
    let pg = query(
        &url,
        "SELECT count(*)::text || ':' || sum(id)::text FROM orders",
    );
    assert_eq!(
        project.query("SELECT count(*)::VARCHAR || ':' || sum(id)::VARCHAR FROM raw.public_orders"),
        pg
    );
    let tags = stream(&summary, "public.tags");
    assert_eq!(tags["rows_read"], 500);
    assert!(
        tags["notes"]
            .to_string()
            .contains("single-column integer primary key"),
        "{tags}"
    );
}

#[test]
fn parallelism_out_of_range_or_on_a_source_that_cannot_is_refused() {
    let url = fresh_database("pg_parallel_config");
    execute(&url, ORDERS);
    let zero = project(&url, 0)
        .elt(&["sync", "--connection", "pg"])
        .expect_code(2);
    assert!(
        zero.stderr()
            .contains("stream public.orders: `parallelism` is 0; expected 1 to 16"),
        "{}",
        zero.stderr()
    );
    let sample = Project::new(&format!(
        "{}\n[[connections.demo.streams]]\nname = \"orders\"\nparallelism = 2\n",
        crate::common::sample_toml(1000, 500, 0)
    ));
    let refused = sample.elt(&["sync", "--connection", "demo"]).expect_code(2);
    assert!(
        refused
            .stderr()
            .contains("`parallelism` needs a source that reads key ranges"),
        "{}",
        refused.stderr()
    );
}
