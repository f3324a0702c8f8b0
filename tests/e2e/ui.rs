//! `elt ui` over a demo project after three syncs (one failing) and two test runs: headless
//! Chromium loads every page, the tests read the rendered DOM (stream names, row counts
//! equal to `_elt_runs`, the failed run's error), screenshots are saved under the target
//! directory; cross-origin and forged POSTs are refused; and the page keeps serving while a
//! sync holds the DuckDB file, showing the run once it ends.

use std::path::PathBuf;

use crate::common::{DESTINATION, Project};
use crate::ui_common::{Ui, rendered_dom, request, screenshot};

/// The demo project at `generation`, in batches of 500 rows (10 for the failing sync:
/// its fail point comes after a full batch, and a generation changes ~1% of the rows).
fn demo_toml(generation: u32) -> String {
    demo_toml_in_batches(generation, 500)
}

fn demo_toml_in_batches(generation: u32, batch_rows: u32) -> String {
    format!(
        r#"
[sources.sample]
type = "sample"
customers = 300
products = 50
orders = 2000
batch_rows = {batch_rows}
generation = {generation}
{DESTINATION}
[connections.demo]
source = "sample"
destination = "local"
max_retries = 0

[[connections.demo.tests]]
stream = "orders"
not_null = ["customer_id", "status"]
"#
    )
}

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
fn cross_origin_and_forged_posts_are_refused_and_the_page_s_own_form_syncs() {
    let project = Project::new(&demo_toml(0));
    project
        .elt(&["sync", "--connection", "demo"])
        .expect_code(0);
    let ui = Ui::start(&project, &[]);
    let page = request(&ui.addr, "GET", "/connections/demo", &[], "");
    assert_eq!(page.status, 200);
    let csrf = page
        .body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the form's token")
        .to_owned();
    let form = format!("csrf={csrf}");
    let ty = "Content-Type: application/x-www-form-urlencoded";
    let own = format!("Origin: http://{}", ui.addr);
    let refused = [
        vec![ty, "Origin: http://evil.example"],
        vec![ty, "Sec-Fetch-Site: cross-site"],
        vec![ty],
    ];
    for headers in &refused {
        let r = request(&ui.addr, "POST", "/connections/demo/sync", headers, &form);
        assert_eq!(r.status, 403, "{headers:?}: {}", r.body);
        assert!(r.body.contains("cross-site request refused"), "{}", r.body);
    }
    let forged = request(
        &ui.addr,
        "POST",
        "/connections/demo/sync",
        &[ty, &own],
        "csrf=not-the-token",
    );
    assert_eq!(forged.status, 403);
    let rebound = request(&ui.addr, "GET", "/", &["Host: evil.example"], "");
    assert_eq!(rebound.status, 403, "a DNS-rebinding Host is refused");
    // The refusals started nothing: one run in the file. The page's own form syncs.
    assert_eq!(
        project.query("SELECT count(DISTINCT run_id)::VARCHAR FROM raw._elt_runs"),
        ["1"]
    );
    let ok = request(
        &ui.addr,
        "POST",
        "/connections/demo/sync",
        &[ty, &own],
        &form,
    );
    assert_eq!(ok.status, 303, "{}", ok.headers);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let page = request(&ui.addr, "GET", "/connections/demo", &[], "");
        if page.body.matches("data-run=").count() == 6 && !page.body.contains(">running<") {
            assert!(page.body.contains("succeeded"), "{}", page.body);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the sync did not show up"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
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

#[test]
fn dead_letters_show_their_reasons_and_the_replay_button_loads_them() {
    let toml = crate::common::sample_toml(1_000, 500, 0).replace(
        "[connections.demo]\nsource = \"sample\"\ndestination = \"local\"\n",
        "[connections.demo]\nsource = \"sample\"\ndestination = \"local\"\nstreams = [\n  { name = \"orders\", json_schema_path = \"orders.json\" },\n]\n",
    );
    let project = Project::new(&toml);
    let schema = |maximum: u32| {
        let text = format!(
            r#"{{"type": "object", "properties": {{"quantity": {{"type": "integer", "maximum": {maximum}}}}}}}"#
        );
        std::fs::write(project.dir().join("orders.json"), text).unwrap();
    };
    schema(7);
    project
        .elt(&["sync", "--connection", "demo"])
        .expect_code(0);
    let dead: usize = project.query("SELECT count(*)::VARCHAR FROM raw._elt_dead_letter")[0]
        .parse()
        .unwrap();
    assert!(dead > 0);
    let ui = Ui::start(&project, &[]);
    let page = request(&ui.addr, "GET", "/connections/demo/dead-letters", &[], "");
    assert_eq!(page.status, 200);
    assert_eq!(page.body.matches("<td class=\"reason\">").count(), dead);
    assert!(
        page.body
            .contains("/quantity: 8 is greater than the maximum of 7"),
        "{}",
        page.body
    );
    let csrf = page
        .body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the replay form's token")
        .to_owned();

    schema(9);
    let own = format!("Origin: http://{}", ui.addr);
    let replayed = request(
        &ui.addr,
        "POST",
        "/connections/demo/dead-letters/replay",
        &["Content-Type: application/x-www-form-urlencoded", &own],
        &format!("csrf={csrf}&stream=orders"),
    );
    assert_eq!(replayed.status, 303, "{}", replayed.body);
    let after = request(&ui.addr, "GET", "/connections/demo/dead-letters", &[], "");
    assert!(
        after.body.contains(&format!("orders: {dead} replayed")),
        "{}",
        after.body
    );
    assert!(
        after.body.contains("no dead letters"),
        "the page reads the replay's snapshot"
    );
    assert_eq!(
        project.query("SELECT count(*)::VARCHAR FROM raw.orders"),
        ["1000"]
    );
}
