//! Against a broker that requires SASL (a tansu of the test's own, with
//! `--authentication`): a client without `sasl` is told to set it, and a wrong login is a
//! config error that says SASL refused it, within `timeout_secs`, without the password.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::Project;

/// A tansu broker requiring authentication on a free port; killed when dropped.
struct AuthBroker {
    child: Child,
    port: u16,
}

impl AuthBroker {
    fn start() -> Self {
        let tools = std::env::var("ELT_TOOLS_DIR").unwrap_or_else(|_| "/var/tmp/elt-tools".into());
        let bin = format!("{tools}/tansu-0.6.0/bin/tansu");
        assert!(
            std::path::Path::new(&bin).exists(),
            "{bin} is missing; install it with scripts/kafka.sh start"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(bin)
            .args([
                "broker",
                "--storage-engine",
                "memory://tansu/",
                "--authentication",
            ])
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tansu");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "tansu did not come up"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, port }
    }
}

impl Drop for AuthBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn project(port: u16, sasl: &str) -> Project {
    Project::new(&format!(
        "[sources.bus]\ntype = \"kafka\"\nbootstrap_servers = [\"127.0.0.1:{port}\"]\n\
         topics = [\"t\"]\ntimeout_secs = 3\n{sasl}\n\n\
         [destinations.local]\ntype = \"duckdb\"\npath = \"data/demo.duckdb\"\n\n\
         [connections.k]\nsource = \"bus\"\ndestination = \"local\"\n"
    ))
}

#[test]
fn a_broker_that_requires_a_login_gets_clear_config_errors() {
    let broker = AuthBroker::start();
    let without = project(broker.port, "").elt(&["sync", "--connection", "k"]);
    assert_eq!(without.code(), 2, "a config error: {}", without.stderr());
    assert!(
        without.stderr().contains("set `sasl`"),
        "{}",
        without.stderr()
    );

    let sasl = "sasl = { mechanism = \"scram-sha-256\", username = \"nobody\", password = \"wrong-pw-4711\" }";
    let started = Instant::now();
    let wrong = project(broker.port, sasl).elt(&["sync", "--connection", "k"]);
    let stderr = wrong.stderr();
    // Exit code 2 below shows it was not retried as transient (that ends with 1); this
    // bound only catches a hang, with room for a machine busy with other tests (15 s was
    // seen to fail under load).
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(wrong.code(), 2, "a config error, not retried: {stderr}");
    assert!(stderr.contains("Sasl handshake failed"), "{stderr}");
    assert!(
        !stderr.contains("wrong-pw-4711"),
        "the password leaked: {stderr}"
    );
}
