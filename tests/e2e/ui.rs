//! `elt ui` over a demo project after three syncs (one failing) and two test runs: headless
//! Chromium loads every page, the tests read the rendered DOM (stream names, row counts
//! equal to `_elt_runs`, the failed run's error), screenshots are saved under the target
//! directory (`ELT_BLESS=1` also renews docs/ui-connection.png, the README's); and the
//! page keeps serving while a sync holds the DuckDB file, showing the run once it ends.
//! Its actions and access rules: `ui_actions.rs`.

use std::path::PathBuf;

use crate::common::Project;
use crate::ui_common::{Ui, demo_toml, demo_toml_in_batches, rendered_dom, request, screenshot};

/// Text as Chromium serializes it inside an element.
fn dom_text(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Where the screenshots go (kept after the test, for people to look at).
fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

/// The number in the `class` cell that follows `anchor` in `dom`.
fn cell_after(dom: &str, anchor: &str, class: &str) -> String {
    let at = dom
        .find(anchor)
        .unwrap_or_else(|| panic!("{anchor} not on the page"));
    let rest = &dom[at..];
    let cell = format!("class=\"num {class}\">");
    let start = rest.find(&cell).expect("cell") + cell.len();
    rest[start..]
        .split('<')
        .next()
        .unwrap_or("")
        .replace(',', "")
}

#[test]
fn every_page_renders_the_demo_after_three_syncs_one_failing() {
    let project = Project::new(&demo_toml(0));
    project
        .elt(&["sync", "--connection", "demo"])
        .expect_code(0);
    project.write_config(&demo_toml_in_batches(1, 10));
    let failing = project
        .command(&["sync", "--connection", "demo"])
        .env("ELT_FAILPOINT", "sample.after_checkpoint:1:fail")
        .output()
        .expect("run elt");
    assert_ne!(
        failing.status.code(),
        Some(0),
        "the second sync fails a stream"
    );
    project.write_config(&demo_toml(1));
    project
        .elt(&["sync", "--connection", "demo"])
        .expect_code(0);
    project
        .elt(&["test", "--connection", "demo"])
        .expect_code(0);
    project
        .elt(&["test", "--connection", "demo"])
        .expect_code(0);

    let ui = Ui::start(&project, &[]);
    let profile = tempfile::tempdir().expect("chromium profile");
    let shots = screenshots();
    let pages = [
        ("overview", "/"),
        ("connection", "/connections/demo"),
        ("tests", "/connections/demo/tests"),
        ("dead-letters", "/connections/demo/dead-letters"),
        ("plan", "/connections/demo/plan"),
    ];
    let mut doms = std::collections::HashMap::new();
    for (name, path) in pages {
        let dom = rendered_dom(profile.path(), &ui.url(path));
        let shot = shots.join(format!("{name}.png"));
        screenshot(profile.path(), &ui.url(path), &shot);
        eprintln!("screenshot of {path}: {}", shot.display());
        // `ELT_BLESS=1` renews the README's screenshot from this run.
        if name == "connection" && std::env::var_os("ELT_BLESS").is_some() {
            let readme = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/ui-connection.png");
            std::fs::copy(&shot, readme).expect("copy the README's screenshot");
        }
        doms.insert(name, dom);
    }

    // Overview: every stream with its last run's rows, as _elt_runs has them.
    let last = project.query(
        "SELECT stream || '=' || rows_loaded FROM raw._elt_runs
         QUALIFY row_number() OVER (PARTITION BY stream ORDER BY run_id DESC) = 1 ORDER BY stream",
    );
    assert_eq!(last.len(), 3, "{last:?}");
    for entry in &last {
        let (stream, rows) = entry.split_once('=').unwrap();
        let anchor = format!("data-connection=\"demo\" data-stream=\"{stream}\"");
        assert_eq!(
            cell_after(&doms["overview"], &anchor, "rows-loaded"),
            rows,
            "{stream}"
        );
    }

    // The runs page: every stream of every run, its rows as in _elt_runs; the error.
    let runs = project.query(
        "SELECT run_id || '|' || stream || '|' || rows_loaded || '|' || status FROM raw._elt_runs",
    );
    assert_eq!(runs.len(), 9, "three runs of three streams: {runs:?}");
    let connection = &doms["connection"];
    for run in &runs {
        let parts: Vec<&str> = run.split('|').collect();
        let anchor = format!("data-run=\"{}\" data-stream=\"{}\"", parts[0], parts[1]);
        assert_eq!(
            cell_after(connection, &anchor, "rows-loaded"),
            parts[2],
            "{run}"
        );
    }
    let error = project.query("SELECT error FROM raw._elt_runs WHERE status = 'failed'");
    assert_eq!(error.len(), 1, "{error:?}");
    assert!(
        connection.contains(&dom_text(&error[0])),
        "the failed run's error: {}",
        error[0]
    );
    assert!(connection.contains("Rows loaded per run"), "charts");
    assert!(connection.contains("<svg"), "charts");

    // Tests over time, dead letters, the plan.
    let tests = &doms["tests"];
    let recorded = project.query("SELECT DISTINCT test FROM raw._elt_test_results ORDER BY 1");
    assert!(!recorded.is_empty());
    for test in &recorded {
        assert!(tests.contains(&dom_text(test)), "{test} on the tests page");
    }
    assert_eq!(
        tests.matches("<rect class=\"ok\"").count(),
        2 * recorded.len(),
        "two runs each"
    );
    assert!(doms["dead-letters"].contains("no dead letters"));
    let plan = &doms["plan"];
    for stream in ["customers", "orders", "products"] {
        assert!(
            plan.contains(&format!("<td>{stream}</td>")),
            "{stream} in the plan"
        );
    }
    assert_eq!(plan.matches("no schema change").count(), 3, "{plan}");
}

#[test]
fn the_page_keeps_serving_while_a_sync_holds_the_file_and_shows_its_run_when_it_ends() {
    let project = Project::new(&demo_toml(0));
    project
        .elt(&["sync", "--connection", "demo"])
        .expect_code(0);
    let first: Vec<String> = project.query("SELECT DISTINCT run_id FROM raw._elt_runs");
    let ui = Ui::start(&project, &[]);
    project.write_config(&demo_toml(1));
    // The sync stops 4 s after its second commit, holding DuckDB's lock on the file.
    let sync = project.spawn_until(
        &["sync", "--connection", "demo", "--json"],
        "duckdb.after_commit:2:sleep=4000",
    );
    let during = request(&ui.addr, "GET", "/connections/demo", &[], "");
    assert_eq!(during.status, 200, "{}", during.body);
    assert!(during.body.contains(&first[0]), "the earlier run is shown");
    assert!(
        during.body.contains("class=\"status running\">running<"),
        "the running sync's current stream is shown: {}",
        during.body
    );
    let overview = request(&ui.addr, "GET", "/", &[], "");
    assert_eq!(overview.status, 200);
    // The CLI reads what the sync published too, and says so.
    let runs = project
        .elt(&["runs", "--connection", "demo"])
        .expect_code(0);
    assert!(
        runs.stderr()
            .contains("showing what that sync has published"),
        "{}",
        runs.stderr()
    );
    assert!(runs.stdout().contains(&first[0]), "{}", runs.stdout());

    let output = sync.wait_with_output().expect("the sync");
    assert_eq!(output.status.code(), Some(0));
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).expect("summary");
    let run_id = summary["run_id"].as_str().unwrap();
    let after = request(&ui.addr, "GET", "/connections/demo", &[], "");
    assert_eq!(after.status, 200);
    assert_eq!(
        after
            .body
            .matches(&format!("data-run=\"{run_id}\""))
            .count(),
        3,
        "the new run's streams"
    );
}
