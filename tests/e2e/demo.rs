//! The demo connection: a first sync, a rerun that changes nothing, and a new generation
//! that merges exactly the changed and new rows.

use crate::common::{Project, sample_toml, stream};

/// 2024-01-31T00:00:00Z: where generation 1's timestamps start.
const GENERATION_1: &str = "2024-01-31 00:00:00+00";

#[test]
fn sync_rerun_and_next_generation() {
    let project = Project::sample(20_000, 5_000, 0);
    let first = project
        .elt(&["sync", "--connection", "demo", "--json"])
        .expect_code(0);
    let first = first.json();
    assert_eq!(first["status"], "succeeded");
    assert_eq!(stream(&first, "orders")["rows_loaded"], 20_000);
    assert_eq!(
        project.query("SELECT count(*)::VARCHAR FROM raw.orders"),
        ["20000"]
    );

    let again = project
        .elt(&["sync", "--connection", "demo"])
        .expect_code(0);
    assert!(
        again
            .stdout()
            .contains("succeeded (no new rows): 0 rows read, 0 loaded"),
        "{}",
        again.stdout()
    );
    assert_eq!(
        project.query("SELECT count(*)::VARCHAR FROM raw.orders"),
        ["20000"]
    );

    project.write_config(&sample_toml(20_000, 5_000, 1));
    let next = project
        .elt(&["sync", "--connection", "demo", "--json"])
        .expect_code(0)
        .json();
    let orders = stream(&next, "orders");
    // Exactly the rows of generation 1 (updated or new) were read and merged, no others.
    let changed: u64 = project.query(&format!(
        "SELECT count(*)::VARCHAR FROM raw.orders WHERE updated_at >= '{GENERATION_1}'"
    ))[0]
        .parse()
        .unwrap();
    assert!(
        changed > 200 && changed < 500,
        "about 1% updated and 1% new: {changed}"
    );
    assert_eq!(orders["rows_read"], changed);
    assert_eq!(orders["rows_loaded"], changed);
    let run_id = next["run_id"].as_str().unwrap();
    let stamped = project.query(&format!(
        "SELECT count(*)::VARCHAR FROM raw.orders WHERE _elt_run_id = '{run_id}'"
    ));
    assert_eq!(stamped, [changed.to_string()]);
    assert_eq!(
        project.query("SELECT count(*)::VARCHAR FROM raw.orders"),
        ["20200"]
    );
    assert_eq!(
        project.query("SELECT (count(*) - count(DISTINCT id))::VARCHAR FROM raw.orders"),
        ["0"]
    );
    assert_eq!(orders["watermark_before"], "2024-01-01T00:01:40.000000Z");

    // Every run and stream is in _elt_runs, and the state matches the summary.
    let runs = project.query("SELECT status || ':' || count(*) FROM raw._elt_runs GROUP BY status");
    assert_eq!(runs, ["succeeded:9"]);
    let state =
        project.query("SELECT state->>'cursor' FROM raw._elt_state WHERE stream = 'orders'");
    assert_eq!(state, [orders["watermark_after"].as_str().unwrap()]);
}

#[test]
fn values_round_trip_with_types_nulls_and_unicode() {
    let project = Project::sample(2_000, 1_000, 0);
    project
        .elt(&["sync", "--connection", "demo"])
        .expect_code(0);
    let types = project.query(
        "SELECT column_name || ' ' || data_type FROM duckdb_columns()
         WHERE schema_name = 'raw' AND table_name = 'orders' ORDER BY column_index",
    );
    assert_eq!(
        types,
        [
            "id BIGINT",
            "customer_id BIGINT",
            "product_id BIGINT",
            "quantity INTEGER",
            "unit_price DECIMAL(10,2)",
            "total DECIMAL(12,2)",
            "status VARCHAR",
            "note VARCHAR",
            "shipping JSON",
            "placed_at TIMESTAMP WITH TIME ZONE",
            "promised_on DATE",
            "updated_at TIMESTAMP WITH TIME ZONE",
            "_elt_extracted_at TIMESTAMP WITH TIME ZONE",
            "_elt_run_id UUID",
            "_elt_deleted_at TIMESTAMP WITH TIME ZONE",
        ]
    );
    let checks = project.query(
        "SELECT concat_ws(' ',
            count(*) FILTER (note IS NULL) > 0,
            count(*) FILTER (note = '') > 0,
            count(*) FILTER (note LIKE '%配達%') > 0,
            count(*) FILTER (shipping IS NULL) > 0,
            count(*) FILTER (shipping->>'$.address.city' = 'Zürich') > 0,
            count(*) FILTER (promised_on > DATE '2038-01-19') > 0,
            bool_and(total = unit_price * quantity))
         FROM raw.orders",
    );
    assert_eq!(checks, ["true true true true true true true"]);
    let customers = project.query(
        "SELECT concat_ws(' ', count(*) FILTER (name LIKE '%O''Brien%') > 0,
            count(*) FILTER (created_at < TIMESTAMPTZ '1970-01-01 00:00:00+00') > 0,
            count(*) FILTER (lifetime_value IS NULL) > 0,
            min(json_type(attributes->'prefs')))
         FROM raw.customers",
    );
    assert_eq!(customers, ["true true true OBJECT"]);
}

#[test]
fn calendar_loads_a_date_dimension_and_extends_it() {
    let toml = |to: &str| {
        format!(
            r#"
[sources.days]
type = "calendar"
from = "2024-01-01"
to = "{to}"
batch_rows = 100

{}
[connections.dates]
source = "days"
destination = "local"
"#,
            crate::common::DESTINATION
        )
    };
    let project = Project::new(&toml("2024-12-31"));
    let first = project
        .elt(&["sync", "--connection", "dates", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(stream(&first, "dates")["rows_loaded"], 366, "a leap year");
    project.write_config(&toml("2025-01-31"));
    let second = project
        .elt(&["sync", "--connection", "dates", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(
        stream(&second, "dates")["rows_read"],
        31,
        "only the new days"
    );
    assert_eq!(
        project.query(
            "SELECT count(*) || ' ' || count(*) FILTER (WHERE is_weekend) || ' ' ||
                    max(date) || ' ' || min(iso_week) FILTER (WHERE date = DATE '2024-12-30')
             FROM raw.dates"
        ),
        // 104 weekend days in 2024 (it starts on a Monday), 8 in January 2025.
        ["397 112 2025-01-31 1"]
    );
}

/// The README's first command, `make demo`, syncs connection `demo` of the repository's
/// own `elt.toml`: run here on a copy, so the repository stays clean.
#[test]
fn the_repository_elt_toml_runs_the_demo() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let toml = std::fs::read_to_string(root.join("elt.toml")).expect("the repository's elt.toml");
    let project = Project::new(&toml);
    let summary = project
        .elt(&["sync", "--connection", "demo", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(summary["status"], "succeeded", "{summary}");
    assert!(project.db().exists(), "data/demo.duckdb");
}
