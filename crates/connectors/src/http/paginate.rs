//! Pages: the first request of a stream, the next one after each response (by the
//! stream's paginator), and the guard against loops: a URL requested twice in one read, or
//! a page whose body equals the one before it, is an error, never an endless sync.
//!
//! Every page is identified by its URL, so the URL of the next page is the whole resume
//! position a checkpoint needs.

use std::collections::{BTreeMap, HashSet};
use std::hash::{Hash, Hasher};

use elt_core::{Error, Result};
use reqwest::Url;
use reqwest::header::LINK;
use serde_json::Value;

use super::client::{Client, Page};
use super::manifest::{Paginator, StreamSpec, fill};
use super::records::extract;

/// The first URL of `spec` with `vars` filled in, and `cursor_param = since` when given.
pub fn first_url(
    base: &Url,
    spec: &StreamSpec,
    vars: &BTreeMap<String, String>,
    since: Option<&str>,
) -> Result<Url> {
    let path = fill(&spec.path, vars, |v| {
        url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
    });
    let mut url = base
        .join(&format!(
            "{}/{}",
            base.path().trim_end_matches('/'),
            path.trim_start_matches('/')
        ))
        .map_err(|e| Error::config(format!("stream {}: path {path:?}: {e}", spec.name)))?;
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in &spec.params {
            query.append_pair(name, &fill(value, vars, |v| v.to_owned()));
        }
        if let (Some(param), Some(since)) = (&spec.cursor_param, since) {
            query.append_pair(param, since);
        }
        match &spec.paginator {
            Paginator::Offset {
                limit,
                limit_param,
                offset_param,
            } => {
                query.append_pair(limit_param, &limit.to_string());
                query.append_pair(offset_param, "0");
            }
            Paginator::PageNumber {
                size,
                page_param,
                size_param,
                start,
            } => {
                query.append_pair(page_param, &start.to_string());
                if !size_param.is_empty() {
                    query.append_pair(size_param, &size.to_string());
                }
            }
            _ => {}
        }
    }
    if url.query() == Some("") {
        url.set_query(None);
    }
    Ok(url)
}

/// Walks the pages of one request chain.
pub struct Pager<'a> {
    spec: &'a StreamSpec,
    next: Option<Url>,
    seen: HashSet<String>,
    last_body: Option<u64>,
}

impl<'a> Pager<'a> {
    /// Starts at `first`.
    pub fn new(spec: &'a StreamSpec, first: Url) -> Self {
        Self {
            spec,
            next: Some(first),
            seen: HashSet::new(),
            last_body: None,
        }
    }

    /// The URL of the page after the last one fetched: where a resumed read starts.
    pub fn pending(&self) -> Option<&Url> {
        self.next.as_ref()
    }

    /// The records of the next page; None after the last.
    pub async fn fetch(&mut self, client: &Client) -> Result<Option<Vec<Value>>> {
        let Some(url) = self.next.take() else {
            return Ok(None);
        };
        let repeated = |what: &str| {
            Error::permanent(format!(
                "stream {}: {what} {} (the paginator `{}` loops; check its parameters against the API's documentation)",
                self.spec.name,
                Client::shown(&url),
                paginator_name(&self.spec.paginator)
            ))
        };
        if !self.seen.insert(url.as_str().to_owned()) {
            return Err(repeated("the API led to the same page twice:"));
        }
        let page = client.get_json(url.clone()).await?;
        // The next page is relative to where the answer came from (after redirects).
        let answered = page.url.clone();
        let records = extract(&page.body, &self.spec.records).map_err(|why| {
            Error::data(format!(
                "stream {}: {}: {why}",
                self.spec.name,
                Client::shown(&url)
            ))
        })?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        page.body.to_string().hash(&mut hasher);
        let body = hasher.finish();
        if !records.is_empty() && self.last_body == Some(body) {
            return Err(repeated(
                "the API answered the same page twice, the second time for",
            ));
        }
        self.last_body = Some(body);
        self.next = match next(&self.spec.paginator, &answered, &page, records.len())? {
            Some(next) => {
                client.check_target(&next, "the next page")?;
                Some(client.strip(next))
            }
            None => None,
        };
        Ok(Some(records))
    }
}

fn paginator_name(paginator: &Paginator) -> &'static str {
    match paginator {
        Paginator::None => "none",
        Paginator::Offset { .. } => "offset",
        Paginator::PageNumber { .. } => "page_number",
        Paginator::CursorToken { .. } => "cursor_token",
        Paginator::NextUrl { .. } => "next_url",
        Paginator::LinkHeader => "link_header",
    }
}

/// The next page's URL, or None when `page` was the last.
fn next(paginator: &Paginator, url: &Url, page: &Page, records: usize) -> Result<Option<Url>> {
    let bad = |why: String| Error::data(format!("paging after {}: {why}", Client::shown(url)));
    Ok(match paginator {
        Paginator::None => None,
        Paginator::Offset {
            limit,
            offset_param,
            ..
        } => {
            if (records as u64) < *limit || records == 0 {
                return Ok(None);
            }
            let offset: u64 = param(url, offset_param)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            Some(with_param(
                url,
                offset_param,
                &(offset + records as u64).to_string(),
            ))
        }
        Paginator::PageNumber {
            size,
            page_param,
            start,
            ..
        } => {
            if (records as u64) < *size || records == 0 {
                return Ok(None);
            }
            let number: u64 = param(url, page_param)
                .and_then(|v| v.parse().ok())
                .unwrap_or(*start);
            Some(with_param(url, page_param, &(number + 1).to_string()))
        }
        Paginator::CursorToken { path, param } => match page.body.pointer(path) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) => Some(with_param(url, param, s)),
            Some(Value::Number(n)) => Some(with_param(url, param, &n.to_string())),
            Some(other) => {
                return Err(bad(format!(
                    "the cursor token at {path:?} is {other}, not a string"
                )));
            }
        },
        Paginator::NextUrl { path } => match page.body.pointer(path) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) => Some(
                url.join(s)
                    .map_err(|e| bad(format!("the next URL is not a URL: {e}")))?,
            ),
            Some(other) => {
                return Err(bad(format!(
                    "the next URL at {path:?} is {other}, not a string"
                )));
            }
        },
        Paginator::LinkHeader => page
            .headers
            .get_all(LINK)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(link_next)
            .map(|next| url.join(&next))
            .transpose()
            .map_err(|e| bad(format!("the Link header's next URL is not a URL: {e}")))?,
    })
}

/// The `rel="next"` target of a `Link` header value (RFC 8288).
fn link_next(header: &str) -> Option<String> {
    header.split(',').find_map(|link| {
        let (target, params) = link.trim().split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        params
            .split(';')
            .filter_map(|p| p.trim().split_once('='))
            .any(|(k, v)| {
                k.trim().eq_ignore_ascii_case("rel")
                    && v.trim()
                        .trim_matches('"')
                        .split_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("next"))
            })
            .then(|| target.to_owned())
    })
}

fn param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn with_param(url: &Url, name: &str, value: &str) -> Url {
    let mut pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != name)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    pairs.push((name.to_owned(), value.to_owned()));
    let mut out = url.clone();
    out.query_pairs_mut().clear().extend_pairs(pairs);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers_and_params() {
        let header =
            r#"<https://api.x/i?page=2>; rel="next", <https://api.x/i?page=9>; rel="last""#;
        assert_eq!(link_next(header).as_deref(), Some("https://api.x/i?page=2"));
        assert_eq!(link_next(r#"<https://api.x/i?page=1>; rel="prev""#), None);
        let url = Url::parse("https://api.x/i?a=1&page=2").unwrap();
        assert_eq!(
            with_param(&url, "page", "3").as_str(),
            "https://api.x/i?a=1&page=3"
        );
    }
}
