//! Which URLs a source's requests (and so its credentials) may reach: the base URL's
//! origin (scheme, host and port) and the hosts in `allowed_hosts`; never plain http, a
//! loopback or a link-local address (cloud metadata services) from an https API, unless
//! `allow_insecure` is set. Also how a URL is shown in messages: without its query string,
//! which may hold a key.

use elt_core::{Error, Result};
use reqwest::Url;

/// The host rules of one source.
pub struct Hosts {
    base: Url,
    allowed: Vec<String>,
    insecure: bool,
}

impl Hosts {
    /// The rules for requests under `base`.
    pub fn new(base: Url, allowed: &[String], insecure: bool) -> Self {
        Self {
            base,
            allowed: allowed.to_vec(),
            insecure,
        }
    }

    /// Refuses a URL credentials must not reach; `what` names it in the message.
    pub fn check(&self, url: &Url, what: &str) -> Result<()> {
        let refuse = |why: &str| {
            Err(Error::config(format!(
                "{what} {} refused: {why}",
                shown(url)
            )))
        };
        if !matches!(url.scheme(), "http" | "https") {
            return refuse("not an http(s) URL");
        }
        if !self.insecure && url.scheme() != "https" {
            return refuse(
                "plain http from an https API (set `allow_insecure = true` to permit it)",
            );
        }
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let same_origin = url.origin() == self.base.origin();
        let allowed = self.allowed.iter().any(|h| h.eq_ignore_ascii_case(&host));
        if !same_origin && !allowed {
            return refuse(&format!(
                "it leaves {} (credentials never go to another host; add {host:?} to `allowed_hosts` if it belongs to the API)",
                self.base.origin().ascii_serialization()
            ));
        }
        if !self.insecure && is_local(url) && !is_local(&self.base) {
            return refuse(
                "a loopback or link-local address (set `allow_insecure = true` to permit it)",
            );
        }
        Ok(())
    }
}

/// A URL for display: no query string (it may hold a key), no user info.
pub fn shown(url: &Url) -> String {
    format!("{}{}", url.origin().ascii_serialization(), url.path())
}

/// Whether a URL's host is a loopback or link-local address, or `localhost`.
fn is_local(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback() || ip.is_link_local() || ip.is_unspecified(),
        Some(url::Host::Ipv6(ip)) => {
            ip.is_loopback() || ip.is_unspecified() || (ip.segments()[0] & 0xffc0) == 0xfe80
        }
        Some(url::Host::Domain(d)) => {
            d.eq_ignore_ascii_case("localhost") || d.ends_with(".localhost")
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(hosts: &Hosts, url: &str) -> std::result::Result<(), String> {
        hosts
            .check(&Url::parse(url).unwrap(), "x")
            .map_err(|e| e.message().to_owned())
    }

    #[test]
    fn credentials_stay_on_the_api_host() {
        let api = Hosts::new(
            Url::parse("https://api.example.com/v1").unwrap(),
            &["uploads.example.com".to_owned()],
            false,
        );
        assert!(verdict(&api, "https://api.example.com/v1/items?page=2").is_ok());
        assert!(verdict(&api, "https://uploads.example.com/f").is_ok());
        assert!(
            verdict(&api, "https://evil.example.net/v1")
                .unwrap_err()
                .contains("allowed_hosts")
        );
        assert!(
            verdict(&api, "https://api.example.com:8443/v1")
                .unwrap_err()
                .contains("allowed_hosts")
        );
        assert!(
            verdict(&api, "http://api.example.com/v1")
                .unwrap_err()
                .contains("plain http")
        );
        let local = Hosts::new(
            Url::parse("https://api.example.com").unwrap(),
            &["127.0.0.1".to_owned(), "169.254.169.254".to_owned()],
            false,
        );
        assert!(
            verdict(&local, "https://127.0.0.1/x")
                .unwrap_err()
                .contains("loopback")
        );
        assert!(
            verdict(&local, "https://169.254.169.254/latest")
                .unwrap_err()
                .contains("link-local")
        );
        assert!(is_local(&Url::parse("http://[fe80::1]/x").unwrap()));
        assert!(!is_local(&Url::parse("https://api.github.com/").unwrap()));
    }
}
