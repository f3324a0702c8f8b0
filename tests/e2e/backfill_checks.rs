//! `elt backfill` and `elt reconcile` around the edges: plans refused with the fix named,
//! a window that excludes overlapping windows and syncs of its stream, and a reconciliation
//! that names the changed windows and repairs only those. The concurrent, killed workers
//! are in `backfill.rs`.

use crate::backfill::{duck_rows, january, pg_rows, plan_days, project, run_window, seed_source};
use crate::pg::{execute, fresh_database, query};

#[test]
fn plans_refuse_what_windows_cannot_cut() {
    let source = seed_source("bf_refuse", 1_000);
    let dest = "[destinations.dest]\ntype = \"duckdb\"\npath = \"bf.duckdb\"\n";
    let project = project(&source, dest, "append", 1_000);
    let plan = |extra: &[&str]| {
        let base = [
            "backfill",
            "plan",
            "--connection",
            "bf",
            "--stream",
            "public.events",
        ];
        project.elt(&[&base[..], extra].concat())
    };
    let empty = plan(&["--from", "2024-02-01", "--to", "2024-01-01", "--by", "day"]);
    assert_eq!(empty.code(), 2);
    assert!(
        empty.stderr().contains("is not before --to"),
        "{}",
        empty.stderr()
    );
    let bad = plan(&["--from", "yesterday", "--to", "2024-01-01", "--by", "day"]);
    assert_eq!(bad.code(), 2);
    assert!(
        bad.stderr()
            .contains("--from `yesterday` is not a timestamp"),
        "{}",
        bad.stderr()
    );
    let size = plan(&[
        "--from",
        "2024-01-01",
        "--to",
        "2024-01-31",
        "--by",
        "fortnight",
    ]);
    assert_eq!(size.code(), 2, "{}", size.stderr());
    // Sized from pg_stats: about 100 rows a window over 1,000 rows.
    let sized = plan(&[
        "--from",
        "2024-01-01",
        "--to",
        "2024-01-31",
        "--by",
        "100-rows",
        "--json",
    ])
    .expect_code(0)
    .json();
    let count = sized["windows"].as_array().unwrap().len();
    assert!((6..=14).contains(&count), "{count} windows: {sized}");
    let missing = project.elt(&["backfill", "run", "--connection", "bf", "--window", "0"]);
    assert_eq!(missing.code(), 2);
    assert!(
        missing.stderr().contains("--stream is missing"),
        "{}",
        missing.stderr()
    );
}

#[test]
fn a_window_excludes_overlapping_windows_and_syncs_of_its_stream_in_postgres() {
    let source = seed_source("bf_conflict_src", 3_000);
    let dest = fresh_database("bf_conflict_dst");
    let destination =
        format!("[destinations.dest]\ntype = \"postgres\"\nurl = \"{dest}\"\nlease_secs = 1\n");
    let project = project(&source, &destination, "merge", 3_000);
    let plan = plan_days(&project);
    let plan = plan.to_str().unwrap();
    let window = |index| run_window(plan, index);
    let mut paused = project.spawn_until(&window("0"), "load.after_batch:1:pause");
    let sync = project.elt(&["sync", "--connection", "bf"]);
    assert_eq!(sync.code(), 3, "{}", sync.stdout());
    assert!(
        sync.stdout().contains("cannot load while public.events ["),
        "{}",
        sync.stdout()
    );
    let week = [&january("run", "week")[..], &["--window", "0"]].concat();
    let overlapping = project.elt(&week);
    assert_eq!(overlapping.code(), 3, "{}", overlapping.stdout());
    let status = project
        .elt(&["backfill", "status", "--connection", "bf", "--plan", plan])
        .expect_code(0)
        .stdout();
    assert!(
        status.contains(
            "    0  [2024-01-01T00:00:00.000000Z, 2024-01-02T00:00:00.000000Z)  running (PID"
        ),
        "{status}"
    );
    project.elt(&window("1")).expect_code(0);
    paused.kill().unwrap();
    paused.wait().unwrap();
    // Once the killed worker's lease ran out, the week (days 0 to 6) loads.
    project
        .elt(&[&week[..], &["--wait-for-lock", "10"]].concat())
        .expect_code(0);
    assert_eq!(
        query(&dest, "SELECT count(*)::text FROM raw.events"),
        query(
            &source,
            "SELECT count(*)::text FROM events WHERE at < '2024-01-08+00'"
        )
    );
}

#[test]
fn reconcile_names_the_windows_that_changed_and_repair_reads_only_those() {
    let source = seed_source("bf_reconcile", 30_000);
    let destination = "[destinations.dest]\ntype = \"duckdb\"\npath = \"bf.duckdb\"\n";
    let project = project(&source, destination, "append", 30_000);
    let plan = plan_days(&project);
    project
        .elt(&[
            "backfill",
            "run",
            "--connection",
            "bf",
            "--plan",
            plan.to_str().unwrap(),
            "--quiet",
        ])
        .expect_code(0);
    // Days 5, 12 and 20 change: rows deleted, a text and a decimal altered (the cursor
    // stays).
    execute(
        &source,
        "DELETE FROM events WHERE at >= '2024-01-06+00' AND at < '2024-01-07+00' AND id % 7 = 0;
         UPDATE events SET note = note || '!' WHERE id = (SELECT min(id) FROM events
             WHERE at >= '2024-01-13+00' AND at < '2024-01-14+00');
         UPDATE events SET amount = amount + 0.01 WHERE id = (SELECT max(id) FROM events
             WHERE at >= '2024-01-21+00' AND at < '2024-01-22+00' AND amount IS NOT NULL)",
    );
    let args = [
        "reconcile",
        "--connection",
        "bf",
        "--stream",
        "public.events",
        "--by",
        "day",
        "--json",
    ];
    let found = project.elt(&args).expect_code(1).json();
    assert_eq!(
        found["differing"],
        serde_json::json!([5, 12, 20]),
        "{found}"
    );
    assert_eq!(
        found["compared"],
        serde_json::json!(["id", "at", "amount", "note"])
    );
    let repaired = project
        .elt(&[&args[..], &["--repair", "--quiet"]].concat())
        .expect_code(0)
        .json();
    let in_windows = query(
        &source,
        "SELECT count(*)::text FROM events WHERE (at >= '2024-01-06+00' AND at < '2024-01-07+00')
             OR (at >= '2024-01-13+00' AND at < '2024-01-14+00')
             OR (at >= '2024-01-21+00' AND at < '2024-01-22+00')",
    );
    assert_eq!(
        repaired["repair"]["source_rows_read"].to_string(),
        in_windows[0],
        "the repair read only the three windows"
    );
    assert_eq!(duck_rows(&project), pg_rows(&source, "events"));
    project.elt(&args).expect_code(0);
}
