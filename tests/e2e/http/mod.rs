//! The `http` source into DuckDB against local test servers (`elt_core::testkit::http`)
//! on 127.0.0.1: every paginator and authentication kind, credentials that never reach
//! another host, and OAuth2 renewal here; faults and limits in `faults.rs`, resuming in
//! `resume.rs`, the shipped GitHub manifest in `github.rs`. The helpers below serve all.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use elt_core::testkit::http::{Reply, Request, TestServer};
use serde_json::{Value, json};

use crate::common::{DESTINATION, Project, stream};

mod changes;
mod faults;
mod github;
mod resume;

/// Record `i`: id, name, a nested object, and `updated_at` `i` seconds into 2024.
pub fn record(i: usize) -> Value {
    json!({
        "id": i,
        "name": format!("item {i} ✓"),
        "meta": { "even": i.is_multiple_of(2), "tags": ["a", i % 3] },
        "updated_at": at(i),
    })
}

pub fn at(second: usize) -> String {
    (chrono::DateTime::from_timestamp(1_704_067_200 + second as i64, 0).unwrap())
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// A project whose source `api` reads `manifest` from `server`.
pub fn project(server: &TestServer, manifest: &str, options: &str) -> Project {
    // Defaults the test's `options` may replace.
    let defaults: String = ["timeout_secs = 2", "max_retry_secs = 15"]
        .iter()
        .filter(|d| !options.contains(d.split(' ').next().unwrap_or_default()))
        .map(|d| format!("{d}\n"))
        .collect();
    let project = Project::new(&format!(
        r#"
[sources.api]
type = "http"
manifest_path = "manifest.toml"
base_url = "{}"
allow_insecure = true
{defaults}{options}

{DESTINATION}
[connections.api]
source = "api"
destination = "local"
"#,
        server.url()
    ));
    std::fs::write(project.dir().join("manifest.toml"), manifest).unwrap();
    project
}

/// A page of `records` by a 1-based page number of `size`.
pub fn page_of(records: &[Value], page: usize, size: usize) -> Vec<Value> {
    records
        .iter()
        .skip((page - 1) * size)
        .take(size)
        .cloned()
        .collect()
}

pub fn number(request: &Request, name: &str, default: usize) -> usize {
    request
        .param(name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Page `page` (1-based, `size` records) of `records`, with a relative `Link` header to the
/// next page when there is one (relative targets resolve against the page's URL).
pub fn link_reply(request: &Request, records: &[Value], size: usize) -> Reply {
    let page = number(request, "page", 1);
    let reply = Reply::json(Value::Array(page_of(records, page, size)));
    if page * size < records.len() {
        let mut next = format!("{}?page={}", request.path(), page + 1);
        if let Some(since) = request.param("since") {
            next.push_str(&format!("&since={since}"));
        }
        reply.with_header("link", format!("<{next}>; rel=\"next\""))
    } else {
        reply
    }
}

pub fn count(project: &Project, table: &str) -> String {
    project
        .query(&format!(
            "SELECT count(*) || '/' || count(DISTINCT id) FROM raw.{table}"
        ))
        .remove(0)
}

#[test]
fn every_paginator_loads_every_record_once() {
    let records: Vec<Value> = (1..=25).map(record).collect();
    let server = TestServer::start(move |request, _| match request.path() {
        "/offset" => {
            let (offset, limit) = (number(request, "offset", 0), number(request, "limit", 0));
            Reply::json(
                json!({ "items": records.iter().skip(offset).take(limit).collect::<Vec<_>>() }),
            )
        }
        "/pages" => Reply::json(
            json!({ "items": page_of(&records, number(request, "page", 1), number(request, "per_page", 0)) }),
        ),
        "/cursor" => {
            let from = number(request, "cursor", 0);
            let next = (from + 10 < records.len()).then(|| (from + 10).to_string());
            Reply::json(
                json!({ "data": page_of(&records, from / 10 + 1, 10), "meta": { "next": next } }),
            )
        }
        "/next" => {
            let page = number(request, "p", 1);
            let next = (page * 10 < records.len()).then(|| format!("/next?p={}", page + 1));
            Reply::json(json!({ "results": page_of(&records, page, 10), "next": next }))
        }
        "/link" => link_reply(request, &records, 10),
        _ => Reply::status(404, json!({ "message": "no such path" })),
    });
    let manifest = r#"
[[streams]]
name = "offset"
path = "/offset"
records = "/items"
primary_key = ["id"]
paginator = { type = "offset", limit = 10 }

[[streams]]
name = "pages"
path = "/pages"
records = "/items"
primary_key = ["id"]
paginator = { type = "page_number", size = 10, size_param = "per_page" }

[[streams]]
name = "cursor"
path = "/cursor"
records = "/data"
primary_key = ["id"]
paginator = { type = "cursor_token", path = "/meta/next", param = "cursor" }

[[streams]]
name = "next"
path = "/next"
records = "/results"
primary_key = ["id"]
paginator = { type = "next_url", path = "/next" }

[[streams]]
name = "link"
path = "/link"
primary_key = ["id"]
cursor = "updated_at"
paginator = { type = "link_header" }
schema = { type = "object", properties = { id = { type = "integer" }, updated_at = { type = "string", format = "date-time" } } }
"#;
    let project = project(&server, manifest, "");
    let run = project
        .elt(&["sync", "--connection", "api", "--json"])
        .expect_code(0)
        .json();
    for table in ["offset", "pages", "cursor", "next", "link"] {
        assert_eq!(count(&project, table), "25/25", "stream {table}");
        assert_eq!(stream(&run, table)["rows_loaded"], 25, "stream {table}");
    }
    // Inferred: objects stay JSON; declared: fields the schema leaves out go to `_extra`.
    assert_eq!(
        project.query("SELECT meta->>'$.tags[1]' || '|' || name FROM raw.offset WHERE id = 5"),
        ["2|item 5 ✓"]
    );
    assert_eq!(
        project.query("SELECT (_extra->>'$.name') || '|' || epoch(updated_at)::BIGINT FROM raw.link WHERE id = 5"),
        ["item 5 ✓|1704067205"]
    );
}

/// A stream `items` at `/items` with a declared schema, so discovery sends no request.
const DECLARED_ITEMS: &str = r#"
[[streams]]
name = "items"
path = "/items"
primary_key = ["id"]
schema = { type = "object", properties = { id = { type = "integer" } } }
"#;

/// Whether a request carries the expected credential.
type Authorized = fn(&Request) -> bool;

/// Each authentication kind: the source's options, and whether a request carries it.
fn auth_kinds() -> Vec<(&'static str, String, Authorized)> {
    vec![
        (
            "bearer",
            r#"auth = { kind = "bearer", token = "tok-secret-1" }"#.into(),
            |r| r.header("authorization") == Some("Bearer tok-secret-1"),
        ),
        (
            "basic",
            r#"auth = { kind = "basic", username = "ada", password = "pw-secret-2" }"#.into(),
            // base64("ada:pw-secret-2")
            |r| r.header("authorization") == Some("Basic YWRhOnB3LXNlY3JldC0y"),
        ),
        (
            "api key header",
            r#"auth = { kind = "api_key", header = "X-Api-Key", key = "key-secret-3" }"#.into(),
            |r| r.header("x-api-key") == Some("key-secret-3"),
        ),
        (
            "api key query",
            r#"auth = { kind = "api_key", query = "api_key", key = "key-secret-4" }"#.into(),
            |r| r.param("api_key").as_deref() == Some("key-secret-4"),
        ),
        ("oauth2", String::new(), |r| {
            r.header("authorization") == Some("Bearer oauth-token-5")
        }),
    ]
}

#[test]
fn every_auth_kind_authenticates_and_no_credential_follows_a_redirect() {
    let manifest = format!(
        r#"{DECLARED_ITEMS}
[[streams]]
name = "moved"
path = "/moved"
primary_key = ["id"]
schema = {{ type = "object", properties = {{ id = {{ type = "integer" }} }} }}
"#
    );
    let manifest = manifest.as_str();
    for (kind, options, authorized) in auth_kinds() {
        let elsewhere = TestServer::start(|_, _| Reply::json(json!([record(1)])));
        let target = format!("{}/items", elsewhere.url());
        let server = TestServer::start(move |request, _| match request.path() {
            "/token" if request.body.contains("client_secret=cs-secret-5") => Reply::json(
                json!({ "access_token": "oauth-token-5", "token_type": "bearer", "expires_in": 3600 }),
            ),
            "/token" => Reply::status(401, json!({ "error": "invalid_client" })),
            _ if !authorized(request) => Reply::status(401, json!({ "message": "who are you?" })),
            "/items" => Reply::json(json!([record(1), record(2)])),
            "/moved" => Reply::Respond(
                302,
                vec![("location".into(), target.clone())],
                String::new(),
            ),
            _ => Reply::status(404, json!({})),
        });
        let options = if kind == "oauth2" {
            format!(
                r#"auth = {{ kind = "oauth2", token_url = "{}/token", client_id = "elt", client_secret = "cs-secret-5" }}"#,
                server.url()
            )
        } else {
            options
        };
        let project = project(&server, manifest, &options);
        project
            .elt(&["sync", "--connection", "api", "--streams", "items"])
            .expect_code(0);
        assert_eq!(count(&project, "items"), "2/2", "{kind}");

        let moved = project.elt(&[
            "sync",
            "--connection",
            "api",
            "--streams",
            "moved",
            "--json",
        ]);
        assert_ne!(
            moved.code(),
            0,
            "{kind}: a redirect to another host must fail"
        );
        let error = stream(&moved.json(), "moved")["error"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            error.contains("refused") && error.contains("allowed_hosts"),
            "{kind}: {error}"
        );
        assert!(
            elsewhere.requests().is_empty(),
            "{kind}: the other host saw {:?}",
            elsewhere.requests()
        );
        let output = format!("{}{}", moved.stdout(), moved.stderr());
        for secret in [
            "tok-secret-1",
            "pw-secret-2",
            "key-secret-3",
            "key-secret-4",
            "cs-secret-5",
            "oauth-token-5",
        ] {
            assert!(!output.contains(secret), "{kind}: {secret} printed");
        }
        project
            .elt(&["check", "--connection", "api"])
            .expect_code(0);
    }
}

#[test]
fn an_oauth2_token_is_renewed_after_a_401() {
    let records: Vec<Value> = (1..=5).map(record).collect();
    let valid = Arc::new(Mutex::new(String::new()));
    let current = valid.clone();
    let server = TestServer::start(move |request, earlier| {
        if request.path() == "/token" {
            let issued = earlier.iter().filter(|r| r.path() == "/token").count() + 1;
            let token = format!("token-{issued}");
            *current.lock().unwrap() = token.clone();
            return Reply::json(json!({ "access_token": token, "expires_in": 3600 }));
        }
        let presented = request
            .header("authorization")
            .unwrap_or_default()
            .to_owned();
        let revoked =
            number(request, "page", 1) == 3 && !earlier.iter().any(|r| r.target == request.target);
        if revoked {
            *current.lock().unwrap() = "revoked".into();
        }
        if presented != format!("Bearer {}", current.lock().unwrap()) {
            return Reply::status(401, json!({ "message": "token expired" }));
        }
        link_reply(request, &records, 1)
    });
    let manifest = r#"
[[streams]]
name = "items"
path = "/items"
primary_key = ["id"]
paginator = { type = "link_header" }
schema = { type = "object", properties = { id = { type = "integer" } } }
"#;
    let options = format!(
        r#"auth = {{ kind = "oauth2", token_url = "{}/token", client_id = "elt", client_secret = "s3cret", scopes = ["read"] }}"#,
        server.url()
    );
    let project = project(&server, manifest, &options);
    project.elt(&["sync", "--connection", "api"]).expect_code(0);
    assert_eq!(count(&project, "items"), "5/5");
    let tokens: Vec<Request> = server
        .requests()
        .into_iter()
        .filter(|r| r.path() == "/token")
        .collect();
    assert_eq!(tokens.len(), 2, "one token, renewed once after the 401");
    assert!(
        tokens[0].body.contains("grant_type=client_credentials")
            && tokens[0].body.contains("scope=read")
    );
}

#[test]
fn a_server_that_echoes_credentials_gets_none_printed_or_stored() {
    let manifest = DECLARED_ITEMS;
    let secrets = [
        "tok-secret-1",
        "pw-secret-2",
        "YWRhOnB3LXNlY3JldC0y", // base64("ada:pw-secret-2"), as the Basic header sends it
        "key-secret-3",
        "key-secret-4",
    ];
    for (kind, options, _) in auth_kinds().into_iter().filter(|(k, ..)| *k != "oauth2") {
        // The error body repeats the request, headers and query included, and tries to
        // clear the terminal and set its title.
        let server = TestServer::start(|request, _| {
            Reply::status(
                400,
                format!(
                    "\x1b[2J\x1b]0;owned\x07bad request {} {:?}",
                    request.target, request.headers
                ),
            )
        });
        let project = project(&server, manifest, &options);
        let run = project.elt(&["sync", "--connection", "api", "-vv"]);
        let output = run.stdout() + &run.stderr();
        assert_eq!(run.code(), 1, "{kind}: {output}");
        assert!(output.contains("answered HTTP 400"), "{kind}: {output}");
        assert!(
            !output.contains('\x1b'),
            "{kind}: an escape sequence printed"
        );
        let stored = project
            .query("SELECT coalesce(string_agg(error, ' '), '') FROM raw._elt_runs")
            .remove(0);
        assert!(stored.contains("bad request"), "{kind}: {stored}");
        for secret in secrets {
            assert!(
                !output.contains(secret),
                "{kind}: {secret} printed: {output}"
            );
            assert!(
                !stored.contains(secret),
                "{kind}: {secret} stored: {stored}"
            );
        }
    }
}

#[test]
fn a_password_in_base_url_is_refused_and_never_printed() {
    let server = TestServer::start(|_, _| Reply::json(json!([record(1)])));
    let with_password = server.url().replace("http://", "http://ada:url-secret-6@");
    for insecure in ["true", "false"] {
        let project = Project::new(&format!(
            r#"
[sources.api]
type = "http"
manifest = "github"
vars = {{ owner = "o", repo = "r" }}
base_url = "{with_password}"
allow_insecure = {insecure}

{DESTINATION}
[connections.api]
source = "api"
destination = "local"
"#
        ));
        for args in [
            &["check", "--connection", "api"][..],
            &["sync", "--connection", "api"],
        ] {
            let run = project.elt(args);
            let output = run.stdout() + &run.stderr();
            assert_ne!(run.code(), 0, "{args:?}: {output}");
            assert!(output.contains("has a user or password in it"), "{output}");
            assert!(!output.contains("url-secret-6"), "printed: {output}");
        }
        assert!(server.requests().is_empty(), "a request was sent");
    }
}
