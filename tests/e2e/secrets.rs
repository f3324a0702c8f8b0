//! A secret in the config appears in no output, log, error, state, `_elt_runs` or `--json`,
//! and a secret whose environment variable is missing is a one-line config error.

use crate::common::Project;
use crate::pg::{execute, fresh_database, project_toml};

const PASSWORD: &str = "s3cr3t-Pa55w0rd-never-printed";

#[test]
fn a_secret_is_never_printed_or_stored() {
    let url = fresh_database("secrets");
    execute(
        &url,
        "CREATE TABLE t (id int PRIMARY KEY, updated_at timestamptz NOT NULL DEFAULT now()); INSERT INTO t VALUES (1)",
    );
    // Trust authentication ignores the password, so the sync succeeds with it in the URL.
    let with_secret = url.replace("postgres@", "postgres:${ELT_TEST_PASSWORD}@");
    let project = Project::new(&project_toml(&with_secret, "", ""));
    let mut outputs = Vec::new();
    let mut run = |args: &[&str], code: i32| {
        let out = project
            .command(args)
            .env("ELT_TEST_PASSWORD", PASSWORD)
            .env("RUST_LOG", "debug")
            .output()
            .expect("run");
        assert_eq!(
            out.status.code(),
            Some(code),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        outputs.push(
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        );
    };
    run(&["validate"], 0);
    run(&["check", "--connection", "pg"], 0);
    run(&["discover", "--connection", "pg", "--json"], 0);
    run(&["sync", "--connection", "pg", "--json", "-vv"], 0);
    run(&["state", "show", "--connection", "pg", "--json"], 0);
    // A failure that echoes connection details: a database that does not exist.
    project.write_config(&project_toml(
        &with_secret.replace("elt_secrets", "elt_no_such_db"),
        "",
        "max_retries = 0",
    ));
    run(&["sync", "--connection", "pg", "--json", "-vv"], 2);
    run(&["check", "--connection", "pg"], 1);
    for output in &outputs {
        assert!(!output.contains(PASSWORD), "secret printed: {output}");
    }
    assert!(
        outputs
            .iter()
            .any(|o| o.contains("database \"elt_no_such_db\" does not exist")),
        "{outputs:?}"
    );
    let stored = std::fs::read(project.db()).expect("db file");
    assert!(
        !stored
            .windows(PASSWORD.len())
            .any(|w| w == PASSWORD.as_bytes()),
        "secret stored in the DuckDB file"
    );
}

#[test]
fn a_missing_environment_variable_is_a_config_error() {
    let project = Project::new(&project_toml(
        "postgres://u:${ELT_TEST_UNSET_VARIABLE}@127.0.0.1/db",
        "",
        "",
    ));
    let run = project
        .command(&["sync", "--connection", "pg"])
        .env_remove("ELT_TEST_UNSET_VARIABLE")
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("`sources.pg.url` references environment variable ELT_TEST_UNSET_VARIABLE, which is not set"), "{stderr}");
    assert!(!project.dir().join("data").exists());
}
