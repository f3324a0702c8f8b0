//! The backfill examples work as written: the Airflow DAG mapped over a plan's windows and
//! the Dagster daily partitions each run a 10-window backfill of public.events from
//! PostgreSQL into DuckDB, and the Kubernetes Indexed Job validates against the Kubernetes
//! schema (kubernetes-validate, in the example's environment of scripts/python-envs.sh).

use std::process::Command;

use crate::backfill::{duck_rows, pg_rows, project, seed_source};
use crate::common::Project;
use crate::examples::{
    assert_configmap_project_is_valid, assert_success, examples, python_env, run_python,
};

/// Ten days of public.events (January 1 to 10) and a project whose connection `bf` reads
/// them into bf.duckdb by merge.
fn ten_days(name: &str) -> (String, Project) {
    let source = seed_source(name, 3_000);
    crate::pg::execute(&source, "DELETE FROM events WHERE at >= '2024-01-11+00'");
    let destination = "[destinations.dest]\ntype = \"duckdb\"\npath = \"bf.duckdb\"\n";
    let project = project(&source, destination, "merge", 3_000);
    (source, project)
}

/// After an example ran: the destination equals the source and the ten days are done.
fn assert_ten_windows_done(source: &str, project: &Project) {
    assert_eq!(duck_rows(project), pg_rows(source, "events"));
    let status = project
        .elt(&[
            "backfill",
            "status",
            "--connection",
            "bf",
            "--stream",
            "public.events",
            "--from",
            "2024-01-01",
            "--to",
            "2024-01-11",
            "--by",
            "day",
            "--json",
        ])
        .expect_code(0)
        .json();
    let done = status["windows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["state"] == "done");
    assert_eq!(done.count(), 10, "{status}");
    assert_eq!(status["holes"], serde_json::json!([]), "{status}");
}

#[test]
fn airflow_maps_a_task_over_the_windows_of_a_plan() {
    let (source, project) = ten_days("ex_bf_airflow");
    if run_python("airflow", "test_elt_backfill_dag.py", &project) {
        assert_ten_windows_done(&source, &project);
    }
}

#[test]
fn dagster_daily_partitions_are_backfill_windows() {
    let (source, project) = ten_days("ex_bf_dagster");
    if run_python("dagster", "test_elt_backfill_assets.py", &project) {
        assert_ten_windows_done(&source, &project);
    }
}

#[test]
fn kubernetes_indexed_job_validates_and_runs_one_window_per_index() {
    let manifest = examples().join("kubernetes/backfill-job.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    assert!(text.contains("completionMode: Indexed"));
    assert!(
        text.contains("- $(JOB_COMPLETION_INDEX)"),
        "the index is the window"
    );
    assert_configmap_project_is_valid(&text, "[connections.pg_to_pg]");
    let Some(bin) = python_env("kubernetes") else {
        return;
    };
    let cronjob = examples().join("kubernetes/cronjob.yaml");
    let output = Command::new(bin.join("kubernetes-validate"))
        .args(["--strict", "--no-warn"])
        .args([&manifest, &cronjob])
        .output()
        .expect("kubernetes-validate");
    assert_success(&output, "kubernetes-validate");
    // It exits 0 on invalid resources too, and says so.
    let said = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(
        !said.contains("ERROR") && said.matches("passed").count() == 5,
        "{said}"
    );
}
