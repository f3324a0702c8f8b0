//! The HTTP client of a source: every request goes through here, so every rule holds for
//! all of them.
//!
//! - Hosts: every URL passes `hosts.rs` first; redirects are followed by hand, never by
//!   reqwest, so a redirect or a `next` URL elsewhere is refused before a byte is sent and
//!   no credential (header, query key or cookie) can leave.
//! - Rate: a governor limiter spaces requests evenly (no bursts) at the configured rate.
//! - Retries: 429, 408, 5xx, timeouts, connection failures and resets, truncated bodies and
//!   bodies that are not JSON are retried with exponential backoff, or after `Retry-After`
//!   when the server sends it, within `max_retry_secs` in all; a 401 under OAuth2 renews the
//!   token once.
//! - Size: bodies are read in chunks up to `max_response_mib`, never whole on trust.
//!
//! Errors show URLs without their query strings and are scrubbed of every credential.

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use elt_core::{Error, Result, bounds};
use futures_util::StreamExt;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, LOCATION, RETRY_AFTER};
use reqwest::{StatusCode, Url};

use super::auth::Auth;
use super::config::HttpConfig;
use super::hosts::Hosts;
use super::manifest::Manifest;
use super::printable::printable;

/// A response whose body is JSON.
pub struct Page {
    /// The URL that answered (after redirects).
    pub url: Url,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body.
    pub body: serde_json::Value,
}

/// The client of one source.
pub struct Client {
    http: reqwest::Client,
    base: Url,
    headers: HeaderMap,
    auth: Auth,
    limiter: Option<DefaultDirectRateLimiter>,
    max_retry: Duration,
    max_bytes: u64,
    hosts: Hosts,
}

/// Why one attempt failed: retry it (after an optional wait) or give up.
enum Attempt {
    Retry(String, Option<Duration>),
    Fail(Error),
}

impl Client {
    /// A client for `manifest` under `config`; no I/O.
    pub fn new(config: &HttpConfig, manifest: &Manifest) -> Result<Self> {
        let base_text = config
            .base_url
            .as_deref()
            .or(manifest.base_url.as_deref())
            .ok_or_else(|| {
                Error::config("`base_url`: the manifest names none; set `base_url` in the source")
            })?;
        // The text is not echoed: it may hold a user and password.
        let base = Url::parse(base_text)
            .map_err(|e| Error::config(format!("`base_url` is not a URL: {e}")))?;
        if !base.username().is_empty() || base.password().is_some() {
            return Err(Error::config(format!(
                "`base_url` {} has a user or password in it, where it would be printed and stored; move them to `auth = {{ kind = \"basic\", username = \"...\", password = \"${{API_PASSWORD}}\" }}`",
                Self::shown(&base)
            )));
        }
        if base.scheme() != "https" && !config.allow_insecure {
            return Err(Error::config(format!(
                "`base_url` {} is not https: credentials and data would travel in clear; use https, or set `allow_insecure = true` for a test server or a trusted network",
                Self::shown(&base)
            )));
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &manifest.headers {
            let name = HeaderName::try_from(name.as_str())
                .map_err(|e| Error::config(format!("manifest header {name:?}: {e}")))?;
            let value = HeaderValue::try_from(value.as_str())
                .map_err(|e| Error::config(format!("manifest header {name}: {e}")))?;
            headers.insert(name, value);
        }
        let per_second = config.requests_per_second.or(manifest.requests_per_second);
        let per_minute = config.requests_per_minute.or(manifest.requests_per_minute);
        let quota = match (per_second, per_minute) {
            (Some(n), _) => NonZeroU32::new(n).map(Quota::per_second),
            (None, Some(n)) => NonZeroU32::new(n).map(Quota::per_minute),
            (None, None) => None,
        };
        // One request at a time, evenly spaced: a burst would break "N per second" over
        // any one-second window.
        let limiter = quota
            .map(|q| q.allow_burst(NonZeroU32::MIN))
            .map(RateLimiter::direct);
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(config.timeout_secs))
            .connect_timeout(Duration::from_secs(config.timeout_secs.min(10)))
            .user_agent(concat!("elt/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::bug("cannot build the HTTP client").caused_by(e))?;
        let auth = Auth::new(config.auth.as_ref())?;
        if let Some(token_url) = auth.token_url()
            && token_url.scheme() != "https"
            && !config.allow_insecure
        {
            return Err(Error::config(
                "`auth.token_url` is not https: the client secret would travel in clear; use https, or set `allow_insecure = true`",
            ));
        }
        Ok(Self {
            http,
            hosts: Hosts::new(base.clone(), &config.allowed_hosts, config.allow_insecure),
            base,
            headers,
            auth,
            limiter,
            max_retry: Duration::from_secs(config.max_retry_secs),
            max_bytes: bounds::mib_to_bytes("max_response_mib", config.max_response_mib)?,
        })
    }

    /// The base URL.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// A URL for display: no query string (it may hold a key), no user info.
    pub fn shown(url: &Url) -> String {
        super::hosts::shown(url)
    }

    /// Refuses a URL that credentials must not reach (see `hosts.rs`).
    pub fn check_target(&self, url: &Url, what: &str) -> Result<()> {
        self.hosts.check(url, what)
    }

    /// `url` without the API key's query parameter.
    pub fn strip(&self, url: Url) -> Url {
        self.auth.strip(url)
    }

    /// One GET, without retries (for `check`, which must fail fast).
    pub async fn get_json_once(&self, url: Url) -> Result<Page> {
        self.check_target(&url, "the request to")?;
        match self.attempt(url.clone(), &mut false).await {
            Ok(page) => Ok(page),
            Err(Attempt::Fail(e)) => Err(e),
            Err(Attempt::Retry(reason, _)) => Err(Error::transient(format!(
                "GET {} failed: {reason}",
                Self::shown(&url)
            ))),
        }
    }

    /// GETs `url` and decodes its JSON body, retrying and following same-host redirects.
    pub async fn get_json(&self, url: Url) -> Result<Page> {
        self.check_target(&url, "the request to")?;
        let started = Instant::now();
        let mut schedule = backoff::ExponentialBackoffBuilder::new()
            .with_initial_interval(Duration::from_millis(250))
            .with_max_interval(Duration::from_secs(30))
            .with_max_elapsed_time(Some(self.max_retry))
            .build();
        let mut renewed = false;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let (reason, wait) = match self.attempt(url.clone(), &mut renewed).await {
                Ok(page) => return Ok(page),
                Err(Attempt::Fail(e)) => return Err(e),
                Err(Attempt::Retry(reason, wait)) => (reason, wait),
            };
            let next = backoff::backoff::Backoff::next_backoff(&mut schedule);
            let wait = wait.or(next);
            // A server's `Retry-After` may be any number: compare without overflowing.
            if wait.is_none_or(|w| started.elapsed().saturating_add(w) > self.max_retry) {
                return Err(Error::transient(format!(
                    "GET {} failed {attempts} times within `max_retry_secs` ({}s); the last: {reason}",
                    Self::shown(&url),
                    self.max_retry.as_secs()
                )));
            }
            let wait = wait.unwrap_or_default();
            tracing::warn!(url = %Self::shown(&url), %reason, wait_ms = wait.as_millis() as u64, "retrying");
            tokio::time::sleep(wait).await;
        }
    }

    async fn attempt(&self, mut url: Url, renewed: &mut bool) -> Result<Page, Attempt> {
        for _hop in 0..10 {
            if let Some(limiter) = &self.limiter {
                limiter.until_ready().await;
            }
            let request = self
                .auth
                .request(&self.http, &url)
                .await
                .map_err(Attempt::Fail)?
                .headers(self.headers.clone());
            let response = match request.send().await {
                Ok(r) => r,
                Err(e) => return Err(Attempt::Retry(self.auth.redact(&describe(&e)), None)),
            };
            let status = response.status();
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| url.join(l).ok())
                    .ok_or_else(|| {
                        Attempt::Fail(Error::permanent(format!(
                            "{} redirected ({status}) without a usable Location",
                            Self::shown(&url)
                        )))
                    })?;
                self.check_target(&location, "a redirect to")
                    .map_err(Attempt::Fail)?;
                url = self.auth.strip(location);
                continue;
            }
            if status == StatusCode::UNAUTHORIZED && self.auth.renewable() && !*renewed {
                *renewed = true;
                self.auth.invalidate().await;
                return Err(Attempt::Retry(
                    "401 Unauthorized: renewing the OAuth2 token".into(),
                    Some(Duration::ZERO),
                ));
            }
            if status == StatusCode::TOO_MANY_REQUESTS
                || status == StatusCode::REQUEST_TIMEOUT
                || status.is_server_error()
            {
                let wait = retry_after(response.headers());
                return Err(Attempt::Retry(format!("HTTP {status}"), wait));
            }
            let headers = response.headers().clone();
            let body = self.body(response).await?;
            if !status.is_success() {
                let text = printable(&body[..body.len().min(300)]);
                let kind = if matches!(status.as_u16(), 401 | 403) {
                    Error::config
                } else {
                    Error::permanent
                };
                return Err(Attempt::Fail(kind(format!(
                    "GET {} answered HTTP {status}: {}",
                    Self::shown(&url),
                    self.auth.redact(text.trim())
                ))));
            }
            return match serde_json::from_slice(&body) {
                Ok(body) => Ok(Page { url, headers, body }),
                Err(e) => Err(Attempt::Retry(
                    format!(
                        "the body of {} is not JSON ({e}), truncated or garbled",
                        Self::shown(&url)
                    ),
                    None,
                )),
            };
        }
        Err(Attempt::Fail(Error::permanent(format!(
            "{} redirected more than 10 times",
            Self::shown(&url)
        ))))
    }

    /// Reads a body in chunks up to the size cap; a cut connection is retried.
    async fn body(&self, response: reqwest::Response) -> Result<Vec<u8>, Attempt> {
        if response
            .content_length()
            .is_some_and(|n| n > self.max_bytes)
        {
            return Err(Attempt::Fail(self.too_large(response.url())));
        }
        let url = response.url().clone();
        let mut body = Vec::new();
        let mut chunks = response.bytes_stream();
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|e| {
                Attempt::Retry(
                    format!("reading the body: {}", self.auth.redact(&describe(&e))),
                    None,
                )
            })?;
            if (body.len() + chunk.len()) as u64 > self.max_bytes {
                return Err(Attempt::Fail(self.too_large(&url)));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn too_large(&self, url: &Url) -> Error {
        Error::permanent(format!(
            "the response of {} is larger than `max_response_mib` ({} MiB); raise it or ask for smaller pages",
            Self::shown(url),
            self.max_bytes / 1024 / 1024
        ))
    }
}

/// A reqwest error without its URL (which may carry a query key).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out (`timeout_secs`)"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "the body was cut off"
    } else {
        "the request failed"
    };
    let mut cause = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    if cause.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {cause}")
    }
}

/// `Retry-After` as a wait: seconds, or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at
        .signed_duration_since(chrono::Utc::now())
        .num_milliseconds();
    Some(Duration::from_millis(wait.max(0) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), Some(Duration::ZERO));
    }

    #[test]
    fn a_plain_http_base_needs_allow_insecure() {
        let plain: HttpConfig = elt_core::parse_config(&serde_json::json!({
            "manifest": "github", "base_url": "http://api.example.com"
        }))
        .unwrap();
        let manifest = Manifest::parse(
            "[[streams]]\nname = \"s\"\npath = \"/s\"",
            "t",
            &Default::default(),
        )
        .unwrap();
        let err = Client::new(&plain, &manifest).err().unwrap();
        assert!(err.message().contains("allow_insecure"), "{err}");
    }
}
