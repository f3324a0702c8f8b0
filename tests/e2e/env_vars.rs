//! `${VAR}` and `${VAR:-default}` in every string of `elt.toml`: connector options (paths
//! and others), the connection's dataset and stream options; an unset variable without a
//! default is a one-line config error naming the key; secrets keep their own rules (never
//! expanded into the project, never printed).

use crate::common::Project;

const PROJECT: &str = r#"
[sources.days]
type = "calendar"
from = "${ELT_T_FROM:-2024-01-01}"
to = "${ELT_T_TO}"

[destinations.local]
type = "duckdb"
path = "${ELT_T_DIR}/${ELT_T_FILE:-days}.duckdb"

[connections.demo]
source = "days"
destination = "local"
dataset = "${ELT_T_DATASET}"
streams = [{ name = "${ELT_T_STREAM}", write = "${ELT_T_WRITE}", table = "${ELT_T_TABLE}", cursor = "${ELT_T_CURSOR:-date}" }]
"#;

#[test]
fn every_string_is_expanded_and_an_unset_variable_names_its_key() {
    let project = Project::new(PROJECT);
    let data = tempfile::tempdir().unwrap();
    let env = [
        ("ELT_T_TO", "2024-01-31"),
        ("ELT_T_DIR", data.path().to_str().unwrap()),
        ("ELT_T_DATASET", "from_env"),
        ("ELT_T_STREAM", "dates"),
        ("ELT_T_WRITE", "append"),
        ("ELT_T_TABLE", "days_from_env"),
    ];
    let run = |env: &[(&str, &str)]| {
        project.elt_with_env(&["sync", "--connection", "demo", "--json"], env)
    };
    let summary = run(&env).expect_code(0).json();
    let stream = crate::common::stream(&summary, "dates");
    assert_eq!(stream["rows_loaded"], 31, "{summary}");
    assert_eq!(stream["write_mode"], "append", "{summary}");
    assert_eq!(stream["table"], "days_from_env", "{summary}");
    // The file is where the variables say, nothing was written under a literal `${`.
    let db = data.path().join("days.duckdb");
    let rows = crate::common::query(&db, "SELECT count(*)::VARCHAR FROM from_env.days_from_env");
    assert_eq!(rows, ["31"]);
    assert!(!project.dir().join("${ELT_T_DIR}").exists());
    // Unset without a default: one line naming the key and the variable; nothing written.
    let unset: Vec<_> = env
        .iter()
        .filter(|(k, _)| *k != "ELT_T_DATASET")
        .copied()
        .collect();
    let failed = run(&unset).expect_code(2);
    let stderr = failed.stderr();
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("`connections.demo.dataset`"), "{stderr}");
    assert!(stderr.contains("ELT_T_DATASET is not set"), "{stderr}");
    let unset: Vec<_> = env
        .iter()
        .filter(|(k, _)| *k != "ELT_T_DIR")
        .copied()
        .collect();
    let stderr = run(&unset).expect_code(2).stderr();
    assert!(stderr.contains("`destinations.local.path`"), "{stderr}");
    assert!(stderr.contains("ELT_T_DIR is not set"), "{stderr}");
}

#[test]
fn secrets_keep_their_reference_and_never_print() {
    let project = Project::new(
        r#"
[sources.pg]
type = "postgres"
url = "postgres://postgres:${ELT_T_PASSWORD}@127.0.0.1:5432/elt_no_such_db"

[destinations.local]
type = "duckdb"
path = "data/x.duckdb"

[connections.demo]
source = "pg"
destination = "local"
"#,
    );
    let canary = "canary-pw-7f3a9";
    for args in [
        &["check", "--connection", "demo"][..],
        &["sync", "--connection", "demo", "--json"],
    ] {
        let run = project.elt_with_env(args, &[("ELT_T_PASSWORD", canary)]);
        let text = run.stdout() + &run.stderr();
        assert!(
            !text.contains(canary),
            "{args:?} printed the secret: {text}"
        );
        assert!(
            text.contains("elt_no_such_db"),
            "{args:?} reached the server: {text}"
        );
    }
    // Unset, the secret's variable is reported by `validate` as before (exit 2).
    let stderr = project.elt(&["validate"]).expect_code(2).stderr();
    assert!(stderr.contains("ELT_T_PASSWORD"), "{stderr}");
}
