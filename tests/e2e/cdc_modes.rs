//! cdc streams beyond plain changes: unchanged TOASTed values, TRUNCATE, history mode
//! and columns added while changes are read; the live rows equal the source's after each
//! sync.

use crate::cdc_common::{TABLES, assert_items_equal, cdc_project, sync};
use crate::common::{Project, stream};
use crate::pg::{execute, fresh_database, query};

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

/// Columns a COPY reads as text arrive in the log in their binary form: an unbounded
/// `numeric` is decoded into PostgreSQL's exact text, an enum's label is text already.
#[test]
fn unbounded_numerics_and_enums_arrive_as_the_source_prints_them() {
    let url = fresh_database("cdc_text_types");
    execute(
        &url,
        "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
         CREATE TABLE t (id int PRIMARY KEY, price numeric, feeling mood);
         INSERT INTO t VALUES (1, 1.5, 'ok');",
    );
    let project = cdc_project(&url, &[("public.t", "")]);
    sync(&project);
    execute(
        &url,
        "INSERT INTO t VALUES (2, 12345678901234567890123456789012345678901234.000100, 'happy'),
           (3, -0.00000001, 'sad'), (4, 'NaN', NULL), (5, '-Infinity', 'ok'), (6, 0, 'ok'),
           (7, 100000000, 'ok');
         UPDATE t SET price = 2.25, feeling = 'happy' WHERE id = 1;",
    );
    sync(&project);
    let want = query(
        &url,
        "SELECT id || ':' || coalesce(price::text, '-') || ':' || coalesce(feeling::text, '-') FROM t ORDER BY id",
    );
    let got = project.query(
        "SELECT id || ':' || coalesce(price, '-') || ':' || coalesce(feeling, '-') \
         FROM raw.public_t WHERE _elt_deleted_at IS NULL ORDER BY id",
    );
    assert_eq!(want, got);
}

/// A cdc stream that leaves a column out and hashes another: the log's values of the left
/// out column never arrive, the hashed one arrives as its digest, deletes still apply.
#[test]
fn selected_and_hashed_columns_work_over_cdc() {
    let url = fresh_database("cdc_columns");
    execute(&url, TABLES);
    let toml = crate::pg::project_toml(
        &url,
        "",
        "[[connections.pg.streams]]\nname = \"public.items\"\nsync = \"cdc\"\n\
         columns = { exclude = [\"big\", \"doc\"] }\nhash = [\"name\"]",
    );
    let project = Project::new(&format!("hash_salt = \"pepper\"\n{toml}"));
    sync(&project);
    execute(
        &url,
        "UPDATE items SET name = 'secret', big = 'x' WHERE id = 1; DELETE FROM items WHERE id = 2",
    );
    sync(&project);
    let columns = project.query(
        "SELECT string_agg(column_name, ',' ORDER BY column_index) FROM duckdb_columns() \
         WHERE table_name = 'public_items' AND column_name IN ('big', 'doc', 'name')",
    );
    assert_eq!(columns, ["name"]);
    let want = query(
        &url,
        "SELECT encode(sha256(('pepper' || name)::bytea), 'hex') FROM items WHERE id = 1",
    );
    assert_eq!(
        project.query("SELECT name FROM raw.public_items WHERE id = 1"),
        want
    );
    assert_eq!(
        project
            .query("SELECT count(*)::VARCHAR FROM raw.public_items WHERE _elt_deleted_at IS NULL"),
        ["2999"]
    );
}

/// A stream's JSON Schema checks the values a change carries; a delete carries only its key,
/// so it is applied, not dead-lettered.
#[test]
fn a_json_schema_checks_changes_and_lets_deletes_through() {
    let url = fresh_database("cdc_json_schema");
    execute(&url, TABLES);
    let project = cdc_project(
        &url,
        &[("public.orders", "json_schema_path = \"orders.json\"")],
    );
    std::fs::write(
        project.dir().join("orders.json"),
        r#"{"type": "object", "required": ["qty"], "properties": {"qty": {"type": "integer", "minimum": 0}}}"#,
    )
    .expect("schema file");
    execute(&url, "INSERT INTO orders VALUES (1, 1, 1), (2, 2, 2)");
    sync(&project);
    execute(
        &url,
        "DELETE FROM orders WHERE id = 1; UPDATE orders SET qty = -5 WHERE id = 2",
    );
    let summary = sync(&project);
    assert_eq!(
        stream(&summary, "public.orders")["rows_dead_lettered"],
        1,
        "{summary}"
    );
    assert_eq!(
        project.query(
            "SELECT id || ':' || (_elt_deleted_at IS NOT NULL) FROM raw.public_orders ORDER BY id"
        ),
        ["1:true", "2:false"]
    );
}
