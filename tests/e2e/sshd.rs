//! A real OpenSSH server for the tunnel tests: Debian's `sshd` on a free loopback port,
//! with its own host key and an authorized client key in a temporary directory, stopped
//! when dropped. It refuses to start loudly when openssh-server is not installed
//! (`make test` installs it through `scripts/test-services.sh`).

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SSHD: &str = "/usr/sbin/sshd";

/// A running sshd.
pub struct Sshd {
    child: Child,
    dir: tempfile::TempDir,
    pub port: u16,
}

/// `ssh-keygen -t ed25519 -f DIR/NAME` with `passphrase`.
pub fn keygen(dir: &Path, name: &str, passphrase: &str) -> PathBuf {
    let path = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args([
            "-q", "-t", "ed25519", "-C", "elt-test", "-N", passphrase, "-f",
        ])
        .arg(&path)
        .output()
        .expect("ssh-keygen (openssh-client) is needed for the SSH tests");
    assert!(
        out.status.success(),
        "ssh-keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The user the tests log in as: the one running them.
pub fn user() -> String {
    let out = Command::new("id").arg("-un").output().expect("id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

impl Sshd {
    /// Starts sshd accepting `authorized` (a public key file) for the current user.
    pub fn start(authorized: &Path) -> Self {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing: install Debian's openssh-server (scripts/test-services.sh does)"
        );
        let dir = tempfile::tempdir().unwrap();
        let host_key = keygen(dir.path(), "host_key", "");
        let port = free_port();
        std::fs::create_dir_all("/run/sshd").expect("sshd's privilege separation directory");
        let config = dir.path().join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\nAuthorizedKeysFile {authorized}\n\
                 PidFile {pid}\nStrictModes no\nUsePAM no\nPermitRootLogin yes\nPasswordAuthentication yes\n\
                 KbdInteractiveAuthentication no\nAllowTcpForwarding yes\nLogLevel VERBOSE\n",
                host_key = host_key.display(),
                authorized = authorized.display(),
                pid = dir.path().join("sshd.pid").display(),
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("sshd.log")).unwrap();
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start sshd");
        let sshd = Self { child, dir, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sshd did not listen: {}",
                sshd.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        sshd
    }

    /// A known_hosts file that lists this server's host key.
    pub fn known_hosts(&self) -> PathBuf {
        let key = std::fs::read_to_string(self.dir.path().join("host_key.pub")).unwrap();
        let path = self.dir.path().join("known_hosts");
        std::fs::write(&path, format!("[127.0.0.1]:{} {key}", self.port)).unwrap();
        path
    }

    /// The host key's fingerprint as `ssh-keygen -lf` prints it (`SHA256:...`).
    pub fn fingerprint(&self) -> String {
        let out = Command::new("ssh-keygen")
            .arg("-lf")
            .arg(self.dir.path().join("host_key.pub"))
            .output()
            .expect("ssh-keygen -lf");
        let text = String::from_utf8_lossy(&out.stdout);
        text.split_whitespace()
            .nth(1)
            .expect("a fingerprint")
            .to_owned()
    }

    /// What sshd logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// The number of SSH sessions open now (sshd forks one process per connection).
    pub fn sessions(&self) -> usize {
        let out = Command::new("pgrep")
            .args(["-P", &self.child.id().to_string()])
            .output()
            .expect("pgrep");
        String::from_utf8_lossy(&out.stdout).lines().count()
    }

    /// Waits up to 5 s for every session to end; the count left.
    pub fn sessions_after_close(&self) -> usize {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let open = self.sessions();
            if open == 0 || Instant::now() > deadline {
                return open;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
