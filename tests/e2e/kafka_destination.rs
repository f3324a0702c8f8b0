//! The kafka destination: a PostgreSQL table onto a topic (a keyed JSON message per row),
//! then back into DuckDB through the kafka source, equals the original table, also after
//! an incremental round of updates merged by key.

use crate::common::Project;
use crate::kafka_common::broker;
use crate::pg::{execute, fresh_database, query};

const TABLE: &str = "
CREATE TABLE items (
    id bigint PRIMARY KEY, name text, amount numeric(14, 2), at timestamptz NOT NULL,
    flag boolean, doc jsonb, updated_at timestamptz NOT NULL DEFAULT now());
INSERT INTO items (id, name, amount, at, flag, doc)
SELECT g, CASE WHEN g % 9 = 0 THEN NULL ELSE 'item ' || g || ' Zoë 東京 \"q\"' END,
       (g * 1234567.89 / 7)::numeric(14, 2), timestamptz '1999-12-31 23:59:59.999999+00' + g * interval '1 hour 1 microsecond',
       CASE WHEN g % 5 = 0 THEN NULL ELSE g % 2 = 0 END,
       CASE WHEN g % 4 = 0 THEN NULL ELSE jsonb_build_object('g', g, 'tags', jsonb_build_array('a', g)) END
FROM generate_series(1, 3000) g;";

/// `id|name|amount|at in µs|flag|doc` of every row; `doc` normalized through serde_json.
fn normalize(rows: Vec<String>) -> Vec<String> {
    let mut rows: Vec<String> = rows
        .into_iter()
        .map(|row| {
            let (head, doc) = row.rsplit_once('|').expect("a doc column");
            let doc = match doc {
                "-" => "-".to_owned(),
                json => serde_json::from_str::<serde_json::Value>(json)
                    .expect("json")
                    .to_string(),
            };
            format!("{head}|{doc}")
        })
        .collect();
    rows.sort();
    rows
}

fn source_rows(url: &str) -> Vec<String> {
    normalize(query(
        url,
        "SELECT id || '|' || coalesce(name, '-') || '|' || amount || '|' || \
         (extract(epoch FROM at) * 1000000)::bigint || '|' || coalesce(flag::text, '-') || '|' || \
         coalesce(doc::text, '-') FROM items",
    ))
}

fn loaded_rows(project: &Project, table: &str) -> Vec<String> {
    normalize(project.query(&format!(
        "SELECT id || '|' || coalesce(name, '-') || '|' || amount || '|' || epoch_us(\"at\") || '|' || \
         coalesce(flag::VARCHAR, '-') || '|' || coalesce(doc::VARCHAR, '-') FROM raw.{table} \
         WHERE _elt_deleted_at IS NULL"
    )))
}

#[test]
fn a_postgres_table_onto_a_topic_and_back_equals_the_table() {
    let url = fresh_database("kafka_destination");
    execute(&url, TABLE);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    let dataset = format!("elt_dest_{nanos}");
    let topic = format!("{dataset}.public_items");
    let project = Project::new(&format!(
        r#"
[sources.pg]
type = "postgres"
url = "{url}"
batch_rows = 700

[destinations.bus]
type = "kafka"
bootstrap_servers = ["{broker}"]
state_topic = "{dataset}_state"
commit_rows = 1000

[sources.bus]
type = "kafka"
bootstrap_servers = ["{broker}"]
topics = ["{topic}"]
schemas."{topic}" = {{ properties = {{ id = {{ type = "integer" }}, name = {{ type = "string" }}, amount = {{ type = "string" }}, at = {{ type = "string", format = "date-time" }}, flag = {{ type = "boolean" }}, doc = {{ type = "object" }}, updated_at = {{ type = "string", format = "date-time" }} }} }}

[destinations.local]
type = "duckdb"
path = "data/demo.duckdb"

[connections.out]
source = "pg"
destination = "bus"
dataset = "{dataset}"
streams = [{{ name = "public.items" }}]

[connections.back]
source = "bus"
destination = "local"
streams = [{{ name = "{topic}", write = "merge" }}]
"#,
        broker = broker()
    ));
    let out = project
        .elt(&["sync", "--connection", "out", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(out["streams"][0]["rows_loaded"], 3000, "{out}");
    assert_eq!(out["streams"][0]["write_mode"], "merge", "{out}");
    let back = project
        .elt(&["sync", "--connection", "back", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(back["streams"][0]["rows_loaded"], 3000, "{back}");
    let table = crate::kafka_common::table(&topic);
    assert_eq!(loaded_rows(&project, &table), source_rows(&url));
    let keys = project.query(&format!(
        "SELECT count(*)::VARCHAR FROM raw.{table} WHERE _elt_key <> id::VARCHAR"
    ));
    assert_eq!(keys, ["0"], "each message is keyed by the primary key");

    // An incremental round: only the changed rows go onto the topic, and merged by key
    // they make the table again.
    execute(
        &url,
        "UPDATE items SET name = 'changed ' || id, amount = -amount, updated_at = now() + interval '1 second' \
         WHERE id % 100 = 0; \
         INSERT INTO items (id, name, amount, at, updated_at) \
         SELECT g, 'new', 1.5, now(), now() + interval '1 second' FROM generate_series(3001, 3010) g;",
    );
    let out = project
        .elt(&["sync", "--connection", "out", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(out["streams"][0]["rows_loaded"], 40, "{out}");
    let again = project
        .elt(&["sync", "--connection", "out", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(
        again["streams"][0]["rows_read"], 0,
        "the state came back from the state topic: {again}"
    );
    let back = project
        .elt(&["sync", "--connection", "back", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(back["streams"][0]["rows_read"], 40, "{back}");
    assert_eq!(loaded_rows(&project, &table), source_rows(&url));
}
