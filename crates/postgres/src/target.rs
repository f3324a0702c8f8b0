//! PostgreSQL connection plumbing: the TLS mode (the rule in [`elt_core::tls`]), a
//! connection target built from a secret URL (reached through an SSH tunnel when `ssh` is
//! set), and the classification of sqlx errors into elt's error kinds with the URL's
//! secret scrubbed. It runs no queries of its own.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};
use sqlx::{ConnectOptions, Connection};

use elt_core::secret::Revealed;
pub use elt_core::sql::TlsMode;
use elt_core::{Error, ErrorKind, Result, Secret, tls};
use elt_ssh::LazyTunnel;
pub use elt_ssh::SshConfig;

/// A resolved connection target; prints as `host:port/database as user`.
pub struct Target {
    options: PgConnectOptions,
    url: Revealed,
    tls: TlsMode,
    timeout: Duration,
    tunnel: LazyTunnel,
}

impl Target {
    /// Resolves the URL secret and applies the TLS mode (the URL's `sslmode` when `None`);
    /// with `ssh`, connections go through a tunnel opened at the first [`Target::connect`].
    pub fn new(
        url: &Secret,
        tls: Option<TlsMode>,
        connect_timeout_secs: u64,
        ssh: Option<&SshConfig>,
    ) -> Result<Self> {
        let url = url
            .resolve()
            .map_err(|e| Error::config(format!("`url`: {}", e.message())))?;
        let scheme = url.expose().split_once("://").map(|(s, _)| s);
        if !matches!(scheme, Some("postgres" | "postgresql")) {
            return Err(Error::config(
                "`url` is not a PostgreSQL URL: it must start with postgres:// (postgres://user:${PG_PASSWORD}@host:5432/database)",
            ));
        }
        let mut options = PgConnectOptions::from_str(url.expose()).map_err(|e| {
            Error::config(format!(
                "`url` is not a valid PostgreSQL URL: {}",
                url.redact(&e.to_string())
            ))
        })?;
        let (url_sets_mode, in_url) = tls::url_facts(url.expose(), "sslmode");
        let configured = tls.or(url_sets_mode.then(|| match options.get_ssl_mode() {
            PgSslMode::Disable => TlsMode::Disable,
            PgSslMode::Allow | PgSslMode::Prefer => TlsMode::Prefer,
            PgSslMode::Require => TlsMode::Require,
            PgSslMode::VerifyCa => TlsMode::VerifyCa,
            PgSslMode::VerifyFull => TlsMode::VerifyFull,
        }));
        let endpoint = tls::Endpoint {
            // Through a tunnel the driver connects to a loopback port.
            host: if ssh.is_some() {
                "127.0.0.1"
            } else {
                options.get_host()
            },
            socket: options.get_socket().is_some(),
            // The driver also takes the password from the environment.
            password: in_url || std::env::var_os("PGPASSWORD").is_some(),
        };
        let tls = tls::effective_mode(configured, &endpoint).map_err(|e| {
            Error::config(format!(
                "{} (PostgreSQL at {})",
                e.message(),
                options.get_host()
            ))
        })?;
        if let Some(ssh) = ssh {
            tls::check_tunnel(tls, endpoint.socket)?;
            ssh.validate()?;
        }
        options = options.ssl_mode(match tls {
            TlsMode::Disable => PgSslMode::Disable,
            TlsMode::Prefer => PgSslMode::Prefer,
            TlsMode::Require => PgSslMode::Require,
            TlsMode::VerifyCa => PgSslMode::VerifyCa,
            TlsMode::VerifyFull => PgSslMode::VerifyFull,
        });
        options = options
            .application_name("elt")
            .log_statements(tracing::log::LevelFilter::Debug);
        Ok(Self {
            options,
            url,
            tls,
            timeout: Duration::from_secs(connect_timeout_secs),
            tunnel: LazyTunnel::new(ssh),
        })
    }

    /// Where it connects, without the password, and with which TLS mode.
    pub fn describe(&self) -> String {
        format!(
            "{}:{}/{} as {} (tls {}{})",
            self.options.get_host(),
            self.options.get_port(),
            self.options.get_database().unwrap_or("(default database)"),
            self.options.get_username(),
            tls::name(self.tls),
            self.tunnel.describe()
        )
    }

    /// A note for the run summary when `tls = "prefer"` ended up without TLS on `conn`
    /// (the server offered none); None when TLS is in use or the mode never falls back.
    pub async fn plaintext_fallback(&self, conn: &mut PgConnection) -> Result<Option<String>> {
        if self.tls != TlsMode::Prefer {
            return Ok(None);
        }
        let ssl: Option<bool> =
            sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                .fetch_optional(&mut *conn)
                .await
                .map_err(|e| self.error("checking whether the connection uses TLS", e))?;
        Ok((ssl != Some(true)).then(|| tls::fallback_note(&self.describe())))
    }

    /// Opens a connection.
    pub async fn connect(&self) -> Result<PgConnection> {
        let (host, port) = (self.options.get_host(), self.options.get_port());
        let tunneled = (self.tunnel)
            .route(host, port, |h, p| self.options.clone().host(h).port(p))
            .await?;
        let options = tunneled.as_ref().unwrap_or(&self.options);
        let connecting = PgConnection::connect_with(options);
        match tokio::time::timeout(self.timeout, connecting).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(self.error(
                &format!("cannot connect to PostgreSQL at {}", self.describe()),
                e,
            )),
            Err(_) => Err(Error::transient(format!(
                "timed out after {}s connecting to PostgreSQL at {} (`connect_timeout_secs`)",
                self.timeout.as_secs(),
                self.describe()
            ))),
        }
    }

    /// Classifies a sqlx error: network faults and conflicts are transient, bad
    /// credentials and databases are config errors, the rest permanent. The message is
    /// scrubbed of the URL's secret.
    pub fn error(&self, doing: &str, err: sqlx::Error) -> Error {
        let tls_failure = matches!(&err, sqlx::Error::Io(io) if tls::is_tls_failure(io));
        let kind = match &err {
            _ if tls_failure => ErrorKind::Config,
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::WorkerCrashed => {
                ErrorKind::Transient
            }
            sqlx::Error::Tls(_) | sqlx::Error::Configuration(_) => ErrorKind::Config,
            sqlx::Error::Database(db) => match db.code().as_deref().unwrap_or("") {
                // invalid authorization, invalid password, unknown database
                code if code.starts_with("28") || code == "3D000" => ErrorKind::Config,
                // connection exceptions, serialization failures, admin shutdown, too many connections
                code if code.starts_with("08")
                    || code.starts_with("40")
                    || code.starts_with("57P")
                    || code == "53300" =>
                {
                    ErrorKind::Transient
                }
                _ => ErrorKind::Permanent,
            },
            _ => ErrorKind::Permanent,
        };
        let detail = match &err {
            sqlx::Error::Database(db) => format!(
                "{} (SQLSTATE {})",
                db.message(),
                db.code().unwrap_or_default()
            ),
            other => other.to_string(),
        };
        let hint = if tls_failure || matches!(err, sqlx::Error::Tls(_)) {
            tls::hint(self.tls)
        } else {
            String::new()
        };
        Error::new(kind, format!("{doing}: {}{hint}", self.url.redact(&detail)))
    }
}
