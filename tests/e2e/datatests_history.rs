//! The data tests that learn from earlier runs: `volume_anomaly` passes on ordinary
//! generations of the sample data and fails on one that loads about ten times the rows;
//! `freshness_anomaly` fails once the newest row is much older than it usually is when a
//! sync ends. Both pass, saying why, before there is enough history.

use crate::common::{Project, sample_toml};

fn toml(generation: u32, tests: &str) -> String {
    format!(
        "{}test_after_sync = true\nstreams = [{{ name = \"orders\" }}]\n\n\
         [[connections.demo.tests]]\nstream = \"orders\"\n{tests}\n",
        sample_toml(5_000, 1_000, generation)
    )
}

fn volume(summary: &serde_json::Value) -> serde_json::Value {
    summary["tests"]
        .as_array()
        .and_then(|t| {
            t.iter()
                .find(|o| o["test"] == "volume_anomaly(last 10 runs)")
        })
        .cloned()
        .unwrap_or_else(|| panic!("no volume_anomaly outcome: {summary:#}"))
}

#[test]
fn volume_anomaly_passes_ordinary_generations_and_fails_ten_times_the_rows() {
    let tests = "volume_anomaly = { runs = 10 }";
    let project = Project::new(&toml(0, tests));
    for generation in 0..=10 {
        project.write_config(&toml(generation, tests));
        let summary = project
            .elt(&["sync", "--connection", "demo", "--json"])
            .expect_code(0)
            .json();
        let outcome = volume(&summary);
        assert_eq!(
            outcome["passed"], true,
            "generation {generation}: {outcome}"
        );
        if generation < 3 {
            assert!(
                outcome["detail"]
                    .as_str()
                    .unwrap()
                    .contains("not enough history"),
                "{outcome}"
            );
        }
    }
    // Ten generations at once: about ten times the rows of one.
    project.write_config(&toml(20, tests));
    let run = project.elt(&["sync", "--connection", "demo", "--json"]);
    assert_eq!(run.code(), 1, "{}", run.stdout());
    let outcome = volume(&run.json());
    assert_eq!(outcome["passed"], false, "{outcome}");
    let loaded = crate::common::stream(&run.json(), "orders")["rows_loaded"].clone();
    assert_eq!(outcome["observed"].as_f64(), loaded.as_f64(), "{outcome}");
}

#[test]
fn freshness_anomaly_fails_when_the_newest_row_is_unusually_old() {
    let tests = "freshness_anomaly = { runs = 5, factor = 3 }";
    let project = Project::new(&toml(0, tests));
    for generation in 0..=3 {
        project.write_config(&toml(generation, tests));
        project
            .elt(&["sync", "--connection", "demo"])
            .expect_code(0);
    }
    let run = project
        .elt(&["test", "--connection", "demo", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(run["tests"][0]["passed"], true, "{run:#}");
    // The raw table's newest row ages by far more than its usual age (about two years of
    // the sample's fixed timestamps) without new rows arriving.
    let db = project.db();
    let conn = duckdb::Connection::open(&db).unwrap();
    conn.execute_batch("UPDATE raw.orders SET updated_at = updated_at - INTERVAL 20 YEAR")
        .unwrap();
    drop(conn);
    let run = project
        .elt(&["test", "--connection", "demo", "--json"])
        .expect_code(1)
        .json();
    let outcome = &run["tests"][0];
    assert_eq!(outcome["passed"], false, "{outcome}");
    assert!(
        outcome["detail"].as_str().unwrap().contains("usually"),
        "{outcome}"
    );
}

#[test]
fn distribution_drift_fails_when_a_columns_mean_jumps_and_profiles_match_the_load() {
    use crate::pg::{execute, fresh_database, project_toml, query};
    let url = fresh_database("drift");
    execute(
        &url,
        "CREATE TABLE readings (id bigint PRIMARY KEY, amount numeric(10,2), note text,
                                updated_at timestamptz NOT NULL)",
    );
    let batch = |run: i64, amount: &str| {
        format!(
            "INSERT INTO readings SELECT {run} * 1000 + i, {amount}, CASE WHEN i % 4 = 0 THEN NULL ELSE 'n' END,
                    now() FROM generate_series(1, 100) i"
        )
    };
    let tests = r#"test_after_sync = true

[[connections.pg.tests]]
stream = "public.readings"
distribution_drift = { amount = { runs = 5 } }
"#;
    let project = Project::new(&project_toml(&url, "", tests));
    for run in 1..=5 {
        execute(
            &url,
            &batch(run, &format!("50 + (i % 11) - 5 + {run} * 0.1")),
        );
        let summary = project
            .elt(&["sync", "--connection", "pg", "--json"])
            .expect_code(0)
            .json();
        assert_eq!(
            summary["tests"][0]["passed"], true,
            "run {run}: {summary:#}"
        );
    }
    // The profile of the last run: what it loaded (counts by the destination, the distinct
    // values sketched while the rows streamed: exact at this size).
    let profile = project.query(
        "SELECT rows || ' ' || nulls || ' ' || distinct_count || ' ' || min_value || ' ' || max_value
         FROM raw._elt_profiles WHERE column_name = 'amount' ORDER BY profiled_at DESC LIMIT 1",
    );
    let expected = query(
        &url,
        "SELECT count(*) || ' ' || count(*) FILTER (WHERE amount IS NULL) || ' ' ||
                count(DISTINCT amount) || ' ' || min(amount) || ' ' || max(amount)
         FROM readings WHERE id > 5000",
    );
    assert_eq!(profile, expected);
    let nulls = project.query(
        "SELECT nulls::VARCHAR FROM raw._elt_profiles WHERE column_name = 'note'
         ORDER BY profiled_at DESC LIMIT 1",
    );
    assert_eq!(nulls, ["25"]);
    // A run whose amounts are a hundred times larger.
    execute(&url, &batch(6, "5000 + i"));
    let run = project.elt(&["sync", "--connection", "pg", "--json"]);
    assert_eq!(run.code(), 1, "{}", run.stdout());
    let outcome = &run.json()["tests"][0];
    assert_eq!(outcome["test"], "distribution_drift(amount)");
    assert_eq!(outcome["passed"], false, "{outcome}");
}
