//! SSH tunnels through a real sshd on loopback (`sshd.rs`): the PostgreSQL source and
//! destination and the MariaDB source through the tunnel equal direct syncs; an unknown or
//! changed host key fails before any data moves; the SSH session is gone after the run and
//! after SIGTERM; no key, passphrase or password shows in any output or table.

use std::path::PathBuf;
use std::process::Command;

use crate::common::{Project, stream};
use crate::sshd::{Sshd, keygen, user};
use crate::{mysql, pg, pg_destination};

/// An sshd that accepts one client key.
struct Bastion {
    sshd: Sshd,
    keys: tempfile::TempDir,
    key: PathBuf,
}

fn bastion(passphrase: &str) -> Bastion {
    let keys = tempfile::tempdir().unwrap();
    let key = keygen(keys.path(), "id_ed25519", passphrase);
    let sshd = Sshd::start(&key.with_extension("pub"));
    Bastion { sshd, keys, key }
}

impl Bastion {
    /// The `ssh = {...}` line with a key file and `known_hosts`; `login` replaces the key.
    fn option(&self, login: Option<&str>, known_hosts: &std::path::Path) -> String {
        let key = format!("private_key_path = \"{}\"", self.key.display());
        format!(
            "ssh = {{ host = \"127.0.0.1\", port = {}, user = \"{}\", {}, known_hosts_path = \"{}\" }}",
            self.sshd.port,
            user(),
            login.unwrap_or(&key),
            known_hosts.display()
        )
    }

    fn trusted(&self) -> String {
        self.option(None, &self.sshd.known_hosts())
    }
}

const ITEMS: &str = "
CREATE TABLE items (id bigint PRIMARY KEY, name text, price numeric(12,2), tags text[], updated_at timestamptz NOT NULL);
INSERT INTO items SELECT g, 'ü-' || g, g * 1.25, ARRAY['a', g::text], '2024-01-01'::timestamptz + g * interval '1 minute'
  FROM generate_series(1, 20000) g;
INSERT INTO items VALUES (0, NULL, NULL, NULL, '2023-01-01')";

#[test]
fn postgres_source_and_destination_through_sshd_equal_direct_syncs() {
    let bastion = bastion("");
    let url = pg::fresh_database("ssh_source");
    pg::execute(&url, ITEMS);
    let direct = Project::new(&pg::project_toml(&url, "", ""));
    direct.elt(&["sync", "--connection", "pg"]).expect_code(0);
    let tunneled = Project::new(&pg::project_toml(&url, &bastion.trusted(), ""));
    let summary = tunneled
        .elt(&["sync", "--connection", "pg", "--json"])
        .expect_code(0)
        .json();
    // The connection kept from discovery is still usable: one tunnel serves the whole run.
    assert_eq!(stream(&summary, "public.items")["attempts"], 1, "{summary}");
    assert_eq!(
        tunneled.table_digest("public_items"),
        direct.table_digest("public_items")
    );
    assert!(tunneled.table_digest("public_items").starts_with("20001:"));
    assert!(
        bastion.sshd.log().contains("Accepted publickey"),
        "{}",
        bastion.sshd.log()
    );
    assert_eq!(
        bastion.sshd.sessions_after_close(),
        0,
        "the tunnel outlived the run"
    );

    let direct_url = pg::fresh_database("ssh_dest_direct");
    let tunneled_url = pg::fresh_database("ssh_dest_tunneled");
    let into = |url: &str, ssh: &str| {
        pg_destination::sample_to_pg(url, 3_000, 500, 0)
            .replace("lease_secs = 1\n", &format!("lease_secs = 1\n{ssh}\n"))
    };
    Project::new(&into(&direct_url, ""))
        .elt(&["sync", "--connection", "merge"])
        .expect_code(0);
    Project::new(&into(&tunneled_url, &bastion.trusted()))
        .elt(&["sync", "--connection", "merge"])
        .expect_code(0);
    for table in ["merge.orders", "merge.customers"] {
        assert_eq!(
            pg_destination::digest(&tunneled_url, table),
            pg_destination::digest(&direct_url, table),
            "{table}"
        );
    }
    assert_eq!(bastion.sshd.sessions_after_close(), 0);
}

#[test]
fn mariadb_through_sshd_equals_a_direct_sync() {
    let bastion = bastion("");
    let url = mysql::fresh_database("ssh_source");
    mysql::execute(
        &url,
        "SET SESSION max_recursive_iterations = 10000;
         CREATE TABLE items (id bigint PRIMARY KEY, name varchar(40), price decimal(12,2), seen datetime(6));
         INSERT INTO items WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 5000)
           SELECT n, concat('ü-', n), n * 1.25, '2024-01-01' + INTERVAL n MINUTE FROM g;
         INSERT INTO items VALUES (0, NULL, NULL, NULL)",
    );
    let direct = Project::new(&mysql::project_toml(&url, ""));
    direct.elt(&["sync", "--connection", "my"]).expect_code(0);
    let tunneled = Project::new(&mysql::project_toml(&url, &bastion.trusted()));
    tunneled.elt(&["sync", "--connection", "my"]).expect_code(0);
    assert_eq!(
        tunneled.table_digest("elt_ssh_source_items"),
        direct.table_digest("elt_ssh_source_items")
    );
    assert!(
        tunneled
            .table_digest("elt_ssh_source_items")
            .starts_with("5001:")
    );
    assert!(bastion.sshd.log().contains("Accepted publickey"));
    assert_eq!(
        bastion.sshd.sessions_after_close(),
        0,
        "the tunnel outlived the run"
    );
}

#[test]
fn an_unknown_or_changed_host_key_fails_before_any_data_moves() {
    let bastion = bastion("");
    let url = pg::fresh_database("ssh_host_key");
    pg::execute(&url, ITEMS);
    let other = keygen(bastion.keys.path(), "impostor", "");
    let impostor = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let changed = bastion.keys.path().join("changed_known_hosts");
    std::fs::write(
        &changed,
        format!("[127.0.0.1]:{} {impostor}", bastion.sshd.port),
    )
    .unwrap();
    let unknown = bastion.keys.path().join("empty_known_hosts");
    std::fs::write(&unknown, "").unwrap();
    for (known_hosts, expected) in [(&changed, "CHANGED"), (&unknown, "which is not in")] {
        let project = Project::new(&pg::project_toml(
            &url,
            &bastion.option(None, known_hosts),
            "",
        ));
        let out = project.elt(&["sync", "--connection", "pg"]);
        assert_ne!(out.code(), 0);
        assert!(out.stderr().contains(expected), "{}", out.stderr());
        let loaded = project.db().exists()
            && project.query(
                "SELECT count(*)::VARCHAR FROM duckdb_tables() WHERE table_name = 'public_items'",
            )[0] != "0";
        assert!(!loaded, "data moved despite the host key");
    }
    // A pinned fingerprint instead of known_hosts: a wrong one is refused, the right one works.
    let pinned = |fingerprint: &str| {
        let login = format!(
            "private_key_path = \"{}\", host_key_fingerprint = \"{fingerprint}\"",
            bastion.key.display()
        );
        let option = format!(
            "ssh = {{ host = \"127.0.0.1\", port = {}, user = \"{}\", {login} }}",
            bastion.sshd.port,
            user()
        );
        Project::new(&pg::project_toml(&url, &option, ""))
    };
    let wrong = pinned("SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    let out = wrong.elt(&["sync", "--connection", "pg"]);
    assert!(out.stderr().contains("not the pinned"), "{}", out.stderr());
    assert!(
        !bastion.sshd.log().contains("Accepted publickey"),
        "logged in despite the host key"
    );
    let right = pinned(&bastion.sshd.fingerprint());
    right.elt(&["sync", "--connection", "pg"]).expect_code(0);
    assert!(right.table_digest("public_items").starts_with("20001:"));
}

#[test]
fn sigterm_mid_sync_closes_the_ssh_session() {
    let bastion = bastion("");
    let url = pg::fresh_database("ssh_sigterm");
    pg::execute(&url, ITEMS);
    let project = Project::new(&pg::project_toml(
        &url,
        &format!("batch_rows = 1000\n{}", bastion.trusted()),
        "",
    ));
    let mut child = project.spawn_until(
        &["sync", "--connection", "pg"],
        "duckdb.before_commit:1:pause",
    );
    assert!(
        bastion.sshd.sessions() >= 1,
        "no SSH session while the sync reads"
    );
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    child.wait().unwrap();
    assert_eq!(
        bastion.sshd.sessions_after_close(),
        0,
        "the tunnel outlived SIGTERM"
    );
}

#[test]
fn ssh_keys_passphrases_and_passwords_never_show() {
    let passphrase = "ssh-canary-passphrase-7d1e";
    let bastion = bastion(passphrase);
    let key_text = std::fs::read_to_string(&bastion.key).unwrap();
    let key_line = key_text.lines().nth(1).unwrap().to_owned();
    let url = pg::fresh_database("ssh_canary");
    pg::execute(&url, ITEMS);
    let login = "private_key = \"${SSH_KEY}\", private_key_passphrase = \"${SSH_PASSPHRASE}\"";
    let known_hosts = bastion.sshd.known_hosts();
    let project = Project::new(&pg::project_toml(
        &url,
        &bastion.option(Some(login), &known_hosts),
        "",
    ));
    let env = [
        ("SSH_KEY", key_text.as_str()),
        ("SSH_PASSPHRASE", passphrase),
    ];
    let mut outputs = String::new();
    for args in [
        vec!["check", "--connection", "pg"],
        vec!["sync", "--connection", "pg", "--json"],
        vec!["runs", "--connection", "pg", "--json"],
        vec!["state", "show", "--connection", "pg"],
    ] {
        let run = project.elt_with_env(&args, &env).expect_code(0);
        outputs.push_str(&run.stdout());
        outputs.push_str(&run.stderr());
    }
    assert!(project.table_digest("public_items").starts_with("20001:"));
    assert!(outputs.contains(", via ssh "), "{outputs}");
    // A wrong passphrase and a refused password say so without the secret.
    let wrong = [
        ("SSH_KEY", key_text.as_str()),
        ("SSH_PASSPHRASE", "ssh-canary-wrong-91ab"),
    ];
    let run = project.elt_with_env(&["sync", "--connection", "pg"], &wrong);
    assert!(
        run.stderr().contains("private_key_passphrase"),
        "{}",
        run.stderr()
    );
    outputs.push_str(&run.stderr());
    let password = "ssh-canary-password-3f2a";
    let login = "password = \"${SSH_PW}\"";
    project.write_config(&pg::project_toml(
        &url,
        &bastion.option(Some(login), &known_hosts),
        "",
    ));
    let run = project.elt_with_env(&["sync", "--connection", "pg"], &[("SSH_PW", password)]);
    assert!(
        run.stderr().contains("refused the password"),
        "{}",
        run.stderr()
    );
    outputs.push_str(&run.stdout());
    outputs.push_str(&run.stderr());
    let stored = std::fs::read(project.db()).unwrap();
    for canary in [
        passphrase,
        "ssh-canary-wrong-91ab",
        password,
        key_line.as_str(),
    ] {
        assert!(!outputs.contains(canary), "{canary} printed: {outputs}");
        let bytes = canary.as_bytes();
        assert!(
            !stored.windows(bytes.len()).any(|w| w == bytes),
            "{canary} stored"
        );
    }
}
