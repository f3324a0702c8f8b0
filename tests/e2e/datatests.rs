//! Data tests (`elt test`, `test_after_sync`) on real DuckDB data loaded from the sample
//! source: each kind passing, each kind failing with its count and samples, the exit codes,
//! and a test naming a stream the connection does not sync.

use serde_json::Value;

use crate::common::{Project, sample_toml};

/// The sample project with `tests` appended to connection `demo`.
fn project_with(tests: &str) -> Project {
    Project::new(&format!("{}\n{tests}", sample_toml(3_000, 1_000, 0)))
}

fn outcome<'a>(tests: &'a Value, test: &str) -> &'a Value {
    tests
        .as_array()
        .and_then(|t| t.iter().find(|o| o["test"] == test))
        .unwrap_or_else(|| panic!("no outcome for {test}: {tests:#}"))
}

const PASSING: &str = r#"
[[connections.demo.tests]]
stream = "orders"
not_null = ["customer_id", "status"]
unique = ["id", ["id", "customer_id"]]
accepted_values = { status = ["placed", "paid", "shipped", "delivered", "refunded"] }
relationships = [{ column = "customer_id", to = "customers", field = "id" }]
freshness_hours = 1000000

[[connections.demo.tests]]
stream = "customers"
unique = ["id"]
"#;

const FAILING: &str = r#"
[[connections.demo.tests]]
stream = "orders"
not_null = ["note"]
unique = ["customer_id"]
accepted_values = { status = ["placed"] }
relationships = [{ column = "customer_id", to = "products", field = "id" }]
freshness_hours = 0.001
"#;

#[test]
fn each_data_test_passes_on_good_data() {
    let project = project_with(PASSING);
    project
        .elt(&["sync", "--connection", "demo"])
        .expect_code(0);
    let run = project
        .elt(&["test", "--connection", "demo", "--json"])
        .expect_code(0)
        .json();
    let tests = &run["tests"];
    assert_eq!(tests.as_array().map(Vec::len), Some(8), "{tests:#}");
    assert!(
        tests
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["passed"] == true),
        "{tests:#}"
    );
    let text = project
        .elt(&["test", "--connection", "demo"])
        .expect_code(0)
        .stdout();
    assert!(
        text.contains("pass orders: relationships(customer_id -> customers.id)"),
        "{text}"
    );
    assert!(text.ends_with("data tests: 8 passed, 0 failed\n"), "{text}");
}

#[test]
fn each_data_test_fails_with_counts_and_samples() {
    let project = project_with(FAILING);
    project
        .elt(&["sync", "--connection", "demo"])
        .expect_code(0);
    let run = project
        .elt(&["test", "--connection", "demo", "--json"])
        .expect_code(1)
        .json();
    let tests = &run["tests"];
    let count = |sql: &str| project.query(sql).remove(0).parse::<u64>().unwrap();

    let nulls = outcome(tests, "not_null(note)");
    let expected = count("SELECT count(*)::VARCHAR FROM raw.orders WHERE note IS NULL");
    assert!(expected > 0);
    assert_eq!(nulls["failing_rows"], expected);
    let first =
        project.query("SELECT id::VARCHAR FROM raw.orders WHERE note IS NULL ORDER BY id LIMIT 5");
    assert_eq!(
        nulls["samples"],
        serde_json::json!(first),
        "the first five keys"
    );

    let repeated = outcome(tests, "unique(customer_id)");
    let expected = count(
        "SELECT count(*)::VARCHAR FROM (SELECT customer_id FROM raw.orders GROUP BY 1 HAVING count(*) > 1)",
    );
    assert_eq!(repeated["failing_rows"], expected);
    let sample = repeated["samples"][0].as_str().unwrap();
    assert!(sample.ends_with(" rows)"), "{sample}");

    let values = outcome(tests, "accepted_values(status)");
    let expected = count("SELECT count(*)::VARCHAR FROM raw.orders WHERE status <> 'placed'");
    assert!(expected > 0);
    assert_eq!(values["failing_rows"], expected);
    assert_eq!(
        values["samples"],
        serde_json::json!(["paid"]),
        "distinct failing values"
    );

    let orphans = outcome(tests, "relationships(customer_id -> products.id)");
    let expected = count(
        "SELECT count(*)::VARCHAR FROM raw.orders o WHERE NOT EXISTS (SELECT 1 FROM raw.products p WHERE p.id = o.customer_id)",
    );
    assert!(expected > 0);
    assert_eq!(orphans["failing_rows"], expected);

    let stale = outcome(tests, "freshness_hours(0.001)");
    assert_eq!(stale["passed"], false);
    assert!(
        stale["detail"].as_str().unwrap().contains("hours old"),
        "{stale}"
    );

    let text = project
        .elt(&["test", "--connection", "demo"])
        .expect_code(1)
        .stdout();
    assert!(
        text.contains("FAIL orders: unique(customer_id): "),
        "{text}"
    );
    assert!(text.ends_with("data tests: 0 passed, 5 failed\n"), "{text}");
}

#[test]
fn tests_after_sync_fail_the_run_and_a_wrong_stream_is_a_config_error() {
    let project = project_with(&format!("{FAILING}\n"));
    let config = std::fs::read_to_string(project.dir().join("elt.toml")).unwrap();
    project.write_config(&config.replace(
        "[connections.demo]\n",
        "[connections.demo]\ntest_after_sync = true\n",
    ));
    let run = project
        .elt(&["sync", "--connection", "demo", "--json"])
        .expect_code(1)
        .json();
    assert_eq!(run["status"], "succeeded", "the data is committed");
    assert_eq!(run["tests"].as_array().map(Vec::len), Some(5));
    assert_eq!(
        project.query("SELECT count(*)::VARCHAR FROM raw.orders"),
        ["3000"]
    );

    project.write_config(&config.replace("stream = \"orders\"", "stream = \"invoices\""));
    let wrong = project
        .elt(&["test", "--connection", "demo"])
        .expect_code(2);
    assert!(
        wrong
            .stderr()
            .contains("`tests` names stream invoices, which the connection does not sync"),
        "{}",
        wrong.stderr()
    );
}

#[test]
fn data_tests_give_the_same_verdicts_in_postgresql() {
    let duck = project_with(FAILING);
    duck.elt(&["sync", "--connection", "demo"]).expect_code(0);
    let in_duckdb = duck
        .elt(&["test", "--connection", "demo", "--json"])
        .expect_code(1)
        .json();

    let url = crate::pg::fresh_database("datatests");
    let pg = Project::new(&format!(
        "{}\n{}",
        crate::pg_destination::sample_to_pg(&url, 3_000, 1_000, 0),
        FAILING.replace("connections.demo", "connections.merge")
    ));
    pg.elt(&["sync", "--connection", "merge"]).expect_code(0);
    let in_postgres = pg
        .elt(&["test", "--connection", "merge", "--json"])
        .expect_code(1)
        .json();
    let verdicts = |run: &Value| -> Vec<(String, String, String)> {
        run["tests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| !t["test"].as_str().unwrap().starts_with("freshness"))
            .map(|t| {
                (
                    t["test"].to_string(),
                    t["failing_rows"].to_string(),
                    t["samples"].to_string(),
                )
            })
            .collect()
    };
    assert_eq!(verdicts(&in_postgres), verdicts(&in_duckdb));
}

#[test]
fn a_between_without_bounds_is_a_config_error() {
    let project =
        project_with("[[connections.demo.tests]]\nstream = \"orders\"\nbetween = { total = {} }\n");
    project
        .elt(&["sync", "--connection", "demo"])
        .expect_code(0);
    let run = project
        .elt(&["test", "--connection", "demo"])
        .expect_code(2);
    assert!(
        run.stderr()
            .contains("`between` needs `min`, `max` or both"),
        "{}",
        run.stderr()
    );
}
