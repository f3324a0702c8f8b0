//! The `ssh` option: where the SSH server is, who logs in and how, and how its host key is
//! verified. Validation only; connecting is [`crate::Tunnel`]'s job.

use elt_core::{Error, Result, Secret};
use schemars::JsonSchema;
use serde::Deserialize;

/// An SSH jump host the connector reaches its database through.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SshConfig {
    /// The SSH server (bastion) to connect to.
    pub host: String,
    /// Its port.
    #[serde(default = "default_port")]
    pub port: u16,
    /// The user to log in as.
    pub user: String,
    /// A private key file (OpenSSH or PEM format).
    #[serde(default)]
    pub private_key_path: Option<String>,
    /// A private key's text, as a secret (`${SSH_PRIVATE_KEY}`).
    #[serde(default)]
    pub private_key: Option<Secret>,
    /// The passphrase of an encrypted private key, as a secret.
    #[serde(default)]
    pub private_key_passphrase: Option<Secret>,
    /// A password, as a secret, for servers that allow password logins.
    #[serde(default)]
    pub password: Option<Secret>,
    /// The known_hosts file the server's host key must be listed in; `~/.ssh/known_hosts`
    /// when neither this nor `host_key_fingerprint` is set.
    #[serde(default)]
    pub known_hosts_path: Option<String>,
    /// The server's host key fingerprint as `ssh-keygen -lf` prints it (`SHA256:...`),
    /// instead of a known_hosts file.
    #[serde(default)]
    pub host_key_fingerprint: Option<String>,
    /// Seconds to wait for the SSH server.
    #[serde(default = "default_connect_timeout_secs")]
    pub connect_timeout_secs: u64,
}

fn default_port() -> u16 {
    22
}
fn default_connect_timeout_secs() -> u64 {
    10
}

/// How the tunnel logs in.
pub(crate) enum Login<'a> {
    Key(KeySource<'a>),
    Password(&'a Secret),
}

/// Where a private key comes from.
pub(crate) enum KeySource<'a> {
    File(&'a str),
    Text(&'a Secret),
}

/// How the host key is verified.
pub(crate) enum HostKeyCheck {
    KnownHosts(String),
    Fingerprint(String),
}

impl SshConfig {
    /// `, via ssh user@host:port`, for a connector's `describe`.
    pub fn describe(&self) -> String {
        format!(", via ssh {}@{}:{}", self.user, self.host, self.port)
    }

    /// Checks that exactly one login method and at most one host key check are set.
    pub fn validate(&self) -> Result<()> {
        self.login()?;
        self.host_key_check()?;
        if self.host.trim().is_empty() || self.user.trim().is_empty() {
            return Err(Error::config("`ssh.host` and `ssh.user` must not be empty"));
        }
        if self.connect_timeout_secs == 0 {
            return Err(Error::config(
                "`ssh.connect_timeout_secs` must be at least 1",
            ));
        }
        elt_core::bounds::check_secs("ssh.connect_timeout_secs", self.connect_timeout_secs)?;
        if self.private_key_passphrase.is_some() && self.password.is_some() {
            return Err(Error::config(
                "`ssh.private_key_passphrase` unlocks a private key; it cannot go with `ssh.password`",
            ));
        }
        Ok(())
    }

    pub(crate) fn login(&self) -> Result<Login<'_>> {
        match (&self.private_key_path, &self.private_key, &self.password) {
            (Some(path), None, None) => Ok(Login::Key(KeySource::File(path))),
            (None, Some(key), None) => Ok(Login::Key(KeySource::Text(key))),
            (None, None, Some(password)) => Ok(Login::Password(password)),
            _ => Err(Error::config(
                "`ssh` needs exactly one of `private_key_path`, `private_key` (a secret) or `password` (a secret)",
            )),
        }
    }

    pub(crate) fn host_key_check(&self) -> Result<HostKeyCheck> {
        match (&self.known_hosts_path, &self.host_key_fingerprint) {
            (Some(_), Some(_)) => Err(Error::config(
                "`ssh` takes `known_hosts_path` or `host_key_fingerprint`, not both",
            )),
            (None, Some(fingerprint)) if !fingerprint.starts_with("SHA256:") => {
                Err(Error::config(format!(
                    "`ssh.host_key_fingerprint` is {fingerprint:?}; expected the SHA256 form `ssh-keygen -lf` prints (SHA256:...)"
                )))
            }
            (None, Some(fingerprint)) => Ok(HostKeyCheck::Fingerprint(fingerprint.clone())),
            (Some(path), None) => Ok(HostKeyCheck::KnownHosts(path.clone())),
            (None, None) => {
                let home = std::env::var("HOME").map_err(|_| {
                    Error::config(
                        "`ssh` needs `known_hosts_path` or `host_key_fingerprint` (HOME is not set, so ~/.ssh/known_hosts cannot be used)",
                    )
                })?;
                Ok(HostKeyCheck::KnownHosts(format!("{home}/.ssh/known_hosts")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Result<SshConfig> {
        let text = format!("host = \"bastion\"\nuser = \"etl\"\n{extra}");
        let config: SshConfig = toml::from_str(&text).map_err(|e| Error::config(e.to_string()))?;
        config.validate().map(|()| config)
    }

    #[test]
    fn exactly_one_login_method() {
        assert!(config("private_key_path = \"/k\"").is_ok());
        assert!(config("password = \"p\"").is_ok());
        let none = config("").unwrap_err();
        assert!(none.message().contains("exactly one of"), "{none}");
        let two = config("private_key_path = \"/k\"\npassword = \"p\"").unwrap_err();
        assert!(two.message().contains("exactly one of"), "{two}");
    }

    #[test]
    fn host_key_check_is_one_of_two_and_a_fingerprint_is_sha256() {
        let both = config(
            "password = \"p\"\nknown_hosts_path = \"/kh\"\nhost_key_fingerprint = \"SHA256:x\"",
        )
        .unwrap_err();
        assert!(both.message().contains("not both"), "{both}");
        let md5 = config("password = \"p\"\nhost_key_fingerprint = \"MD5:aa\"").unwrap_err();
        assert!(md5.message().contains("SHA256"), "{md5}");
    }
}
