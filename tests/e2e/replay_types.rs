//! A dead letter keeps every value exactly: each record of the PostgreSQL all-types table
//! (and a table of extremes) is dead-lettered by a JSON Schema that rejects everything,
//! then replayed once the schema accepts it, and the replayed table equals a direct load
//! of the same rows, column by column.

use crate::common::Project;
use crate::pg::{execute, fresh_database, project_toml};
use crate::postgres::EVERYTHING;

const EXTREMES: &str = r#"
    CREATE TABLE extremes (id int PRIMARY KEY, n numeric(30,10), d double precision, r real,
      i8 bigint, ts timestamp, tstz timestamptz, dt date, iv interval, by bytea, js jsonb);
    INSERT INTO extremes VALUES
      (1, 12345678901234567890.0123456789, 'Infinity', '-Infinity', 9223372036854775807,
       'infinity', '-infinity', 'infinity', '178000000 years -3 days 2562047:00:00', '\x00',
       '"text"'),
      (2, -0.0000000001, 'NaN', 'NaN', -9223372036854775808, '4713-01-01 00:00:00 BC',
       '294246-12-31 23:59:59.999999+00', '-infinity', '-2562047 hours', '', '[1, "a", 2.50]'),
      (3, 0, -0.0, 1.17549435e-38, 0, '2000-01-01', '1970-01-01 00:00:00+00', '2000-02-29',
       '0 seconds', '\xdeadbeef', '{"k": "v"}');
"#;

/// Every row of a raw table without the `_elt_` columns, as text, in key order; JSON
/// columns as parsed values, since a JSON value keeps its meaning, not its spacing or key
/// order (jsonb keeps neither either).
fn rows(project: &Project, table: &str) -> Vec<String> {
    let json = ["j", "jb", "js"];
    let columns = project.query(&format!(
        "SELECT column_name FROM duckdb_columns() WHERE table_name = '{table}' AND column_name IN ('j', 'jb', 'js')"
    ));
    let rest = project.query(&format!(
        "SELECT (whole_row)::VARCHAR FROM (SELECT * EXCLUDE (_elt_extracted_at, _elt_run_id{}) FROM raw.{table}) whole_row ORDER BY id",
        columns.iter().map(|c| format!(", {c}")).collect::<String>()
    ));
    let parsed: Vec<String> = json
        .iter()
        .filter(|c| columns.iter().any(|have| have == *c))
        .flat_map(|c| {
            project.query(&format!(
                "SELECT coalesce({c}::VARCHAR, 'null') FROM raw.{table} ORDER BY id"
            ))
        })
        .map(|text| {
            serde_json::from_str::<serde_json::Value>(&text)
                .unwrap()
                .to_string()
        })
        .collect();
    rest.into_iter().chain(parsed).collect()
}

#[test]
fn a_dead_letter_of_every_type_replays_to_what_a_direct_load_gives() {
    let url = fresh_database("replay_types");
    execute(&url, EVERYTHING);
    execute(&url, EXTREMES);
    let direct = Project::new(&project_toml(&url, "", ""));
    direct.elt(&["sync", "--connection", "pg"]).expect_code(0);

    let streams = r#"streams = [
  { name = "public.everything", json_schema_path = "check.json" },
  { name = "public.extremes", json_schema_path = "check.json" },
]"#;
    let project = Project::new(&project_toml(&url, "", streams));
    std::fs::write(project.dir().join("check.json"), r#"{ "not": {} }"#).unwrap();
    project.elt(&["sync", "--connection", "pg"]).expect_code(0);
    assert_eq!(
        project.query("SELECT count(*)::VARCHAR FROM raw._elt_dead_letter"),
        ["6"],
        "every record is a dead letter"
    );
    // The reason quotes a record (here 100 kB of jsonb) only up to 300 characters.
    assert_eq!(
        project.query("SELECT max(length(reason))::VARCHAR FROM raw._elt_dead_letter"),
        ["301"]
    );
    // What the issue found: the decimal kept as a float, infinities as null.
    assert_eq!(
        project.query(
            "SELECT (record->>'$.n') || ' ' || (record->>'$.d') FROM raw._elt_dead_letter
             WHERE stream = 'public.extremes' AND (record->>'$.id')::INT = 1"
        ),
        ["12345678901234567890.0123456789 Infinity"]
    );

    std::fs::write(project.dir().join("check.json"), "{}").unwrap();
    let replay = project.elt(&["dead-letter", "replay", "--connection", "pg", "--json"]);
    assert_eq!(replay.code(), 0, "{}\n{}", replay.stdout(), replay.stderr());
    assert_eq!(
        project.query("SELECT count(*)::VARCHAR FROM raw._elt_dead_letter"),
        ["0"]
    );
    for table in ["public_everything", "public_extremes"] {
        assert_eq!(rows(&project, table), rows(&direct, table), "{table}");
    }
}

#[test]
fn replay_after_a_switch_to_evolve_adds_the_column_itself() {
    let url = fresh_database("replay_evolve");
    crate::deadletter::orders_table(&url, 20);
    let project = Project::new(&project_toml(
        &url,
        "",
        &crate::contracts::streams("discard_row"),
    ));
    project.elt(&["sync", "--connection", "pg"]).expect_code(0);
    execute(
        &url,
        "ALTER TABLE orders ADD COLUMN coupon text;
         UPDATE orders SET coupon = 'SAVE' || id, updated_at = now() WHERE id <= 5;",
    );
    project.elt(&["sync", "--connection", "pg"]).expect_code(0);
    assert_eq!(
        project.query("SELECT count(*)::VARCHAR FROM raw._elt_dead_letter"),
        ["5"]
    );
    // The user accepts the new column and replays at once, before any sync.
    project.write_config(&project_toml(
        &url,
        "",
        &crate::contracts::streams("evolve"),
    ));
    let replay = project.elt(&["dead-letter", "replay", "--connection", "pg"]);
    assert_eq!(replay.code(), 0, "{}\n{}", replay.stdout(), replay.stderr());
    assert_eq!(
        project.query(
            "SELECT count(*)::VARCHAR || ' ' || min(coupon) FROM raw.public_orders WHERE coupon IS NOT NULL"
        ),
        ["5 SAVE1"]
    );
    assert_eq!(
        project.query("SELECT count(*)::VARCHAR FROM raw._elt_dead_letter"),
        ["0"]
    );
}
