//! What the change data capture tests share: the source tables (`items` of every common
//! type, `orders`, `payments`), a project with cdc streams, and the comparison of the
//! source's rows with the raw table's live rows, every column as text on both sides.

use crate::common::Project;
use crate::pg::{project_toml, query};

pub const TABLES: &str = "
CREATE TABLE items (
  id bigint PRIMARY KEY, name text, amount numeric(12,2), flag boolean,
  ts timestamptz, doc jsonb, data bytea, big text);
INSERT INTO items SELECT g, 'ïtem ' || g, g * 1.25, g % 2 = 0,
    timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute',
    jsonb_build_object('g', g), decode(md5(g::text), 'hex'), NULL
  FROM generate_series(1, 3000) g;
CREATE TABLE orders (id int PRIMARY KEY, item bigint, qty int);
CREATE TABLE payments (id int PRIMARY KEY, order_id int, paid numeric(10,2));";

/// Every column of `items` as one text per row, the same on both sides.
pub const ITEM_COLUMNS: [(&str, &str); 8] = [
    ("id::text", "id::VARCHAR"),
    ("coalesce(name, '-')", "coalesce(name, '-')"),
    (
        "coalesce(amount::text, '-')",
        "coalesce(amount::VARCHAR, '-')",
    ),
    ("coalesce(flag::text, '-')", "coalesce(flag::VARCHAR, '-')"),
    (
        "coalesce((extract(epoch FROM ts) * 1000000)::bigint::text, '-')",
        "coalesce(epoch_us(ts)::VARCHAR, '-')",
    ),
    ("coalesce(doc::text, '-')", "coalesce(doc::VARCHAR, '-')"),
    (
        "coalesce(encode(data, 'hex'), '-')",
        "coalesce(lower(hex(data)), '-')",
    ),
    ("coalesce(md5(big), '-')", "coalesce(md5(big), '-')"),
];

pub fn source_rows(url: &str, table: &str, columns: &[(&str, &str)]) -> Vec<String> {
    let list: Vec<&str> = columns.iter().map(|c| c.0).collect();
    query(
        url,
        &format!(
            "SELECT concat_ws('|', {}) FROM {table} ORDER BY id",
            list.join(", ")
        ),
    )
}

pub fn live_rows(project: &Project, table: &str, columns: &[(&str, &str)]) -> Vec<String> {
    let list: Vec<&str> = columns.iter().map(|c| c.1).collect();
    project.query(&format!(
        "SELECT concat_ws('|', {}) FROM raw.{table} WHERE _elt_deleted_at IS NULL ORDER BY id",
        list.join(", ")
    ))
}

pub fn assert_items_equal(url: &str, project: &Project) {
    let (want, got) = (
        source_rows(url, "items", &ITEM_COLUMNS),
        live_rows(project, "public_items", &ITEM_COLUMNS),
    );
    assert_eq!(want.len(), got.len(), "live row count");
    for (w, g) in want.iter().zip(&got) {
        assert_eq!(w, g);
    }
}

pub fn cdc_project(url: &str, streams: &[(&str, &str)]) -> Project {
    let list: Vec<String> = streams
        .iter()
        .map(|(name, extra)| {
            format!("[[connections.pg.streams]]\nname = \"{name}\"\nsync = \"cdc\"\n{extra}")
        })
        .collect();
    Project::new(&project_toml(url, "batch_rows = 500", &list.join("\n")))
}

pub fn sync(project: &Project) -> serde_json::Value {
    project
        .elt(&["sync", "--connection", "pg", "--json"])
        .expect_code(0)
        .json()
}

/// The columns of `orders` and `payments`, as text on both sides.
pub fn small_table_columns(table: &str) -> Vec<(&'static str, &'static str)> {
    let mut columns = vec![("id::text", "id::VARCHAR")];
    columns.extend(match table {
        "orders" => [
            ("coalesce(item::text, '-')", "coalesce(item::VARCHAR, '-')"),
            ("coalesce(qty::text, '-')", "coalesce(qty::VARCHAR, '-')"),
        ],
        _ => [
            (
                "coalesce(order_id::text, '-')",
                "coalesce(order_id::VARCHAR, '-')",
            ),
            ("coalesce(paid::text, '-')", "coalesce(paid::VARCHAR, '-')"),
        ],
    });
    columns
}
