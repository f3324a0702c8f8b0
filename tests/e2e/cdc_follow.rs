//! `elt sync --follow` over cdc streams: it catches up with changes as they are made, stops
//! cleanly on SIGTERM after its last commit, and a random workload of 100,000 changes with
//! the follower killed (SIGKILL) at 20 random moments ends exactly equal to the source, no
//! change applied twice.

use std::process::Child;
use std::time::{Duration, Instant};

use crate::common::{Project, Random, terminate};
use sqlx::{Connection, PgConnection};

use crate::pg::{block_on, execute, fresh_database, project_toml, query};

const TABLES: &str = "
CREATE TABLE a (id int PRIMARY KEY, v int NOT NULL, t text);
CREATE TABLE b (id int PRIMARY KEY, v int NOT NULL, t text);
CREATE TABLE c (id int PRIMARY KEY, v int NOT NULL, t text);
INSERT INTO a SELECT g, g, 'a' || g FROM generate_series(1, 2000) g;
INSERT INTO b SELECT g, g, 'b' || g FROM generate_series(1, 2000) g;
INSERT INTO c SELECT g, g, 'c' || g FROM generate_series(1, 2000) g;";

/// Streams a and b merged, c kept as a change log.
fn project(url: &str) -> Project {
    let streams = "
[[connections.pg.streams]]
name = \"public.a\"
sync = \"cdc\"
[[connections.pg.streams]]
name = \"public.b\"
sync = \"cdc\"
[[connections.pg.streams]]
name = \"public.c\"
sync = \"cdc\"
write = \"append\"";
    Project::new(&project_toml(url, "batch_rows = 300", streams))
}

fn follow(project: &Project) -> Child {
    project
        .command(&[
            "sync",
            "--connection",
            "pg",
            "--follow",
            "--follow-interval",
            "0",
            "--quiet",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start elt sync --follow")
}

fn rows(url: &str, table: &str) -> Vec<String> {
    query(
        url,
        &format!("SELECT id || ':' || v || ':' || coalesce(t, '-') FROM {table} ORDER BY id"),
    )
}

fn merged_rows(project: &Project, table: &str) -> Vec<String> {
    project.query(&format!(
        "SELECT id || ':' || v || ':' || coalesce(t, '-') FROM raw.public_{table} \
         WHERE _elt_deleted_at IS NULL ORDER BY id"
    ))
}

/// The rows the change log of `c` says the table holds: each key's last change, unless it
/// is a delete.
fn replayed_log(project: &Project) -> Vec<String> {
    project.query(
        "SELECT id || ':' || v || ':' || coalesce(t, '-') FROM (SELECT *, row_number() OVER \
         (PARTITION BY id ORDER BY _elt_lsn DESC) AS n FROM raw.public_c) \
         WHERE n = 1 AND _elt_op <> 'delete' ORDER BY id",
    )
}

/// One random transaction over the three tables on `conn`; returns the rows it changed.
async fn random_transaction(
    conn: &mut PgConnection,
    random: &mut Random,
    next_id: &mut i64,
) -> u64 {
    let mut statements = Vec::new();
    for _ in 0..1 + random.below(3) {
        let table = ["a", "b", "c"][random.below(3) as usize];
        let (from, width) = (1 + random.below(*next_id as u64), 1 + random.below(40));
        statements.push(match random.below(4) {
            0 => {
                let n = 1 + random.below(40) as i64;
                let sql = format!(
                    "INSERT INTO {table} SELECT g, g % 97, md5(g::text) FROM generate_series({}, {}) g",
                    *next_id,
                    *next_id + n - 1
                );
                *next_id += n;
                sql
            }
            1 => format!(
                "DELETE FROM {table} WHERE id BETWEEN {from} AND {}",
                from + width / 4
            ),
            _ => format!(
                "UPDATE {table} SET v = v + 1, t = CASE WHEN v % 5 = 0 THEN NULL ELSE 'u' || v END \
                 WHERE id BETWEEN {from} AND {}",
                from + width
            ),
        });
    }
    let mut tx = conn.begin().await.expect("begin");
    let mut changed = 0;
    for sql in &statements {
        changed += sqlx::query(sql)
            .execute(&mut *tx)
            .await
            .unwrap_or_else(|e| panic!("{e}: {sql}"))
            .rows_affected();
    }
    tx.commit().await.expect("commit");
    changed
}

#[test]
fn sigterm_lets_the_last_run_commit_and_follow_catches_up() {
    let url = fresh_database("cdc_follow_term");
    execute(&url, TABLES);
    let project = project(&url);
    let mut child = follow(&project);
    std::thread::sleep(Duration::from_millis(1500));
    execute(
        &url,
        "UPDATE a SET v = -1 WHERE id <= 10; DELETE FROM b WHERE id = 1",
    );
    std::thread::sleep(Duration::from_millis(1500));
    let exit = terminate(&mut child);
    assert_eq!(exit.code(), Some(0), "a clean stop");
    for table in ["a", "b"] {
        assert_eq!(
            rows(&url, table),
            merged_rows(&project, table),
            "table {table}"
        );
    }
    let runs =
        project.query("SELECT count(*)::VARCHAR FROM raw._elt_runs WHERE status <> 'succeeded'");
    assert_eq!(runs, ["0"], "every run ended and was recorded as succeeded");
}

#[test]
fn random_changes_with_twenty_kills_end_exactly_equal() {
    let url = fresh_database("cdc_follow_kills");
    execute(&url, TABLES);
    let project = project(&url);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos() as u64
        | 1;
    println!("seed {seed}");
    let writer = std::thread::spawn({
        let url = url.clone();
        move || {
            let started = Instant::now();
            let made = block_on(async {
                let mut conn = PgConnection::connect(&url).await.expect("connect");
                let mut random = Random(seed);
                let (mut next_id, mut made) = (2001, 0);
                while made < 100_000 {
                    made += random_transaction(&mut conn, &mut random, &mut next_id).await;
                }
                made
            });
            println!("writer: {made} changes in {:?}", started.elapsed());
            made
        }
    });
    let mut random = Random(seed.rotate_left(17));
    for _ in 0..20 {
        let mut child = follow(&project);
        // About as long in all as the writer takes, so most kills land while it writes.
        std::thread::sleep(Duration::from_millis(100 + random.below(400)));
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
    }
    let made = writer.join().expect("writer");
    assert!(made >= 100_000, "{made} changes");
    let runs = project.query(
        "SELECT status || ':' || count(DISTINCT run_id) FROM raw._elt_runs GROUP BY status ORDER BY 1",
    );
    println!("runs by status: {runs:?}");
    let killed_mid_run: u64 = runs
        .iter()
        .find_map(|r| r.strip_prefix("abandoned:"))
        .map_or(0, |n| n.parse().expect("count"));
    assert!(
        killed_mid_run >= 5,
        "the kills should land inside runs: {runs:?}"
    );
    project
        .elt(&["sync", "--connection", "pg", "--quiet"])
        .expect_code(0);
    for table in ["a", "b"] {
        assert_eq!(
            rows(&url, table),
            merged_rows(&project, table),
            "seed {seed}: table {table}"
        );
    }
    assert_eq!(
        rows(&url, "c"),
        replayed_log(&project),
        "seed {seed}: the log of c"
    );
    let repeated = project.query(
        "SELECT count(*)::VARCHAR FROM (SELECT _elt_lsn FROM raw.public_c WHERE _elt_op <> 'snapshot' \
         GROUP BY _elt_lsn HAVING count(*) > 1)",
    );
    assert_eq!(
        repeated,
        ["0"],
        "seed {seed}: every change is in the log once"
    );
}
