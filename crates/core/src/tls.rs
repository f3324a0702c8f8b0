//! Which TLS mode a database connection uses when the config does not say, and which
//! modes are refused: the rule the PostgreSQL source and destination and the MySQL source
//! share, without a driver.
//!
//! The mode is the `tls` option, else the URL's own (`sslmode`, `ssl-mode`), else the
//! default for the host: `verify-full` for any host that is not this machine, since a
//! network attacker who answers "no TLS" would otherwise get the rows and, with clear-text
//! password authentication, the password; on loopback (or a Unix socket) `prefer`, or
//! `require` when a password is set. `prefer` with a password is refused: a server (or an
//! attacker) that declines TLS and asks for the password in clear would receive it. Only
//! `tls = "disable"`, written by the user, sends a password without TLS.

use std::net::IpAddr;

use crate::error::{Error, Result};
use crate::sql::TlsMode;

/// What the TLS decision needs to know of a connection URL.
pub struct Endpoint<'a> {
    /// The host name or address (a path for a Unix socket).
    pub host: &'a str,
    /// Whether the URL names a Unix socket.
    pub socket: bool,
    /// Whether a password is set.
    pub password: bool,
}

impl Endpoint<'_> {
    /// Whether traffic to the endpoint stays on this machine.
    pub fn is_local(&self) -> bool {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        self.socket
            || host.starts_with('/')
            || host.eq_ignore_ascii_case("localhost")
            || host.parse::<IpAddr>().is_ok_and(|ip| match ip {
                IpAddr::V4(v4) => v4.is_loopback(),
                IpAddr::V6(v6) => {
                    v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
                }
            })
    }
}

/// The mode a connection uses: `configured` (the `tls` option, else the URL's), else the
/// default for `endpoint`; an error when the mode would send a password in clear.
pub fn effective_mode(configured: Option<TlsMode>, endpoint: &Endpoint<'_>) -> Result<TlsMode> {
    let mode = configured.unwrap_or(match (endpoint.is_local(), endpoint.password) {
        (false, _) => TlsMode::VerifyFull,
        (true, false) => TlsMode::Prefer,
        (true, true) => TlsMode::Require,
    });
    if mode == TlsMode::Prefer && endpoint.password {
        return Err(Error::config(
            "`tls` is `prefer`, which falls back to plaintext: a server (or an attacker) that declines TLS would receive the password in clear; \
             use `tls = \"verify-full\"` (or `require`), or `tls = \"disable\"` if plaintext is what you mean",
        ));
    }
    Ok(mode)
}

/// Whether a driver's I/O error is a TLS failure (an unknown CA, a certificate for another
/// name, a refused handshake): a config error that retrying cannot heal, unlike the
/// network faults I/O errors otherwise are.
pub fn is_tls_failure(err: &std::io::Error) -> bool {
    err.get_ref()
        .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
}

/// What to say after a TLS failure under `mode`: how to fix it without weakening it blindly.
pub fn hint(mode: TlsMode) -> String {
    format!(
        "; the connection used tls = \"{}\": give the server a certificate (signed by a CA this machine trusts, for verify-full), or set `tls` to what the server supports (\"disable\" only for a server on a network you trust)",
        name(mode)
    )
}

/// The name of `mode` as the config spells it.
pub fn name(mode: TlsMode) -> &'static str {
    match mode {
        TlsMode::Disable => "disable",
        TlsMode::Prefer => "prefer",
        TlsMode::Require => "require",
        TlsMode::VerifyCa => "verify-ca",
        TlsMode::VerifyFull => "verify-full",
    }
}

/// Whether the URL's query sets `param` (such as `sslmode`), and whether its user info
/// holds a password (or its query a `password`): what the driver's options do not tell.
pub fn url_facts(url: &str, param: &str) -> (bool, bool) {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
    let authority = before_query.split('/').next().unwrap_or("");
    let in_userinfo = authority
        .rsplit_once('@')
        .and_then(|(userinfo, _)| userinfo.split_once(':'))
        .is_some_and(|(_, password)| !password.is_empty());
    let keys: Vec<&str> = query
        .split('&')
        .map(|pair| pair.split('=').next().unwrap_or(""))
        .collect();
    (
        keys.contains(&param),
        in_userinfo || keys.contains(&"password"),
    )
}

/// What the run summary says when `prefer` connected without TLS: `endpoint` is the
/// connection as `describe` prints it (no secret).
pub fn fallback_note(endpoint: &str) -> String {
    format!(
        "{endpoint}: the server offered no TLS, so `tls = \"prefer\"` connected in plaintext; \
         set `tls = \"require\"` to refuse that"
    )
}

/// Refuses what cannot work through an SSH tunnel: a Unix socket (there is no port to
/// forward), and `verify-full`, whose host-name check would compare the certificate with
/// the tunnel's loopback address. With a tunnel, the default mode is decided for that
/// loopback address, since the SSH session encrypts the way to the bastion.
pub fn check_tunnel(mode: TlsMode, socket: bool) -> Result<()> {
    if socket {
        return Err(Error::config(
            "`ssh` tunnels a TCP port; the URL names a Unix socket: give the database's host and port as the SSH server sees them",
        ));
    }
    if mode == TlsMode::VerifyFull {
        return Err(Error::config(
            "`tls = \"verify-full\"` cannot check the server's name through an SSH tunnel (the driver connects to 127.0.0.1); \
             use `tls = \"verify-ca\"` with the CA to check the certificate, or `require`",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(host: &str, password: bool) -> Endpoint<'_> {
        Endpoint {
            host,
            socket: false,
            password,
        }
    }

    #[test]
    fn remote_hosts_verify_by_default_and_local_ones_need_tls_only_for_a_password() {
        let mode = |host, password| effective_mode(None, &at(host, password)).unwrap();
        assert_eq!(mode("db.example.com", false), TlsMode::VerifyFull);
        assert_eq!(mode("10.0.0.5", true), TlsMode::VerifyFull);
        assert_eq!(mode("::ffff:10.0.0.5", true), TlsMode::VerifyFull);
        assert_eq!(mode("127.0.0.1", false), TlsMode::Prefer);
        assert_eq!(mode("[::1]", false), TlsMode::Prefer);
        assert_eq!(mode("::ffff:127.0.0.1", false), TlsMode::Prefer);
        assert_eq!(mode("localhost", true), TlsMode::Require);
        let err = effective_mode(Some(TlsMode::Prefer), &at("127.0.0.1", true)).unwrap_err();
        assert!(err.message().contains("tls = \"disable\""), "{err}");
        assert_eq!(
            effective_mode(Some(TlsMode::Disable), &at("db.example.com", true)).unwrap(),
            TlsMode::Disable
        );
    }

    #[test]
    fn only_rustls_errors_inside_io_errors_are_tls_failures() {
        use std::io::{Error as IoError, ErrorKind};
        let tls = IoError::new(ErrorKind::InvalidData, rustls::Error::DecryptError);
        assert!(is_tls_failure(&tls));
        assert!(!is_tls_failure(&IoError::from(ErrorKind::ConnectionReset)));
        assert!(!is_tls_failure(&IoError::other("boom")));
    }

    #[test]
    fn a_tunnel_refuses_unix_sockets_and_host_name_checks() {
        assert!(check_tunnel(TlsMode::Require, false).is_ok());
        assert!(check_tunnel(TlsMode::VerifyCa, false).is_ok());
        let err = check_tunnel(TlsMode::VerifyFull, false).unwrap_err();
        assert!(err.message().contains("verify-ca"), "{err}");
        let err = check_tunnel(TlsMode::Require, true).unwrap_err();
        assert!(err.message().contains("Unix socket"), "{err}");
    }

    #[test]
    fn reads_the_mode_parameter_and_the_password_from_a_url() {
        assert_eq!(
            url_facts("postgres://u:p@h/db?sslmode=require", "sslmode"),
            (true, true)
        );
        assert_eq!(url_facts("postgres://u@h/db", "sslmode"), (false, false));
        assert_eq!(
            url_facts("postgres://u:@h/db?password=x", "sslmode"),
            (false, true)
        );
        assert_eq!(
            url_facts("mysql://root@h:3306/t?ssl-mode=DISABLED", "ssl-mode"),
            (true, false)
        );
    }
}
