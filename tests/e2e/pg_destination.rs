//! The `postgres` destination against the local server, each test in its own database:
//! every write mode, the all-types round trips from the `postgres` and `sample` sources,
//! keys, and connection errors. Crashes and concurrent workers: `pg_workers.rs`.

use crate::common::Project;
use crate::pg::{execute, fresh_database, query};

/// A sample source into database `url` as connections `merge` (dataset `merge`), `append`
/// (orders appended, dataset `append`) and `overwrite` (full refreshes, dataset
/// `overwrite`).
pub fn sample_to_pg(url: &str, orders: u64, batch_rows: u64, generation: u32) -> String {
    format!(
        r#"
[sources.sample]
type = "sample"
customers = 1000
products = 100
orders = {orders}
batch_rows = {batch_rows}
generation = {generation}

[destinations.pg]
type = "postgres"
url = "{url}"
commit_rows = 1
lease_secs = 1

[connections.merge]
source = "sample"
destination = "pg"
dataset = "merge"

[connections.append]
source = "sample"
destination = "pg"
dataset = "append"
streams = [{{ name = "orders", write = "append" }}]

[connections.overwrite]
source = "sample"
destination = "pg"
dataset = "overwrite"
streams = [
  {{ name = "customers", sync = "full_refresh", write = "overwrite" }},
  {{ name = "orders", sync = "full_refresh", write = "overwrite" }},
]
"#
    )
}

/// Row count and a digest of a raw table's rows without the `_elt_` columns (of any mode
/// but history).
pub fn digest(url: &str, table: &str) -> String {
    query(
        url,
        &format!(
            "SELECT count(*) || ':' || coalesce(md5(string_agg(
                 (to_jsonb(t) - '_elt_extracted_at' - '_elt_run_id' - '_elt_deleted_at')::text, ','
                 ORDER BY (to_jsonb(t) ->> 'id')::bigint)), '')
             FROM {table} t"
        ),
    )
    .remove(0)
}

/// The digests of a clean generation-`generation` load of `orders` and `customers`.
pub fn clean_digests(name: &str, orders: u64, generation: u32) -> (String, String) {
    let url = fresh_database(name);
    let project = Project::new(&sample_to_pg(&url, orders, 5_000, generation));
    project
        .elt(&["sync", "--connection", "overwrite", "--quiet"])
        .expect_code(0);
    (
        digest(&url, "overwrite.orders"),
        digest(&url, "overwrite.customers"),
    )
}

#[test]
fn every_write_mode_from_the_sample_source() {
    let url = fresh_database("pgdest_modes");
    let project = Project::new(&sample_to_pg(&url, 20_000, 3_000, 0));
    for connection in ["merge", "append", "overwrite"] {
        project
            .elt(&["sync", "--connection", connection, "--quiet"])
            .expect_code(0);
    }
    project.write_config(&sample_to_pg(&url, 20_000, 3_000, 1));
    let mut loaded = Vec::new();
    for connection in ["merge", "append", "overwrite"] {
        let summary = project
            .elt(&["sync", "--connection", connection, "--json"])
            .expect_code(0)
            .json();
        loaded.push(crate::common::stream(&summary, "orders")["rows_loaded"].clone());
    }
    let (orders, customers) = clean_digests("pgdest_modes_ref", 20_000, 1);
    // merge: the first load plus the changes equals a clean load of the new generation.
    assert_eq!(digest(&url, "merge.orders"), orders);
    assert_eq!(digest(&url, "merge.customers"), customers);
    // overwrite: rebuilt whole, with no leftover new tables, and a view on it survives.
    execute(
        &url,
        "CREATE VIEW public.paid AS SELECT id FROM overwrite.orders WHERE status = 'paid'",
    );
    project
        .elt(&["sync", "--connection", "overwrite", "--quiet"])
        .expect_code(0);
    assert_ne!(query(&url, "SELECT count(*)::text FROM public.paid"), ["0"]);
    assert_eq!(digest(&url, "overwrite.orders"), orders);
    assert_eq!(
        query(
            &url,
            "SELECT count(*)::text FROM pg_tables WHERE tablename LIKE '_elt_new%'"
        ),
        ["0"]
    );
    // append: every version of a changed row is kept.
    let changed = loaded[0].as_u64().unwrap();
    assert!(changed > 0);
    assert_eq!(loaded[1].as_u64().unwrap(), changed);
    assert_eq!(
        query(
            &url,
            "SELECT count(*) || ':' || count(DISTINCT id) FROM append.orders"
        ),
        [format!("{}:{}", 20_000 + changed, 20_200)]
    );
    assert_eq!(loaded[2], 20_200);
    // State and runs live beside the data.
    assert_eq!(
        query(
            &url,
            "SELECT count(*)::text FROM merge._elt_runs WHERE status = 'succeeded'"
        ),
        ["6"]
    );
}

#[test]
fn every_postgres_type_round_trips_into_postgres() {
    let source = fresh_database("pgdest_types_src");
    let target = fresh_database("pgdest_types_dst");
    execute(
        &source,
        r#"
        CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
        CREATE DOMAIN positive_int AS integer CHECK (VALUE > 0);
        CREATE TABLE everything (
          id int PRIMARY KEY, i2 smallint, i4 integer, i8 bigint, n numeric(12,3), nu numeric,
          r real, d double precision, t text, vc varchar(10), c char(5), b boolean, dt date,
          tm time, ts timestamp, tstz timestamptz, iv interval, u uuid, j json, jb jsonb,
          by bytea, ai int[], atext text[], e mood, ip inet, m money, dom positive_int,
          "A Long Column Name That Is Well Over The Sixty Three Byte Limit Of PostgreSQL" text,
          updated_at timestamptz NOT NULL DEFAULT now());
        INSERT INTO everything (id) VALUES (3);
        INSERT INTO everything VALUES
          (1, 1, 2, 3, 4.5, 6.7, 1.5, 2.25, 'text', 'varchar', 'char', true, '2024-02-29',
           '12:34:56', '2024-02-29 12:34:56', '2024-02-29 12:34:56+00', '1 day',
           'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": 1}', '{"b": [1, 2]}', '\x01',
           '{1,2}', '{"x"}', 'ok', '::1', 1, 1, 'long', now()),
          (2, -32768, 2147483647, -9223372036854775808, -999999999.999,
           12345678901234567890123456789012345678901234567890.0123456789, 'NaN', '-Infinity',
           '', 'ünï©ødé', 'ab', false, '0001-01-01', '23:59:59.999999',
           '1969-12-31 23:59:59.999999', '2100-06-15 12:00:00.000001+02',
           '-1 year 2 mons 3 days 04:05:06.789', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12',
           '{"big": [1,2,3], "nested": {"a": null}}', '{"k": "\u00e9", "n": 1.50}',
           '\x00ff10', '{1,NULL,3}', '{"a","ü",""}', 'happy', '192.168.0.1/24', 1234.56, 7,
           'ünïcødé', now()),
          (4, 0, 0, 0, 0.001, 0, 0, 0, 'x', 'x', 'x', true, '9999-12-31', '00:00:00',
           '2000-01-01 00:00:00', '1970-01-01 00:00:00+00', '0 seconds',
           '00000000-0000-0000-0000-000000000000', '[]', '[]', '', '{}', '{}', 'sad',
           '10.0.0.1', 0, 1, '', now());
        "#,
    );
    let project = Project::new(&format!(
        r#"
[sources.src]
type = "postgres"
url = "{source}"

[destinations.dst]
type = "postgres"
url = "{target}"

[connections.pg_to_pg]
source = "src"
destination = "dst"
"#
    ));
    project
        .elt(&["sync", "--connection", "pg_to_pg"])
        .expect_code(0);
    let long = "A Long Column Name That Is Well Over The Sixty Three Byte Limit Of PostgreSQL";
    let shortened: Vec<String> = query(
        &target,
        "SELECT attname::text FROM pg_attribute
         WHERE attrelid = 'raw.public_everything'::regclass AND attname LIKE 'A Long%'",
    );
    assert_eq!(shortened.len(), 1);
    assert!(
        shortened[0].len() <= 63 && shortened[0] != long,
        "{shortened:?}"
    );
    let columns = [
        "id", "i2", "i4", "i8", "n", "nu", "r", "d", "t", "vc", "c", "b", "dt", "tm", "ts", "tstz",
        "iv", "u", "j", "jb", "by", "ai", "atext", "e", "ip", "m", "dom",
    ];
    let values = |url: &str, table: &str, expr: &str| {
        query(
            url,
            &format!("SELECT coalesce(({expr})::text, '<NULL>') FROM {table} ORDER BY id"),
        )
    };
    for column in columns {
        // json is normalized to jsonb; char(n) keeps its padding through COPY; inet is
        // text as PostgreSQL prints it (`inet::text` adds a `/32` that psql does not show).
        let source_expr = match column {
            "j" => "j::jsonb".to_owned(),
            "ip" => "inet_out(ip)::text".to_owned(),
            "c" => "rpad(c::text, 5)".to_owned(),
            other => format!("\"{other}\""),
        };
        assert_eq!(
            values(&target, "raw.public_everything", &format!("\"{column}\"")),
            values(&source, "public.everything", &source_expr),
            "column {column}"
        );
    }
    assert_eq!(
        values(
            &target,
            "raw.public_everything",
            &format!("\"{}\"", shortened[0])
        ),
        values(&source, "public.everything", &format!("\"{long}\""))
    );
    let types = query(
        &target,
        "SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum)
         FROM pg_attribute WHERE attrelid = 'raw.public_everything'::regclass
         AND attname IN ('n', 'tstz', 'iv', 'u', 'jb', 'by', 'ai', 'dom', '_elt_run_id')",
    );
    assert_eq!(
        types,
        [
            "n numeric(12,3), tstz timestamp with time zone, iv interval, u uuid, jb jsonb, by bytea, ai integer[], dom integer, _elt_run_id uuid"
        ]
    );
}

#[test]
fn repeated_keys_collapse_to_the_highest_cursor_and_null_keys_are_refused() {
    let source = fresh_database("pgdest_keys_src");
    let target = fresh_database("pgdest_keys_dst");
    execute(
        &source,
        "CREATE TABLE events (k int, v text, updated_at timestamptz NOT NULL);
         INSERT INTO events VALUES (1, 'old', '2024-01-01'), (2, 'only', '2024-01-02'),
                                   (1, 'new', '2024-01-03'), (3, 'x', '2024-01-01');",
    );
    let toml = |extra: &str| {
        format!(
            r#"
[sources.src]
type = "postgres"
url = "{source}"
batch_rows = 1

[destinations.dst]
type = "postgres"
url = "{target}"
commit_rows = 1

[connections.c]
source = "src"
destination = "dst"
streams = [{{ name = "public.events", sync = "incremental", cursor = "updated_at", primary_key = ["k"], write = "merge" {extra}}}]
"#
        )
    };
    let project = Project::new(&toml(""));
    project.elt(&["sync", "--connection", "c"]).expect_code(0);
    assert_eq!(
        query(
            &target,
            "SELECT string_agg(k || '=' || v, ',' ORDER BY k) FROM raw.public_events"
        ),
        ["1=new,2=only,3=x"]
    );
    execute(
        &source,
        "INSERT INTO events VALUES (NULL, 'no key', '2024-02-01')",
    );
    let failed = project.elt(&["sync", "--connection", "c"]).expect_code(1);
    assert!(
        failed.stdout().contains("NULL in primary key column k"),
        "{}",
        failed.stdout()
    );
    assert_eq!(
        query(&target, "SELECT count(*)::text FROM raw.public_events"),
        ["3"],
        "nothing of the failed run was committed"
    );
}

#[test]
fn sample_values_match_the_duckdb_destination() {
    let url = fresh_database("pgdest_vs_duckdb");
    let pg = Project::new(&sample_to_pg(&url, 5_000, 1_000, 1));
    pg.elt(&["sync", "--connection", "merge", "--quiet"])
        .expect_code(0);
    let duck = Project::sample(5_000, 1_000, 1);
    duck.elt(&["sync", "--connection", "demo", "--quiet"])
        .expect_code(0);
    // The same fingerprint of every column, in each database's SQL.
    let orders = |epoch_us: &str, method: &str, schema: &str| {
        format!(
            "SELECT count(*) || '|' || sum(total) || '|' || sum(unit_price) || '|' || sum(quantity)
                 || '|' || sum(customer_id + product_id) || '|' || sum({epoch_us}(placed_at))
                 || '|' || sum({epoch_us}(updated_at))
                 || '|' || md5(string_agg(coalesce(note, '-') || status || coalesce(promised_on::text, '-')
                        || coalesce({method}, '-'), ',' ORDER BY id))
             FROM {schema}.orders"
        )
    };
    let customers = |epoch_us: &str, schema: &str| {
        format!(
            "SELECT count(*) || '|' || sum(lifetime_value) || '|' || sum({epoch_us}(created_at))
                 || '|' || md5(string_agg(name || coalesce(email, '-') || country || is_active::text,
                        ',' ORDER BY id))
             FROM {schema}.customers"
        )
    };
    execute(
        &url,
        "CREATE FUNCTION epoch_us(t timestamptz) RETURNS bigint LANGUAGE sql IMMUTABLE
         AS 'SELECT (extract(epoch FROM t) * 1000000)::bigint'",
    );
    let in_pg = query(&url, &orders("epoch_us", "shipping->>'method'", "merge"));
    assert!(in_pg[0].starts_with("5050|"), "{in_pg:?}");
    assert_eq!(
        in_pg,
        duck.query(&orders("epoch_us", "shipping->>'$.method'", "raw"))
    );
    assert_eq!(
        query(&url, &customers("epoch_us", "merge")),
        duck.query(&customers("epoch_us", "raw"))
    );
}

#[test]
fn check_passes_and_a_bad_login_is_a_config_error_without_the_password() {
    let url = fresh_database("pgdest_check");
    let bad = url.replace("postgres@", "nobody_elt:s3cret-pw@");
    let project = Project::new(&format!(
        r#"
[sources.sample]
type = "sample"

[destinations.good]
type = "postgres"
url = "{url}"

[destinations.bad]
type = "postgres"
url = "{bad}"

[connections.good]
source = "sample"
destination = "good"

[connections.bad]
source = "sample"
destination = "bad"
"#
    ));
    let check = project
        .elt(&["check", "--connection", "good"])
        .expect_code(0);
    assert!(
        check.stdout().contains("destination good: ok"),
        "{}",
        check.stdout()
    );
    let failed = project
        .elt(&["sync", "--connection", "bad", "--json"])
        .expect_code(2);
    let everything = format!("{}{}", failed.stdout(), failed.stderr());
    assert!(
        everything.contains("nobody_elt"),
        "names the role: {everything}"
    );
    assert!(
        !everything.contains("s3cret-pw"),
        "leaks the password: {everything}"
    );
}

#[test]
fn a_crafted_dataset_name_is_data_not_sql_even_without_standard_strings() {
    let url = fresh_database("pgdest_injection");
    execute(
        &url,
        "ALTER DATABASE elt_pgdest_injection SET standard_conforming_strings = off",
    );
    // Under standard_conforming_strings = off, `\'` escapes a quote: a literal quoted by
    // hand (quotes doubled, backslashes not) ended here and ran the CREATE TABLE.
    let dataset = r"x\'); CREATE TABLE public.elt_pwned (i int); --";
    let toml = sample_to_pg(&url, 100, 100, 0).replace(
        "dataset = \"merge\"",
        &format!("dataset = \"{}\"", dataset.replace('\\', "\\\\")),
    );
    let project = Project::new(&toml);
    project
        .elt(&["sync", "--connection", "merge", "--quiet"])
        .expect_code(0);
    assert_eq!(
        query(
            &url,
            "SELECT count(*)::text FROM pg_tables WHERE tablename = 'elt_pwned'"
        ),
        ["0"]
    );
    assert_eq!(
        query(
            &url,
            &format!(
                "SELECT count(*)::text FROM \"{}\".orders",
                dataset.replace('"', "\"\"")
            )
        ),
        ["100"]
    );
}
