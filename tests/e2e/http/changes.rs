//! A sync killed in the middle, the API's data changed before the rerun (updates that
//! move records to the end of the list, inserts, deletes), then the rerun: the table holds
//! every record the server has, with its current values, once. For each of the five
//! paginators (sorted by the cursor and resuming from it, or not and reading the window
//! again) and for a child stream, at ten kill points each.

use std::process::Child;

use super::*;

/// The server's records: id, name and `updated_at`; served sorted by `(updated_at, id)`,
/// from `since` on (inclusive), ten to a page.
type Data = Arc<Mutex<Vec<Value>>>;

const PAGE: usize = 10;

fn item(id: usize, second: usize, name: &str) -> Value {
    json!({ "id": id, "name": name, "updated_at": at(second) })
}

fn initial() -> Vec<Value> {
    // Pairs of records share a timestamp, so ties straddle page boundaries.
    (1..=120).map(|i| item(i, i / 2, "v1")).collect()
}

/// Updates 15 early records (they move to the end), inserts 5, deletes 5.
fn change(data: &Data, round: usize) {
    let mut records = data.lock().unwrap();
    let late = 1_000 + round * 10;
    for r in records
        .iter_mut()
        .filter(|r| r["id"].as_u64().unwrap() % 8 == 1)
    {
        *r = item(
            r["id"].as_u64().unwrap() as usize,
            late,
            &format!("v{round}"),
        );
    }
    let next = records
        .iter()
        .map(|r| r["id"].as_u64().unwrap())
        .max()
        .unwrap() as usize
        + 1;
    records.extend((next..next + 5).map(|i| item(i, late + 1, "new")));
    records.retain(|r| r["id"].as_u64().unwrap() % 23 != (round % 23) as u64);
}

fn visible(data: &Data, request: &Request) -> Vec<Value> {
    let since = request.param("since").unwrap_or_default();
    let mut records: Vec<Value> = data
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r["updated_at"].as_str().unwrap() >= since.as_str())
        .cloned()
        .collect();
    records.sort_by_key(|r| {
        (
            r["updated_at"].as_str().unwrap().to_owned(),
            r["id"].as_u64(),
        )
    });
    records
}

/// Serves every paginator at its own path, and `/parents/{pid}/items` for the child.
fn server(data: Data) -> TestServer {
    TestServer::start(move |request, _| {
        let records = visible(&data, request);
        let since = request
            .param("since")
            .map(|s| format!("&since={s}"))
            .unwrap_or_default();
        match request.path() {
            "/offset" => {
                let offset = number(request, "offset", 0);
                Reply::json(
                    json!({ "items": records.iter().skip(offset).take(PAGE).collect::<Vec<_>>() }),
                )
            }
            "/pages" => {
                Reply::json(json!({ "items": page_of(&records, number(request, "page", 1), PAGE) }))
            }
            "/cursor" => {
                let from = number(request, "token", 0);
                let next = (from + PAGE < records.len()).then(|| (from + PAGE).to_string());
                Reply::json(
                    json!({ "data": page_of(&records, from / PAGE + 1, PAGE), "next": next }),
                )
            }
            "/next" => {
                let page = number(request, "p", 1);
                let next =
                    (page * PAGE < records.len()).then(|| format!("/next?p={}{since}", page + 1));
                Reply::json(json!({ "results": page_of(&records, page, PAGE), "next": next }))
            }
            "/link" => link_reply(request, &records, PAGE),
            "/parents" => Reply::json(json!([{ "pid": 1 }, { "pid": 2 }, { "pid": 3 }])),
            path => {
                // A child list: the records whose id modulo 3 is the parent's.
                let pid: u64 = path
                    .split('/')
                    .nth(2)
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(0);
                let mine: Vec<Value> = records
                    .into_iter()
                    .filter(|r| r["id"].as_u64().unwrap() % 3 + 1 == pid)
                    .collect();
                link_reply(request, &mine, PAGE)
            }
        }
    })
}

const SCHEMA: &str = r#"schema = { type = "object", properties = { id = { type = "integer" }, name = { type = "string" }, updated_at = { type = "string", format = "date-time" } } }"#;

fn manifest(paginator: &str, sorted: bool) -> String {
    let (path, records, pages) = match paginator {
        "offset" => ("/offset", "/items", r#"{ type = "offset", limit = 10 }"#),
        "page_number" => ("/pages", "/items", r#"{ type = "page_number", size = 10 }"#),
        "cursor_token" => (
            "/cursor",
            "/data",
            r#"{ type = "cursor_token", path = "/next", param = "token" }"#,
        ),
        "next_url" => (
            "/next",
            "/results",
            r#"{ type = "next_url", path = "/next" }"#,
        ),
        _ => ("/link", "", r#"{ type = "link_header" }"#),
    };
    format!(
        r#"
[[streams]]
name = "items"
path = "{path}"
records = "{records}"
primary_key = ["id"]
cursor = "updated_at"
cursor_param = "since"
sorted_by_cursor = {sorted}
paginator = {pages}
{SCHEMA}
"#
    )
}

const CHILD: &str = r#"
[[streams]]
name = "parents"
path = "/parents"
primary_key = ["pid"]
schema = { type = "object", properties = { pid = { type = "integer" } } }

[[streams]]
name = "items"
path = "/parents/{pid}/items"
primary_key = ["id"]
cursor = "updated_at"
cursor_param = "since"
paginator = { type = "link_header" }
parent = { stream = "parents", field = "pid", var = "pid" }
"#;

fn child_manifest() -> String {
    format!("{CHILD}{SCHEMA}\n")
}

/// Starts a sync of `items` and kills it once the server has answered `requests` more
/// requests (the child stream has no mid-sync commit to stop at).
fn kill_after_requests(project: &Project, server: &TestServer, requests: usize) {
    let before = server.requests().len();
    let mut child: Child = project
        .command(&["sync", "--connection", "api", "--streams", "items"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start elt");
    let started = std::time::Instant::now();
    while server.requests().len() < before + requests && started.elapsed() < Duration::from_secs(20)
    {
        if child.try_wait().expect("poll").is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = child.kill();
    child.wait().expect("reap");
}

/// The table equals the server: each record once, with its current name and time.
fn assert_equal(project: &Project, data: &Data, what: &str) {
    let mut expected: Vec<String> = data
        .lock()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{}|{}|{}",
                r["id"],
                r["name"].as_str().unwrap(),
                r["updated_at"].as_str().unwrap()
            )
        })
        .collect();
    expected.sort();
    let ids: Vec<String> = data
        .lock()
        .unwrap()
        .iter()
        .map(|r| r["id"].to_string())
        .collect();
    let mut loaded = project.query(&format!(
        "SELECT id || '|' || name || '|' || strftime(updated_at, '%Y-%m-%dT%H:%M:%SZ') FROM raw.items WHERE id IN ({})",
        ids.join(",")
    ));
    loaded.sort();
    assert_eq!(loaded, expected, "{what}");
    let counted = count(project, "items");
    let (rows, ids) = counted.split_once('/').unwrap();
    assert_eq!(rows, ids, "{what}: a record twice");
}

fn kill_change_rerun(paginator: &str) {
    for kill_point in 1..=10 {
        let data: Data = Arc::new(Mutex::new(initial()));
        let server = server(data.clone());
        let sorted = kill_point % 2 == 0;
        let manifest = if paginator == "child" {
            child_manifest()
        } else {
            manifest(paginator, sorted)
        };
        let project = project(&server, &manifest, "");
        let what = format!("{paginator}, sorted {sorted}, kill point {kill_point}");
        // Killed in the middle of its first sync (12 pages; a commit after each).
        if paginator == "child" {
            kill_after_requests(&project, &server, kill_point + 1);
        } else {
            crate::crash::kill_at(
                &project,
                "api",
                &format!("duckdb.after_commit:{kill_point}:pause"),
            );
        }
        change(&data, 2);
        project.elt(&["sync", "--connection", "api"]).expect_code(0);
        assert_equal(&project, &data, &what);
        // A later sync finds what changed after, and nothing was left behind the watermark.
        change(&data, 3);
        project.elt(&["sync", "--connection", "api"]).expect_code(0);
        assert_equal(&project, &data, &format!("{what}, next sync"));
    }
}

#[test]
fn kill_change_rerun_offset() {
    kill_change_rerun("offset");
}

#[test]
fn kill_change_rerun_page_number() {
    kill_change_rerun("page_number");
}

#[test]
fn kill_change_rerun_cursor_token() {
    kill_change_rerun("cursor_token");
}

#[test]
fn kill_change_rerun_next_url() {
    kill_change_rerun("next_url");
}

#[test]
fn kill_change_rerun_link_header() {
    kill_change_rerun("link_header");
}

#[test]
fn kill_change_rerun_child_stream() {
    kill_change_rerun("child");
}
