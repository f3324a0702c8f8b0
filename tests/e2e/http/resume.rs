//! Resuming the `http` source: after a failed sync of a stream sorted by its cursor, the
//! rerun asks for records from the last committed cursor on; after a killed sync of an
//! unsorted stream, it reads the window again from the first page; then incremental syncs
//! read only what changed. With data that changes in between: `changes.rs`.

use super::*;

#[test]
fn a_failed_sync_of_a_sorted_stream_resumes_from_the_last_committed_cursor() {
    let data: Arc<Mutex<Vec<Value>>> = Arc::new(Mutex::new((1..=50).map(record).collect()));
    let broken = Arc::new(AtomicBool::new(true));
    let (shared, failing) = (data.clone(), broken.clone());
    let server = TestServer::start(move |request, _| {
        // Down from page 3 on, and for the engine's retries (which resume from the
        // committed cursor and so ask with `since`).
        let resumed = request.param("since").is_some();
        if failing.load(Ordering::SeqCst) && (number(request, "page", 1) == 3 || resumed) {
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
sorted_by_cursor = true
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
        state.contains(&format!(r#""from":"{}""#, at(20))),
        "the state names the last committed cursor: {state}"
    );

    broken.store(false, Ordering::SeqCst);
    let before = server.requests().len();
    let rerun = project
        .elt(&["sync", "--connection", "api", "--json"])
        .expect_code(0)
        .json();
    let first = &server.requests()[before];
    assert_eq!(
        first.param("since").as_deref(),
        Some(at(20).as_str()),
        "{}",
        first.target
    );
    assert_eq!(
        first.param("page"),
        None,
        "from the first page: {}",
        first.target
    );
    // 21 to 50: record 20, at the resume cursor, is in the state's `seen` keys.
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
fn a_killed_sync_of_an_unsorted_stream_reads_its_window_again() {
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
        (1..=10).collect::<Vec<_>>(),
        "the rerun reads pages 1 to 10 once each"
    );
    assert_eq!(stream(&rerun, "items")["rows_read"], 100);
    assert_eq!(count(&project, "items"), "100/100");
}
