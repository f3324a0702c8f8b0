//! What schedulers and log collectors rely on: JSON log lines, `elt runs`, shell completions
//! and the man page.

use crate::common::Project;

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect()
}

#[test]
fn json_logs_are_one_object_per_line_with_connection_stream_and_run_id() {
    let project = Project::sample(5_000, 1_000, 0);
    let run = project
        .elt(&[
            "sync",
            "--connection",
            "demo",
            "--json",
            "--log-format",
            "json",
        ])
        .expect_code(0);
    let run_id = run.json()["run_id"].clone();
    let lines = json_lines(&run.stderr());
    for line in &lines {
        for key in ["timestamp", "level", "message", "connection", "run_id"] {
            assert!(line.get(key).is_some(), "{key} missing: {line}");
        }
        assert_eq!(line["run_id"], run_id, "{line}");
        assert_eq!(line["connection"], "demo", "{line}");
    }
    let finished: Vec<_> = lines
        .iter()
        .filter(|l| l["message"] == "stream finished")
        .collect();
    let streams: Vec<_> = finished
        .iter()
        .map(|l| l["stream"].as_str().unwrap())
        .collect();
    assert_eq!(streams, ["customers", "products", "orders"]);
    assert_eq!(finished[2]["rows_loaded"], 5_000);
    assert_eq!(finished[2]["status"], "succeeded");

    // A command that fails says so in one JSON line, with its exit code.
    let failed = project
        .elt(&["--log-format", "json", "sync", "--connection", "nope"])
        .expect_code(2);
    let lines = json_lines(&failed.stderr());
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["level"], "error");
    assert_eq!(lines[0]["exit_code"], 2);
    assert!(lines[0]["error"].as_str().unwrap().contains("nope"));
}

#[test]
fn runs_lists_recent_runs_newest_first() {
    let project = Project::sample(3_000, 1_000, 0);
    let first = project
        .elt(&["sync", "--connection", "demo", "--json"])
        .expect_code(0)
        .json();
    let second = project
        .elt(&["sync", "--connection", "demo", "--json"])
        .expect_code(0)
        .json();
    let all = project
        .elt(&["runs", "--connection", "demo", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(all["version"], 1);
    let rows = all["runs"].as_array().unwrap();
    assert_eq!(rows.len(), 6, "two runs of three streams");
    assert_eq!(rows[0]["run_id"], second["run_id"]);
    assert_eq!(rows[5]["run_id"], first["run_id"]);
    let orders = rows.iter().find(|r| r["stream"] == "orders").unwrap();
    assert_eq!(orders["rows_read"], 0, "the second run found nothing new");
    assert_eq!(orders["watermark_before"], orders["watermark_after"]);

    let latest = project
        .elt(&["runs", "--connection", "demo", "--limit", "1"])
        .expect_code(0)
        .stdout();
    assert!(
        latest.contains(second["run_id"].as_str().unwrap()),
        "{latest}"
    );
    assert!(
        !latest.contains(first["run_id"].as_str().unwrap()),
        "{latest}"
    );
    assert!(latest.starts_with("run "), "{latest}");
}

#[test]
fn completions_and_man_page_come_from_the_command_line_definition() {
    let project = Project::sample(10, 10, 0);
    let bash = project
        .elt(&["completions", "bash"])
        .expect_code(0)
        .stdout();
    assert!(
        bash.contains("--wait-for-lock") && bash.contains("dbt-sources"),
        "bash"
    );
    let zsh = project.elt(&["completions", "zsh"]).expect_code(0).stdout();
    assert!(zsh.starts_with("#compdef elt"), "zsh");
    let man = project.elt(&["man"]).expect_code(0).stdout();
    assert!(man.contains(".TH elt 1"), "{man}");
    assert!(man.contains("runs"), "{man}");
    project.elt(&["completions", "tcsh"]).expect_code(2);
}
