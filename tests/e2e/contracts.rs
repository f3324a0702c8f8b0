//! Schema contracts and `elt plan`, with a PostgreSQL source whose table changes between
//! syncs: a column added under `freeze` (the stream fails, data and state untouched) and
//! under `evolve` (the column is added), a changed type, and a removed column.

use serde_json::Value;

use crate::common::{Project, stream};
use crate::pg::{execute, fresh_database, project_toml};

fn plan(project: &Project) -> Value {
    project
        .elt(&["plan", "--connection", "pg", "--json"])
        .expect_code(0)
        .json()
}

fn changes(plan: &Value) -> Vec<(String, String)> {
    plan["streams"][0]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["description"].as_str().unwrap().to_owned(),
                c["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// `streams` of a project that syncs `public.orders` under schema contract `contract`.
pub fn streams(contract: &str) -> String {
    format!(r#"streams = [{{ name = "public.orders", schema_contract = "{contract}" }}]"#)
}

#[test]
fn freeze_refuses_a_new_column_and_evolve_adds_it() {
    let url = fresh_database("contracts");
    execute(
        &url,
        "CREATE TABLE orders (id bigint PRIMARY KEY, qty integer, note text,
           updated_at timestamptz NOT NULL);
         INSERT INTO orders SELECT g, g, 'n' || g, timestamptz '2024-01-01' + g * interval '1 s'
           FROM generate_series(1, 100) g;",
    );
    let project = Project::new(&project_toml(&url, "", &streams("freeze")));
    let first = plan(&project);
    assert_eq!(
        changes(&first),
        [("new table".to_owned(), "created".to_owned())]
    );
    project.elt(&["sync", "--connection", "pg"]).expect_code(0);
    assert_eq!(changes(&plan(&project)), Vec::<(String, String)>::new());

    execute(
        &url,
        "ALTER TABLE orders ADD COLUMN discount numeric(5,2);
         UPDATE orders SET discount = 1.5, updated_at = now() WHERE id <= 10;",
    );
    assert_eq!(
        changes(&plan(&project)),
        [(
            "new column discount DECIMAL(5,2)".to_owned(),
            "the sync fails the stream (schema_contract = \"freeze\")".to_owned()
        )]
    );
    let state = || project.query("SELECT state::VARCHAR FROM raw._elt_state");
    let before = state();
    let frozen = project.elt(&["sync", "--connection", "pg", "--json"]);
    assert_eq!(frozen.code(), 1);
    let error = stream(&frozen.json(), "public.orders")["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        error.contains("schema_contract is \"freeze\" and the schema changed (new column discount DECIMAL(5,2))"),
        "{error}"
    );
    assert_eq!(state(), before, "state untouched");
    assert_eq!(
        project.query("SELECT count(*)::VARCHAR FROM duckdb_columns() WHERE table_name = 'public_orders' AND column_name = 'discount'"),
        ["0"],
        "table untouched"
    );

    project.write_config(&project_toml(&url, "", &streams("evolve")));
    assert_eq!(
        changes(&plan(&project))[0].1,
        "added (NULL in existing rows)"
    );
    let evolved = project
        .elt(&["sync", "--connection", "pg", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(stream(&evolved, "public.orders")["rows_read"], 10);
    assert_eq!(
        project.query("SELECT count(discount)::VARCHAR || '/' || count(*) FROM raw.public_orders"),
        ["10/100"]
    );

    // A changed type: the plan says what will happen, and evolve fails clearly.
    execute(
        &url,
        "ALTER TABLE orders ALTER COLUMN qty TYPE text; UPDATE orders SET updated_at = now() WHERE id = 1;",
    );
    assert_eq!(
        changes(&plan(&project)),
        [(
            "column qty changes type from INTEGER to VARCHAR".to_owned(),
            "the sync fails the stream: rebuild the table with `elt sync --full-refresh`"
                .to_owned()
        )]
    );
    let retyped = project.elt(&["sync", "--connection", "pg", "--json"]);
    assert_eq!(retyped.code(), 1);
    let error = stream(&retyped.json(), "public.orders")["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(error.contains("column qty is INTEGER"), "{error}");

    // A removed column is kept in the table; new rows hold NULL there.
    execute(
        &url,
        "ALTER TABLE orders ALTER COLUMN qty TYPE integer USING qty::integer;
         ALTER TABLE orders DROP COLUMN note; UPDATE orders SET updated_at = now() WHERE id = 2;",
    );
    assert_eq!(
        changes(&plan(&project)),
        [(
            "column note no longer sent (kept, NULL in new rows)".to_owned(),
            "kept (NULL in new rows)".to_owned()
        )]
    );
    project.elt(&["sync", "--connection", "pg"]).expect_code(0);
    assert_eq!(
        project.query(
            "SELECT coalesce(note, 'NULL') FROM raw.public_orders WHERE id IN (2, 3) ORDER BY id"
        ),
        ["NULL", "n3"]
    );

    // A type that grows is widened in place.
    execute(
        &url,
        "ALTER TABLE orders ALTER COLUMN qty TYPE bigint;
         UPDATE orders SET qty = 5000000000, updated_at = now() WHERE id = 4;",
    );
    assert_eq!(
        changes(&plan(&project)),
        [
            (
                "column qty widens from INTEGER to BIGINT".to_owned(),
                "widened in place".to_owned()
            ),
            (
                "column note no longer sent (kept, NULL in new rows)".to_owned(),
                "kept (NULL in new rows)".to_owned()
            ),
        ]
    );
    project.elt(&["sync", "--connection", "pg"]).expect_code(0);
    assert_eq!(
        project.query("SELECT data_type FROM duckdb_columns() WHERE table_name = 'public_orders' AND column_name = 'qty'"),
        ["BIGINT"]
    );
    assert_eq!(
        project.query("SELECT qty::VARCHAR FROM raw.public_orders WHERE id IN (4, 5) ORDER BY id"),
        ["5000000000", "5"]
    );
}

#[test]
fn postgresql_widens_in_place_too() {
    let url = fresh_database("widen_pg");
    execute(
        &url,
        "CREATE TABLE orders (id bigint PRIMARY KEY, qty integer, price numeric(8,2),
           updated_at timestamptz NOT NULL);
         INSERT INTO orders SELECT g, g, g / 4.0, timestamptz '2024-01-01' + g * interval '1 s'
           FROM generate_series(1, 10) g;",
    );
    let project = Project::new(&format!(
        r#"
[sources.pg]
type = "postgres"
url = "{url}"

[destinations.pg]
type = "postgres"
url = "{url}"

[connections.pg]
source = "pg"
destination = "pg"
dataset = "raw"
"#
    ));
    project.elt(&["sync", "--connection", "pg"]).expect_code(0);
    execute(
        &url,
        "ALTER TABLE orders ALTER COLUMN qty TYPE bigint, ALTER COLUMN price TYPE numeric(12,3);
         UPDATE orders SET qty = 5000000000, price = 123456.789, updated_at = now() WHERE id = 1;",
    );
    assert_eq!(
        changes(&plan(&project)),
        [
            (
                "column qty widens from integer to bigint".to_owned(),
                "widened in place".to_owned()
            ),
            (
                "column price widens from numeric(8,2) to numeric(12,3)".to_owned(),
                "widened in place".to_owned()
            ),
        ]
    );
    project.elt(&["sync", "--connection", "pg"]).expect_code(0);
    assert_eq!(
        crate::pg::query(
            &url,
            "SELECT qty || ' ' || price FROM raw.public_orders WHERE id = 1"
        ),
        ["5000000000 123456.789"]
    );
}

#[test]
fn a_new_field_in_http_records_is_frozen_or_added() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use elt_core::testkit::http::{Reply, TestServer};

    let coupon = Arc::new(AtomicBool::new(false));
    let with_coupon = coupon.clone();
    let server = TestServer::start(move |_, _| {
        let records: Vec<Value> = (1..=5)
            .map(|i| {
                let mut r = serde_json::json!({ "id": i, "name": format!("n{i}") });
                if with_coupon.load(Ordering::SeqCst) {
                    r["coupon"] = format!("SAVE{i}").into();
                }
                r
            })
            .collect();
        Reply::json(Value::Array(records))
    });
    let toml = |contract: &str| {
        format!(
            r#"
[sources.api]
type = "http"
manifest_path = "manifest.toml"
base_url = "{}"
allow_insecure = true

{}
[connections.api]
source = "api"
destination = "local"
schema_contract = "{contract}"
"#,
            server.url(),
            crate::common::DESTINATION
        )
    };
    let project = Project::new(&toml("freeze"));
    std::fs::write(
        project.dir().join("manifest.toml"),
        "[[streams]]\nname = \"items\"\npath = \"/items\"\nprimary_key = [\"id\"]\n",
    )
    .unwrap();
    project.elt(&["sync", "--connection", "api"]).expect_code(0);

    coupon.store(true, Ordering::SeqCst);
    let frozen = project.elt(&["sync", "--connection", "api", "--json"]);
    assert_eq!(frozen.code(), 1);
    let error = stream(&frozen.json(), "items")["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(error.contains("new column coupon VARCHAR"), "{error}");

    project.write_config(&toml("evolve"));
    project.elt(&["sync", "--connection", "api"]).expect_code(0);
    assert_eq!(
        project.query("SELECT string_agg(coupon, ',' ORDER BY id) FROM raw.items"),
        ["SAVE1,SAVE2,SAVE3,SAVE4,SAVE5"]
    );
}
