//! TLS with a private CA: a PostgreSQL server this test starts (its own `initdb`, a server
//! certificate for `localhost` signed by a CA the test creates) is reached with
//! `tls = "verify-full"` and `sslrootcert`; an unknown CA and a wrong host name fail with
//! one line that names the cause.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::Project;

const BIN: &str = "/usr/lib/postgresql/15/bin";

/// A password in the URL (the server trusts loopback, so it is never checked): it must not
/// appear in any output.
const CANARY: &str = "tls-canary-pw-41c9";

pub fn run(program: &str, args: &[&str], dir: &Path) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program} is needed for this test: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`NAME.crt`, `NAME.key`) in `dir`.
fn make_ca(dir: &Path, name: &str) {
    let (key, crt, subject) = (
        format!("{name}.key"),
        format!("{name}.crt"),
        format!("/CN=elt {name}"),
    );
    run(
        "openssl",
        &[
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &crt,
            "-days", "2", "-subj", &subject,
        ],
        dir,
    );
}

/// In `dir`: a CA (`ca.crt`), an unrelated one (`other.crt`), and a server certificate for
/// `localhost` signed by the first (`server.crt`, `server.key`).
pub fn certificates(dir: &Path) {
    make_ca(dir, "ca");
    make_ca(dir, "other");
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(
        "openssl",
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
        dir,
    );
    run(
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
        dir,
    );
}

/// A PostgreSQL server on a free loopback port, stopped when dropped.
struct Server {
    dir: PathBuf,
    port: u16,
}

impl Server {
    /// With TLS (`ssl`) or without, as a server that offers none.
    fn start(dir: &Path, ssl: bool) -> Self {
        certificates(dir);
        run("chmod", &["600", "server.key"], dir);
        run("chown", &["-R", "postgres:postgres", "."], dir);
        let data = dir.join("data");
        let data = data.to_str().unwrap();
        run(
            "runuser",
            &[
                "-u",
                "postgres",
                "--",
                &format!("{BIN}/initdb"),
                "-D",
                data,
                "-A",
                "trust",
                "-U",
                "postgres",
            ],
            dir,
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let options = format!(
            "-p {port} -k {dir} -c listen_addresses=127.0.0.1 -c ssl={ssl} -c ssl_cert_file={dir}/server.crt -c ssl_key_file={dir}/server.key",
            dir = dir.display(),
            ssl = if ssl { "on" } else { "off" },
        );
        let log = dir.join("server.log");
        run(
            "runuser",
            &[
                "-u",
                "postgres",
                "--",
                &format!("{BIN}/pg_ctl"),
                "-D",
                data,
                "-o",
                &options,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "start",
            ],
            dir,
        );
        Self {
            dir: dir.to_owned(),
            port,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = Command::new("runuser")
            .args([
                "-u",
                "postgres",
                "--",
                &format!("{BIN}/pg_ctl"),
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "stop",
            ])
            .output();
    }
}

fn project(server: &Server, host: &str, ca: &str) -> Project {
    let url = format!(
        "postgres://postgres:{CANARY}@{host}:{}/postgres?sslrootcert={}/{ca}",
        server.port,
        server.dir.display()
    );
    Project::new(&crate::pg::project_toml(
        &url,
        "tls = \"verify-full\"",
        r#"streams = [{ name = "public.things" }]"#,
    ))
}

#[test]
fn verify_full_against_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), true);
    let direct = format!(
        "postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable",
        server.port
    );
    crate::pg::execute(
        &direct,
        "CREATE TABLE things (id bigint PRIMARY KEY, name text, updated_at timestamptz NOT NULL);
         INSERT INTO things SELECT i, 'thing ' || i, now() FROM generate_series(1, 100) i;",
    );
    let good = project(&server, "localhost", "ca.crt");
    let check = good.elt(&["check", "--connection", "pg"]).expect_code(0);
    assert!(
        check.stdout().contains("tls verify-full"),
        "{}",
        check.stdout()
    );
    let sync = good
        .elt(&["sync", "--connection", "pg", "--json"])
        .expect_code(0);
    for output in [
        check.stdout() + &check.stderr(),
        sync.stdout() + &sync.stderr(),
    ] {
        assert!(!output.contains(CANARY), "{output}");
    }
    let summary = sync.json();
    assert_eq!(
        crate::common::stream(&summary, "public.things")["rows_loaded"],
        100
    );
    for (host, ca, cause) in [
        ("localhost", "other.crt", "UnknownIssuer"),
        ("127.0.0.1", "ca.crt", "not valid for name"),
    ] {
        assert_refused(&project(&server, host, ca), "pg", cause, CANARY);
    }
}

/// With a wrong CA or host name under `tls = "verify-full"`: `elt check` and `elt sync` of
/// `connection` fail at once, as a config error that is not retried (a certificate does not
/// heal by waiting), with one line naming `cause` and the mode, and never print `canary`.
pub fn assert_refused(project: &Project, connection: &str, cause: &str, canary: &str) {
    let check = project.elt(&["check", "--connection", connection]);
    let sync = project.elt(&["sync", "--connection", connection]);
    assert_ne!(check.code(), 0, "{}", check.stdout());
    assert_eq!(
        sync.code(),
        2,
        "a config error: {}{}",
        sync.stdout(),
        sync.stderr()
    );
    for (run, marker) in [(&check, "cannot connect"), (&sync, "error:")] {
        let output = run.stdout() + &run.stderr();
        assert!(!output.contains(canary), "{output}");
        assert!(!output.contains("retrying"), "not retried: {output}");
        let line = output
            .lines()
            .find(|l| l.contains(marker))
            .unwrap_or_else(|| panic!("{output}"));
        assert!(
            line.contains(cause) && line.contains("tls verify-full"),
            "{cause}: {output}"
        );
    }
}

/// The note of a `prefer` sync of `server` (no password, so `prefer` is allowed), if any.
fn prefer_note(server: &Server) -> Option<String> {
    let direct = format!("postgres://postgres@127.0.0.1:{}/postgres", server.port);
    crate::pg::execute(
        &format!("{direct}?sslmode=disable"),
        "CREATE TABLE IF NOT EXISTS things (id bigint PRIMARY KEY, updated_at timestamptz NOT NULL);
         INSERT INTO things VALUES (1, now()) ON CONFLICT DO NOTHING;",
    );
    let streams = r#"streams = [{ name = "public.things" }]"#;
    let project = Project::new(&crate::pg::project_toml(
        &direct,
        "tls = \"prefer\"",
        streams,
    ));
    let summary = project
        .elt(&["sync", "--connection", "pg", "--json"])
        .expect_code(0)
        .json();
    let notes = crate::common::stream(&summary, "public.things")["notes"].clone();
    notes
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str())
        .find(|n| n.contains("plaintext"))
        .map(str::to_owned)
}

#[test]
fn prefer_says_when_it_fell_back_to_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let with_tls = Server::start(dir.path(), true);
    assert_eq!(prefer_note(&with_tls), None, "TLS was offered and used");
    drop(with_tls);
    let dir = tempfile::tempdir().unwrap();
    let without = Server::start(dir.path(), false);
    let note = prefer_note(&without).expect("a note about the plaintext connection");
    assert!(
        note.contains("(tls prefer)") && note.contains("tls = \"require\""),
        "{note}"
    );
}
