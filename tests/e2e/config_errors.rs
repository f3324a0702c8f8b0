//! Bad project files: each gives a one-line error naming the problem, exits with the
//! config error code (2) and writes nothing.

use crate::common::{Project, sample_toml};

fn assert_config_error(toml: &str, args: &[&str], expected: &str) {
    let project = Project::new(toml);
    let run = project.elt(args).expect_code(2);
    let stderr = run.stderr();
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains(expected),
        "expected {expected:?} in: {stderr}"
    );
    assert!(
        !project.dir().join("data").exists(),
        "nothing written for: {stderr}"
    );
}

const SYNC: &[&str] = &["sync", "--connection", "demo"];

#[test]
fn unknown_key() {
    let toml = sample_toml(10, 10, 0).replace("dataset", "x") + "colour = \"blue\"\n";
    assert_config_error(
        &toml,
        SYNC,
        "`connections.demo.colour`: unknown field `colour`",
    );
}

#[test]
fn unknown_key_inside_a_connector() {
    let toml = sample_toml(10, 10, 0).replace("orders = 10", "orderz = 10");
    assert_config_error(
        &toml,
        SYNC,
        "`sources.sample.orderz`: unknown field `orderz`",
    );
}

#[test]
fn wrong_type() {
    let toml = sample_toml(10, 10, 0).replace("orders = 10", "orders = \"many\"");
    assert_config_error(
        &toml,
        SYNC,
        "`sources.sample.orders`: invalid type: string \"many\", expected u64",
    );
}

#[test]
fn unknown_connector_type() {
    let toml = sample_toml(10, 10, 0).replace("type = \"duckdb\"", "type = \"sqlite\"");
    assert_config_error(
        &toml,
        SYNC,
        "`destinations.local.type`: unknown type \"sqlite\"; known types: duckdb",
    );
}

#[test]
fn unknown_connection() {
    assert_config_error(
        &sample_toml(10, 10, 0),
        &["sync", "--connection", "nope"],
        "no connection named \"nope\"",
    );
}

#[test]
fn unknown_stream() {
    let args = &["sync", "--connection", "demo", "--streams", "refunds"];
    assert_config_error(
        &sample_toml(10, 10, 0),
        args,
        "--streams: the connection has no stream \"refunds\"",
    );
}

#[test]
fn invalid_value() {
    let toml = sample_toml(10, 0, 0);
    assert_config_error(
        &toml,
        SYNC,
        "`sources.sample.batch_rows` is 0; expected 1 to 1000000",
    );
}

#[test]
fn missing_file() {
    let project = Project::new("");
    let run = project
        .elt(&["--config", "nowhere.toml", "validate"])
        .expect_code(2);
    assert!(
        run.stderr()
            .contains("cannot read nowhere.toml (create one with `elt init`"),
        "{}",
        run.stderr()
    );
}

#[test]
fn an_empty_project_file_is_not_valid() {
    assert_config_error(
        "",
        &["validate"],
        "elt.toml: no connections: add a `[connections.NAME]`",
    );
}

#[test]
fn an_unclosed_reference_names_the_option() {
    let toml = crate::pg::project_toml("postgres://u:${PG_PASS@127.0.0.1/db", "", "");
    assert_config_error(
        &toml,
        &["validate"],
        "`sources.pg.url`: `${` without a closing `}`",
    );
}

#[test]
fn a_postgres_url_of_another_scheme_is_refused() {
    for scheme in ["mysql", "foo"] {
        let url = format!("{scheme}://postgres@127.0.0.1:5432/test");
        let project = Project::new(&crate::pg::project_toml(&url, "", ""));
        let run = project.elt(&["check", "--connection", "pg"]);
        assert!(
            run.stdout()
                .contains("`url` is not a PostgreSQL URL: it must start with postgres://"),
            "{scheme}: {}",
            run.stdout()
        );
    }
}

#[test]
fn an_unset_variable_in_a_nested_secret_is_found_before_anything_runs() {
    let toml = r#"
[sources.api]
type = "http"
manifest = "github"
vars = { owner = "o", repo = "r" }
auth = { kind = "bearer", token = "${ELT_TEST_UNSET_TOKEN}" }

[destinations.local]
type = "duckdb"
path = "data/demo.duckdb"

[connections.api]
source = "api"
destination = "local"
"#;
    let expected = "`sources.api.auth.token` references environment variable ELT_TEST_UNSET_TOKEN, which is not set";
    assert_config_error(toml, &["validate"], expected);
    assert_config_error(toml, &["sync", "--connection", "api"], expected);
}

#[test]
fn a_stream_error_names_its_stream_once() {
    let url = crate::mysql::fresh_database("uuid_key");
    crate::mysql::execute(
        &url,
        "CREATE TABLE devices (id uuid PRIMARY KEY, updated_at datetime(6) NOT NULL);
         INSERT INTO devices VALUES (uuid(), now())",
    );
    let project = Project::new(&crate::mysql::project_toml(&url, ""));
    let run = project.elt(&["sync", "--connection", "my"]);
    assert_ne!(run.code(), 0);
    let line = run
        .stdout()
        .lines()
        .find(|l| l.starts_with("error:"))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("{}", run.stdout()));
    assert!(line.contains("has type uuid"), "{line}");
    assert!(line.contains("`primary_key` to other columns"), "{line}");
    assert_eq!(line.matches("elt_uuid_key.devices").count(), 1, "{line}");
}
