//! A PostgreSQL restart while a cdc sync reads changes: the sync fails with a transient
//! error (retries are off here, so it shows), and the rerun resumes exactly. The server is a
//! private one the test creates (initdb as the `postgres` user, on a port of its own), so
//! restarting it disturbs no other test.

use std::path::PathBuf;
use std::process::Command;

use crate::common::{Project, stream};
use crate::pg::{execute, query};

/// A PostgreSQL cluster of the test's own, stopped when dropped.
struct PrivateServer {
    dir: PathBuf,
    port: u16,
}

fn bin(name: &str) -> PathBuf {
    let root = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's binaries under /usr/lib/postgresql")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .max()
        .expect("a PostgreSQL version");
    root.join("bin").join(name)
}

/// Runs a PostgreSQL binary as the `postgres` user (initdb refuses root).
fn as_postgres(program: &str, args: &[&str]) {
    let status = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(bin(program))
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("runuser {program}: {e}"));
    assert!(status.success(), "{program} {args:?} failed");
}

impl PrivateServer {
    fn start(port: u16) -> Self {
        let dir = std::env::temp_dir().join(format!("elt-test-pg-{port}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("server dir");
        let chown = Command::new("chown")
            .args(["postgres:postgres", dir.to_str().expect("path")])
            .status()
            .expect("chown");
        assert!(chown.success());
        let data = dir.join("data");
        as_postgres(
            "initdb",
            &[
                "-D",
                data.to_str().expect("path"),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-N",
            ],
        );
        let server = Self { dir, port };
        server.pg_ctl("start");
        server
    }

    fn pg_ctl(&self, action: &str) {
        let options = format!(
            "-c port={} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} \
             -c wal_level=logical -c fsync=off",
            self.port,
            self.dir.display()
        );
        let data = self.dir.join("data");
        let log = self.dir.join("log");
        as_postgres(
            "pg_ctl",
            &[
                action,
                "-D",
                data.to_str().expect("path"),
                "-l",
                log.to_str().expect("path"),
                "-w",
                "-m",
                "fast",
                "-o",
                &options,
            ],
        );
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(bin("pg_ctl"))
            .args(["stop", "-D", data.to_str().unwrap_or(""), "-m", "immediate"])
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn a_server_restart_mid_read_is_a_transient_error_and_the_rerun_resumes_exactly() {
    let server = PrivateServer::start(54329);
    let url = server.url();
    execute(
        &url,
        // 500 bytes a row: the changes (55 MB) cannot all wait in the client's socket
        // buffers when the server goes down, so the read really breaks.
        "CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL, pad text NOT NULL);
         INSERT INTO t SELECT g, 0, repeat(md5(g::text), 16) FROM generate_series(1, 20000) g;",
    );
    let project = Project::new(&format!(
        "[sources.pg]\ntype = \"postgres\"\nurl = \"{url}\"\nbatch_rows = 1000\n\
         {}\n[connections.pg]\nsource = \"pg\"\ndestination = \"local\"\nmax_retries = 0\n\
         [[connections.pg.streams]]\nname = \"public.t\"\nsync = \"cdc\"\nwrite = \"append\"",
        crate::common::DESTINATION
    ));
    project.elt(&["sync", "--connection", "pg"]).expect_code(0);
    for round in 1..=10 {
        execute(
            &url,
            &format!("UPDATE t SET v = {round} WHERE id % 10 < {round}"),
        );
    }
    // The sync stops after its third commit of changes; the server restarts under it.
    let child = project.spawn_until(
        &["sync", "--connection", "pg", "--json"],
        "duckdb.after_commit:3:sleep=3000",
    );
    server.pg_ctl("restart");
    let output = child.wait_with_output().expect("sync");
    let summary: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("the --json summary");
    let report = stream(&summary, "public.t");
    assert_eq!(report["error_kind"], "transient", "{report}");
    let committed: u64 = project
        .query("SELECT count(*)::VARCHAR FROM raw.public_t WHERE _elt_op <> 'snapshot'")[0]
        .parse()
        .expect("count");
    assert!(
        committed > 0 && committed < 110_000,
        "stopped in the middle: {committed}"
    );
    project.elt(&["sync", "--connection", "pg"]).expect_code(0);
    let log = project.query(
        "SELECT count(*) || ':' || count(DISTINCT _elt_lsn) FROM raw.public_t WHERE _elt_op = 'update'",
    );
    assert_eq!(log, ["110000:110000"], "every change once");
    let want = query(&url, "SELECT id || ':' || v FROM t ORDER BY id");
    let got = project.query(
        "SELECT id || ':' || v FROM (SELECT *, row_number() OVER (PARTITION BY id ORDER BY _elt_lsn DESC) \
         AS n FROM raw.public_t) WHERE n = 1 ORDER BY id",
    );
    assert_eq!(want, got);
}
