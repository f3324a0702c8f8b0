//! The commands around `sync`, as a new user meets them: init, connectors, spec, validate,
//! check, discover, state show and state reset.

use crate::common::{Project, sample_toml};

#[test]
fn init_writes_a_project_that_syncs_and_refuses_to_overwrite() {
    let project = Project::new("");
    std::fs::remove_file(project.dir().join("elt.toml")).unwrap();
    let init = project.elt(&["init"]).expect_code(0);
    assert!(
        init.stdout().contains("wrote elt.toml"),
        "{}",
        init.stdout()
    );
    project.elt(&["init"]).expect_code(2);
    project.elt(&["validate"]).expect_code(0);
    let sync = project
        .elt(&["sync", "--connection", "demo", "--quiet"])
        .expect_code(0);
    assert!(
        sync.stdout().contains("demo: succeeded: 21200 rows read"),
        "{}",
        sync.stdout()
    );
    assert!(sync.stderr().is_empty(), "--quiet: {}", sync.stderr());
}

#[test]
fn connectors_spec_check_and_discover() {
    let project = Project::new(&sample_toml(100, 100, 0));
    let connectors = project.elt(&["connectors"]).expect_code(0).stdout();
    for kind in ["sample", "postgres", "duckdb"] {
        assert!(connectors.contains(kind), "{connectors}");
    }
    let spec: serde_json::Value =
        serde_json::from_str(&project.elt(&["spec", "duckdb"]).expect_code(0).stdout()).unwrap();
    assert_eq!(spec["destination"]["required"], serde_json::json!(["path"]));
    project.elt(&["spec", "nope"]).expect_code(2);
    let check = project
        .elt(&["check", "--connection", "demo"])
        .expect_code(0)
        .stdout();
    assert_eq!(
        check,
        "source sample: ok\ndestination local: ok (data/demo.duckdb)\n"
    );
    let discover = project
        .elt(&["discover", "--connection", "demo", "--json"])
        .expect_code(0)
        .json();
    let orders = &discover["streams"][2];
    assert_eq!(orders["name"], "orders");
    assert_eq!(orders["primary_key"], serde_json::json!(["id"]));
    assert_eq!(
        orders["cursor_candidates"],
        serde_json::json!(["updated_at"])
    );
    assert_eq!(
        orders["columns"][8],
        serde_json::json!({"name": "shipping", "type": "json", "nullable": true, "hashed": false, "left_out": false})
    );
}

#[test]
fn state_show_and_reset() {
    let project = Project::new(&sample_toml(1_000, 500, 0));
    project
        .elt(&["sync", "--connection", "demo"])
        .expect_code(0);
    let shown = project
        .elt(&["state", "show", "--connection", "demo", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(shown["orders"]["cursor"], "2024-01-01T00:00:05.000000Z");
    assert_eq!(shown["orders"]["key"], serde_json::json!([1000]));
    let reset = project
        .elt(&[
            "state",
            "reset",
            "--connection",
            "demo",
            "--stream",
            "orders",
        ])
        .expect_code(0);
    assert!(
        reset.stdout().contains("removed the state of 1 stream(s)"),
        "{}",
        reset.stdout()
    );
    // The next sync reads orders from the start and merges them onto the same rows.
    let again = project
        .elt(&["sync", "--connection", "demo", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(crate::common::stream(&again, "orders")["rows_read"], 1_000);
    assert_eq!(crate::common::stream(&again, "customers")["rows_read"], 0);
    assert_eq!(
        project.query("SELECT count(*)::VARCHAR FROM raw.orders"),
        ["1000"]
    );
}

#[test]
fn the_json_summary_matches_its_published_schema() {
    let schema_path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../specs/sync-summary.schema.json"
    );
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(schema_path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
    let project = Project::new(&sample_toml(1_000, 500, 0));
    let ok = project
        .elt(&["sync", "--connection", "demo", "--json"])
        .expect_code(0)
        .json();
    // A failed stream: the stored table's column type no longer matches.
    let conn = duckdb::Connection::open(project.db()).unwrap();
    conn.execute_batch("ALTER TABLE raw.orders ALTER quantity TYPE VARCHAR")
        .unwrap();
    drop(conn);
    project.write_config(&sample_toml(1_000, 500, 1));
    let partial = project
        .elt(&["sync", "--connection", "demo", "--json"])
        .expect_code(4)
        .json();
    assert_eq!(partial["status"], "partial");
    assert_eq!(
        crate::common::stream(&partial, "orders")["error_kind"],
        "data"
    );
    for summary in [ok, partial] {
        let errors: Vec<String> = validator
            .iter_errors(&summary)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{errors:?}\n{summary:#}");
    }
}

#[test]
fn help_says_what_elt_does() {
    let project = Project::new("");
    let help = project.elt(&["--help"]).expect_code(0).stdout();
    assert!(
        help.starts_with("elt: copy tables and APIs into raw, typed DuckDB or PostgreSQL tables"),
        "{help}"
    );
}

#[test]
fn read_only_commands_create_nothing_and_change_nothing() {
    let project = Project::new(&sample_toml(100, 100, 0));
    let readers: [&[&str]; 5] = [
        &["check", "--connection", "demo"],
        &["state", "show", "--connection", "demo"],
        &["runs", "--connection", "demo"],
        &["plan", "--connection", "demo"],
        &["dead-letter", "list", "--connection", "demo"],
    ];
    for args in readers {
        let run = project.elt(args);
        assert_eq!(run.code(), 0, "{args:?}: {}{}", run.stdout(), run.stderr());
    }
    assert!(
        !project.dir().join("data").exists(),
        "a read-only command created the DuckDB file or its directory"
    );
    project
        .elt(&["sync", "--connection", "demo", "--quiet"])
        .expect_code(0);
    let before = std::fs::read(project.db()).unwrap();
    for args in readers {
        let run = project.elt(args);
        assert_eq!(run.code(), 0, "{args:?}: {}{}", run.stdout(), run.stderr());
    }
    assert!(
        std::fs::read(project.db()).unwrap() == before,
        "a read-only command changed the DuckDB file"
    );
    assert!(
        project
            .elt(&["runs", "--connection", "demo"])
            .stdout()
            .contains("succeeded")
    );
}
