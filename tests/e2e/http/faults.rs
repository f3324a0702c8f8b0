//! The `http` source's faults and limits: 429 with `Retry-After`, 5xx, a reset, a stall,
//! cut and truncated bodies; loops; a value of the wrong type; the rate limit; a next URL
//! to another host and an oversized page.

use super::*;

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
