//! `tls = "verify-full"` for the `mysql` source against a MariaDB server this test starts
//! (its own `mariadb-install-db`, a server certificate for `localhost` signed by a CA the
//! test creates, see `tls.rs`): the right CA passes; an unknown CA and a wrong host name
//! fail at once with one line naming the cause, as config errors that are not retried.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::Project;
use crate::tls::{assert_refused, certificates, run};

/// A password in the URL (the server skips grant checks, so it is never checked): it must
/// not appear in any output.
const CANARY: &str = "mysql-tls-canary-pw-5b7e";

/// A MariaDB server with TLS on a free loopback port, stopped when dropped.
struct Server {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Server {
    fn start(dir: &Path) -> Self {
        certificates(dir);
        let data = dir.join("data");
        // Its own temporary directory: a server starting up removes leftover temporary
        // tables from its tmpdir, and /tmp holds the machine's MariaDB's live ones.
        let tmp = dir.join("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        let tmpdir = format!("--tmpdir={}", tmp.display());
        run(
            "mariadb-install-db",
            &[
                "--no-defaults",
                &format!("--datadir={}", data.display()),
                "--user=root",
                "--skip-test-db",
                &tmpdir,
            ],
            dir,
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let path = |name: &str| dir.join(name).display().to_string();
        let child = Command::new("/usr/sbin/mariadbd")
            .args([
                "--no-defaults".to_owned(),
                format!("--datadir={}", data.display()),
                "--user=root".to_owned(),
                format!("--port={port}"),
                "--bind-address=127.0.0.1".to_owned(),
                format!("--socket={}", path("mysqld.sock")),
                format!("--pid-file={}", path("mysqld.pid")),
                format!("--log-error={}", path("error.log")),
                // Any user gets in: the test is about the TLS handshake, not accounts.
                "--skip-grant-tables".to_owned(),
                tmpdir,
                format!("--ssl-ca={}", path("ca.crt")),
                format!("--ssl-cert={}", path("server.crt")),
                format!("--ssl-key={}", path("server.key")),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mariadbd");
        let server = Self {
            child,
            dir: dir.to_owned(),
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "mariadbd did not start: {}",
                std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn project(server: &Server, host: &str, ca: &str) -> Project {
    let url = format!(
        "mysql://root:{CANARY}@{host}:{}/shop?ssl-ca={}/{ca}",
        server.port,
        server.dir.display()
    );
    Project::new(&crate::mysql::project_toml(&url, "tls = \"verify-full\""))
}

#[test]
fn mysql_verify_full_against_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    crate::mysql::execute(
        &format!("mysql://root@127.0.0.1:{}/mysql", server.port),
        "CREATE DATABASE shop;
         CREATE TABLE shop.things (id bigint PRIMARY KEY, name varchar(20), updated_at datetime(6) NOT NULL);
         INSERT INTO shop.things VALUES (1, 'one', now()), (2, 'zwei', now()), (3, NULL, now())",
    );
    let good = project(&server, "localhost", "ca.crt");
    let check = good.elt(&["check", "--connection", "my"]).expect_code(0);
    assert!(
        check.stdout().contains("tls verify-full"),
        "{}",
        check.stdout()
    );
    let sync = good
        .elt(&["sync", "--connection", "my", "--json"])
        .expect_code(0);
    assert_eq!(
        crate::common::stream(&sync.json(), "shop.things")["rows_loaded"],
        3
    );
    let outputs = check.stdout() + &check.stderr() + &sync.stdout() + &sync.stderr();
    assert!(!outputs.contains(CANARY), "{outputs}");
    for (host, ca, cause) in [
        ("localhost", "other.crt", "UnknownIssuer"),
        ("127.0.0.1", "ca.crt", "not valid for name"),
    ] {
        assert_refused(&project(&server, host, ca), "my", cause, CANARY);
    }
}
