//! Who may talk to `elt ui`: the `Host` check on loopback (against DNS rebinding), the
//! access token on other addresses, and the same-origin check of every POST (against
//! cross-site requests; the handlers also check the form's anti-forgery token). Only
//! checks, and the one refusal page (`Refusal`) every handler answers with.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::App;
use super::layout::{esc, page};

/// The cookie that carries the access token after `?token=`.
const TOKEN_COOKIE: &str = "elt_ui_token";

/// Refuses what the rules above refuse; passes the rest on.
pub async fn guard(State(app): State<App>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if app.token.is_none() && !loopback_host(host, app.addr.port()) {
        return refuse(
            StatusCode::FORBIDDEN,
            &format!("this page is served to localhost only, not to Host {host:?}"),
        );
    }
    let mut set_cookie = None;
    if let Some(token) = &app.token {
        let query = query_token(request.uri().query());
        let presented = query
            .clone()
            .or_else(|| bearer(headers))
            .or_else(|| cookie(headers));
        if !presented.is_some_and(|p| same(&p, token)) {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "open the address `elt ui` printed when it started (it ends in ?token=…)",
            );
        }
        if query.is_some() {
            set_cookie = Some(format!(
                "{TOKEN_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/"
            ));
        }
    }
    if request.method() == Method::POST && !same_origin(headers, host) {
        return refuse(
            StatusCode::FORBIDDEN,
            "cross-site request refused: actions are accepted only from elt ui's own pages",
        );
    }
    let mut response = next.run(request).await;
    if let Some(value) = set_cookie.and_then(|c| c.parse().ok()) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    let security = response.headers_mut();
    security.insert(header::X_FRAME_OPTIONS, "DENY".parse().expect("valid"));
    security.insert(
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'"
            .parse()
            .expect("valid"),
    );
    response
}

/// `host` names this loopback server (`127.0.0.1:PORT`, `localhost:PORT`, `[::1]:PORT`).
fn loopback_host(host: &str, port: u16) -> bool {
    let Some(name) = host.strip_suffix(&format!(":{port}")) else {
        return false;
    };
    matches!(name, "127.0.0.1" | "localhost" | "[::1]")
}

/// A POST from a page of this origin: its `Origin` is `http://HOST`, or (browsers that
/// send no Origin) `Sec-Fetch-Site` says same-origin. Requests with neither are refused.
fn same_origin(headers: &HeaderMap, host: &str) -> bool {
    let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match value("origin") {
        Some(origin) => origin == format!("http://{host}"),
        None => value("sec-fetch-site") == Some("same-origin"),
    }
}

fn query_token(query: Option<&str>) -> Option<String> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
        .map(str::to_owned)
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").map(str::to_owned)
}

fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            c.trim()
                .strip_prefix(&format!("{TOKEN_COOKIE}="))
                .map(str::to_owned)
        })
}

/// Compares tokens in time that does not depend on where they differ.
pub fn same(presented: &str, expected: &str) -> bool {
    presented.len() == expected.len()
        && presented
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// A page that says why a request is refused or cannot be served: its status and an
/// error (HTML).
pub struct Refusal(pub StatusCode, pub String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = page("Refused", None, &self.1);
        (self.0, axum::response::Html(body)).into_response()
    }
}

fn refuse(status: StatusCode, why: &str) -> Response {
    Refusal(status, format!("<p class=\"error\">{}</p>", esc(why))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_origins_tokens() {
        assert!(loopback_host("127.0.0.1:8040", 8040));
        assert!(loopback_host("localhost:8040", 8040));
        assert!(!loopback_host("evil.example:8040", 8040));
        assert!(!loopback_host("127.0.0.1:9999", 8040));
        let mut headers = HeaderMap::new();
        assert!(!same_origin(&headers, "127.0.0.1:8040"));
        headers.insert("origin", "http://evil.example".parse().unwrap());
        assert!(!same_origin(&headers, "127.0.0.1:8040"));
        headers.insert("origin", "http://127.0.0.1:8040".parse().unwrap());
        assert!(same_origin(&headers, "127.0.0.1:8040"));
        assert_eq!(query_token(Some("a=1&token=abc")), Some("abc".into()));
        assert!(same("abc", "abc") && !same("abd", "abc") && !same("ab", "abc"));
    }
}
