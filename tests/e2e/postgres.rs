//! The `postgres` source into DuckDB, each test in its own database: every type round
//! trips, incremental merges equal the source, equal timestamps across batches survive a
//! kill, and failures are clear and leave state and data untouched.

use crate::common::{Project, stream};
use crate::crash::kill_at;
use crate::pg::{execute, fresh_database, project_toml, query};

const ORDERS: &str = "
CREATE TABLE orders (
  id bigint PRIMARY KEY, customer text NOT NULL, amount numeric(12,2), qty integer,
  status varchar(20), paid boolean, created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL, doc jsonb, note text);
CREATE INDEX ON orders (updated_at);";

fn insert_orders(from: i64, to: i64, updated_at: &str) -> String {
    format!(
        "INSERT INTO orders SELECT g, 'customer ' || (g % 1000), (g % 100000) / 100.0, g % 10,
           (ARRAY['new','paid','shipped'])[1 + g % 3], g % 2 = 0,
           timestamptz '1965-01-01' + g * interval '1 hour', {updated_at},
           jsonb_build_object('k', g, 'tags', jsonb_build_array('a', g % 5)),
           CASE WHEN g % 7 = 0 THEN NULL ELSE 'nöte ' || g END
         FROM generate_series({from}, {to}) g"
    )
}

const PG_DIGEST: &str = "SELECT count(*) || ':' || md5(string_agg(concat_ws('|', id, customer,
    coalesce(amount::text, '-'), coalesce(qty::text, '-'), coalesce(status, '-'), coalesce(paid::text, '-'),
    (extract(epoch FROM created_at) * 1000000)::bigint, (extract(epoch FROM updated_at) * 1000000)::bigint,
    coalesce(doc::text, '-'), coalesce(note, '-')), ';' ORDER BY id)) FROM orders";

const DUCK_DIGEST: &str = "SELECT count(*) || ':' || md5(string_agg(concat_ws('|', id, customer,
    coalesce(amount::VARCHAR, '-'), coalesce(qty::VARCHAR, '-'), coalesce(status, '-'), coalesce(paid::VARCHAR, '-'),
    epoch_us(created_at), epoch_us(updated_at), coalesce(doc::VARCHAR, '-'), coalesce(note, '-')), ';' ORDER BY id))
    FROM raw.public_orders";

fn assert_same_orders(url: &str, project: &Project) {
    assert_eq!(project.query(DUCK_DIGEST), query(url, PG_DIGEST));
    assert_eq!(
        project.query("SELECT (count(*) - count(DISTINCT id))::VARCHAR FROM raw.public_orders"),
        ["0"]
    );
}

#[test]
fn full_load_then_incremental_merge_equals_the_source() {
    let url = fresh_database("pg_incremental");
    execute(
        &url,
        &format!(
            "{ORDERS}; {}",
            insert_orders(
                1,
                20_000,
                "timestamptz '2024-01-01' + g * interval '1 second'"
            )
        ),
    );
    let project = Project::new(&project_toml(&url, "batch_rows = 4096", ""));
    let first = project
        .elt(&["sync", "--connection", "pg", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(stream(&first, "public.orders")["rows_loaded"], 20_000);
    assert_eq!(stream(&first, "public.orders")["sync_mode"], "incremental");
    assert_same_orders(&url, &project);

    execute(
        &url,
        "UPDATE orders SET qty = coalesce(qty, 0) + 1, note = 'changed ✓', updated_at = now() WHERE id % 100 = 0",
    );
    execute(&url, &insert_orders(20_001, 20_200, "now()"));
    let second = project
        .elt(&["sync", "--connection", "pg", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(stream(&second, "public.orders")["rows_read"], 400);
    assert_same_orders(&url, &project);

    let third = project
        .elt(&["sync", "--connection", "pg", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(stream(&third, "public.orders")["rows_read"], 0);
    assert_eq!(stream(&third, "public.orders")["rows_loaded"], 0);
}

#[test]
fn equal_timestamps_across_batches_survive_a_kill() {
    let url = fresh_database("pg_equal_ts");
    execute(
        &url,
        &format!(
            "{ORDERS}; {}",
            insert_orders(1, 10_000, "timestamptz '2024-05-05 05:05:05.123456+00'")
        ),
    );
    let project = Project::new(&project_toml(&url, "batch_rows = 1000", ""));
    kill_at(&project, "pg", "duckdb.after_commit:4:pause");
    let partial = project.query("SELECT count(*)::VARCHAR FROM raw.public_orders");
    assert_eq!(partial, ["4000"], "four batches committed before the kill");
    let rerun = project
        .elt(&["sync", "--connection", "pg", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(stream(&rerun, "public.orders")["rows_read"], 6_000);
    assert_same_orders(&url, &project);
    let state = project.query("SELECT state::VARCHAR FROM raw._elt_state");
    assert_eq!(
        state,
        [r#"{"v":1,"cursor":"2024-05-05T05:05:05.123456Z","key":[10000]}"#]
    );
}

/// A table `everything` of every PostgreSQL type the source maps, with extreme values
/// (row 2), ordinary ones (row 1) and NULLs (row 3).
pub const EVERYTHING: &str = r#"
        CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
        CREATE DOMAIN positive_int AS integer CHECK (VALUE > 0);
        CREATE TABLE everything (
          id int PRIMARY KEY, i2 smallint, i4 integer, i8 bigint, n numeric(12,3), nu numeric,
          r real, d double precision, t text, vc varchar(10), c char(5), b boolean, dt date,
          tm time, ts timestamp, tstz timestamptz, iv interval, u uuid, j json, jb jsonb,
          by bytea, ai int[], atext text[], e mood, ip inet, net cidr, mac macaddr, m money,
          dom positive_int, updated_at timestamptz NOT NULL DEFAULT now());
        INSERT INTO everything (id) VALUES (3);
        INSERT INTO everything VALUES
          (1, 1, 2, 3, 4.5, 6.7, 1.5, 2.25, 'text', 'varchar', 'char', true, '2024-02-29',
           '12:34:56', '2024-02-29 12:34:56', '2024-02-29 12:34:56+00', '1 day', 
           'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": 1}', '{"b": [1, 2]}', '\x01',
           '{1,2}', '{"x"}', 'ok', '::1', '::/0', '00:00:00:00:00:01', 1, 1, now()),
          (2, -32768, 2147483647, -9223372036854775808, -999999999.999,
           12345678901234567890123456789012345678901234567890.0123456789, 'NaN', '-Infinity',
           '', 'ünï©ødé', 'ab', false, '1900-01-01', '23:59:59.999999',
           '1969-12-31 23:59:59.999999', '2100-06-15 12:00:00.000001+02',
           '-1 year 2 mons 3 days 04:05:06.789', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12',
           '{"big": [1,2,3], "nested": {"a": null}}',
           (SELECT jsonb_object_agg('k' || g, repeat('v', 50)) FROM generate_series(1, 2000) g),
           '\x00ff10', '{1,NULL,3}', '{"a","ü",""}', 'happy', '192.168.0.1/24', '10.0.0.0/8',
           '08:00:2b:01:02:03', 1234.56, 7, now());
        "#;

#[test]
fn every_type_round_trips() {
    let url = fresh_database("pg_types");
    execute(&url, EVERYTHING);
    let project = Project::new(&project_toml(&url, "", ""));
    project.elt(&["sync", "--connection", "pg"]).expect_code(0);
    let row = |id: i32, expr: &str| {
        project
            .query(&format!(
                "SELECT ({expr})::VARCHAR FROM raw.public_everything WHERE id = {id}"
            ))
            .remove(0)
    };
    let extremes = [
        ("i2", "-32768"),
        ("i4", "2147483647"),
        ("i8", "-9223372036854775808"),
        ("n", "-999999999.999"),
        (
            "nu",
            "12345678901234567890123456789012345678901234567890.0123456789",
        ),
        ("isnan(r)", "true"),
        ("d", "-inf"),
        ("t", ""),
        ("vc", "ünï©ødé"),
        ("c", "ab   "),
        ("b", "false"),
        ("dt", "1900-01-01"),
        ("tm", "23:59:59.999999"),
        ("ts", "1969-12-31 23:59:59.999999"),
        ("epoch_us(tstz)", "4116736800000001"),
        ("iv = INTERVAL '-10 months 3 days 04:05:06.789'", "true"),
        ("u", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12"),
        ("j", r#"{"big": [1,2,3], "nested": {"a": null}}"#),
        ("json_array_length(json_keys(jb))", "2000"),
        ("jb->>'$.k1999'", &"v".repeat(50)),
        ("hex(\"by\")", "00FF10"),
        ("ai", "[1, NULL, 3]"),
        ("atext", "[a, ü, '']"),
        ("e", "happy"),
        ("ip", "192.168.0.1/24"),
        ("net", "10.0.0.0/8"),
        ("mac", "08:00:2b:01:02:03"),
        ("m LIKE '%1,234.56'", "true"),
        ("dom", "7"),
    ];
    for (expr, expected) in extremes {
        assert_eq!(row(2, expr), expected, "{expr}");
    }
    assert_eq!(
        row(
            1,
            "concat_ws(',', i2, i4, i8, n, nu, r, d, t, vc, c, b, dt, tm, ts, ai, atext, e, dom)"
        ),
        "1,2,3,4.500,6.7,1.5,2.25,text,varchar,char ,true,2024-02-29,12:34:56,2024-02-29 12:34:56,[1, 2],[x],ok,1"
    );
    assert_eq!(
        project.column_types(
            "public_everything",
            &["n", "nu", "tstz", "iv", "u", "jb", "by", "ai", "dom"]
        ),
        "n DECIMAL(12,3), nu VARCHAR, tstz TIMESTAMP WITH TIME ZONE, iv INTERVAL, u UUID, jb JSON, by BLOB, ai INTEGER[], dom INTEGER"
    );
    assert_eq!(
        project.non_null_columns("public_everything", 3),
        "",
        "columns of row 3 that are not NULL"
    );
    // Types read as text keep PostgreSQL's own text form, as psql shows it (`::1`, not the
    // `::1/128` of `inet::text`), so `WHERE ip = '::1'` finds in DuckDB what it finds there.
    for id in [1, 2] {
        for column in ["ip", "net", "mac", "m"] {
            let shown = query(
                &url,
                &format!("SELECT format('%s', {column}) FROM everything WHERE id = {id}"),
            );
            assert_eq!(row(id, column), shown[0], "{column} of row {id}");
        }
    }
}

#[test]
fn values_beyond_arrow_fail_the_stream_naming_the_column() {
    let url = fresh_database("pg_extremes");
    let project = Project::new(&project_toml(&url, "", "max_retries = 0"));
    // Each of these wrapped around silently: 2e9 hours became 1602725:20:53.27 and the
    // year 294276 became 290279-12-14 (BC).
    let cases = [
        (
            "interval",
            "interval '2000000000 hours'",
            "column v: the interval",
        ),
        (
            "timestamp",
            "timestamp '294276-12-31 23:59:59'",
            "column v: the timestamp",
        ),
        (
            "timestamptz",
            "timestamptz '294276-12-31 23:59:59+00'",
            "column v: the timestamp",
        ),
    ];
    for (ty, value, error) in cases {
        execute(
            &url,
            &format!(
                "DROP TABLE IF EXISTS t; CREATE TABLE t (id int PRIMARY KEY, v {ty}); \
                 INSERT INTO t VALUES (1, {value})"
            ),
        );
        let run = project.elt(&["sync", "--connection", "pg", "--full-refresh"]);
        let output = run.stdout() + &run.stderr();
        assert_eq!(run.code(), 1, "{ty}: {output}");
        assert!(output.contains(error), "{ty}: {output}");
    }
    // Just inside the limits: exact.
    execute(
        &url,
        "DROP TABLE t; CREATE TABLE t (id int PRIMARY KEY, iv interval, ts timestamp);
         INSERT INTO t VALUES (1, interval '2562047 hours', timestamp '294246-12-31 23:59:59')",
    );
    project
        .elt(&["sync", "--connection", "pg", "--full-refresh"])
        .expect_code(0);
    assert_eq!(
        project.query("SELECT iv::VARCHAR || ' ' || ts::VARCHAR FROM raw.public_t"),
        ["2562047:00:00 294246-12-31 23:59:59"]
    );
}

#[test]
fn failures_are_clear_and_leave_state_and_data_untouched() {
    let url = fresh_database("pg_failures");
    execute(
        &url,
        &format!("{ORDERS}; {}", insert_orders(1, 100, "now()")),
    );
    let project = Project::new(&project_toml(&url, "", "max_retries = 0"));
    project.elt(&["sync", "--connection", "pg"]).expect_code(0);
    let before = (
        project.query(DUCK_DIGEST),
        project.query("SELECT state::VARCHAR FROM raw._elt_state"),
    );
    execute(&url, &insert_orders(101, 200, "now()"));

    let refused = project_toml(
        &url.replace(":5432/", ":1/"),
        "connect_timeout_secs = 2",
        "max_retries = 0",
    );
    project.write_config(&refused);
    let run = project.elt(&["sync", "--connection", "pg"]).expect_code(1);
    assert!(
        run.stderr()
            .contains("connection pg (all streams): cannot connect to PostgreSQL at 127.0.0.1:1/"),
        "{}",
        run.stderr()
    );

    let nobody = url.replace("postgres@", "nobody_here@");
    project.write_config(&project_toml(&nobody, "", "max_retries = 0"));
    let run = project.elt(&["sync", "--connection", "pg"]).expect_code(2);
    assert!(
        run.stderr().contains("role \"nobody_here\" does not exist"),
        "{}",
        run.stderr()
    );

    project.write_config(&project_toml(
        &url,
        "",
        "streams = [{ name = \"public.missing\" }]",
    ));
    let run = project.elt(&["sync", "--connection", "pg"]).expect_code(2);
    assert!(
        run.stderr()
            .contains("stream \"public.missing\" is not offered by the source"),
        "{}",
        run.stderr()
    );

    execute(
        &url,
        "DO $$ BEGIN CREATE ROLE elt_no_access LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$",
    );
    let restricted = url.replace("postgres@", "elt_no_access@");
    project.write_config(&project_toml(&restricted, "", "max_retries = 0"));
    let run = project.elt(&["sync", "--connection", "pg"]).expect_code(1);
    assert!(
        run.stdout()
            .contains("error: public.orders: reading the bounds: permission denied"),
        "{}",
        run.stdout()
    );
    assert!(
        run.stdout().contains("permission denied for table orders"),
        "{}",
        run.stdout()
    );

    let after = (
        project.query(DUCK_DIGEST),
        project.query("SELECT state::VARCHAR FROM raw._elt_state"),
    );
    assert_eq!(before, after, "no failure changed data or state");
}

#[test]
fn a_backfill_rereads_a_window_without_moving_the_watermark() {
    let url = fresh_database("pg_backfill");
    execute(
        &url,
        &format!(
            "{ORDERS}; {}",
            insert_orders(1, 1_000, "timestamptz '2024-01-01' + g * interval '1 hour'")
        ),
    );
    let project = Project::new(&project_toml(&url, "", ""));
    project.elt(&["sync", "--connection", "pg"]).expect_code(0);
    let state = || project.query("SELECT state::VARCHAR FROM raw._elt_state");
    let before = state();
    // A fix that did not touch updated_at: invisible to incremental syncs.
    execute(
        &url,
        "UPDATE orders SET note = 'fixed' WHERE id BETWEEN 100 AND 300",
    );
    project.elt(&["sync", "--connection", "pg"]).expect_code(0);
    assert_eq!(
        project.query("SELECT count(*)::VARCHAR FROM raw.public_orders WHERE note = 'fixed'"),
        ["0"]
    );

    let args = [
        "sync",
        "--connection",
        "pg",
        "--streams",
        "public.orders",
        "--json",
        "--backfill-from",
        "2024-01-05T00:00:00Z",
        "--backfill-to",
        "2024-01-09T23:59:59Z",
    ];
    let run = project.elt(&args).expect_code(0).json();
    // Row g is at hour g: the window holds ids 96 to 215.
    assert_eq!(stream(&run, "public.orders")["rows_read"], 120);
    assert_eq!(project.query("SELECT min(id) || '-' || max(id) || ':' || count(*) FROM raw.public_orders WHERE note = 'fixed'"), ["100-215:116"]);
    assert_eq!(state(), before, "the watermark did not move");
    assert_eq!(
        project.query("SELECT count(*)::VARCHAR FROM raw.public_orders"),
        ["1000"]
    );

    let clash = project.elt(&[
        "sync",
        "--connection",
        "pg",
        "--full-refresh",
        "--backfill-from",
        "a",
        "--backfill-to",
        "b",
    ]);
    assert_eq!(clash.code(), 2, "{}", clash.stderr());
}
