//! `sync = "cdc"` on the `postgres` source: a snapshot, then every insert, update and
//! delete from logical replication, exactly once. After each sync the live rows of the raw
//! table equal the source's table, every column compared as text.

use crate::common::{Project, stream};
use crate::crash::kill_at;
use crate::pg::{execute, fresh_database, project_toml, query};

const TABLES: &str = "
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
const ITEM_COLUMNS: [(&str, &str); 8] = [
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

fn source_rows(url: &str, table: &str, columns: &[(&str, &str)]) -> Vec<String> {
    let list: Vec<&str> = columns.iter().map(|c| c.0).collect();
    query(
        url,
        &format!(
            "SELECT concat_ws('|', {}) FROM {table} ORDER BY id",
            list.join(", ")
        ),
    )
}

fn live_rows(project: &Project, table: &str, columns: &[(&str, &str)]) -> Vec<String> {
    let list: Vec<&str> = columns.iter().map(|c| c.1).collect();
    project.query(&format!(
        "SELECT concat_ws('|', {}) FROM raw.{table} WHERE _elt_deleted_at IS NULL ORDER BY id",
        list.join(", ")
    ))
}

fn assert_items_equal(url: &str, project: &Project) {
    let (want, got) = (
        source_rows(url, "items", &ITEM_COLUMNS),
        live_rows(project, "public_items", &ITEM_COLUMNS),
    );
    assert_eq!(want.len(), got.len(), "live row count");
    for (w, g) in want.iter().zip(&got) {
        assert_eq!(w, g);
    }
}

fn cdc_project(url: &str, streams: &[(&str, &str)]) -> Project {
    let list: Vec<String> = streams
        .iter()
        .map(|(name, extra)| {
            format!("[[connections.pg.streams]]\nname = \"{name}\"\nsync = \"cdc\"\n{extra}")
        })
        .collect();
    Project::new(&project_toml(url, "batch_rows = 500", &list.join("\n")))
}

fn sync(project: &Project) -> serde_json::Value {
    project
        .elt(&["sync", "--connection", "pg", "--json"])
        .expect_code(0)
        .json()
}

/// The columns of `orders` and `payments`, as text on both sides.
fn small_table_columns(table: &str) -> Vec<(&'static str, &'static str)> {
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

#[test]
fn cdc_options_are_checked_and_slots_are_reported() {
    let url = fresh_database("cdc_options");
    execute(&url, TABLES);
    let bad = cdc_project(&url, &[("public.items", "cursor = \"ts\"")]);
    let run = bad.elt(&["sync", "--connection", "pg"]).expect_code(2);
    assert!(
        run.stderr().contains("`cursor` does not apply"),
        "{}",
        run.stderr()
    );
    let history = cdc_project(&url, &[("public.items", "write = \"overwrite\"")]);
    let run = history.elt(&["sync", "--connection", "pg"]).expect_code(2);
    assert!(
        run.stderr().contains("does not support yet"),
        "{}",
        run.stderr()
    );
    let named = cdc_project(&url, &[("public.items", "cdc_slot = \"Bad-Name\"")]);
    let run = named.elt(&["sync", "--connection", "pg"]).expect_code(2);
    assert!(run.stderr().contains("`cdc_slot`"), "{}", run.stderr());
    let ok = cdc_project(&url, &[("public.items", "cdc_slot = \"my_items\"")]);
    sync(&ok);
    assert_eq!(
        query(
            &url,
            "SELECT slot_name || ':' || plugin FROM pg_replication_slots WHERE database = current_database()"
        ),
        ["my_items:pgoutput"]
    );
    let run = ok
        .elt(&["sync", "--connection", "pg", "--full-refresh"])
        .expect_code(2);
    assert!(run.stderr().contains("elt state reset"), "{}", run.stderr());
}

#[test]
fn check_names_what_is_missing_and_cdc_drop_removes_slot_publication_and_position() {
    let url = fresh_database("cdc_check_drop");
    execute(&url, TABLES);
    let project = cdc_project(&url, &[("public.items", "")]);
    let run = project.elt(&["check", "--connection", "pg"]).expect_code(0);
    assert!(
        run.stdout().contains("change data capture: ok"),
        "{}",
        run.stdout()
    );
    // A user without REPLICATION, who owns nothing: both are named with their fix.
    execute(
        &url,
        "DO $$ BEGIN CREATE ROLE elt_cdc_plain LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$",
    );
    let plain_url = url.replacen("postgres@", "elt_cdc_plain@", 1);
    let plain = cdc_project(&plain_url, &[("public.items", "")]);
    let run = plain.elt(&["check", "--connection", "pg"]).expect_code(1);
    for wanted in [
        "ALTER ROLE \"elt_cdc_plain\" REPLICATION",
        "does not own public.items",
    ] {
        assert!(run.stdout().contains(wanted), "{wanted}: {}", run.stdout());
    }

    sync(&project);
    let objects = |url: &str| {
        query(
            url,
            "SELECT 'slot ' || slot_name FROM pg_replication_slots WHERE database = current_database() \
             UNION ALL SELECT 'publication ' || pubname FROM pg_publication ORDER BY 1",
        )
    };
    assert_eq!(
        objects(&url),
        [
            "publication elt_pg_public_items",
            "slot elt_pg_public_items_elt_cdc_check_drop"
        ]
    );
    // Switched off cdc while its slot exists: refused, naming `elt cdc drop`.
    let switched = Project::new(&project_toml(
        &url,
        "",
        "[[connections.pg.streams]]\nname = \"public.items\"\nsync = \"full_refresh\"",
    ));
    std::fs::create_dir_all(switched.db().parent().expect("data dir")).expect("data dir");
    std::fs::copy(project.db(), switched.db()).expect("copy the destination");
    let run = switched.elt(&["sync", "--connection", "pg"]).expect_code(1);
    let said = format!("{}{}", run.stdout(), run.stderr());
    assert!(
        said.contains("elt cdc drop --connection pg --stream public.items"),
        "{said}"
    );
    let run = switched
        .elt(&["cdc", "drop", "--connection", "pg"])
        .expect_code(0);
    assert!(
        run.stdout().contains("dropped replication slot"),
        "{}",
        run.stdout()
    );
    assert!(objects(&url).is_empty(), "{:?}", objects(&url));
    switched.elt(&["sync", "--connection", "pg"]).expect_code(0);
    let run = switched
        .elt(&["cdc", "drop", "--connection", "pg"])
        .expect_code(2);
    assert!(
        run.stderr().contains("has no cdc stream"),
        "{}",
        run.stderr()
    );
}

/// An update that does not touch a TOASTed value: PostgreSQL does not send it, and the
/// merge keeps the stored one, whether the key's earlier version was loaded by an earlier
/// sync, in the same load, or is itself an update that did not send it.
#[test]
fn unchanged_toasted_values_keep_the_stored_value_in_duckdb_and_postgres() {
    let url = fresh_database("cdc_toast");
    execute(&url, TABLES);
    let big = "(SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 300))";
    execute(&url, &format!("UPDATE items SET big = {big} WHERE id <= 3"));
    let duck = cdc_project(&url, &[("public.items", "")]);
    let into_pg = fresh_database("cdc_toast_dest");
    let pg = Project::new(&format!(
        "[sources.pg]\ntype = \"postgres\"\nurl = \"{url}\"\nbatch_rows = 500\n\
         [destinations.w]\ntype = \"postgres\"\nurl = \"{into_pg}\"\n\
         [connections.pg]\nsource = \"pg\"\ndestination = \"w\"\n\
         [[connections.pg.streams]]\nname = \"public.items\"\nsync = \"cdc\"\n\
         cdc_slot = \"elt_toast_into_pg\"\ncdc_publication = \"elt_toast_into_pg\""
    ));
    sync(&duck);
    sync(&pg);
    execute(
        &url,
        &format!(
            "UPDATE items SET name = 'touched once' WHERE id = 1;
             INSERT INTO items (id, name, big) VALUES (9000, 'fresh', {big});
             UPDATE items SET name = 'touched after insert' WHERE id = 9000;
             UPDATE items SET name = 'touched' WHERE id = 2;
             UPDATE items SET flag = true WHERE id = 2;
             UPDATE items SET big = 'small now' WHERE id = 3;
             UPDATE items SET name = 'after the change' WHERE id = 3;"
        ),
    );
    let toasted = query(
        &url,
        "SELECT (pg_relation_size(reltoastrelid) > 0)::text FROM pg_class WHERE relname = 'items'",
    );
    assert_eq!(toasted, ["true"], "the big values are stored out of line");
    sync(&duck);
    sync(&pg);
    assert_items_equal(&url, &duck);
    let want = query(
        &url,
        "SELECT id || ':' || coalesce(md5(big), '-') FROM items WHERE id IN (1, 2, 3, 9000) ORDER BY id",
    );
    let got = query(
        &into_pg,
        "SELECT id || ':' || coalesce(md5(big), '-') FROM raw.public_items \
         WHERE id IN (1, 2, 3, 9000) AND _elt_deleted_at IS NULL ORDER BY id",
    );
    assert_eq!(want, got, "the PostgreSQL destination");
    assert_eq!(
        duck.query("SELECT coalesce(_elt_unchanged, '-') FROM raw.public_items WHERE id = 1"),
        [",big,"],
        "the row says which value was carried"
    );
}

/// TRUNCATE empties the merged table (the rows inserted after it stay) and is a row of
/// the change log in append mode.
#[test]
fn truncate_empties_the_merged_table_and_is_a_row_of_the_change_log() {
    let url = fresh_database("cdc_truncate");
    execute(&url, TABLES);
    let merged = cdc_project(
        &url,
        &[
            ("public.items", ""),
            ("public.orders", "write = \"append\""),
        ],
    );
    execute(&url, "INSERT INTO orders VALUES (1, 1, 1), (2, 2, 2)");
    sync(&merged);
    execute(
        &url,
        "UPDATE items SET name = 'before' WHERE id = 1;
         TRUNCATE items, orders;
         INSERT INTO items (id, name) VALUES (1, 'after'), (4000, 'new');
         INSERT INTO orders VALUES (3, 3, 3);
         BEGIN; TRUNCATE items; INSERT INTO items (id, name) VALUES (5, 'same transaction'); COMMIT;",
    );
    sync(&merged);
    assert_items_equal(&url, &merged);
    assert_eq!(
        merged.query(
            "SELECT count(*)::VARCHAR FROM raw.public_items WHERE _elt_deleted_at IS NOT NULL"
        ),
        ["3000"],
        "the truncated rows are kept, marked"
    );
    let log = merged.query(
        "SELECT coalesce(id::VARCHAR, '-') || ':' || _elt_op FROM raw.public_orders ORDER BY _elt_lsn, id",
    );
    assert_eq!(log, ["1:snapshot", "2:snapshot", "-:truncate", "3:insert"]);
}

/// History over cdc: each change is a version valid from its source commit time, so three
/// updates between two syncs are three versions; a delete closes the last one.
#[test]
fn history_keeps_a_version_per_change_with_the_source_commit_times() {
    let url = fresh_database("cdc_history");
    execute(&url, TABLES);
    let project = cdc_project(&url, &[("public.orders", "write = \"history\"")]);
    let into_pg = fresh_database("cdc_history_dest");
    let pg = Project::new(&format!(
        "[sources.pg]\ntype = \"postgres\"\nurl = \"{url}\"\n\
         [destinations.w]\ntype = \"postgres\"\nurl = \"{into_pg}\"\n\
         [connections.pg]\nsource = \"pg\"\ndestination = \"w\"\n\
         [[connections.pg.streams]]\nname = \"public.orders\"\nsync = \"cdc\"\n\
         write = \"history\"\ncdc_slot = \"elt_history_into_pg\"\ncdc_publication = \"elt_history_into_pg\""
    ));
    execute(&url, "INSERT INTO orders VALUES (1, 10, 1), (2, 20, 1)");
    sync(&project);
    sync(&pg);
    let clock = || {
        query(
            &url,
            "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint::text",
        )[0]
        .parse::<i64>()
        .expect("clock")
    };
    let mut windows = Vec::new();
    for qty in 2..=4 {
        let before = clock();
        execute(&url, &format!("UPDATE orders SET qty = {qty} WHERE id = 1"));
        windows.push((before, clock()));
    }
    let before_delete = clock();
    execute(&url, "DELETE FROM orders WHERE id = 2");
    let after_delete = clock();
    sync(&project);
    sync(&pg);
    let in_pg = query(
        &into_pg,
        "SELECT qty || ':' || _elt_is_current FROM raw.public_orders WHERE id = 1 ORDER BY _elt_valid_from",
    );
    assert_eq!(
        in_pg,
        ["1:false", "2:false", "3:false", "4:true"],
        "the PostgreSQL destination"
    );
    let versions = project.query(
        "SELECT qty || ':' || epoch_us(_elt_valid_from) || ':' || coalesce(epoch_us(_elt_valid_to)::VARCHAR, '-') \
         || ':' || _elt_is_current FROM raw.public_orders WHERE id = 1 ORDER BY _elt_valid_from",
    );
    assert_eq!(
        versions.len(),
        4,
        "the snapshot's version and one per update: {versions:?}"
    );
    let parts: Vec<Vec<&str>> = versions.iter().map(|v| v.split(':').collect()).collect();
    assert_eq!(parts[0][0], "1");
    for (i, (before, after)) in windows.iter().enumerate() {
        let version = &parts[i + 1];
        assert_eq!(version[0], (i + 2).to_string());
        let from: i64 = version[1].parse().unwrap();
        assert!(
            *before <= from && from <= *after,
            "version {i}: {from} not in [{before}, {after}]"
        );
        assert_eq!(
            parts[i][2], version[1],
            "the previous version ends where this one starts"
        );
    }
    assert_eq!(parts[3][2..], ["-", "true"], "the last update is current");
    let deleted = project.query(
        "SELECT epoch_us(_elt_valid_to)::VARCHAR || ':' || _elt_is_current FROM raw.public_orders WHERE id = 2",
    );
    let (to, current) = deleted[0].split_once(':').unwrap();
    let to: i64 = to.parse().unwrap();
    assert!(
        before_delete <= to && to <= after_delete && current == "false",
        "{deleted:?}"
    );
}

/// A column added (and one dropped) while changes are being made: the sync plans the
/// stream again at that point and reads on, so after it the live rows equal the source's.
#[test]
fn a_column_added_mid_stream_is_planned_and_read_in_the_same_sync() {
    let url = fresh_database("cdc_new_column");
    execute(&url, TABLES);
    let project = cdc_project(&url, &[("public.orders", "")]);
    execute(&url, "INSERT INTO orders VALUES (1, 1, 1), (2, 2, 2)");
    sync(&project);
    execute(
        &url,
        "UPDATE orders SET qty = 10 WHERE id = 1;
         ALTER TABLE orders ADD COLUMN note text;
         INSERT INTO orders VALUES (3, 3, 3, 'with a note');
         UPDATE orders SET note = 'later' WHERE id = 1;",
    );
    let summary = sync(&project);
    let rows = |columns: &str| {
        (
            query(
                &url,
                &format!("SELECT concat_ws('|', {columns}) FROM orders ORDER BY id"),
            ),
            project.query(&format!(
                "SELECT concat_ws('|', {columns}) FROM raw.public_orders \
                 WHERE _elt_deleted_at IS NULL ORDER BY id"
            )),
        )
    };
    let (want, got) = rows("id, item, qty, coalesce(note, '-')");
    assert_eq!(want, got, "{summary}");
    assert_eq!(
        stream(&summary, "public.orders")["rows_read"],
        3,
        "{summary}"
    );
    execute(
        &url,
        "ALTER TABLE orders DROP COLUMN item; UPDATE orders SET qty = 7 WHERE id = 2",
    );
    let summary = sync(&project);
    let (want, got) = rows("id, qty, coalesce(note, '-')");
    assert_eq!(want, got, "{summary}");
}

/// The slot moves to what the destination committed as soon as the stream commits (the
/// server frees the WAL before it), the summary says how much WAL the slot keeps, and
/// `--max-slot-lag` fails the stream above a size, its rows committed.
#[test]
fn the_slot_follows_each_commit_and_max_slot_lag_fails_loudly() {
    let url = fresh_database("cdc_slot_lag");
    execute(&url, TABLES);
    let project = cdc_project(&url, &[("public.orders", "")]);
    sync(&project);
    execute(
        &url,
        "INSERT INTO orders SELECT g, g, g FROM generate_series(1, 1000) g",
    );
    let summary = sync(&project);
    let report = stream(&summary, "public.orders");
    assert!(
        report["notes"]
            .to_string()
            .contains("MB of WAL on the source"),
        "{report}"
    );
    let confirmed = query(
        &url,
        "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE database = current_database()",
    );
    assert_eq!(
        confirmed[0],
        report["watermark_after"].as_str().unwrap(),
        "the slot is at the committed position"
    );
    let runs = project
        .elt(&["runs", "--connection", "pg", "--json"])
        .expect_code(0)
        .json();
    let slot = &runs["slots"][0];
    assert_eq!(slot["stream"], "public.orders", "{runs}");
    assert_eq!(slot["confirmed_lsn"], report["watermark_after"], "{runs}");
    assert!(
        slot["kept_bytes"].is_u64() && slot["behind_bytes"].is_u64(),
        "{runs}"
    );
    let text = project
        .elt(&["runs", "--connection", "pg"])
        .expect_code(0)
        .stdout();
    assert!(
        text.contains("public.orders: slot elt_pg_public_orders_elt_cdc_slot_lag keeps"),
        "{text}"
    );
    execute(&url, "UPDATE orders SET qty = 0");
    let run = project
        .elt(&[
            "sync",
            "--connection",
            "pg",
            "--json",
            "--max-slot-lag",
            "1B",
        ])
        .expect_code(1);
    let report = stream(&run.json(), "public.orders").clone();
    assert!(
        report["error"].to_string().contains("above --max-slot-lag"),
        "{report}"
    );
    assert_eq!(
        report["rows_loaded"], 1000,
        "the changes are committed: {report}"
    );
    let bad = project
        .elt(&["sync", "--connection", "pg", "--max-slot-lag", "12parsecs"])
        .expect_code(2);
    assert!(bad.stderr().contains("unknown unit"), "{}", bad.stderr());
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
