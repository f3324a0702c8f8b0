//! A temporary elt project and helpers to run the binary and query its DuckDB file.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// The `elt` binary under test.
pub fn elt_bin() -> &'static str {
    env!("CARGO_BIN_EXE_elt")
}

/// A project directory with an `elt.toml`.
pub struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    /// A project whose `elt.toml` is `toml`.
    pub fn new(toml: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("elt.toml"), toml).expect("write elt.toml");
        Self { dir }
    }

    /// The sample source into `data/demo.duckdb` as connection `demo`.
    pub fn sample(orders: u64, batch_rows: u64, generation: u32) -> Self {
        Self::new(&sample_toml(orders, batch_rows, generation))
    }

    /// Rewrites `elt.toml`.
    pub fn write_config(&self, toml: &str) {
        std::fs::write(self.dir.path().join("elt.toml"), toml).expect("write elt.toml");
    }

    /// The project directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The DuckDB file of the sample projects.
    pub fn db(&self) -> PathBuf {
        self.dir.path().join("data/demo.duckdb")
    }

    /// `elt ARGS` in the project directory, with no inherited fail point.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(elt_bin());
        cmd.args(args)
            .current_dir(self.dir.path())
            .env_remove("ELT_FAILPOINT")
            .env_remove("ELT_CONFIG");
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Starts `elt ARGS` with a pausing or sleeping fail point and returns once the process
    /// reports reaching it (its stderr is then drained in the background; its stdout is
    /// piped for the caller).
    pub fn spawn_until(&self, args: &[&str], failpoint: &str) -> Child {
        let mut child = self
            .command(args)
            .env("ELT_FAILPOINT", failpoint)
            .stderr(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start elt");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let mut seen = Vec::new();
        let reached = lines.by_ref().map_while(Result::ok).any(|line| {
            seen.push(line.clone());
            line.contains("failpoint")
        });
        assert!(reached, "elt ended before reaching {failpoint}: {seen:#?}");
        // Keep draining, so a chatty child never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        child
    }

    /// Runs `elt ARGS` to completion.
    pub fn elt(&self, args: &[&str]) -> Run {
        self.elt_with_env(args, &[])
    }

    /// Runs `elt ARGS` to completion with the environment variables `env` set.
    pub fn elt_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut command = self.command(args);
        command.envs(env.iter().copied());
        Run(command.output().expect("run elt"))
    }

    /// Runs a query whose single column is text; one string per row.
    pub fn query(&self, sql: &str) -> Vec<String> {
        query(&self.db(), sql)
    }

    /// `name TYPE, ...` of the listed columns of raw table `table`, in table order.
    pub fn column_types(&self, table: &str, columns: &[&str]) -> String {
        let list: Vec<String> = columns.iter().map(|c| format!("'{c}'")).collect();
        self.query(&format!(
            "SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY column_index) FROM duckdb_columns()
             WHERE table_name = '{table}' AND column_name IN ({})",
            list.join(", ")
        ))
        .remove(0)
    }

    /// The columns of the row `id = ID` of raw table `table` that are not NULL, leaving out
    /// `id`, `updated_at` and the `_elt_` columns (comma-separated; empty when all are NULL).
    pub fn non_null_columns(&self, table: &str, id: i64) -> String {
        self.query(&format!(
            "SELECT coalesce(string_agg(col, ','), '') FROM (UNPIVOT (SELECT * EXCLUDE (id, updated_at, _elt_extracted_at, _elt_run_id)
             FROM raw.{table} WHERE id = {id}) ON COLUMNS(*)::VARCHAR INTO NAME col VALUE v) WHERE v IS NOT NULL"
        ))
        .remove(0)
    }

    /// A digest of a raw table without its `_elt_` columns, and its row count.
    pub fn table_digest(&self, table: &str) -> String {
        self.query(&format!(
            "SELECT count(*) || ':' || md5(string_agg(r::VARCHAR, ';' ORDER BY r::VARCHAR))
             FROM (SELECT * EXCLUDE (_elt_extracted_at, _elt_run_id) FROM raw.{table}) r"
        ))
        .remove(0)
    }
}

/// Runs a query against a DuckDB file; one string per row.
pub fn query(db: &Path, sql: &str) -> Vec<String> {
    let config = duckdb::Config::default()
        .access_mode(duckdb::AccessMode::ReadOnly)
        .expect("config");
    let conn = duckdb::Connection::open_with_flags(db, config).expect("open DuckDB file");
    let mut stmt = conn.prepare(sql).expect("prepare");
    stmt.query_map([], |r| r.get::<_, String>(0))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect()
}

/// The DuckDB destination every test project loads into (`data/demo.duckdb`).
pub const DESTINATION: &str = r#"
[destinations.local]
type = "duckdb"
path = "data/demo.duckdb"
threads = 1
# Commit at every checkpoint, so crash tests can stop between commits.
commit_rows = 1
"#;

/// The config of [`Project::sample`].
pub fn sample_toml(orders: u64, batch_rows: u64, generation: u32) -> String {
    format!(
        r#"
[sources.sample]
type = "sample"
customers = 1000
products = 100
orders = {orders}
batch_rows = {batch_rows}
generation = {generation}

{DESTINATION}
[connections.demo]
source = "sample"
destination = "local"
"#
    )
}

/// A finished `elt` process.
pub struct Run(pub Output);

impl Run {
    /// The exit code.
    pub fn code(&self) -> i32 {
        self.0.status.code().unwrap_or(-1)
    }
    /// Stdout as text.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    /// Stderr as text.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
    /// Panics with both streams unless the exit code is `code`.
    pub fn expect_code(self, code: i32) -> Self {
        assert_eq!(
            self.code(),
            code,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }
    /// The `--json` summary.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout())
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout()))
    }
}

/// A stream's entry in a `--json` summary.
pub fn stream<'a>(summary: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    summary["streams"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["stream"] == name))
        .expect("stream in summary")
}

/// A small deterministic generator (xorshift), seeded per run and printed on failure.
pub struct Random(pub u64);

impl Random {
    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Sends SIGTERM to `child` (an `elt sync --follow`) and waits for it to exit, at most 30
/// seconds; returns its exit status.
pub fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let started = std::time::Instant::now();
    loop {
        if let Some(exit) = child.try_wait().expect("wait") {
            return exit;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "--follow ignored SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
