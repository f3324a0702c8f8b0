//! `elt backfill`: a table cut into 30 day windows, loaded by 4 concurrent worker
//! processes, 5 of them SIGKILLed mid-window and rerun, into PostgreSQL (per-window leases)
//! and into DuckDB (workers queue on the file lock); the destination must equal the source
//! row for row, the windows must leave no hole, and every row must come from the run its
//! window records. `ELT_BACKFILL_ROWS` sets the size (30,000 by default; the issue's
//! measurement is 5,000,000).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Instant;

use crate::common::Project;
use crate::pg::{execute, fresh_database, query};

/// The windows that are killed on their first attempt.
const KILLED: [usize; 5] = [2, 7, 13, 21, 28];

fn rows() -> u64 {
    std::env::var("ELT_BACKFILL_ROWS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(30_000)
}

/// `public.events`: `rows` rows over the 30 days of 2024-01-01 to 2024-01-31, some exactly
/// at midnight (a window's first value), with NULLs and unicode, indexed on the cursor as a
/// backfilled table should be.
pub fn seed_source(name: &str, rows: u64) -> String {
    seed_events(name, rows, 30, "")
}

/// [`seed_source`] over `days` days from 2024-01-01, each note ending in `suffix`.
pub fn seed_events(name: &str, rows: u64, days: u32, suffix: &str) -> String {
    let url = fresh_database(name);
    execute(
        &url,
        &format!(
            "CREATE TABLE events (id bigint PRIMARY KEY, at timestamptz NOT NULL,
                 amount numeric(12, 2), note text);
             INSERT INTO events SELECT g,
                 timestamptz '2024-01-01 00:00:00+00' + (g % {days}) * interval '1 day'
                     + CASE WHEN g % 97 = 0 THEN interval '0' ELSE (g::bigint * 7919 % 86400000) * interval '1 millisecond' END,
                 CASE WHEN g % 11 = 0 THEN NULL ELSE (g % 100000) / 100.0 END,
                 CASE WHEN g % 13 = 0 THEN NULL ELSE 'zażółć 🦀 ' || g || '{suffix}' END
             FROM generate_series(1, {rows}) g;
             CREATE INDEX ON events (at);
             ANALYZE events"
        ),
    );
    url
}

/// A project whose connection `bf` reads public.events (cursor `at`) from `source` into
/// `destination` (dataset raw, table events) with write mode `write`.
pub fn project(source: &str, destination: &str, write: &str, rows: u64) -> Project {
    let batch = (rows / 30 / 4).clamp(100, 50_000);
    Project::new(&format!(
        r#"
[sources.pg]
type = "postgres"
url = "{source}"
batch_rows = {batch}

{destination}

[connections.bf]
source = "pg"
destination = "dest"
dataset = "raw"
streams = [{{ name = "public.events", sync = "incremental", cursor = "at", write = "{write}", table = "events" }}]
"#
    ))
}

/// One line per row, sorted by id, the same text in PostgreSQL and DuckDB.
pub fn pg_rows(url: &str, table: &str) -> Vec<String> {
    pg_rows_where(url, table, "true")
}

/// [`pg_rows`] of the rows matching `filter`.
pub fn pg_rows_where(url: &str, table: &str, filter: &str) -> Vec<String> {
    query(
        url,
        &format!(
            "SELECT id || '|' || (extract(epoch FROM at) * 1000000)::bigint || '|' \
             || coalesce((amount * 100)::bigint::text, '-') || '|' || coalesce(note, '-') \
             FROM {table} WHERE {filter} ORDER BY id"
        ),
    )
}

pub fn duck_rows(project: &Project) -> Vec<String> {
    crate::common::query(
        &project.dir().join("bf.duckdb"),
        "SELECT id || '|' || epoch_us(\"at\") || '|' || coalesce(CAST(amount * 100 AS BIGINT)::VARCHAR, '-') \
         || '|' || coalesce(note, '-') FROM raw.events ORDER BY id",
    )
}

/// Runs every window of `plan` on 4 workers, each window its own `elt backfill run`
/// process; the first attempt of each window in [`KILLED`] is SIGKILLed once it has loaded
/// two batches, and the window goes back on the queue.
fn run_on_four_workers(project: &Project, plan: &std::path::Path, windows: usize) {
    let queue: Mutex<VecDeque<(usize, bool)>> =
        Mutex::new((0..windows).map(|w| (w, KILLED.contains(&w))).collect());
    let plan = plan.to_str().unwrap();
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                loop {
                    let Some((window, kill)) = queue.lock().unwrap().pop_front() else {
                        return;
                    };
                    let index = window.to_string();
                    let args = [
                        &run_window(plan, &index)[..],
                        &["--wait-for-lock", "3600", "--quiet"],
                    ]
                    .concat();
                    if kill {
                        let mut child = project.spawn_until(&args, "load.after_batch:2:pause");
                        child.kill().expect("SIGKILL");
                        child.wait().expect("reap");
                        queue.lock().unwrap().push_back((window, false));
                    } else {
                        project.elt(&args).expect_code(0);
                    }
                }
            });
        }
    });
}

/// `elt backfill run --plan PLAN --window INDEX`.
pub fn run_window<'a>(plan: &'a str, index: &'a str) -> [&'a str; 8] {
    [
        "backfill",
        "run",
        "--connection",
        "bf",
        "--plan",
        plan,
        "--window",
        index,
    ]
}

/// `elt backfill VERB` of stream public.events over January 2024 `--by BY`.
pub fn january<'a>(verb: &'a str, by: &'a str) -> [&'a str; 12] {
    over(verb, ("2024-01-01", "2024-01-31"), by)
}

/// `elt backfill VERB` of stream public.events over `[from, to)` `--by BY`.
pub fn over<'a>(verb: &'a str, (from, to): (&'a str, &'a str), by: &'a str) -> [&'a str; 12] {
    [
        "backfill",
        verb,
        "--connection",
        "bf",
        "--stream",
        "public.events",
        "--from",
        from,
        "--to",
        to,
        "--by",
        by,
    ]
}

/// Plans 30 day windows into `plan.json`; returns its path.
pub fn plan_days(project: &Project) -> std::path::PathBuf {
    let plan = project
        .elt(&[&january("plan", "day")[..], &["--json"]].concat())
        .expect_code(0);
    let json = plan.json();
    assert_eq!(json["windows"].as_array().unwrap().len(), 30);
    assert_eq!(json["windows"][0]["from"], "2024-01-01T00:00:00.000000Z");
    assert_eq!(json["windows"][29]["to"], "2024-01-31T00:00:00.000000Z");
    let path = project.dir().join("plan.json");
    std::fs::write(&path, plan.stdout()).unwrap();
    path
}

/// Plans the 30 days, runs them on four workers (killing five), prints the time, and
/// checks that every window is done; returns the plan's path.
fn backfill_on_four_workers(project: &Project, into: &str, rows: u64) -> std::path::PathBuf {
    let plan = plan_days(project);
    let started = Instant::now();
    run_on_four_workers(project, &plan, 30);
    eprintln!(
        "backfill of {rows} rows into {into}: {:.1?}",
        started.elapsed()
    );
    assert_all_done(project, &plan);
    plan
}

/// `elt backfill status` against the plan: every window done, no holes.
fn assert_all_done(project: &Project, plan: &std::path::Path) {
    let status = project
        .elt(&[
            "backfill",
            "status",
            "--connection",
            "bf",
            "--plan",
            plan.to_str().unwrap(),
            "--json",
        ])
        .expect_code(0)
        .json();
    let states: Vec<_> = status["windows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["state"] != "done")
        .collect();
    assert!(states.is_empty(), "not done: {states:?}");
    assert_eq!(status["holes"], serde_json::json!([]), "{status}");
    assert_eq!(status["completed"].as_array().unwrap().len(), 30);
    assert_eq!(
        status["done"],
        serde_json::json!([{"from": "2024-01-01T00:00:00.000000Z", "to": "2024-01-31T00:00:00.000000Z"}])
    );
}

#[test]
fn thirty_windows_on_four_killed_workers_into_postgres_equal_the_source() {
    let rows = rows();
    let source = seed_source("bf_pg_src", rows);
    let dest = fresh_database("bf_pg_dst");
    let destination =
        format!("[destinations.dest]\ntype = \"postgres\"\nurl = \"{dest}\"\nlease_secs = 1\n");
    let project = project(&source, &destination, "append", rows);
    let plan = backfill_on_four_workers(&project, "PostgreSQL", rows);
    assert_eq!(pg_rows(&dest, "raw.events"), pg_rows(&source, "events"));
    // Each row was loaded by the run its window records, so no window was loaded twice.
    assert_eq!(
        query(
            &dest,
            "SELECT count(*)::text FROM raw.events e JOIN raw._elt_windows w
               ON e.at >= w.window_from::timestamptz AND e.at < w.window_to::timestamptz
             WHERE e._elt_run_id::text = w.run_id"
        ),
        [rows.to_string()]
    );
    assert_eq!(
        query(
            &dest,
            "SELECT count(*)::text FROM raw._elt_runs WHERE status = 'abandoned'"
        ),
        ["5"]
    );
    // Both databases digest every window alike.
    let reconcile = [
        "reconcile",
        "--connection",
        "bf",
        "--stream",
        "public.events",
        "--by",
        "day",
    ];
    let agreed = project.elt(&reconcile).expect_code(0).stdout();
    assert!(agreed.contains("every window agrees"), "{agreed}");
    // A rerun of a done window is skipped; --force reloads it in place.
    let plan = plan.to_str().unwrap();
    let again = run_window(plan, "4");
    let skipped = project.elt(&again).expect_code(0);
    assert!(
        skipped.stdout().contains("done already"),
        "{}",
        skipped.stdout()
    );
    let forced = project
        .elt(&[&again[..], &["--force"]].concat())
        .expect_code(0);
    assert!(
        forced
            .stdout()
            .contains("earlier rows in the table were replaced"),
        "{}",
        forced.stdout()
    );
    assert_eq!(pg_rows(&dest, "raw.events"), pg_rows(&source, "events"));
}

#[test]
fn thirty_windows_on_four_killed_workers_into_duckdb_queue_on_the_file_lock() {
    let rows = rows();
    let source = seed_source("bf_duck_src", rows);
    let destination = "[destinations.dest]\ntype = \"duckdb\"\npath = \"bf.duckdb\"\nthreads = 1\n";
    let project = project(&source, destination, "append", rows);
    backfill_on_four_workers(&project, "DuckDB", rows);
    assert_eq!(duck_rows(&project), pg_rows(&source, "events"));
    let shown = project
        .elt(&["state", "show", "--connection", "bf"])
        .expect_code(0)
        .stdout();
    assert!(
        shown.contains("done: [2024-01-01T00:00:00.000000Z, 2024-01-31T00:00:00.000000Z)")
            && shown.contains("holes: none"),
        "{shown}"
    );
}
