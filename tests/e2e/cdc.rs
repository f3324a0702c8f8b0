//! `sync = "cdc"` on the `postgres` source: a snapshot, then every insert, update and
//! delete from logical replication, exactly once. After each sync the live rows of the raw
//! table equal the source's table, every column compared as text.

use crate::cdc_common::{
    TABLES, assert_items_equal, cdc_project, live_rows, small_table_columns, source_rows, sync,
};
use crate::common::stream;
use crate::crash::kill_at;
use crate::pg::{execute, fresh_database, query};

#[test]
fn inserts_updates_deletes_and_multi_table_transactions_arrive_exactly() {
    let url = fresh_database("cdc_changes");
    execute(&url, TABLES);
    let project = cdc_project(
        &url,
        &[
            ("public.items", ""),
            ("public.orders", ""),
            ("public.payments", ""),
        ],
    );
    let first = sync(&project);
    assert_eq!(stream(&first, "public.items")["rows_loaded"], 3000);
    assert_items_equal(&url, &project);

    execute(
        &url,
        "INSERT INTO items (id, name, amount) VALUES (5001, 'new ✓', 9.99);
         UPDATE items SET name = 'renamed', flag = NULL WHERE id = 10;
         DELETE FROM items WHERE id = 11;
         BEGIN;
         UPDATE items SET amount = amount + 1 WHERE id BETWEEN 100 AND 1299;
         DELETE FROM items WHERE id BETWEEN 2000 AND 2099;
         INSERT INTO items (id, name) SELECT g, 'bulk ' || g FROM generate_series(6000, 6999) g;
         UPDATE items SET name = 'twice' WHERE id = 6000;
         COMMIT;
         BEGIN;
         INSERT INTO orders VALUES (1, 5001, 2);
         INSERT INTO payments VALUES (1, 1, 19.98);
         UPDATE items SET name = 'ordered' WHERE id = 5001;
         COMMIT;
         INSERT INTO items (id) VALUES (7000);
         DELETE FROM items WHERE id = 7000;",
    );
    let second = sync(&project);
    assert_eq!(
        stream(&second, "public.items")["rows_read"],
        1 + 1 + 1 + 1200 + 100 + 1000 + 1 + 1 + 2,
        "every change once: {second}"
    );
    assert_items_equal(&url, &project);
    for table in ["orders", "payments"] {
        assert_eq!(
            source_rows(&url, table, &small_table_columns(table)),
            live_rows(
                &project,
                &format!("public_{table}"),
                &small_table_columns(table)
            ),
            "{table}"
        );
    }
    // A deleted row is kept, marked; a no-op rerun reads nothing.
    assert_eq!(
        project.query("SELECT _elt_op FROM raw.public_items WHERE id = 11"),
        ["delete"]
    );
    let third = sync(&project);
    assert_eq!(stream(&third, "public.items")["rows_read"], 0);
    assert_items_equal(&url, &project);
}

#[test]
fn a_change_committed_between_slot_and_snapshot_is_loaded_once() {
    let url = fresh_database("cdc_snapshot_edge");
    execute(&url, TABLES);
    let project = cdc_project(&url, &[("public.orders", "write = \"append\"")]);
    // The sync stops for 3 s after creating the slot and before taking its snapshot.
    let mut child = project.spawn_until(
        &["sync", "--connection", "pg"],
        "postgres.cdc.after_slot:1:sleep=3000",
    );
    // Committed after the slot's start, before the snapshot: in both, applied once.
    execute(&url, "INSERT INTO orders VALUES (1, 1, 1)");
    // Running while the snapshot is taken, committed after it: in the log only.
    let open = std::thread::spawn({
        let url = url.clone();
        move || {
            execute(
                &url,
                "BEGIN; INSERT INTO orders VALUES (2, 2, 2); SELECT pg_sleep(5); COMMIT;",
            )
        }
    });
    assert!(child.wait().expect("sync").success());
    open.join().expect("writer");
    sync(&project);
    let log =
        project.query("SELECT id || ':' || _elt_op FROM raw.public_orders ORDER BY id, _elt_lsn");
    assert_eq!(log, ["1:snapshot", "2:insert"]);
}

#[test]
fn a_killed_sync_resumes_from_the_destination_not_the_slot() {
    let url = fresh_database("cdc_kill");
    execute(&url, TABLES);
    let project = cdc_project(&url, &[("public.orders", "write = \"append\"")]);
    sync(&project);
    for round in 0..3 {
        let base = round * 1000;
        // Ten transactions of 100 rows, then one update: a checkpoint every 500 rows.
        let inserts: Vec<String> = (0..10)
            .map(|t| {
                let from = base + t * 100 + 1;
                format!(
                    "INSERT INTO orders SELECT g, g, 1 FROM generate_series({from}, {}) g;",
                    from + 99
                )
            })
            .collect();
        execute(
            &url,
            &format!(
                "{}\nUPDATE orders SET qty = qty + 1 WHERE id % 7 = 0",
                inserts.join("\n")
            ),
        );
        // Killed after its first commit: the rest is read again from the saved position.
        kill_at(&project, "pg", "duckdb.after_commit:1:pause");
        sync(&project);
    }
    let duplicates = project.query(
        "SELECT count(*)::VARCHAR FROM (SELECT _elt_lsn, id FROM raw.public_orders \
         GROUP BY ALL HAVING count(*) > 1)",
    );
    assert_eq!(duplicates, ["0"], "no change applied twice");
    let want = query(&url, "SELECT id || ':' || qty FROM orders ORDER BY id");
    let got = project.query(
        "SELECT id || ':' || qty FROM (SELECT *, row_number() OVER (PARTITION BY id \
         ORDER BY _elt_lsn DESC) AS n FROM raw.public_orders) WHERE n = 1 AND _elt_op <> 'delete' \
         ORDER BY id",
    );
    assert_eq!(want, got);
}

/// Asynchronous commits reach the WAL before they are flushed; logical decoding reads only
/// flushed WAL, so a read must not claim a position past the flush point.
#[test]
fn asynchronous_commits_are_not_skipped() {
    let url = fresh_database("cdc_async_commit");
    execute(&url, TABLES);
    let project = cdc_project(&url, &[("public.orders", "write = \"append\"")]);
    sync(&project);
    execute(
        &url,
        "DO $$ BEGIN PERFORM set_config('synchronous_commit', 'off', false);
         FOR i IN 1 .. 3000 LOOP INSERT INTO orders VALUES (i, i, i); COMMIT; END LOOP; END $$",
    );
    sync(&project);
    std::thread::sleep(std::time::Duration::from_millis(500));
    sync(&project);
    assert_eq!(
        project.query("SELECT count(DISTINCT id)::VARCHAR FROM raw.public_orders"),
        ["3000"]
    );
}

/// A stream added to a connection later gets its own slot and snapshot; the streams already
/// running go on from their positions, untouched.
#[test]
fn a_stream_added_later_gets_its_own_snapshot() {
    let url = fresh_database("cdc_added_later");
    execute(&url, TABLES);
    let project = cdc_project(&url, &[("public.orders", "write = \"append\"")]);
    execute(&url, "INSERT INTO orders VALUES (1, 1, 1)");
    sync(&project);
    execute(
        &url,
        "INSERT INTO orders VALUES (2, 2, 2); UPDATE items SET name = 'before' WHERE id = 1",
    );
    let both = cdc_project(
        &url,
        &[
            ("public.orders", "write = \"append\""),
            ("public.items", ""),
        ],
    );
    project.write_config(&std::fs::read_to_string(both.dir().join("elt.toml")).expect("config"));
    let summary = sync(&project);
    assert_eq!(
        stream(&summary, "public.orders")["rows_read"],
        1,
        "{summary}"
    );
    assert_eq!(
        stream(&summary, "public.items")["rows_read"],
        3000,
        "{summary}"
    );
    execute(
        &url,
        "UPDATE items SET name = 'after' WHERE id = 1; INSERT INTO orders VALUES (3, 3, 3)",
    );
    sync(&project);
    assert_items_equal(&url, &project);
    assert_eq!(
        project.query("SELECT id || ':' || _elt_op FROM raw.public_orders ORDER BY _elt_lsn, id"),
        ["1:snapshot", "2:insert", "3:insert"]
    );
}
