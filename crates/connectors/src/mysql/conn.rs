//! Connecting: a target built from the secret URL and the TLS mode (through an SSH tunnel
//! when `ssh` is set), every session set up the same way (UTC, utf8mb4, the stall
//! timeout), and sqlx errors classified into elt's kinds with the URL's secret scrubbed.

use std::str::FromStr;
use std::time::Duration;

use elt_core::secret::Revealed;
use elt_core::sql::TlsMode;
use elt_core::{Error, ErrorKind, Result, tls};
use elt_ssh::LazyTunnel;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlDatabaseError, MySqlSslMode};
use sqlx::{ConnectOptions, Connection, Executor};

use super::config::MysqlConfig;

/// The connection kept between the calls of a run.
pub type IdleConnection = elt_core::sql::IdleConnection<MySqlConnection>;

/// A resolved connection target; prints as `host:port/database as user`.
pub struct Target {
    options: MySqlConnectOptions,
    url: Revealed,
    tls: TlsMode,
    timeout: Duration,
    stall_timeout_secs: u64,
    tunnel: LazyTunnel,
}

impl Target {
    /// Resolves the URL secret and applies the options; no I/O.
    pub fn new(config: &MysqlConfig) -> Result<Self> {
        let url = config
            .url
            .resolve()
            .map_err(|e| Error::config(format!("`url`: {}", e.message())))?;
        let scheme = url.expose().split_once("://").map(|(s, _)| s);
        if !matches!(scheme, Some("mysql" | "mariadb")) {
            return Err(Error::config(
                "`url` is not a MySQL URL: it must start with mysql:// or mariadb:// (mysql://user:${MYSQL_PASSWORD}@host:3306/database)",
            ));
        }
        let mut options = MySqlConnectOptions::from_str(url.expose()).map_err(|e| {
            Error::config(format!(
                "`url` is not a valid MySQL URL (mysql://user:password@host:3306/database): {}",
                url.redact(&e.to_string())
            ))
        })?;
        let (url_sets_mode, password) = tls::url_facts(url.expose(), "ssl-mode");
        let configured = config
            .tls
            .or(url_sets_mode.then(|| match options.get_ssl_mode() {
                MySqlSslMode::Disabled => TlsMode::Disable,
                MySqlSslMode::Preferred => TlsMode::Prefer,
                MySqlSslMode::Required => TlsMode::Require,
                MySqlSslMode::VerifyCa => TlsMode::VerifyCa,
                MySqlSslMode::VerifyIdentity => TlsMode::VerifyFull,
            }));
        let endpoint = tls::Endpoint {
            // Through a tunnel the driver connects to a loopback port.
            host: if config.ssh.is_some() {
                "127.0.0.1"
            } else {
                options.get_host()
            },
            socket: options.get_socket().is_some(),
            password,
        };
        let tls = tls::effective_mode(configured, &endpoint).map_err(|e| {
            Error::config(format!("{} (MySQL at {})", e.message(), options.get_host()))
        })?;
        if let Some(ssh) = &config.ssh {
            tls::check_tunnel(tls, endpoint.socket)?;
            ssh.validate()?;
        }
        options = options.ssl_mode(match tls {
            TlsMode::Disable => MySqlSslMode::Disabled,
            TlsMode::Prefer => MySqlSslMode::Preferred,
            TlsMode::Require => MySqlSslMode::Required,
            TlsMode::VerifyCa => MySqlSslMode::VerifyCa,
            TlsMode::VerifyFull => MySqlSslMode::VerifyIdentity,
        });
        options = options
            .charset("utf8mb4")
            .timezone(Some("+00:00".to_owned()))
            .log_statements(tracing::log::LevelFilter::Debug);
        Ok(Self {
            options,
            url,
            tls,
            timeout: Duration::from_secs(config.connect_timeout_secs),
            stall_timeout_secs: config.stall_timeout_secs,
            tunnel: LazyTunnel::new(config.ssh.as_ref()),
        })
    }

    /// The URL's database, if it names one.
    pub fn database(&self) -> Option<&str> {
        self.options.get_database()
    }

    /// Where it connects, without the password.
    pub fn describe(&self) -> String {
        format!(
            "{}:{}/{} as {} (tls {}{})",
            self.options.get_host(),
            self.options.get_port(),
            self.database().unwrap_or("(no database)"),
            self.options.get_username(),
            tls::name(self.tls),
            self.tunnel.describe()
        )
    }

    /// Opens a connection and sets up its session.
    pub async fn connect(&self) -> Result<MySqlConnection> {
        let (host, port) = (self.options.get_host(), self.options.get_port());
        let tunneled = (self.tunnel)
            .route(host, port, |h, p| self.options.clone().host(h).port(p))
            .await?;
        let options = tunneled.as_ref().unwrap_or(&self.options);
        let connecting = MySqlConnection::connect_with(options);
        let mut conn = match tokio::time::timeout(self.timeout, connecting).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => {
                return Err(self.error(
                    &format!("cannot connect to MySQL at {}", self.describe()),
                    e,
                ));
            }
            Err(_) => {
                return Err(Error::transient(format!(
                    "timed out after {}s connecting to MySQL at {} (`connect_timeout_secs`)",
                    self.timeout.as_secs(),
                    self.describe()
                )));
            }
        };
        // An integer from the validated config, not user text.
        let stall = format!(
            "SET SESSION net_write_timeout = {}",
            self.stall_timeout_secs
        );
        for setup in [
            stall.as_str(),
            "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
        ] {
            conn.execute(setup)
                .await
                .map_err(|e| self.error("setting up the session", e))?;
        }
        Ok(conn)
    }

    /// A note for the run summary when `tls = "prefer"` ended up without TLS on `conn`
    /// (the server offered none); None when TLS is in use or the mode never falls back.
    pub async fn plaintext_fallback(&self, conn: &mut MySqlConnection) -> Result<Option<String>> {
        if self.tls != TlsMode::Prefer {
            return Ok(None);
        }
        let cipher: Option<(String, String)> =
            sqlx::query_as("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
                .fetch_optional(&mut *conn)
                .await
                .map_err(|e| self.error("checking whether the connection uses TLS", e))?;
        let plaintext = cipher.is_none_or(|(_, cipher)| cipher.is_empty());
        Ok(plaintext.then(|| tls::fallback_note(&self.describe())))
    }

    /// Classifies a sqlx error: network faults, lock timeouts, deadlocks and shutdowns are
    /// transient, bad credentials and unknown databases config errors, the rest permanent.
    /// The message is scrubbed of the URL's secret.
    pub fn error(&self, doing: &str, err: sqlx::Error) -> Error {
        let number = match &err {
            sqlx::Error::Database(db) => db
                .try_downcast_ref::<MySqlDatabaseError>()
                .map(|e| e.number()),
            _ => None,
        };
        let tls_failure = matches!(&err, sqlx::Error::Io(io) if tls::is_tls_failure(io));
        let kind = match (&err, number) {
            _ if tls_failure => ErrorKind::Config,
            (sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::WorkerCrashed, _) => {
                ErrorKind::Transient
            }
            (sqlx::Error::Tls(_) | sqlx::Error::Configuration(_), _) => ErrorKind::Config,
            // access denied (1044, 1045, 1142, 1143, 1227), unknown database (1049)
            (_, Some(1044 | 1045 | 1049 | 1142 | 1143 | 1227)) => ErrorKind::Config,
            // too many connections, shutdown, server gone or lost, lock wait timeout,
            // deadlock, connection killed, query interrupted
            (_, Some(1040 | 1053 | 1205 | 1213 | 1317 | 1927 | 2006 | 2013)) => {
                ErrorKind::Transient
            }
            _ => ErrorKind::Permanent,
        };
        let detail = match (&err, number) {
            (sqlx::Error::Database(db), Some(n)) => format!("{} (error {n})", db.message()),
            (other, _) => other.to_string(),
        };
        let hint = if tls_failure || matches!(err, sqlx::Error::Tls(_)) {
            tls::hint(self.tls)
        } else {
            String::new()
        };
        Error::new(kind, format!("{doing}: {}{hint}", self.url.redact(&detail)))
    }
}
