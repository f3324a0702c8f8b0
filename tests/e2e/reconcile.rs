//! Hard-delete detection from PostgreSQL into DuckDB, each test in its own database: rows
//! deleted in the source are found by comparing key ranges and marked (merge) or closed
//! (history); nothing else changes; `reconcile_deletes_every` spaces the checks out.

use crate::common::{Project, stream};
use crate::pg::{execute, fresh_database, project_toml, query};

const TABLES: &str = "
CREATE TABLE accounts (id bigint PRIMARY KEY, name text, updated_at timestamptz NOT NULL);
INSERT INTO accounts SELECT g, 'account ' || g, timestamptz '2024-01-01' + g * interval '1 second'
  FROM generate_series(1, 50000) g;
CREATE TABLE tags (code text PRIMARY KEY, label text, updated_at timestamptz NOT NULL);
INSERT INTO tags SELECT 'tag-' || g || CASE WHEN g % 3 = 0 THEN '-é' ELSE '' END, 'label ' || g,
  timestamptz '2024-01-01' + g * interval '1 second' FROM generate_series(1, 5000) g;
CREATE TABLE lines (order_id bigint, line_no int, qty int, updated_at timestamptz NOT NULL,
  PRIMARY KEY (order_id, line_no));
INSERT INTO lines SELECT g / 4, g % 4, g, timestamptz '2024-01-01' FROM generate_series(1, 12000) g;
CREATE TABLE devices (id uuid PRIMARY KEY, name text, updated_at timestamptz NOT NULL);
INSERT INTO devices SELECT md5(g::text)::uuid, 'device ' || g, timestamptz '2024-01-01'
  FROM generate_series(1, 3000) g;";

fn project(url: &str, every: u32) -> Project {
    Project::new(&project_toml(
        url,
        "",
        &format!(
            r#"
[[connections.pg.streams]]
name = "public.accounts"
reconcile_deletes_every = {every}

[[connections.pg.streams]]
name = "public.tags"
write = "history"

[[connections.pg.streams]]
name = "public.lines"

[[connections.pg.streams]]
name = "public.devices"
"#
        ),
    ))
}

fn sync(project: &Project, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["sync", "--connection", "pg", "--json"];
    all.extend_from_slice(args);
    project.elt(&all).expect_code(0).json()
}

#[test]
fn deleted_rows_are_found_and_marked_and_nothing_else_changes() {
    let url = fresh_database("reconcile_marks");
    execute(&url, TABLES);
    let project = project(&url, 1);
    let first = sync(&project, &[]);
    assert_eq!(
        stream(&first, "public.accounts")["deletes_reconciled"],
        true
    );
    assert_eq!(stream(&first, "public.accounts")["rows_deleted"], 0);
    assert_eq!(stream(&first, "public.tags")["deletes_reconciled"], false);

    execute(
        &url,
        "DELETE FROM accounts WHERE id IN (1, 17, 25000, 49999, 50000);
         DELETE FROM tags WHERE code IN ('tag-1', 'tag-3-é', 'tag-4999');
         DELETE FROM lines WHERE (order_id, line_no) IN ((0, 1), (1500, 0), (1500, 3), (3000, 0));
         DELETE FROM devices WHERE id IN (md5('1')::uuid, md5('2999')::uuid)",
    );
    let second = sync(&project, &["--reconcile-deletes"]);
    assert_eq!(stream(&second, "public.accounts")["rows_deleted"], 5);
    assert_eq!(stream(&second, "public.tags")["rows_deleted"], 3);
    // Composite and UUID keys, both large enough to be cut into ranges.
    assert_eq!(stream(&second, "public.lines")["rows_deleted"], 4);
    assert_eq!(stream(&second, "public.devices")["rows_deleted"], 2);
    assert_eq!(
        project.query(
            "SELECT string_agg(order_id || '/' || line_no, ',' ORDER BY order_id, line_no)
             FROM raw.public_lines WHERE _elt_deleted_at IS NOT NULL"
        ),
        ["0/1,1500/0,1500/3,3000/0"]
    );
    assert_eq!(
        project.query(
            "SELECT string_agg(id::VARCHAR, ',' ORDER BY id) FROM raw.public_accounts
             WHERE _elt_deleted_at IS NOT NULL"
        ),
        ["1,17,25000,49999,50000"]
    );
    assert_eq!(
        project.query("SELECT count(*)::VARCHAR FROM raw.public_accounts"),
        ["50000"],
        "marked, not removed"
    );
    assert_eq!(
        project.query(
            "SELECT string_agg(code, ',' ORDER BY code) || ' ' || count(*) FILTER (WHERE _elt_valid_to IS NULL)
             FROM raw.public_tags WHERE NOT _elt_is_current"
        ),
        ["tag-1,tag-3-é,tag-4999 0"],
        "closed versions have an end"
    );
    assert_eq!(
        project.query("SELECT count(*)::VARCHAR FROM raw.public_tags WHERE _elt_is_current"),
        ["4997"]
    );
    // Checked again: nothing new to mark, and the marks stay.
    let third = sync(&project, &["--reconcile-deletes"]);
    assert_eq!(stream(&third, "public.accounts")["rows_deleted"], 0);
    assert_eq!(stream(&third, "public.tags")["rows_deleted"], 0);
    assert_eq!(
        project.query("SELECT count(_elt_deleted_at)::VARCHAR FROM raw.public_accounts"),
        ["5"]
    );
    // A row inserted again under a deleted key comes back alive with the next sync.
    execute(
        &url,
        "INSERT INTO accounts VALUES (17, 'again', timestamptz '2025-01-01')",
    );
    sync(&project, &[]);
    assert_eq!(
        project.query("SELECT count(_elt_deleted_at)::VARCHAR FROM raw.public_accounts"),
        ["4"]
    );
    // --full-refresh rebuilds the merge table from the source: nothing left to reconcile.
    let rebuilt = sync(&project, &["--full-refresh", "--reconcile-deletes"]);
    assert_eq!(
        stream(&rebuilt, "public.accounts")["deletes_reconciled"],
        false
    );
    assert_eq!(stream(&rebuilt, "public.tags")["deletes_reconciled"], true);
    assert_eq!(
        project.query("SELECT count(*)::VARCHAR FROM raw.public_accounts"),
        ["49996"]
    );
}

#[test]
fn reconcile_deletes_every_spaces_the_checks_out() {
    let url = fresh_database("reconcile_every");
    execute(&url, TABLES);
    let project = project(&url, 3);
    let reconciled: Vec<bool> = (0..6)
        .map(|_| {
            stream(&sync(&project, &[]), "public.accounts")["deletes_reconciled"]
                .as_bool()
                .unwrap()
        })
        .collect();
    assert_eq!(reconciled, [false, false, true, false, false, true]);
}

#[test]
fn unsupported_streams_are_refused_before_syncing() {
    let url = fresh_database("reconcile_refused");
    execute(&url, TABLES);
    let project = Project::new(&project_toml(
        &url,
        "",
        r#"
[[connections.pg.streams]]
name = "public.accounts"
write = "append"
reconcile_deletes_every = 1
"#,
    ));
    let run = project.elt(&["sync", "--connection", "pg"]).expect_code(2);
    assert!(
        run.stderr().contains("reconcile_deletes_every")
            && run.stderr().contains("merge, previous or history"),
        "{}",
        run.stderr()
    );
}

#[test]
fn the_postgres_destination_finds_and_marks_deleted_rows_too() {
    let url = fresh_database("reconcile_pg_destination");
    execute(&url, TABLES);
    let project = Project::new(&format!(
        r#"
[sources.pg]
type = "postgres"
url = "{url}"

[destinations.warehouse]
type = "postgres"
url = "{url}"

[connections.pg]
source = "pg"
destination = "warehouse"
dataset = "raw"
streams = [
  {{ name = "public.accounts", reconcile_deletes_every = 1 }},
  {{ name = "public.tags", write = "history", reconcile_deletes_every = 1 }},
]
"#
    ));
    sync(&project, &[]);
    execute(
        &url,
        "DELETE FROM accounts WHERE id IN (1, 17, 25000, 49999, 50000);
         DELETE FROM tags WHERE code IN ('tag-1', 'tag-3-é', 'tag-4999')",
    );
    let second = sync(&project, &[]);
    assert_eq!(stream(&second, "public.accounts")["rows_deleted"], 5);
    assert_eq!(stream(&second, "public.tags")["rows_deleted"], 3);
    assert_eq!(
        query(
            &url,
            "SELECT string_agg(id::text, ',' ORDER BY id) FROM raw.public_accounts
             WHERE _elt_deleted_at IS NOT NULL"
        ),
        ["1,17,25000,49999,50000"]
    );
    assert_eq!(
        query(
            &url,
            "SELECT string_agg(code, ',' ORDER BY code COLLATE \"C\") FROM raw.public_tags
             WHERE NOT _elt_is_current AND _elt_valid_to IS NOT NULL"
        ),
        ["tag-1,tag-3-é,tag-4999"]
    );
    let third = sync(&project, &[]);
    assert_eq!(stream(&third, "public.accounts")["rows_deleted"], 0);
    assert_eq!(stream(&third, "public.tags")["rows_deleted"], 0);
    assert_eq!(
        query(&url, "SELECT count(*)::text FROM raw._elt_reconciliations"),
        ["6"]
    );
}
