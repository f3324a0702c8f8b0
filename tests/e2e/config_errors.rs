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
