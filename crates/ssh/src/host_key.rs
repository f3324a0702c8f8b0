//! The SSH client handler: accepts the server only if its host key is in known_hosts (or
//! equals the pinned fingerprint), and says why not otherwise. Nothing else of the session.

use russh::client::Handler;
use russh::keys::{HashAlg, PublicKeyOrCertificate, check_known_hosts_path};

use crate::config::HostKeyCheck;

/// Why the SSH session failed: the protocol, or a host key elt refused.
#[derive(Debug)]
pub(crate) enum SessionError {
    Ssh(russh::Error),
    HostKey(String),
}

impl From<russh::Error> for SessionError {
    fn from(err: russh::Error) -> Self {
        Self::Ssh(err)
    }
}

/// Verifies the host key of `host:port` as the config says.
pub(crate) struct Verifier {
    pub host: String,
    pub port: u16,
    pub check: HostKeyCheck,
}

impl Handler for Verifier {
    type Error = SessionError;

    async fn check_server_key(
        &mut self,
        offered: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key = offered.public_key();
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        let server = format!("{}:{}", self.host, self.port);
        let algorithm = key.algorithm().to_string();
        match &self.check {
            HostKeyCheck::Fingerprint(pinned) if *pinned == fingerprint => Ok(true),
            HostKeyCheck::Fingerprint(pinned) => Err(SessionError::HostKey(format!(
                "the SSH server {server} offered host key {fingerprint} ({algorithm}), not the pinned `ssh.host_key_fingerprint` {pinned}: \
                 refusing to connect (if the server's key really changed, check the new one out of band and update the option)"
            ))),
            HostKeyCheck::KnownHosts(path) => {
                match check_known_hosts_path(&self.host, self.port, &key, path) {
                    Ok(true) => Ok(true),
                    Ok(false) => Err(SessionError::HostKey(format!(
                        "the SSH server {server} offered host key {fingerprint} ({algorithm}), which is not in {path}{missing} (`ssh.known_hosts_path`): \
                         check it out of band, then add it (ssh-keyscan -p {port} {host} >> {path}) or pin it with `ssh.host_key_fingerprint`",
                        port = self.port,
                        host = self.host,
                        missing = if std::path::Path::new(path).exists() {
                            ""
                        } else {
                            " (no such file)"
                        },
                    ))),
                    Err(russh::keys::Error::KeyChanged { line }) => {
                        Err(SessionError::HostKey(format!(
                            "the SSH host key of {server} CHANGED: it offered {fingerprint} ({algorithm}), but line {line} of {path} lists another key. \
                         Someone may be intercepting the connection; refusing. If the server was rebuilt, check its new key out of band and replace that line"
                        )))
                    }
                    Err(err) => Err(SessionError::HostKey(format!(
                        "cannot read the known_hosts file {path} (`ssh.known_hosts_path`): {err}"
                    ))),
                }
            }
        }
    }
}
