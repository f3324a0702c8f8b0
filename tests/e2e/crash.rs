//! Kill `elt sync` with SIGKILL in the middle of a multi-batch load and rerun it: the
//! tables equal those of one clean run (no row lost, none duplicated).

use crate::common::Project;

/// Starts a sync that stops at `failpoint`, waits until it gets there, and kills it.
pub fn kill_at(project: &Project, connection: &str, failpoint: &str) {
    let mut child = project.spawn_until(&["sync", "--connection", connection], failpoint);
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
}

fn assert_equal_to_clean_run(project: &Project) {
    let clean = Project::sample(60_000, 2_000, 0);
    clean.elt(&["sync", "--connection", "demo"]).expect_code(0);
    for table in ["customers", "products", "orders"] {
        assert_eq!(
            project.table_digest(table),
            clean.table_digest(table),
            "table {table}"
        );
    }
}

#[test]
fn killed_after_a_commit_then_rerun_equals_a_clean_run() {
    let project = Project::sample(60_000, 2_000, 0);
    // The 10th commit is in the middle of `orders` (30 batches).
    kill_at(&project, "demo", "duckdb.after_commit:10:pause");
    let partial: u64 = project.query("SELECT count(*)::VARCHAR FROM raw.orders")[0]
        .parse()
        .unwrap();
    assert!(
        partial > 0 && partial < 60_000,
        "killed mid-load: {partial} rows"
    );
    let rerun = project
        .elt(&["sync", "--connection", "demo", "--json"])
        .expect_code(0)
        .json();
    let orders = crate::common::stream(&rerun, "orders");
    assert_eq!(
        orders["rows_read"].as_u64().unwrap(),
        60_000 - partial,
        "resumed after the last commit"
    );
    assert_equal_to_clean_run(&project);
}

#[test]
fn killed_before_a_commit_then_rerun_equals_a_clean_run() {
    let project = Project::sample(60_000, 2_000, 0);
    kill_at(&project, "demo", "duckdb.before_commit:12:pause");
    project
        .elt(&["sync", "--connection", "demo"])
        .expect_code(0);
    assert_equal_to_clean_run(&project);
    // The rerun found the killed run's `running` row and closed it.
    let runs = project
        .elt(&["runs", "--connection", "demo", "--json"])
        .expect_code(0)
        .json();
    let rows = runs["runs"].as_array().expect("runs");
    let statuses = |run: &serde_json::Value| -> Vec<String> {
        let mut s: Vec<String> = rows
            .iter()
            .filter(|r| r["run_id"] == *run)
            .map(|r| {
                format!(
                    "{}={}",
                    r["stream"].as_str().unwrap(),
                    r["status"].as_str().unwrap()
                )
            })
            .collect();
        s.sort();
        s
    };
    let (newest, killed) = (&rows[0]["run_id"], &rows[rows.len() - 1]["run_id"]);
    assert_ne!(newest, killed, "two runs: {runs}");
    assert_eq!(
        statuses(killed),
        [
            "customers=succeeded",
            "orders=abandoned",
            "products=succeeded"
        ]
    );
    assert_eq!(
        statuses(newest),
        [
            "customers=succeeded",
            "orders=succeeded",
            "products=succeeded"
        ]
    );
    let abandoned = rows.iter().find(|r| r["status"] == "abandoned").unwrap();
    assert!(abandoned["ended_at"].is_string(), "{abandoned}");
    assert!(
        abandoned["error"]
            .as_str()
            .unwrap()
            .contains("killed or crashed"),
        "{abandoned}"
    );
}

#[test]
fn a_transient_error_is_retried_from_the_last_commit() {
    let project = Project::new(&crate::common::sample_toml(20_000, 2_000, 0).replace(
        "destination = \"local\"\n",
        "destination = \"local\"\nstreams = [{ name = \"orders\", write = \"append\" }]\n",
    ));
    let run = project
        .command(&["sync", "--connection", "demo", "--json"])
        .env("ELT_FAILPOINT", "sample.after_checkpoint:5:fail")
        .output()
        .expect("run elt");
    let run = crate::common::Run(run).expect_code(0);
    let orders = crate::common::stream(&run.json(), "orders").clone();
    assert_eq!(orders["attempts"], 2);
    // Append mode would show any row read twice.
    assert_eq!(
        project.query("SELECT count(*) || ':' || count(DISTINCT id) FROM raw.orders"),
        ["20000:20000"]
    );
    assert_eq!(orders["rows_loaded"], 20_000);
    assert!(run.stderr().contains("retrying in"), "{}", run.stderr());
}
