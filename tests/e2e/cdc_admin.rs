//! Running cdc streams: options checked against the stream, `elt check` naming what the
//! server lacks, `elt cdc drop`, the slot following each commit, `elt runs` and
//! `--max-slot-lag`.

use crate::cdc_common::{TABLES, cdc_project, sync};
use crate::common::{Project, stream};
use crate::pg::{execute, fresh_database, project_toml, query};

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
    // A cdc stream sees deletes in the log: reconciling them is refused or skipped.
    let every = cdc_project(&url, &[("public.items", "reconcile_deletes_every = 1")]);
    let run = every.elt(&["sync", "--connection", "pg"]).expect_code(2);
    assert!(
        run.stderr()
            .contains("`reconcile_deletes_every` does not apply"),
        "{}",
        run.stderr()
    );
    let summary = ok
        .elt(&[
            "sync",
            "--connection",
            "pg",
            "--reconcile-deletes",
            "--json",
        ])
        .expect_code(0)
        .json();
    assert!(
        stream(&summary, "public.items")["notes"]
            .to_string()
            .contains("--reconcile-deletes skipped it: a cdc stream sees deletes"),
        "{summary}"
    );
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
