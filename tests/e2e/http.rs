//! The `http` source into DuckDB against local test servers (`elt_core::testkit::http`)
//! on 127.0.0.1: every paginator and authentication kind, credentials that never reach
//! another host, incremental resume from the last committed page, retried faults, loop
//! detection, a changed field type, the rate limit, and the shipped GitHub manifest
//! against recorded-style responses.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use elt_core::testkit::http::{Reply, Request, TestServer};
use serde_json::{Value, json};

use crate::common::{DESTINATION, Project, stream};

/// Record `i`: id, name, a nested object, and `updated_at` `i` seconds into 2024.
fn record(i: usize) -> Value {
    json!({
        "id": i,
        "name": format!("item {i} ✓"),
        "meta": { "even": i % 2 == 0, "tags": ["a", i % 3] },
        "updated_at": at(i),
    })
}

fn at(second: usize) -> String {
    (chrono::DateTime::from_timestamp(1_704_067_200 + second as i64, 0).unwrap())
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// A project whose source `api` reads `manifest` from `server`.
fn project(server: &TestServer, manifest: &str, options: &str) -> Project {
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
fn page_of(records: &[Value], page: usize, size: usize) -> Vec<Value> {
    records
        .iter()
        .skip((page - 1) * size)
        .take(size)
        .cloned()
        .collect()
}

fn number(request: &Request, name: &str, default: usize) -> usize {
    request
        .param(name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Page `page` (1-based, `size` records) of `records`, with a relative `Link` header to the
/// next page when there is one (relative targets resolve against the page's URL).
fn link_reply(request: &Request, records: &[Value], size: usize) -> Reply {
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

fn count(project: &Project, table: &str) -> String {
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
    let manifest = r#"
[[streams]]
name = "items"
path = "/items"
primary_key = ["id"]
schema = { type = "object", properties = { id = { type = "integer" } } }

[[streams]]
name = "moved"
path = "/moved"
primary_key = ["id"]
schema = { type = "object", properties = { id = { type = "integer" } } }
"#;
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
fn a_failed_sync_resumes_from_the_last_committed_page() {
    let data: Arc<Mutex<Vec<Value>>> = Arc::new(Mutex::new((1..=50).map(record).collect()));
    let broken = Arc::new(AtomicBool::new(true));
    let (shared, failing) = (data.clone(), broken.clone());
    let server = TestServer::start(move |request, _| {
        if failing.load(Ordering::SeqCst) && number(request, "page", 1) == 3 {
            return Reply::status(500, json!({ "message": "down" }));
        }
        let since = request.param("since").unwrap_or_default();
        let mut records: Vec<Value> = shared
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r["updated_at"].as_str().unwrap_or("") >= since.as_str())
            .cloned()
            .collect();
        records.sort_by_key(|r| r["updated_at"].as_str().unwrap_or("").to_owned());
        link_reply(request, &records, 10)
    });
    let manifest = r#"
[[streams]]
name = "items"
path = "/items"
primary_key = ["id"]
cursor = "updated_at"
cursor_param = "since"
paginator = { type = "link_header" }
# Declared, so that no discovery request comes before the pages.
schema = { type = "object", properties = { id = { type = "integer" }, name = { type = "string" }, updated_at = { type = "string", format = "date-time" } } }
"#;
    let project = project(&server, manifest, "max_retry_secs = 1");
    let failed = project.elt(&["sync", "--connection", "api", "--json"]);
    assert_ne!(failed.code(), 0);
    assert_eq!(
        count(&project, "items"),
        "20/20",
        "pages 1 and 2 were committed"
    );
    let state = project
        .query("SELECT state::VARCHAR FROM raw._elt_state")
        .remove(0);
    assert!(
        state.contains("page=3"),
        "the state names the next page: {state}"
    );

    broken.store(false, Ordering::SeqCst);
    let before = server.requests().len();
    let rerun = project
        .elt(&["sync", "--connection", "api", "--json"])
        .expect_code(0)
        .json();
    let first = server.requests()[before].target.clone();
    assert!(
        first.contains("page=3"),
        "the rerun starts at page 3: {first}"
    );
    assert_eq!(stream(&rerun, "items")["rows_read"], 30);
    assert_eq!(count(&project, "items"), "50/50");
    let state = project
        .query("SELECT state::VARCHAR FROM raw._elt_state")
        .remove(0);
    assert_eq!(
        state,
        format!(r#"{{"v":1,"cursor":"{}","key":[50]}}"#, at(50))
    );

    // New and changed records after the watermark: only they are read.
    {
        let mut records = data.lock().unwrap();
        records.extend((51..=55).map(record));
        records[6]["name"] = json!("changed");
        records[6]["updated_at"] = json!(at(100));
    }
    let before = server.requests().len();
    let next = project
        .elt(&["sync", "--connection", "api", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(stream(&next, "items")["rows_read"], 6);
    assert_eq!(
        server.requests()[before].param("since").as_deref(),
        Some(at(50).as_str())
    );
    assert_eq!(count(&project, "items"), "55/55");
    assert_eq!(
        project.query("SELECT name FROM raw.items WHERE id = 7"),
        ["changed"]
    );
    let again = project
        .elt(&["sync", "--connection", "api", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(stream(&again, "items")["rows_read"], 0, "nothing new");
}

#[test]
fn faults_are_retried_and_a_429_waits_for_retry_after() {
    let records: Vec<Value> = (1..=60).map(record).collect();
    let server = TestServer::start(move |request, earlier| {
        let page = number(request, "page", 1);
        let tries = earlier
            .iter()
            .filter(|r| r.target == request.target)
            .count();
        match (page, tries) {
            (1, 0) => Reply::status(429, json!({})).with_header("retry-after", 1),
            (2, 0) => Reply::status(500, json!({})),
            (2, 1) => Reply::status(502, json!({})),
            (2, 2) => Reply::status(503, json!({})),
            (3, 0) => Reply::Reset,
            (4, 0) => Reply::Stall(Duration::from_secs(4)),
            (5, 0) => Reply::CutOff(Value::Array(page_of(&records, 5, 10)).to_string()),
            (6, 0) => Reply::json(r#"[{"id": 51, "name": "tru"#),
            _ => link_reply(request, &records, 10),
        }
    });
    let manifest = r#"
[[streams]]
name = "items"
path = "/items"
primary_key = ["id"]
paginator = { type = "link_header" }
"#;
    let project = project(&server, manifest, "timeout_secs = 1");
    project.elt(&["sync", "--connection", "api"]).expect_code(0);
    assert_eq!(count(&project, "items"), "60/60");
    let requests = server.requests();
    let page_one: Vec<_> = requests
        .iter()
        .filter(|r| number(r, "page", 1) == 1)
        .collect();
    let waited = page_one[1].at - page_one[0].at;
    assert!(
        waited >= Duration::from_secs(1),
        "Retry-After: 1 honoured, waited {waited:?}"
    );
    for page in 2..=6 {
        let tries = requests
            .iter()
            .filter(|r| number(r, "page", 1) == page)
            .count();
        let expected = if page == 2 { 4 } else { 2 };
        assert_eq!(tries, expected, "page {page}");
    }
}

#[test]
fn a_repeating_page_is_an_error_not_an_endless_sync() {
    let server = TestServer::start(|request, _| match request.path() {
        "/token" => Reply::json(json!({ "data": [record(1)], "next": "same" })),
        _ => Reply::json(json!({ "data": [record(1), record(2)] })),
    });
    let manifest = r#"
[[streams]]
name = "token"
path = "/token"
records = "/data"
primary_key = ["id"]
paginator = { type = "cursor_token", path = "/next", param = "cursor" }

[[streams]]
name = "ignored_offset"
path = "/ignored"
records = "/data"
primary_key = ["id"]
paginator = { type = "offset", limit = 2 }
"#;
    let project = project(&server, manifest, "");
    let run = project.elt(&["sync", "--connection", "api", "--json"]);
    assert_ne!(run.code(), 0);
    let summary = run.json();
    let error = |s: &str| {
        stream(&summary, s)["error"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        error("token").contains("the same page twice"),
        "{}",
        error("token")
    );
    assert!(
        error("ignored_offset").contains("the same page twice"),
        "{}",
        error("ignored_offset")
    );
    assert!(
        server.requests().len() < 10,
        "it stopped: {} requests",
        server.requests().len()
    );
}

#[test]
fn a_changed_field_type_sends_the_record_to_the_dead_letter_table() {
    let records: Vec<Value> = (1..=30)
        .map(|i| {
            let mut r = record(i);
            if i == 15 {
                r["id"] = json!("15");
            }
            r
        })
        .collect();
    let server = TestServer::start(move |request, _| link_reply(request, &records, 10));
    let manifest = r#"
[[streams]]
name = "items"
path = "/items"
primary_key = ["id"]
cursor = "updated_at"
paginator = { type = "link_header" }
schema = { type = "object", properties = { id = { type = "integer" }, name = { type = "string" }, updated_at = { type = "string", format = "date-time" } } }
"#;
    let project = project(&server, manifest, "");
    let run = project
        .elt(&["sync", "--connection", "api", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(stream(&run, "items")["rows_read"], 30);
    assert_eq!(stream(&run, "items")["rows_dead_lettered"], 1);
    assert_eq!(count(&project, "items"), "29/29");
    assert_eq!(
        project.query("SELECT reason || ' | ' || (record->>'$.id') FROM raw._elt_dead_letter"),
        [
            "field id: a string (\"15\") does not fit the schema's Int64 (declare it as an object or string in the manifest's schema, or fix the source) | 15"
        ]
    );
    let again = project
        .elt(&["sync", "--connection", "api", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(
        stream(&again, "items")["rows_read"],
        0,
        "the watermark moved past it"
    );
}

#[test]
fn the_rate_limit_holds_over_every_second() {
    let records: Vec<Value> = (1..=25).map(record).collect();
    let server = TestServer::start(move |request, _| link_reply(request, &records, 1));
    let manifest = r#"
requests_per_second = 100

[[streams]]
name = "items"
path = "/items"
primary_key = ["id"]
paginator = { type = "link_header" }
"#;
    // The source's option replaces the manifest's limit.
    let project = project(&server, manifest, "requests_per_second = 10");
    project.elt(&["sync", "--connection", "api"]).expect_code(0);
    assert_eq!(count(&project, "items"), "25/25");
    let times: Vec<_> = server.requests().iter().map(|r| r.at).collect();
    let busiest = times
        .iter()
        .map(|start| {
            times
                .iter()
                .filter(|t| **t >= *start && **t - *start < Duration::from_millis(990))
                .count()
        })
        .max()
        .unwrap_or(0);
    assert!(busiest <= 10, "{busiest} requests within one second");
    let span = *times.last().unwrap() - times[0];
    assert!(
        span >= Duration::from_millis(2300),
        "25 requests at 10/s took {span:?}"
    );
}

#[test]
fn the_shipped_github_manifest_reads_issues_and_comments() {
    let fixtures =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/e2e/fixtures/github");
    let read = |name: &str| std::fs::read_to_string(fixtures.join(name)).unwrap();
    let (issues_1, issues_2, comments_1, comments_2) = (
        read("issues-page-1.json"),
        read("issues-page-2.json"),
        read("comments-1347.json"),
        read("comments-1348.json"),
    );
    let url = Arc::new(Mutex::new(String::new()));
    let base = url.clone();
    let server = TestServer::start(move |request, _| {
        if request.header("authorization") != Some("Bearer gh-secret") {
            return Reply::status(401, json!({ "message": "Bad credentials" }));
        }
        let base = base.lock().unwrap().clone();
        match (request.path(), request.param("page").as_deref()) {
            ("/repos/octo/hello/issues", None) => Reply::json(&issues_1).with_header(
                "link",
                format!("<{base}/repos/octo/hello/issues?state=all&page=2>; rel=\"next\", <{base}/repos/octo/hello/issues?state=all&page=2>; rel=\"last\""),
            ),
            ("/repos/octo/hello/issues", Some("2")) => Reply::json(&issues_2),
            ("/repos/octo/hello/issues/1347/comments", _) => Reply::json(&comments_1),
            ("/repos/octo/hello/issues/1348/comments", _) => Reply::json(&comments_2),
            ("/repos/octo/hello/issues/1349/comments", _) => Reply::json("[]"),
            _ => Reply::status(404, json!({ "message": "Not Found" })),
        }
    });
    *url.lock().unwrap() = server.url();
    let project = Project::new(&format!(
        r#"
[sources.github]
type = "http"
manifest = "github"
base_url = "{}"
allow_insecure = true
vars = {{ owner = "octo", repo = "hello" }}
auth = {{ kind = "bearer", token = "${{GH_TOKEN}}" }}

{DESTINATION}
[connections.github]
source = "github"
destination = "local"
"#,
        server.url()
    ));
    let run = project
        .command(&["sync", "--connection", "github", "--json"])
        .env("GH_TOKEN", "gh-secret")
        .output()
        .unwrap();
    let run = crate::common::Run(run).expect_code(0).json();
    assert_eq!(stream(&run, "issues")["rows_loaded"], 3);
    assert_eq!(stream(&run, "comments")["rows_loaded"], 3);
    assert_eq!(
        project.query("SELECT string_agg(number || ':' || state || ':' || (pull_request IS NOT NULL), ',' ORDER BY number) FROM raw.issues"),
        ["1347:open:false,1348:closed:true,1349:open:false"]
    );
    assert_eq!(
        project.query("SELECT string_agg(issue_number || ':' || (user->>'$.login'), ',' ORDER BY id) FROM raw.comments"),
        ["1347:octocat,1347:hubot,1348:octocat"]
    );
    let state = project
        .query("SELECT stream || '=' || (state->>'$.cursor') FROM raw._elt_state ORDER BY stream");
    assert_eq!(
        state,
        [
            "comments=2024-03-03T11:00:00Z",
            "issues=2024-03-05T08:30:00Z"
        ]
    );
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
fn a_next_url_to_another_host_and_an_oversized_page_are_refused() {
    let elsewhere = TestServer::start(|_, _| Reply::json(json!({ "data": [record(3)] })));
    let next = format!("{}/more", elsewhere.url());
    let big = Value::Array((1..=20_000).map(record).collect()).to_string();
    let server = TestServer::start(move |request, _| match request.path() {
        "/away" => Reply::json(json!({ "data": [record(1)], "next": next })),
        "/big" => Reply::json(&big),
        _ => Reply::status(404, json!({})),
    });
    let manifest = r#"
[[streams]]
name = "away"
path = "/away"
records = "/data"
primary_key = ["id"]
paginator = { type = "next_url", path = "/next" }
schema = { type = "object", properties = { id = { type = "integer" } } }

[[streams]]
name = "big"
path = "/big"
primary_key = ["id"]
schema = { type = "object", properties = { id = { type = "integer" } } }
"#;
    let project = project(
        &server,
        manifest,
        r#"max_response_mib = 1
auth = { kind = "api_key", query = "key", key = "leak-me-not" }"#,
    );
    let run = project.elt(&["sync", "--connection", "api", "--json"]);
    assert_ne!(run.code(), 0);
    let summary = run.json();
    let error = |s: &str| {
        stream(&summary, s)["error"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        error("away").contains("the next page") && error("away").contains("refused"),
        "{}",
        error("away")
    );
    assert!(
        error("big").contains("larger than `max_response_mib` (1 MiB)"),
        "{}",
        error("big")
    );
    assert!(
        elsewhere.requests().is_empty(),
        "the other host saw {:?}",
        elsewhere.requests()
    );
    assert!(!format!("{}{}", run.stdout(), run.stderr()).contains("leak-me-not"));
}

#[test]
fn a_killed_sync_resumes_at_the_first_page_not_committed() {
    let records: Vec<Value> = (1..=100).map(record).collect();
    let server = TestServer::start(move |request, _| link_reply(request, &records, 10));
    let manifest = r#"
[[streams]]
name = "items"
path = "/items"
primary_key = ["id"]
cursor = "updated_at"
paginator = { type = "link_header" }
schema = { type = "object", properties = { id = { type = "integer" }, name = { type = "string" }, updated_at = { type = "string", format = "date-time" } } }
"#;
    let project = project(&server, manifest, "");
    crate::crash::kill_at(&project, "api", "duckdb.after_commit:4:pause");
    assert_eq!(
        count(&project, "items"),
        "40/40",
        "four pages committed before the kill"
    );
    let before = server.requests().len();
    let rerun = project
        .elt(&["sync", "--connection", "api", "--json"])
        .expect_code(0)
        .json();
    let pages: Vec<usize> = server.requests()[before..]
        .iter()
        .map(|r| number(r, "page", 1))
        .collect();
    assert_eq!(
        pages,
        (5..=10).collect::<Vec<_>>(),
        "the rerun reads pages 5 to 10 once each"
    );
    assert_eq!(stream(&rerun, "items")["rows_read"], 60);
    assert_eq!(count(&project, "items"), "100/100");
}
