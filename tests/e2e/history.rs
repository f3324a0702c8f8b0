//! The `history` write mode (SCD type 2) and soft deletes, from PostgreSQL into DuckDB,
//! each test in its own database: versions per change, contiguous and with one current,
//! none added by reruns, lookbacks or `--full-refresh`; a soft delete closes the version
//! (history) or marks the row (merge); a kill mid-load then a rerun equals one clean run.

use crate::common::{Project, stream};
use crate::crash::kill_at;
use crate::pg::{execute, fresh_database, project_toml, query};

const CUSTOMERS: &str = "
CREATE TABLE customers (
  id bigint PRIMARY KEY, name text NOT NULL, tier text, updated_at timestamptz NOT NULL,
  deleted_at timestamptz);";

fn insert_customers(from: i64, to: i64) -> String {
    format!(
        "INSERT INTO customers SELECT g, 'customer ' || g, CASE WHEN g % 3 = 0 THEN NULL ELSE 'silver' END,
           timestamptz '2024-01-01' + g * interval '1 second', NULL
         FROM generate_series({from}, {to}) g"
    )
}

fn streams(write: &str) -> String {
    format!(
        r#"
[[connections.pg.streams]]
name = "public.customers"
write = "{write}"
soft_delete = "deleted_at"
"#
    )
}

/// Per key: `id:version count:current count`, for keys with more than one version or
/// none current, and a check that every key's versions are contiguous but for `gaps` keys
/// (deleted for a while, then back).
fn version_summary(project: &Project, gaps: u32) -> Vec<String> {
    let found = project.query(
        "SELECT count(*)::VARCHAR FROM (
           SELECT _elt_valid_to, lead(_elt_valid_from) OVER (PARTITION BY id ORDER BY _elt_valid_from) AS next
           FROM raw.public_customers) WHERE next IS NOT NULL AND next <> _elt_valid_to",
    );
    assert_eq!(found, [gaps.to_string()], "gaps between versions");
    let open_but_closed = project.query(
        "SELECT count(*)::VARCHAR FROM raw.public_customers
         WHERE _elt_is_current <> (_elt_valid_to IS NULL)",
    );
    assert_eq!(
        open_but_closed,
        ["0"],
        "current exactly when valid_to is NULL"
    );
    project.query(
        "SELECT id || ':' || count(*) || ':' || count(*) FILTER (WHERE _elt_is_current)
         FROM raw.public_customers GROUP BY id
         HAVING count(*) > 1 OR count(*) FILTER (WHERE _elt_is_current) <> 1 ORDER BY id",
    )
}

fn versions_total(project: &Project) -> String {
    project.query("SELECT count(*)::VARCHAR FROM raw.public_customers")[0].clone()
}

#[test]
fn each_change_adds_one_contiguous_version_and_reruns_add_none() {
    let url = fresh_database("history_versions");
    execute(
        &url,
        &format!("{CUSTOMERS}; {}", insert_customers(1, 1_000)),
    );
    let project = Project::new(&project_toml(
        &url,
        "lookback_secs = 86400",
        &streams("history"),
    ));
    let sync = |args: &[&str]| {
        let mut all = vec!["sync", "--connection", "pg", "--json"];
        all.extend_from_slice(args);
        project.elt(&all).expect_code(0).json()
    };
    sync(&[]);
    assert_eq!(versions_total(&project), "1000");
    for (n, tier) in ["gold", "platinum", "bronze"].iter().enumerate() {
        execute(
            &url,
            &format!(
                "UPDATE customers SET tier = '{tier}', updated_at = timestamptz '2025-01-01' + {n} * interval '1 day' WHERE id = 7"
            ),
        );
        sync(&[]);
    }
    assert_eq!(version_summary(&project, 0), ["7:4:1"]);
    let tiers = project.query(
        "SELECT coalesce(tier, '-') FROM raw.public_customers WHERE id = 7 ORDER BY _elt_valid_from",
    );
    assert_eq!(tiers, ["silver", "gold", "platinum", "bronze"]);

    // A rerun with a day of lookback re-reads rows (all 1,000 of them here): no version.
    let rerun = sync(&[]);
    assert!(
        stream(&rerun, "public.customers")["rows_read"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert_eq!(versions_total(&project), "1003");
    // --full-refresh on a history stream re-reads everything and keeps the history.
    let refreshed = sync(&["--full-refresh"]);
    assert_eq!(stream(&refreshed, "public.customers")["rows_read"], 1000);
    assert_eq!(
        stream(&refreshed, "public.customers")["write_mode"],
        "history"
    );
    assert_eq!(versions_total(&project), "1003");

    // A soft delete closes the current version and adds none; undeleting opens a new one.
    execute(
        &url,
        "UPDATE customers SET deleted_at = now(), updated_at = timestamptz '2025-02-01' WHERE id IN (7, 8)",
    );
    sync(&[]);
    assert_eq!(version_summary(&project, 0), ["7:4:0", "8:1:0"]);
    execute(
        &url,
        "UPDATE customers SET deleted_at = NULL, updated_at = timestamptz '2025-03-01' WHERE id = 8",
    );
    sync(&[]);
    // Key 8's versions have a gap: the time it was deleted.
    assert_eq!(version_summary(&project, 1), ["7:4:0", "8:2:1"]);
}

#[test]
fn merge_marks_or_removes_soft_deleted_rows() {
    let url = fresh_database("history_soft_merge");
    execute(&url, &format!("{CUSTOMERS}; {}", insert_customers(1, 100)));
    let project = Project::new(&project_toml(&url, "", &streams("merge")));
    project.elt(&["sync", "--connection", "pg"]).expect_code(0);
    execute(
        &url,
        "UPDATE customers SET deleted_at = now(), updated_at = timestamptz '2025-01-01' WHERE id <= 5",
    );
    project.elt(&["sync", "--connection", "pg"]).expect_code(0);
    let marked = |p: &Project| {
        p.query(
            "SELECT count(*) || ':' || count(_elt_deleted_at) || ':' || count(*) FILTER (WHERE _elt_deleted_at IS NOT NULL AND deleted_at IS NOT NULL)
             FROM raw.public_customers",
        )
    };
    assert_eq!(marked(&project), ["100:5:5"]);
    // Undeleted in the source: the mark goes.
    execute(
        &url,
        "UPDATE customers SET deleted_at = NULL, updated_at = timestamptz '2025-02-01' WHERE id = 1",
    );
    project.elt(&["sync", "--connection", "pg"]).expect_code(0);
    assert_eq!(marked(&project), ["100:4:4"]);

    let removing = Project::new(&project_toml(
        &url,
        "",
        &format!("{}on_delete = \"remove\"\n", streams("merge")),
    ));
    removing.elt(&["sync", "--connection", "pg"]).expect_code(0);
    assert_eq!(marked(&removing), ["96:0:0"]);
}

#[test]
fn killed_mid_history_load_then_rerun_equals_a_clean_run() {
    let url = fresh_database("history_kill");
    execute(
        &url,
        &format!("{CUSTOMERS}; {}", insert_customers(1, 30_000)),
    );
    let toml = project_toml(&url, "batch_rows = 2000", &streams("history"));
    let (killed, clean) = (Project::new(&toml), Project::new(&toml));
    for p in [&killed, &clean] {
        p.elt(&["sync", "--connection", "pg"]).expect_code(0);
    }
    execute(
        &url,
        "UPDATE customers SET tier = 'gold', updated_at = updated_at + interval '1 year' WHERE id % 2 = 0;
         UPDATE customers SET deleted_at = now(), updated_at = updated_at + interval '1 year' WHERE id % 10 = 5",
    );
    // The 5th commit of the second run is in the middle of its 15 batches.
    kill_at(&killed, "pg", "duckdb.after_commit:5:pause");
    let partial = versions_total(&killed);
    assert!(
        partial != "30000" && partial != "45000",
        "killed mid-load: {partial} versions"
    );
    killed.elt(&["sync", "--connection", "pg"]).expect_code(0);
    clean.elt(&["sync", "--connection", "pg"]).expect_code(0);
    let digest = |p: &Project| {
        p.query(
            "SELECT count(*) || ':' || md5(string_agg(r::VARCHAR, ';' ORDER BY r::VARCHAR)) FROM (
               SELECT * EXCLUDE (_elt_extracted_at, _elt_run_id, _elt_valid_from, _elt_valid_to),
                      row_number() OVER (PARTITION BY id ORDER BY _elt_valid_from) AS version
               FROM raw.public_customers) r",
        )
    };
    assert_eq!(digest(&killed), digest(&clean));
    assert_eq!(versions_total(&clean), "45000");
    version_summary(&killed, 0);
    assert_eq!(
        killed.query("SELECT count(*)::VARCHAR FROM raw.public_customers WHERE _elt_is_current"),
        ["27000"]
    );
}

#[test]
fn postgres_destination_keeps_the_same_versions_and_marks() {
    let url = fresh_database("history_pg_destination");
    execute(
        &url,
        &format!("{CUSTOMERS}; {}", insert_customers(1, 2_000)),
    );
    let into_duckdb = Project::new(&project_toml(&url, "batch_rows = 500", &streams("history")));
    let into_pg = Project::new(&format!(
        r#"
[sources.pg]
type = "postgres"
url = "{url}"
batch_rows = 500
include = ["public.customers"]

[destinations.warehouse]
type = "postgres"
url = "{url}"
commit_rows = 1

[connections.pg]
source = "pg"
destination = "warehouse"
dataset = "raw"
{}
[connections.merged]
source = "pg"
destination = "warehouse"
dataset = "merged"
{}"#,
        streams("history"),
        streams("merge").replace("connections.pg", "connections.merged"),
    ));
    let changes = [
        "UPDATE customers SET tier = 'gold', updated_at = timestamptz '2025-01-01' WHERE id % 10 = 0",
        "UPDATE customers SET tier = NULL, updated_at = timestamptz '2025-01-02' WHERE id % 20 = 0",
        "UPDATE customers SET deleted_at = now(), updated_at = timestamptz '2025-01-03' WHERE id % 50 = 0",
        "UPDATE customers SET deleted_at = NULL, updated_at = timestamptz '2025-01-04' WHERE id = 100",
    ];
    for step in 0..=changes.len() {
        if step > 0 {
            execute(&url, changes[step - 1]);
        }
        into_duckdb
            .elt(&["sync", "--connection", "pg"])
            .expect_code(0);
        for connection in ["pg", "merged"] {
            into_pg
                .elt(&["sync", "--connection", connection])
                .expect_code(0);
        }
    }
    // Every version, its order, current flag and row hash: equal in both destinations.
    let versions = "SELECT count(*) || ':' || md5(string_agg(v, ';' ORDER BY v)) FROM (
        SELECT id || ':' || coalesce(tier, '-') || ':' || _elt_is_current || ':' || _elt_row_hash || ':' ||
               row_number() OVER (PARTITION BY id ORDER BY _elt_valid_from) AS v
        FROM raw.public_customers) AS versions";
    let in_duckdb = into_duckdb.query(versions);
    assert_eq!(query(&url, versions), in_duckdb);
    // 2,000 first versions, 200 + 100 changes, and key 100 back after its deletion.
    assert_eq!(in_duckdb[0].split(':').next(), Some("2301"));
    assert_eq!(
        query(
            &url,
            "SELECT count(*) FILTER (WHERE _elt_is_current) || ':' || count(DISTINCT id)
             FROM raw.public_customers"
        ),
        ["1961:2000"]
    );
    assert_eq!(
        query(
            &url,
            "SELECT count(*) || ':' || count(_elt_deleted_at) FROM merged.public_customers"
        ),
        ["2000:39"]
    );
}
