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
