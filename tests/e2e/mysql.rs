//! The `mysql` source into DuckDB against the local MariaDB (`ELT_TEST_MYSQL_URL`, default
//! `mysql://root@127.0.0.1:3306/test`), each test in its own database: every type round
//! trips, a full load and incremental merges after updates and inserts equal the source,
//! and equal timestamps across batches survive a kill and rerun.

use sqlx::{Connection, Executor, MySqlConnection};

use crate::common::{DESTINATION, Project, stream};
use crate::crash::kill_at;
use crate::pg::block_on;

/// A fresh database `elt_<name>` on the test server; returns its URL.
pub fn fresh_database(name: &str) -> String {
    let admin = std::env::var("ELT_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into());
    let db = format!("elt_{name}");
    block_on(async {
        let mut conn = MySqlConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("MySQL at {admin} is not reachable: {e}"));
        let sql = format!("DROP DATABASE IF EXISTS `{db}`; CREATE DATABASE `{db}`");
        conn.execute(sql.as_str())
            .await
            .expect("recreate the database");
    });
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    format!("{base}/{db}")
}

/// Runs SQL statements (separated by `;`) against `url`.
pub fn execute(url: &str, sql: &str) {
    block_on(async {
        let mut conn = MySqlConnection::connect(url).await.expect("connect");
        conn.execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{e}: {sql}"));
    });
}

/// The first column of every row of a query, as text.
fn query(url: &str, sql: &str) -> Vec<String> {
    block_on(async {
        let mut conn = MySqlConnection::connect(url).await.expect("connect");
        conn.execute("SET SESSION group_concat_max_len = 1073741824")
            .await
            .expect("set group_concat_max_len");
        let rows: Vec<(String,)> = sqlx::query_as(sql)
            .fetch_all(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{e}: {sql}"));
        rows.into_iter().map(|r| r.0).collect()
    })
}

/// A project syncing database `url` into `data/demo.duckdb` as connection `my`.
pub fn project_toml(url: &str, extra_source: &str) -> String {
    format!(
        r#"
[sources.my]
type = "mysql"
url = "{url}"
{extra_source}

{DESTINATION}
[connections.my]
source = "my"
destination = "local"
"#
    )
}

const ORDERS: &str = "
CREATE TABLE orders (
  id bigint PRIMARY KEY, customer varchar(50) NOT NULL, amount decimal(12,2), qty int,
  status enum('new','paid','shipped'), paid tinyint(1), created_at datetime(6) NOT NULL,
  updated_at timestamp(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), doc json, note text,
  KEY (updated_at))";

fn insert_orders(from: i64, to: i64, updated_at: &str) -> String {
    format!(
        "INSERT INTO orders SELECT seq, CONCAT('customer ', seq % 1000), (seq % 100000) / 100,
           seq % 10, ELT(1 + seq % 3, 'new', 'paid', 'shipped'), seq % 2 = 0,
           TIMESTAMP '1965-01-01 00:00:00' + INTERVAL seq HOUR, {updated_at},
           JSON_OBJECT('k', seq, 'tags', JSON_ARRAY('a', seq % 5)),
           CASE WHEN seq % 7 = 0 THEN NULL ELSE CONCAT('nöte ', seq) END
         FROM seq_{from}_to_{to}"
    )
}

const MYSQL_DIGEST: &str = "SELECT CONCAT(count(*), ':', MD5(GROUP_CONCAT(CONCAT_WS('|', id, customer,
    coalesce(amount, '-'), coalesce(qty, '-'), coalesce(status, '-'), coalesce(paid, '-'),
    TIMESTAMPDIFF(MICROSECOND, '1970-01-01', created_at), TIMESTAMPDIFF(MICROSECOND, '1970-01-01', updated_at),
    coalesce(doc, '-'), coalesce(note, '-')) ORDER BY id SEPARATOR ';'))) FROM orders";

fn duck_digest(table: &str) -> String {
    format!(
        "SELECT count(*) || ':' || md5(string_agg(concat_ws('|', id, customer,
           coalesce(amount::VARCHAR, '-'), coalesce(qty::VARCHAR, '-'), coalesce(status, '-'),
           coalesce(paid::VARCHAR, '-'), epoch_us(created_at), epoch_us(updated_at),
           coalesce(doc::VARCHAR, '-'), coalesce(note, '-')), ';' ORDER BY id))
         FROM raw.{table}"
    )
}

fn assert_same_orders(url: &str, project: &Project, table: &str) {
    assert_eq!(project.query(&duck_digest(table)), query(url, MYSQL_DIGEST));
    let duplicates = format!("SELECT (count(*) - count(DISTINCT id))::VARCHAR FROM raw.{table}");
    assert_eq!(project.query(&duplicates), ["0"]);
}

#[test]
fn full_load_then_incremental_merge_equals_the_source() {
    let url = fresh_database("my_incremental");
    execute(
        &url,
        &format!(
            "{ORDERS}; {}",
            insert_orders(
                1,
                20_000,
                "TIMESTAMP '2024-01-01 00:00:00' + INTERVAL seq SECOND"
            )
        ),
    );
    let project = Project::new(&project_toml(&url, "batch_rows = 4096"));
    let first = project
        .elt(&["sync", "--connection", "my", "--json"])
        .expect_code(0)
        .json();
    let name = "elt_my_incremental.orders";
    assert_eq!(stream(&first, name)["rows_loaded"], 20_000);
    // `prefer` (the loopback default without a password) says when the server offered no
    // TLS and the connection went plaintext.
    let have_ssl = query(&url, "SELECT @@have_ssl");
    let notes = stream(&first, name)["notes"].to_string();
    assert_eq!(
        notes.contains("connected in plaintext"),
        have_ssl != ["YES"],
        "have_ssl {have_ssl:?}: {notes}"
    );
    assert_eq!(stream(&first, name)["sync_mode"], "incremental");
    assert_same_orders(&url, &project, "elt_my_incremental_orders");

    execute(
        &url,
        "UPDATE orders SET qty = coalesce(qty, 0) + 1, note = 'changed ✓', updated_at = NOW(6) WHERE id % 100 = 0",
    );
    execute(&url, &insert_orders(20_001, 20_200, "NOW(6)"));
    let second = project
        .elt(&["sync", "--connection", "my", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(stream(&second, name)["rows_read"], 400);
    assert_same_orders(&url, &project, "elt_my_incremental_orders");

    let third = project
        .elt(&["sync", "--connection", "my", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(stream(&third, name)["rows_read"], 0);
    assert_eq!(stream(&third, name)["rows_loaded"], 0);
}

#[test]
fn equal_timestamps_across_batches_survive_a_kill() {
    let url = fresh_database("my_equal_ts");
    execute(
        &url,
        &format!(
            "{ORDERS}; {}",
            insert_orders(1, 10_000, "TIMESTAMP '2024-05-05 05:05:05.123456'")
        ),
    );
    let project = Project::new(&project_toml(&url, "batch_rows = 1000"));
    kill_at(&project, "my", "duckdb.after_commit:4:pause");
    let table = "elt_my_equal_ts_orders";
    let partial = project.query(&format!("SELECT count(*)::VARCHAR FROM raw.{table}"));
    assert_eq!(partial, ["4000"], "four batches committed before the kill");
    let rerun = project
        .elt(&["sync", "--connection", "my", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(stream(&rerun, "elt_my_equal_ts.orders")["rows_read"], 6_000);
    assert_same_orders(&url, &project, table);
    let state = project.query("SELECT state::VARCHAR FROM raw._elt_state");
    assert_eq!(
        state,
        [r#"{"v":1,"cursor":"2024-05-05T05:05:05.123456Z","key":[10000]}"#]
    );
}

#[test]
fn every_type_round_trips() {
    let url = fresh_database("my_types");
    execute(
        &url,
        r#"
        CREATE TABLE everything (
          id int PRIMARY KEY, ti tinyint, tiu tinyint unsigned, si smallint, siu smallint unsigned,
          mi mediumint, miu mediumint unsigned, i int, iu int unsigned, bi bigint,
          biu bigint unsigned, d1 decimal(12,3), d2 decimal(38,10), d3 decimal(65,30), f float,
          d double, c char(5), vc varchar(20), t text, e enum('sad','ok','happy'),
          st set('a','b','c'), dt date, dtm datetime(6), ts timestamp(6) NULL, tm time(6),
          y year, j json, bn binary(3), vb varbinary(10), bl blob, b1 bit(1), b8 bit(8),
          b64 bit(64), cs varchar(10) COLLATE utf8mb4_bin, latin varchar(10) CHARACTER SET latin1,
          u uuid, zd date, g point,
          updated_at timestamp(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6));
        INSERT INTO everything (id) VALUES (3);
        INSERT INTO everything VALUES
          (1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 4.5, 6.7, 8.9, 1.5, 2.25, 'char', 'varchar', 'text',
           'ok', 'b', '2024-02-29', '2024-02-29 12:34:56', '2024-02-29 12:34:56', '12:34:56', 2024,
           '{"a": 1}', 'abc', 'x', 'y', 0, 1, 2, 'Zz', 'ü', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
           '2024-01-01', POINT(0, 0), NOW(6)),
          (2, -128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295,
           -9223372036854775808, 18446744073709551615, -999999999.999,
           1234567890123456789012345678.0123456789,
           12345678901234567890123456789012345.123456789012345678901234567890, -1.5, -2.5e300,
           'ab', 'ünï©ødé 😀', '', 'happy', 'a,c', '1000-01-01', '9999-12-31 23:59:59.999999',
           '2038-01-19 03:14:07.999999', '-838:59:59.000000', 2155,
           '{"big": [1,2,3], "nested": {"a": null}}', x'00ff10', x'', x'0001', 1, b'10101010',
           18446744073709551615, 'AbC', 'café', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12',
           '0000-00-00', POINT(1, 2), NOW(6));
        "#,
    );
    let project = Project::new(&project_toml(&url, ""));
    let run = project
        .elt(&["sync", "--connection", "my", "--json"])
        .expect_code(0)
        .json();
    let notes = stream(&run, "elt_my_types.everything")["notes"].to_string();
    assert!(
        notes.contains("1 rows have a zero date in zd"),
        "the zero date is reported: {notes}"
    );
    let row = |id: i32, expr: &str| {
        project
            .query(&format!(
                "SELECT ({expr})::VARCHAR FROM raw.elt_my_types_everything WHERE id = {id}"
            ))
            .remove(0)
    };
    let extremes = [
        ("ti", "-128"),
        ("tiu", "255"),
        ("si", "-32768"),
        ("siu", "65535"),
        ("mi", "-8388608"),
        ("miu", "16777215"),
        ("i", "-2147483648"),
        ("iu", "4294967295"),
        ("bi", "-9223372036854775808"),
        ("biu", "18446744073709551615"),
        ("d1", "-999999999.999"),
        ("d2", "1234567890123456789012345678.0123456789"),
        (
            "d3",
            "12345678901234567890123456789012345.123456789012345678901234567890",
        ),
        ("f", "-1.5"),
        ("d", "-2.5e+300"),
        ("c", "ab"),
        ("vc", "ünï©ødé 😀"),
        ("t", ""),
        ("e", "happy"),
        ("st", "a,c"),
        ("dt", "1000-01-01"),
        ("dtm", "9999-12-31 23:59:59.999999"),
        ("epoch_us(ts)", "2147483647999999"),
        (
            "tm = -(INTERVAL 838 HOUR + INTERVAL 59 MINUTE + INTERVAL 59 SECOND)",
            "true",
        ),
        ("y", "2155"),
        ("j->>'$.big[2]'", "3"),
        ("hex(bn)", "00FF10"),
        ("octet_length(vb)", "0"),
        ("hex(bl)", "0001"),
        ("b1", "true"),
        ("b8", "170"),
        ("b64", "18446744073709551615"),
        ("cs", "AbC"),
        ("latin", "café"),
        ("u", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12"),
        ("zd IS NULL", "true"),
        ("g", "POINT(1 2)"),
    ];
    for (expr, expected) in extremes {
        assert_eq!(row(2, expr), expected, "{expr}");
    }
    assert_eq!(
        row(
            1,
            "concat_ws(',', ti, tiu, si, siu, mi, miu, i, iu, bi, biu, d1, d2, d3, f, d, c, vc, t, e, st, dt, dtm, ts, tm, y, j, b1, b8, b64, cs, latin, u, zd, g)"
        ),
        "1,2,3,4,5,6,7,8,9,10,4.500,6.7000000000,8.900000000000000000000000000000,1.5,2.25,char,varchar,text,ok,b,2024-02-29,2024-02-29 12:34:56,2024-02-29 12:34:56+00,12:34:56,2024,{\"a\": 1},false,1,2,Zz,ü,a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,2024-01-01,POINT(0 0)"
    );
    let columns = [
        "tiu", "miu", "biu", "d2", "d3", "dtm", "ts", "tm", "y", "j", "bn", "b1", "b64", "u",
    ];
    assert_eq!(
        project.column_types("elt_my_types_everything", &columns),
        "tiu UTINYINT, miu UINTEGER, biu UBIGINT, d2 DECIMAL(38,10), d3 VARCHAR, dtm TIMESTAMP, ts TIMESTAMP WITH TIME ZONE, tm INTERVAL, y SMALLINT, j JSON, bn BLOB, b1 BOOLEAN, b64 UBIGINT, u UUID"
    );
    assert_eq!(
        project.non_null_columns("elt_my_types_everything", 3),
        "",
        "columns of row 3 that are not NULL"
    );
}

#[test]
fn backfill_windows_and_lookback_bind_checked_values() {
    let url = fresh_database("my_backfill");
    execute(
        &url,
        &format!(
            "{ORDERS}; {}",
            insert_orders(
                1,
                1_000,
                "TIMESTAMP '2024-01-01 00:00:00' + INTERVAL seq HOUR"
            )
        ),
    );
    let project = Project::new(&project_toml(&url, "lookback_secs = 7200"));
    project.elt(&["sync", "--connection", "my"]).expect_code(0);
    let state = || project.query("SELECT state::VARCHAR FROM raw._elt_state");
    let before = state();
    // The lookback re-reads the two hours before the watermark: rows 998 to 1000.
    let rerun = project
        .elt(&["sync", "--connection", "my", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(stream(&rerun, "elt_my_backfill.orders")["rows_read"], 3);

    execute(
        &url,
        "UPDATE orders SET note = 'fixed' WHERE id BETWEEN 100 AND 300",
    );
    let window = |from: &str, to: &str| {
        let args = [
            "sync",
            "--connection",
            "my",
            "--json",
            "--backfill-from",
            from,
            "--backfill-to",
            to,
        ];
        project.elt(&args)
    };
    // Row n is at hour n: the window holds ids 96 to 215.
    let run = window("2024-01-05T00:00:00Z", "2024-01-09 23:59:59")
        .expect_code(0)
        .json();
    assert_eq!(stream(&run, "elt_my_backfill.orders")["rows_read"], 120);
    let fixed = "SELECT min(id) || '-' || max(id) || ':' || count(*) FROM raw.elt_my_backfill_orders WHERE note = 'fixed'";
    assert_eq!(project.query(fixed), ["100-215:116"]);
    assert_eq!(state(), before, "the watermark did not move");

    let bad = window("yesterday", "2024-01-09").json();
    let error = stream(&bad, "elt_my_backfill.orders")["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        error.contains(
            "`--backfill-from` for column updated_at is \"yesterday\", not a date and time"
        ),
        "{error}"
    );
    assert_eq!(state(), before, "the watermark did not move");
}
