//! A secret in the config appears in no output, log, error, state, `_elt_runs` or `--json`,
//! and a secret whose environment variable is missing is a one-line config error.

use crate::common::Project;
use crate::pg::{execute, fresh_database, project_toml};

const PASSWORD: &str = "s3cr3t-Pa55w0rd-never-printed";

#[test]
fn a_secret_is_never_printed_or_stored() {
    let url = fresh_database("secrets");
    execute(
        &url,
        "CREATE TABLE t (id int PRIMARY KEY, updated_at timestamptz NOT NULL DEFAULT now()); INSERT INTO t VALUES (1)",
    );
    // Trust authentication ignores the password, so the sync succeeds with it in the URL.
    let with_secret = url.replace("postgres@", "postgres:${ELT_TEST_PASSWORD}@");
    let project = Project::new(&project_toml(&with_secret, "", ""));
    let mut outputs = Vec::new();
    let mut run = |args: &[&str], code: i32| {
        let out = project
            .command(args)
            .env("ELT_TEST_PASSWORD", PASSWORD)
            .env("RUST_LOG", "debug")
            .output()
            .expect("run");
        assert_eq!(
            out.status.code(),
            Some(code),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        outputs.push(
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        );
    };
    run(&["validate"], 0);
    run(&["check", "--connection", "pg"], 0);
    run(&["discover", "--connection", "pg", "--json"], 0);
    run(&["sync", "--connection", "pg", "--json", "-vv"], 0);
    run(&["state", "show", "--connection", "pg", "--json"], 0);
    // A failure that echoes connection details: a database that does not exist.
    project.write_config(&project_toml(
        &with_secret.replace("elt_secrets", "elt_no_such_db"),
        "",
        "max_retries = 0",
    ));
    run(&["sync", "--connection", "pg", "--json", "-vv"], 2);
    run(&["check", "--connection", "pg"], 1);
    for output in &outputs {
        assert!(!output.contains(PASSWORD), "secret printed: {output}");
    }
    assert!(
        outputs
            .iter()
            .any(|o| o.contains("database \"elt_no_such_db\" does not exist")),
        "{outputs:?}"
    );
    let stored = std::fs::read(project.db()).expect("db file");
    assert!(
        !stored
            .windows(PASSWORD.len())
            .any(|w| w == PASSWORD.as_bytes()),
        "secret stored in the DuckDB file"
    );
}

#[test]
fn a_missing_environment_variable_is_a_config_error() {
    let project = Project::new(&project_toml(
        "postgres://u:${ELT_TEST_UNSET_VARIABLE}@127.0.0.1/db",
        "",
        "",
    ));
    let run = project
        .command(&["sync", "--connection", "pg"])
        .env_remove("ELT_TEST_UNSET_VARIABLE")
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("`sources.pg.url` references environment variable ELT_TEST_UNSET_VARIABLE, which is not set"), "{stderr}");
    assert!(!project.dir().join("data").exists());
}

/// A fake PostgreSQL server on 127.0.0.1 that declines TLS and asks for the password in
/// clear; returns its URL and what it received as passwords.
fn tls_declining_server() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port();
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = received.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(5)));
            let message = |stream: &mut std::net::TcpStream, tagged: bool| {
                let mut head = vec![0u8; if tagged { 5 } else { 4 }];
                stream.read_exact(&mut head).ok()?;
                let len = u32::from_be_bytes(head[head.len() - 4..].try_into().unwrap());
                let mut body = vec![0u8; (len as usize).saturating_sub(4)];
                stream.read_exact(&mut body).ok()?;
                Some((head[0], body))
            };
            let Some((_, first)) = message(&mut stream, false) else {
                continue;
            };
            // An SSLRequest is declined; the startup message follows.
            if first == 80_877_103u32.to_be_bytes() {
                let _ = stream.write_all(b"N");
                if message(&mut stream, false).is_none() {
                    continue;
                }
            }
            // AuthenticationCleartextPassword.
            let _ = stream.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 3]);
            if let Some((b'p', body)) = message(&mut stream, true) {
                seen.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&body).into_owned());
            }
        }
    });
    (port, received)
}

#[test]
fn a_server_that_declines_tls_never_receives_the_password_by_default() {
    let (port, received) = tls_declining_server();
    let url = format!("postgres://app:{PASSWORD}@127.0.0.1:{port}/db");
    let check = |extra: &str| {
        let project = Project::new(&project_toml(&url, extra, ""));
        project.elt(&["check", "--connection", "pg"])
    };
    let run = check("connect_timeout_secs = 3");
    let output = run.stdout() + &run.stderr();
    assert_ne!(run.code(), 0, "{output}");
    assert!(output.contains("(tls require)"), "{output}");
    assert!(output.contains("give the server a certificate"), "{output}");
    // `prefer` would fall back to plaintext: refused before connecting, and by `validate`.
    let run = check("tls = \"prefer\"");
    let output = run.stdout() + &run.stderr();
    assert_eq!(run.code(), 1, "{output}");
    assert!(output.contains("`tls` is `prefer`"), "{output}");
    let project = Project::new(&project_toml(&url, "tls = \"prefer\"", ""));
    let validate = project.elt(&["validate"]).expect_code(2);
    assert!(
        validate.stderr().contains("`sources.pg.tls` is `prefer`"),
        "{}",
        validate.stderr()
    );
    assert!(received.lock().unwrap().is_empty(), "the password was sent");
    // Only plaintext written out sends it, which shows that the server would have taken it.
    check("tls = \"disable\"\nconnect_timeout_secs = 3");
    assert!(
        received
            .lock()
            .unwrap()
            .iter()
            .any(|p| p.contains(PASSWORD)),
        "the fake server works"
    );
    for output in [check("").stdout(), check("").stderr()] {
        assert!(!output.contains(PASSWORD), "{output}");
    }
}

#[test]
fn check_and_the_summary_name_each_connection_and_its_tls_mode() {
    let url = fresh_database("tls_named");
    execute(
        &url,
        "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)",
    );
    for (extra, mode) in [("", "prefer"), ("tls = \"disable\"", "disable")] {
        let project = Project::new(&project_toml(&url, extra, ""));
        let check = project.elt(&["check", "--connection", "pg"]).expect_code(0);
        assert!(
            check.stdout().contains(&format!(
                "source pg: ok (127.0.0.1:5432/elt_tls_named as postgres (tls {mode}))"
            )),
            "{}",
            check.stdout()
        );
        assert!(
            check
                .stdout()
                .contains("destination local: ok (data/demo.duckdb)"),
            "{}",
            check.stdout()
        );
        let sync = project.elt(&["sync", "--connection", "pg"]).expect_code(0);
        assert!(
            sync.stdout().contains(&format!(
                "from 127.0.0.1:5432/elt_tls_named as postgres (tls {mode}), into "
            )),
            "{}",
            sync.stdout()
        );
        let summary = project
            .elt(&["sync", "--connection", "pg", "--json"])
            .expect_code(0)
            .json();
        assert_eq!(
            summary["source"],
            format!("127.0.0.1:5432/elt_tls_named as postgres (tls {mode})")
        );
    }
}
