//! Records that fail a stream's JSON Schema or its `discard_row` contract land in
//! `_elt_dead_letter` with readable reasons, in the same commits as the good rows; every
//! extracted record is in the raw table or the dead-letter table; `--max-dead-letter`
//! fails the stream above its limit; `elt dead-letter list` shows them.

use crate::common::{Project, sample_toml, stream};
use crate::contracts::streams;
use crate::pg::{execute, fresh_database, project_toml};

const ORDERS_SCHEMA: &str = r#"{
  "type": "object",
  "required": ["id", "quantity"],
  "properties": {
    "quantity": { "type": "integer", "maximum": 7 },
    "shipping": { "type": ["object", "null"] }
  }
}"#;

fn sample_with_schema() -> Project {
    let toml = sample_toml(3_000, 500, 0).replace(
        "[connections.demo]\nsource = \"sample\"\ndestination = \"local\"\n",
        "[connections.demo]\nsource = \"sample\"\ndestination = \"local\"\nstreams = [\n  { name = \"customers\" },\n  { name = \"products\" },\n  { name = \"orders\", json_schema_path = \"schemas/orders.json\" },\n]\n",
    );
    let project = Project::new(&toml);
    std::fs::create_dir_all(project.dir().join("schemas")).unwrap();
    std::fs::write(project.dir().join("schemas/orders.json"), ORDERS_SCHEMA).unwrap();
    project
}

#[test]
fn records_breaking_the_json_schema_are_dead_lettered_with_reasons() {
    let project = sample_with_schema();
    let run = project
        .elt(&["sync", "--connection", "demo", "--json"])
        .expect_code(0)
        .json();
    let orders = stream(&run, "orders");
    let dead = orders["rows_dead_lettered"].as_u64().unwrap();
    assert!(dead > 0, "{orders}");
    assert_eq!(orders["rows_read"], 3_000);
    let loaded: u64 = project.query("SELECT count(*)::VARCHAR FROM raw.orders")[0]
        .parse()
        .unwrap();
    assert_eq!(
        loaded + dead,
        3_000,
        "every record is in one table or the other"
    );
    assert_eq!(
        project.query("SELECT count(*)::VARCHAR FROM raw.orders WHERE quantity > 7"),
        ["0"]
    );
    assert_eq!(
        project.query("SELECT count(*)::VARCHAR FROM raw._elt_dead_letter WHERE stream = 'orders'"),
        [dead.to_string()]
    );
    let reasons = project.query(
        "SELECT DISTINCT reason || ' | ' || (record->>'$.quantity') FROM raw._elt_dead_letter ORDER BY 1",
    );
    assert_eq!(
        reasons,
        [
            "/quantity: 8 is greater than the maximum of 7 | 8",
            "/quantity: 9 is greater than the maximum of 7 | 9"
        ]
    );
    // The record keeps its JSON columns as JSON.
    assert_eq!(
        project.query("SELECT count(*)::VARCHAR FROM raw._elt_dead_letter WHERE json_type(record->'$.shipping') NOT IN ('OBJECT', 'NULL')"),
        ["0"]
    );

    let listed = project
        .elt(&[
            "dead-letter",
            "list",
            "--connection",
            "demo",
            "--stream",
            "orders",
            "--limit",
            "3",
            "--json",
        ])
        .expect_code(0)
        .json();
    let first = &listed["dead_letters"][0];
    assert_eq!(listed["dead_letters"].as_array().map(Vec::len), Some(3));
    assert!(
        first["reason"].as_str().unwrap().starts_with("/quantity: "),
        "{first}"
    );
    assert!(first["record"]["quantity"].as_u64().unwrap() > 7, "{first}");

    // Nothing new: nothing more dead-lettered.
    let again = project
        .elt(&["sync", "--connection", "demo", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(stream(&again, "orders")["rows_dead_lettered"], 0);
}

#[test]
fn max_dead_letter_fails_the_stream_above_its_limit() {
    let project = sample_with_schema();
    let strict = project.elt(&[
        "sync",
        "--connection",
        "demo",
        "--json",
        "--max-dead-letter",
        "5",
    ]);
    assert_eq!(strict.code(), 4, "the other streams committed");
    let summary = strict.json();
    let error = stream(&summary, "orders")["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(error.contains("above --max-dead-letter 5"), "{error}");
    let share = Project::new(&std::fs::read_to_string(project.dir().join("elt.toml")).unwrap());
    std::fs::create_dir_all(share.dir().join("schemas")).unwrap();
    std::fs::write(share.dir().join("schemas/orders.json"), ORDERS_SCHEMA).unwrap();
    share
        .elt(&["sync", "--connection", "demo", "--max-dead-letter", "50%"])
        .expect_code(0);
    let bad = share.elt(&["sync", "--connection", "demo", "--max-dead-letter", "lots"]);
    assert_eq!(bad.code(), 2, "{}", bad.stderr());
}

/// Table `orders` (id, qty, updated_at) with `rows` rows in database `url`.
pub fn orders_table(url: &str, rows: u32) {
    execute(
        url,
        &format!(
            "CREATE TABLE orders (id bigint PRIMARY KEY, qty integer, updated_at timestamptz NOT NULL);
             INSERT INTO orders SELECT g, g, timestamptz '2024-01-01' + g * interval '1 s'
               FROM generate_series(1, {rows}) g;"
        ),
    );
}

#[test]
fn discard_row_and_discard_value_keep_the_table_and_lose_no_record() {
    let url = fresh_database("discard");
    orders_table(&url, 100);
    let project = Project::new(&project_toml(&url, "", &streams("discard_row")));
    project.elt(&["sync", "--connection", "pg"]).expect_code(0);
    execute(
        &url,
        "ALTER TABLE orders ADD COLUMN coupon text;
         UPDATE orders SET coupon = 'SAVE' || id, updated_at = now() WHERE id <= 10;
         UPDATE orders SET qty = qty + 1000, updated_at = now() WHERE id BETWEEN 11 AND 30;",
    );
    let run = project
        .elt(&["sync", "--connection", "pg", "--json"])
        .expect_code(0)
        .json();
    let orders = stream(&run, "public.orders");
    assert_eq!(orders["rows_read"], 30);
    assert_eq!(orders["rows_dead_lettered"], 10);
    assert_eq!(orders["rows_loaded"], 20);
    assert_eq!(
        project.query("SELECT count(*)::VARCHAR FROM duckdb_columns() WHERE table_name = 'public_orders' AND column_name = 'coupon'"),
        ["0"],
        "the table keeps its columns"
    );
    assert_eq!(
        project.query("SELECT min(reason) || ' | ' || count(*) || ' | ' || min(record->>'$.coupon') FROM raw._elt_dead_letter"),
        ["new column coupon is not in the table (schema_contract = \"discard_row\") | 10 | SAVE1"]
    );
    assert_eq!(
        project.query("SELECT qty::VARCHAR FROM raw.public_orders WHERE id = 11"),
        ["1011"]
    );

    // discard_value: every row loads, without the coupon.
    project.write_config(&project_toml(&url, "", &streams("discard_value")));
    execute(
        &url,
        "UPDATE orders SET qty = 0, updated_at = now() WHERE id <= 10;",
    );
    let run = project
        .elt(&["sync", "--connection", "pg", "--json"])
        .expect_code(0)
        .json();
    let orders = stream(&run, "public.orders");
    assert_eq!(orders["rows_dead_lettered"], 0);
    assert_eq!(orders["rows_loaded"], 10);
    assert!(
        orders["notes"]
            .to_string()
            .contains("its values are not loaded"),
        "{orders}"
    );
    assert_eq!(
        project.query("SELECT count(*)::VARCHAR FROM raw.public_orders WHERE id <= 10 AND qty = 0"),
        ["10"]
    );
}

#[test]
fn postgresql_keeps_the_same_dead_letters() {
    let url = fresh_database("dead_letters");
    let toml = crate::pg_destination::sample_to_pg(&url, 3_000, 500, 0).replace(
        "[connections.merge]\nsource = \"sample\"\ndestination = \"pg\"\ndataset = \"merge\"\n",
        "[connections.merge]\nsource = \"sample\"\ndestination = \"pg\"\ndataset = \"merge\"\nstreams = [{ name = \"orders\", json_schema_path = \"orders.json\" }]\n",
    );
    let project = Project::new(&toml);
    std::fs::write(project.dir().join("orders.json"), ORDERS_SCHEMA).unwrap();
    let run = project
        .elt(&["sync", "--connection", "merge", "--json"])
        .expect_code(0)
        .json();
    let dead = stream(&run, "orders")["rows_dead_lettered"]
        .as_u64()
        .unwrap();
    assert!(dead > 0);
    let counts = crate::pg::query(
        &url,
        "SELECT (SELECT count(*) FROM merge.orders) || '+' || count(*) || ':' || count(DISTINCT reason)
         FROM merge._elt_dead_letter WHERE stream = 'orders' AND (record->>'quantity')::int > 7",
    );
    assert_eq!(counts, [format!("{}+{dead}:2", 3_000 - dead)]);
    let listed = project
        .elt(&["dead-letter", "list", "--connection", "merge", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(
        listed["dead_letters"].as_array().map(Vec::len),
        Some(dead.min(50) as usize)
    );
}

#[test]
fn replay_loads_what_now_passes_exactly_once() {
    let project = sample_with_schema();
    let run = project
        .elt(&["sync", "--connection", "demo", "--json"])
        .expect_code(0)
        .json();
    let dead = stream(&run, "orders")["rows_dead_lettered"]
        .as_u64()
        .unwrap();
    let nines: u64 = project.query(
        "SELECT count(*)::VARCHAR FROM raw._elt_dead_letter WHERE (record->>'$.quantity')::INT = 9",
    )[0]
    .parse()
    .unwrap();
    assert!(nines > 0 && nines < dead);

    // Half fixed: quantities up to 8 pass now, the nines still fail.
    let schema = |max: u32| ORDERS_SCHEMA.replace("\"maximum\": 7", &format!("\"maximum\": {max}"));
    std::fs::write(project.dir().join("schemas/orders.json"), schema(8)).unwrap();
    let partial = project.elt(&["dead-letter", "replay", "--connection", "demo", "--json"]);
    assert_eq!(partial.code(), 1, "some still fail");
    let orders = &partial.json()["streams"][0];
    assert_eq!(orders["replayed"], dead - nines);
    assert_eq!(orders["still_failing"], nines);
    assert_eq!(
        project.query("SELECT count(*)::VARCHAR FROM raw.orders"),
        [(3_000 - nines).to_string()]
    );

    std::fs::write(project.dir().join("schemas/orders.json"), schema(9)).unwrap();
    project
        .elt(&["dead-letter", "replay", "--connection", "demo"])
        .expect_code(0);
    assert_eq!(
        project.query("SELECT count(*)::VARCHAR || '/' || count(DISTINCT id) FROM raw.orders"),
        ["3000/3000"]
    );
    assert_eq!(
        project.query("SELECT count(*)::VARCHAR FROM raw._elt_dead_letter"),
        ["0"]
    );
    let again = project
        .elt(&["dead-letter", "replay", "--connection", "demo"])
        .expect_code(0)
        .stdout();
    assert_eq!(again, "demo: no dead letters\n");
}

#[test]
fn replay_never_overwrites_a_newer_row() {
    let url = fresh_database("replay_superseded");
    orders_table(&url, 20);
    let project = Project::new(&project_toml(&url, "", &streams("discard_row")));
    project.elt(&["sync", "--connection", "pg"]).expect_code(0);
    execute(
        &url,
        "ALTER TABLE orders ADD COLUMN coupon text;
         UPDATE orders SET coupon = 'OLD', updated_at = now() - interval '1 minute' WHERE id <= 5;",
    );
    project.elt(&["sync", "--connection", "pg"]).expect_code(0);
    assert_eq!(
        project.query("SELECT count(*)::VARCHAR FROM raw._elt_dead_letter"),
        ["5"]
    );

    // The table takes the column, and newer versions of rows 1 to 3 load.
    project.write_config(&project_toml(&url, "", &streams("evolve")));
    execute(
        &url,
        "UPDATE orders SET coupon = 'NEW', updated_at = now() WHERE id <= 3;",
    );
    project.elt(&["sync", "--connection", "pg"]).expect_code(0);

    let replay = project
        .elt(&["dead-letter", "replay", "--connection", "pg", "--json"])
        .expect_code(0)
        .json();
    let orders = &replay["streams"][0];
    assert_eq!(
        (orders["replayed"].as_u64(), orders["superseded"].as_u64()),
        (Some(2), Some(3))
    );
    assert_eq!(
        project.query("SELECT string_agg(id || ':' || coupon, ',' ORDER BY id) FROM raw.public_orders WHERE id <= 5"),
        ["1:NEW,2:NEW,3:NEW,4:OLD,5:OLD"]
    );
    assert_eq!(
        project.query("SELECT count(*)::VARCHAR FROM raw._elt_dead_letter"),
        ["0"]
    );
}
