//! The data tests beyond dbt's four (`between`, `regex`, `row_count`, `distinct_count`,
//! `null_fraction`, `mean`, `stddev`, `expression`, `sql`), with `where` and `severity`,
//! on a PostgreSQL table loaded into DuckDB and into PostgreSQL (the SQL is the subset both
//! share): clean data passes; each planted fault fails its test with the right count and
//! samples; `warn` failures leave the exit code at 0; `--select` picks tests.

use crate::common::{DESTINATION, Project};
use crate::pg::{execute, fresh_database, query};

const PAYMENTS: &str = "
CREATE TABLE payments (id bigint PRIMARY KEY, email text, amount numeric(12,2), status text NOT NULL,
                       updated_at timestamptz NOT NULL);
INSERT INTO payments SELECT i, 'user' || i || '@example.com', 10 + i % 91,
       CASE WHEN i % 10 = 0 THEN 'refunded' ELSE 'paid' END, '2024-01-01'::timestamptz + i * interval '1 minute'
FROM generate_series(1, 1000) i";

const TESTS: &str = r#"
[[connections.pg.tests]]
stream = "public.payments"
row_count = { min = 1, max = 1500 }
between = { amount = { min = 0, max = 1000 } }
regex = { email = '[^@ ]+@[^@ ]+\.[a-z]+' }
distinct_count = { status = { max = 2 } }
null_fraction = { email = { max = 0.01 } }
mean = { amount = { min = 10, max = 100 } }
stddev = { amount = { max = 100 } }
expression = ["amount >= 0"]
sql = [{ name = "refund_without_amount", query = "SELECT id FROM {{ table }} WHERE status = 'refunded' AND amount <= 0" }]

[[connections.pg.tests]]
stream = "public.payments"
severity = "warn"
where = "status = 'paid'"
between = { amount = { max = 50 } }
"#;

/// A project syncing `source` into DuckDB, or into PostgreSQL database `into`.
fn project(source: &str, into: Option<&str>) -> Project {
    let destination = match into {
        None => DESTINATION.replace("[destinations.local]", "[destinations.out]"),
        Some(url) => format!("[destinations.out]\ntype = \"postgres\"\nurl = \"{url}\"\n"),
    };
    Project::new(&format!(
        "[sources.pg]\ntype = \"postgres\"\nurl = \"{source}\"\n\n{destination}\n\
         [connections.pg]\nsource = \"pg\"\ndestination = \"out\"\n{TESTS}"
    ))
}

fn outcome<'a>(run: &'a serde_json::Value, test: &str, severity: &str) -> &'a serde_json::Value {
    run["tests"]
        .as_array()
        .and_then(|t| {
            t.iter()
                .find(|o| o["test"] == test && o["severity"] == severity)
        })
        .unwrap_or_else(|| panic!("no outcome for {test}: {run:#}"))
}

fn test_run(project: &Project, code: i32) -> serde_json::Value {
    project
        .elt(&["test", "--connection", "pg", "--json"])
        .expect_code(code)
        .json()
}

fn planted_faults_fail_their_tests(into: Option<&str>, name: &str) {
    let source = fresh_database(name);
    execute(&source, PAYMENTS);
    let project = project(&source, into);
    let sync = |project: &Project| {
        project.elt(&["sync", "--connection", "pg"]).expect_code(0);
    };
    sync(&project);

    // Clean data: every error test passes; the warn test fails without failing the run.
    let clean = test_run(&project, 0);
    let errors: Vec<_> = clean["tests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["severity"] == "error")
        .collect();
    assert_eq!(errors.len(), 9, "{clean:#}");
    assert!(errors.iter().all(|o| o["passed"] == true), "{clean:#}");
    let warned = outcome(&clean, "between(amount)", "warn");
    let expected: Vec<String> = query(
        &source,
        "SELECT count(*)::text FROM payments WHERE status = 'paid' AND amount > 50",
    );
    assert_eq!(warned["passed"], false);
    assert_eq!(warned["failing_rows"].to_string(), expected[0]);
    let mean = outcome(&clean, "mean(amount)", "error");
    let exact = query(&source, "SELECT avg(amount)::float8::text FROM payments");
    let observed = mean["observed"].as_f64().unwrap();
    assert!(
        (observed - exact[0].parse::<f64>().unwrap()).abs() < 1e-9,
        "{mean}"
    );

    // After a sync too, a warn failure is reported and the run succeeds.
    let config = std::fs::read_to_string(project.dir().join("elt.toml")).unwrap();
    project.write_config(&config.replace(
        "destination = \"out\"\n",
        "destination = \"out\"\ntest_after_sync = true\n",
    ));
    let summary = project
        .elt(&["sync", "--connection", "pg", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(
        outcome(&summary, "between(amount)", "warn")["passed"],
        false
    );
    project.write_config(&config);

    // An out-of-range amount, a malformed email and a refund of nothing.
    execute(
        &source,
        "INSERT INTO payments VALUES (1001, 'x1001@example.com', -5, 'refunded', now()),
                                     (1002, 'not an email', 20, 'paid', now()),
                                     (1003, NULL, 2000, 'refunded', now())",
    );
    sync(&project);
    let faulty = test_run(&project, 1);
    let check = |test: &str, failing: u64, samples: &[&str]| {
        let o = outcome(&faulty, test, "error");
        assert_eq!(o["passed"], false, "{o}");
        assert_eq!(o["failing_rows"], failing, "{o}");
        assert_eq!(o["samples"], serde_json::json!(samples), "{o}");
    };
    check("between(amount)", 2, &["1001", "1003"]);
    check("regex(email)", 1, &["1002"]);
    check("expression(amount >= 0)", 1, &["1001"]);
    // A custom query's samples are its rows as the destination prints them.
    let sql = outcome(&faulty, "sql(refund_without_amount)", "error");
    assert_eq!(sql["failing_rows"], 1, "{sql}");
    assert!(
        sql["samples"][0].as_str().unwrap().contains("1001"),
        "{sql}"
    );
    assert_eq!(
        outcome(&faulty, "null_fraction(email)", "error")["passed"],
        true
    );

    // Every result is kept in `_elt_test_results` under the test run's id.
    let kept = kept_results(&project, into, faulty["run_id"].as_str().unwrap());
    let reported: Vec<String> = faulty["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            format!(
                "{}|{}|{}|{}|{}",
                o["test"],
                o["severity"].as_str().unwrap(),
                o["passed"],
                o["failing_rows"],
                o["samples"].as_array().unwrap().len()
            )
        })
        .collect();
    let mut sorted = reported.clone();
    sorted.sort();
    assert_eq!(kept, sorted);

    // A column whose mean jumps.
    execute(
        &source,
        "UPDATE payments SET amount = amount * 40, updated_at = now()",
    );
    sync(&project);
    let jumped = test_run(&project, 1);
    let mean = outcome(&jumped, "mean(amount)", "error");
    assert_eq!(mean["passed"], false, "{mean}");
    let exact = query(&source, "SELECT avg(amount)::float8::text FROM payments");
    let observed = mean["observed"].as_f64().unwrap();
    assert!(
        (observed - exact[0].parse::<f64>().unwrap()).abs() < 1e-6,
        "{mean}"
    );
    assert!(
        mean["detail"]
            .as_str()
            .unwrap()
            .contains("expected between 10 and 100"),
        "{mean}"
    );
    assert_eq!(outcome(&jumped, "stddev(amount)", "error")["passed"], false);

    // --select by kind, by name, and the text report's verdicts.
    let selected = project
        .elt(&[
            "test",
            "--connection",
            "pg",
            "--select",
            "regex,mean(amount)",
            "--json",
        ])
        .expect_code(1)
        .json();
    let names: Vec<&str> = selected["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["test"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["regex(email)", "mean(amount)"]);
    let text = project
        .elt(&["test", "--connection", "pg"])
        .expect_code(1)
        .stdout();
    assert!(
        text.contains("FAIL public.payments: regex(email): 1 failing"),
        "{text}"
    );
    assert!(
        text.contains("WARN public.payments: between(amount)"),
        "{text}"
    );
    assert!(text.ends_with(" warned\n"), "{text}");
}

/// The rows of `_elt_test_results` of `run_id`, as `"test"|severity|passed|failing|samples`.
fn kept_results(project: &Project, into: Option<&str>, run_id: &str) -> Vec<String> {
    let sql = |len: &str, json_text: &str| {
        format!(
            "SELECT '\"' || test || '\"|' || severity || '|' || CAST(passed AS VARCHAR) || '|' ||
                    CAST(failing_rows AS VARCHAR) || '|' || CAST({len}(samples) AS VARCHAR)
             FROM {json_text}._elt_test_results WHERE run_id = '{run_id}' ORDER BY 1"
        )
    };
    match into {
        None => project.query(&sql("json_array_length", "raw")),
        Some(url) => query(url, &sql("jsonb_array_length", "raw"))
            .into_iter()
            .collect(),
    }
}

#[test]
fn planted_faults_fail_the_new_tests_in_duckdb() {
    planted_faults_fail_their_tests(None, "tests_depth_duck");
}

#[test]
fn planted_faults_fail_the_new_tests_in_postgres() {
    let into = fresh_database("tests_depth_pg_out");
    planted_faults_fail_their_tests(Some(&into), "tests_depth_pg");
}
