//! The `previous` write mode (slowly changing dimension type 3), from PostgreSQL into DuckDB
//! and into PostgreSQL, each test in its own database: after each change of a tracked
//! column the row holds the current value, the one before it and the start of the run that
//! saw the change; other changes and reruns keep both; NULL counts as a value; the two
//! destinations hold the same rows. Also the config errors of `previous_columns`.

use crate::common::{DESTINATION, Project};
use crate::pg::{execute, fresh_database, query};

const CUSTOMERS: &str = "
CREATE TABLE customers (
  id bigint PRIMARY KEY, name text NOT NULL, country text, updated_at timestamptz NOT NULL);
INSERT INTO customers SELECT g, 'customer ' || g, 'NL', timestamptz '2024-01-01' + g * interval '1 second'
  FROM generate_series(1, 200) g;";

/// Connections `duck` (into the local DuckDB file) and `pg` (into dataset `dw` of the
/// source database), both tracking `country`, with `streams_extra` added to each stream.
fn toml(url: &str, streams_extra: &str) -> String {
    let stream = format!(
        r#"streams = [{{ name = "public.customers", table = "customers", write = "previous", previous_columns = ["country"]{streams_extra} }}]"#
    );
    format!(
        r#"
[sources.pg]
type = "postgres"
url = "{url}"
lookback_secs = 86400
{DESTINATION}
[destinations.warehouse]
type = "postgres"
url = "{url}"

[connections.duck]
source = "pg"
destination = "local"
{stream}

[connections.pg]
source = "pg"
destination = "warehouse"
dataset = "dw"
{stream}
"#
    )
}

/// `id|country|previous|changed_at as the number of the connection's runs whose stream
/// started before it (the run that saw the change starts its stream just after the run's
/// start)|changed_at = the row's load time`, per row of `ids`, in DuckDB.
fn duck_rows(project: &Project, ids: &str) -> Vec<String> {
    project.query(&format!(
        "SELECT id || '|' || coalesce(country, '-') || '|' || coalesce(country_previous, '-')
           || '|' || CASE WHEN country_changed_at IS NULL THEN '-' ELSE (SELECT count(*) FROM raw._elt_runs r
                WHERE r.started_at <= country_changed_at)::VARCHAR END
           || '|' || coalesce((country_changed_at = _elt_extracted_at)::VARCHAR, '-')
         FROM raw.customers WHERE id IN ({ids}) ORDER BY id"
    ))
}

/// The same rows in the PostgreSQL destination.
fn pg_rows(url: &str, ids: &str) -> Vec<String> {
    query(
        url,
        &format!(
            "SELECT id || '|' || coalesce(country, '-') || '|' || coalesce(country_previous, '-')
               || '|' || CASE WHEN country_changed_at IS NULL THEN '-' ELSE (SELECT count(*) FROM dw._elt_runs r
                    WHERE r.started_at <= country_changed_at)::text END
               || '|' || coalesce((country_changed_at = _elt_extracted_at)::text, '-')
             FROM dw.customers WHERE id IN ({ids}) ORDER BY id"
        ),
    )
}

fn sync_both(project: &Project) {
    for connection in ["duck", "pg"] {
        project
            .elt(&["sync", "--connection", connection, "--quiet"])
            .expect_code(0);
    }
}

/// Changes `set` for `id` with a newer cursor (`n` days after the rows' first one).
fn change(url: &str, id: i64, set: &str, n: u32) {
    execute(
        url,
        &format!(
            "UPDATE customers SET {set}, updated_at = timestamptz '2025-01-01' + {n} * interval '1 day' WHERE id = {id}"
        ),
    );
}

#[test]
fn three_country_changes_keep_the_last_previous_value_in_duckdb_and_postgres() {
    let url = fresh_database("previous_scd3");
    execute(&url, CUSTOMERS);
    let project = Project::new(&toml(&url, ""));
    sync_both(&project);
    // A first load: nothing changed yet.
    assert_eq!(duck_rows(&project, "7, 8"), ["7|NL|-|-|-", "8|NL|-|-|-"]);

    for (n, country) in ["DE", "FR", "ES"].iter().enumerate() {
        change(&url, 7, &format!("country = '{country}'"), n as u32);
        sync_both(&project);
    }
    // The run that saw ES loaded the row: its start is the change time.
    let changed = duck_rows(&project, "7").remove(0);
    assert!(
        changed.starts_with("7|ES|FR|") && changed.ends_with("|true"),
        "{changed:?}"
    );
    let kept = changed.strip_suffix("true").unwrap().to_owned() + "false";
    // Key 8: another column changed; its country did not. The lookback re-reads key 7.
    change(&url, 8, "name = 'renamed'", 10);
    sync_both(&project);
    assert_eq!(
        duck_rows(&project, "7, 8"),
        [kept.clone(), "8|NL|-|-|-".into()]
    );
    // A rerun changes nothing; a change of key 7's other columns keeps its previous value
    // and change time.
    sync_both(&project);
    change(&url, 7, "name = 'seven'", 20);
    sync_both(&project);
    assert_eq!(duck_rows(&project, "7"), [kept]);

    // NULL is a value: to NULL and back are two changes.
    change(&url, 9, "country = NULL", 30);
    sync_both(&project);
    assert!(duck_rows(&project, "9")[0].starts_with("9|-|NL|"));
    change(&url, 9, "country = 'BE'", 31);
    sync_both(&project);
    assert!(duck_rows(&project, "9")[0].starts_with("9|BE|-|"));

    // DuckDB and PostgreSQL hold the same rows, every one of them.
    let all = "SELECT g FROM generate_series(1, 200) AS s(g)";
    let pg = pg_rows(&url, all);
    assert_eq!(pg.len(), 200);
    assert_eq!(pg[6], "7|ES|FR|3|false", "ES came in the 4th run");
    assert_eq!(duck_rows(&project, all), pg);
}

#[test]
fn previous_columns_config_errors_name_the_option_and_the_fix() {
    let url = fresh_database("previous_config");
    execute(&url, CUSTOMERS);
    let cases = [
        (
            r#"{ name = "public.customers", write = "previous" }"#,
            "set `previous_columns",
        ),
        (
            r#"{ name = "public.customers", write = "merge", previous_columns = ["country"] }"#,
            "applies to write mode previous",
        ),
        (
            r#"{ name = "public.customers", write = "previous", previous_columns = ["city"] }"#,
            "names column \"city\"",
        ),
        (
            r#"{ name = "public.customers", write = "previous", previous_columns = ["id"] }"#,
            "a primary-key column",
        ),
    ];
    for (stream, expected) in cases {
        let project = Project::new(&format!(
            r#"
[sources.pg]
type = "postgres"
url = "{url}"
{DESTINATION}
[connections.pg]
source = "pg"
destination = "local"
streams = [{stream}]
"#
        ));
        let run = project.elt(&["sync", "--connection", "pg"]).expect_code(2);
        assert!(
            run.stderr().contains(expected),
            "{stream}: {}",
            run.stderr()
        );
        assert!(run.stderr().contains("previous_columns") || run.stderr().contains("`write`"));
    }
}
