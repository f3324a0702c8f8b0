//! Hard-delete detection from MariaDB into DuckDB, the scenario of `reconcile.rs` on the
//! `mysql` source: integer, text (mixed case and accents, which MariaDB's collation orders
//! differently from the byte order ranges use), composite and date keys; deleted rows are
//! found and marked (merge) or closed (history), and nothing else changes.

use crate::common::{Project, stream};
use crate::mysql::{execute, fresh_database, project_toml};

const TABLES: &str = "
SET SESSION max_recursive_iterations = 100000;
CREATE TABLE accounts (id bigint PRIMARY KEY, name varchar(40), updated_at datetime(6) NOT NULL);
INSERT INTO accounts WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 50000)
  SELECT n, concat('account ', n), '2024-01-01' + INTERVAL n SECOND FROM g;
CREATE TABLE tags (code varchar(40) PRIMARY KEY, label varchar(40), updated_at datetime(6) NOT NULL)
  DEFAULT CHARSET utf8mb4 COLLATE utf8mb4_general_ci;
INSERT INTO tags WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 5000)
  SELECT concat(IF(n % 5 = 0, 'TAG-', 'tag-'), n, IF(n % 3 = 0, '-é', '')), concat('label ', n),
         '2024-01-01' + INTERVAL n SECOND FROM g;
CREATE TABLE `lines` (order_id bigint, line_no int, qty int, updated_at datetime(6) NOT NULL,
  PRIMARY KEY (order_id, line_no));
INSERT INTO `lines` WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 12000)
  SELECT n DIV 4, n % 4, n, '2024-01-01' FROM g;
CREATE TABLE days (day date PRIMARY KEY, name varchar(40), updated_at datetime(6) NOT NULL);
INSERT INTO days WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 3000)
  SELECT '2000-01-01' + INTERVAL n DAY, concat('day ', n), '2024-01-01' FROM g";

fn sync(project: &Project, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["sync", "--connection", "my", "--json"];
    all.extend_from_slice(args);
    project.elt(&all).expect_code(0).json()
}

#[test]
fn mysql_deleted_rows_are_found_and_marked_and_nothing_else_changes() {
    let url = fresh_database("reconcile_marks");
    execute(&url, TABLES);
    let db = "elt_reconcile_marks";
    let streams = format!(
        r#"streams = [
  {{ name = "{db}.accounts", reconcile_deletes_every = 1 }},
  {{ name = "{db}.tags", write = "history" }},
  {{ name = "{db}.lines" }},
  {{ name = "{db}.days" }},
]"#
    );
    let project = Project::new(&format!("{}{streams}\n", project_toml(&url, "")));
    let name = |table: &str| format!("{db}.{table}");
    let first = sync(&project, &[]);
    assert_eq!(
        stream(&first, &name("accounts"))["deletes_reconciled"],
        true
    );
    assert_eq!(stream(&first, &name("accounts"))["rows_deleted"], 0);

    execute(
        &url,
        "DELETE FROM accounts WHERE id IN (1, 17, 25000, 49999, 50000);
         DELETE FROM tags WHERE code IN ('tag-1', 'tag-3-é', 'TAG-4990', 'tag-4999');
         DELETE FROM `lines` WHERE (order_id, line_no) IN ((0, 1), (1500, 0), (1500, 3), (3000, 0));
         DELETE FROM days WHERE name IN ('day 1', 'day 2999')",
    );
    let second = sync(&project, &["--reconcile-deletes"]);
    assert_eq!(stream(&second, &name("accounts"))["rows_deleted"], 5);
    assert_eq!(stream(&second, &name("tags"))["rows_deleted"], 4);
    assert_eq!(stream(&second, &name("lines"))["rows_deleted"], 4);
    assert_eq!(stream(&second, &name("days"))["rows_deleted"], 2);
    let table = |t: &str| format!("raw.{db}_{t}");
    assert_eq!(
        project.query(&format!(
            "SELECT string_agg(id::VARCHAR, ',' ORDER BY id) FROM {} WHERE _elt_deleted_at IS NOT NULL",
            table("accounts")
        )),
        ["1,17,25000,49999,50000"]
    );
    assert_eq!(
        project.query(&format!(
            "SELECT string_agg(order_id || '/' || line_no, ',' ORDER BY order_id, line_no)
             FROM {} WHERE _elt_deleted_at IS NOT NULL",
            table("lines")
        )),
        ["0/1,1500/0,1500/3,3000/0"]
    );
    assert_eq!(
        project.query(&format!(
            "SELECT string_agg(code, ',' ORDER BY code) FROM {} WHERE NOT _elt_is_current",
            table("tags")
        )),
        ["TAG-4990,tag-1,tag-3-é,tag-4999"]
    );
    assert_eq!(
        project.query(&format!(
            "SELECT string_agg(name, ',' ORDER BY name) FROM {} WHERE _elt_deleted_at IS NOT NULL",
            table("days")
        )),
        ["day 1,day 2999"]
    );
    assert_eq!(
        project.query(&format!(
            "SELECT count(*)::VARCHAR FROM {}",
            table("accounts")
        )),
        ["50000"],
        "marked, not removed"
    );
    // Checked again: nothing new; a key inserted again comes back alive.
    let third = sync(&project, &["--reconcile-deletes"]);
    for t in ["accounts", "tags", "lines", "days"] {
        assert_eq!(stream(&third, &name(t))["rows_deleted"], 0, "{t}");
    }
    execute(
        &url,
        "INSERT INTO accounts VALUES (17, 'again', '2025-01-01')",
    );
    sync(&project, &[]);
    assert_eq!(
        project.query(&format!(
            "SELECT count(_elt_deleted_at)::VARCHAR FROM {}",
            table("accounts")
        )),
        ["4"]
    );
}
