//! The examples/ directory works as written: the cron wrapper, the Airflow DAG, the Dagster
//! assets and the Kubernetes project file, each against a demo project made by `elt init`
//! (the dbt project: `examples_dbt.rs`).
//!
//! The Python examples run in the virtual environments of scripts/python-envs.sh
//! (`ELT_PY_DIR`, default /var/tmp/elt-py). Without one a test checks the files' syntax
//! and says so on stderr; with `ELT_REQUIRE_PYTHON_EXAMPLES=1` (as in .ci/run) a missing
//! environment fails the test instead.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::common::{Project, elt_bin};

pub fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// A project with the `elt init` template: the demo connection into data/demo.duckdb.
pub fn demo_project() -> Project {
    let project = Project::new("");
    project.elt(&["init", "--force"]).expect_code(0);
    project
}

/// The `bin` directory of an example's virtual environment, if it was made.
pub fn python_env(example: &str) -> Option<PathBuf> {
    let root =
        std::env::var_os("ELT_PY_DIR").map_or_else(|| "/var/tmp/elt-py".into(), PathBuf::from);
    let env = root.join(example);
    if env.join(".requirements.sha256").exists() {
        return Some(env.join("bin"));
    }
    assert_ne!(
        std::env::var("ELT_REQUIRE_PYTHON_EXAMPLES").as_deref(),
        Ok("1"),
        "no Python environment for examples/{example} in {}: run scripts/python-envs.sh",
        root.display()
    );
    eprintln!(
        "examples/{example}: no Python environment (run scripts/python-envs.sh); checking \
         syntax only"
    );
    None
}

/// Fails unless every file compiles as Python.
fn check_syntax(files: &[PathBuf]) {
    let output = Command::new("python3")
        .args(["-m", "py_compile"])
        .args(files)
        .output()
        .expect("python3");
    assert_success(&output, "py_compile");
}

pub fn assert_success(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs an example's Python test script against `project` (ELT_PROJECT_DIR); returns
/// whether it ran, or only had its syntax checked for want of an environment.
pub fn run_python(example: &str, script: &str, project: &Project) -> bool {
    let path = examples().join(example).join(script);
    let Some(bin) = python_env(example) else {
        let module = script.trim_start_matches("test_");
        check_syntax(&[path.clone(), examples().join(example).join(module)]);
        return false;
    };
    let home = tempfile::tempdir().expect("temp dir");
    let output = Command::new(bin.join("python"))
        .arg(&path)
        .env("ELT_BIN", elt_bin())
        .env("ELT_PROJECT_DIR", project.dir())
        .env("AIRFLOW_HOME", home.path())
        .env("DAGSTER_HOME", home.path())
        .env_remove("ELT_FAILPOINT")
        .env_remove("ELT_CONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("run the example's test");
    assert_success(&output, &format!("examples/{example}/{script}"));
    true
}

/// Runs an example's Python test script against a demo project. The script syncs twice
/// (everything, then `orders` alone); with its environment present, the DuckDB file must
/// show both runs.
fn run_python_example(example: &str, script: &str) {
    let project = demo_project();
    if run_python(example, script, &project) {
        assert_eq!(count(&project, "orders"), "20000");
        assert_eq!(run_ids(&project).len(), 2, "all streams, then orders alone");
    }
}

/// `elt validate` accepts the project of a manifest's ConfigMap (its `elt.toml: |` block,
/// indented four spaces), which has `connection`; the secrets are set to sample URLs.
pub fn assert_configmap_project_is_valid(manifest: &str, connection: &str) {
    let toml: String = manifest
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("elt.toml: |"))
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with("    "))
        .map(|l| format!("{}\n", l.strip_prefix("    ").unwrap_or(l)))
        .collect();
    assert!(toml.contains(connection), "{toml}");
    let project = Project::new(&toml);
    let valid = project
        .command(&["validate"])
        .env("PG_URL", "postgres://elt@db.internal:5432/app")
        .env("WAREHOUSE_URL", "postgres://elt@warehouse.internal:5432/dw")
        .output()
        .expect("run elt");
    assert!(valid.status.success(), "{valid:?}");
}

fn count(project: &Project, table: &str) -> String {
    project
        .query(&format!("SELECT count(*)::VARCHAR FROM raw.{table}"))
        .remove(0)
}

fn run_ids(project: &Project) -> Vec<String> {
    project.query("SELECT DISTINCT run_id FROM raw._elt_runs ORDER BY run_id")
}

#[test]
fn cron_wrapper_started_twice_at_once_runs_one_sync() {
    let project = demo_project();
    let start = || {
        Command::new("bash")
            .arg(examples().join("cron/elt-cron.sh"))
            .arg("demo")
            .env("ELT", elt_bin())
            .env("ELT_PROJECT_DIR", project.dir())
            .env_remove("ELT_LOG_DIR")
            .env_remove("ELT_CONFIG")
            // Whichever wins the lock holds it for a while after its first commit.
            .env("ELT_FAILPOINT", "duckdb.after_commit:1:sleep=1500")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the wrapper")
    };
    let (first, second) = (start(), start());
    let outputs = [first, second].map(|c| c.wait_with_output().expect("wrapper"));
    let mut codes: Vec<_> = outputs.iter().map(|o| o.status.code()).collect();
    codes.sort();
    assert_eq!(codes, [Some(0), Some(3)], "one ran, one was skipped");
    for output in &outputs {
        assert!(
            output.stdout.is_empty() && output.stderr.is_empty(),
            "silent for cron: {output:?}"
        );
    }
    assert_eq!(run_ids(&project).len(), 1, "exactly one sync ran");
    assert_eq!(count(&project, "orders"), "20000");

    let logs = project.dir().join("logs");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(logs.join("demo.last.json")).unwrap())
            .expect("the summary is JSON");
    assert_eq!(summary["status"], "succeeded");
    assert_eq!(run_ids(&project), [summary["run_id"].as_str().unwrap()]);
    let log = std::fs::read_to_string(logs.join("demo.log")).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["message"].as_str().unwrap().starts_with("skipped"))
    );
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "sync finished" && l["run_id"] == summary["run_id"])
    );

    // A failure exits with elt's code and tells cron (stderr) where to look.
    let failed = Command::new("bash")
        .arg(examples().join("cron/elt-cron.sh"))
        .arg("no_such_connection")
        .env("ELT", elt_bin())
        .env("ELT_PROJECT_DIR", project.dir())
        .env_remove("ELT_CONFIG")
        .output()
        .expect("wrapper");
    assert_eq!(failed.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(stderr.contains("no_such_connection.log"), "{stderr}");
}

#[test]
fn airflow_dag_runs_elt_and_returns_the_summary() {
    run_python_example("airflow", "test_elt_dag.py");
}

#[test]
fn dagster_assets_materialize_streams_with_summary_metadata() {
    run_python_example("dagster", "test_elt_assets.py");
}

#[test]
fn kubernetes_project_file_is_valid() {
    let manifest = std::fs::read_to_string(examples().join("kubernetes/cronjob.yaml")).unwrap();
    assert_configmap_project_is_valid(&manifest, "[connections.pg_to_duck]");
    assert!(manifest.contains("\"--wait-for-lock\"") || manifest.contains("- --wait-for-lock"));
    assert!(manifest.contains("concurrencyPolicy: Forbid"));
}
