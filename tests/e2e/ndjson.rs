//! The `ndjson` destination end to end: a sync killed between writing lines and committing
//! them, then rerun, leaves every record exactly once; commands that need what the
//! destination does not offer (a run log, SQL) say so instead of failing obscurely.

use std::collections::BTreeMap;

use crate::common::Project;

const PROJECT: &str = r#"
[sources.sample]
type = "sample"
customers = 1000
products = 100
orders = 20000
batch_rows = 1000

[destinations.files]
type = "ndjson"
path = "out"
commit_rows = 1

[connections.demo]
source = "sample"
destination = "files"
streams = [
  { name = "customers", write = "append" },
  { name = "products", write = "append" },
  { name = "orders", write = "append" },
]
"#;

/// How many times each id appears in `out/raw/TABLE.ndjson`.
fn id_counts(project: &Project, table: &str) -> BTreeMap<i64, usize> {
    let path = project.dir().join(format!("out/raw/{table}.ndjson"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let mut counts = BTreeMap::new();
    for line in text.lines() {
        let record: serde_json::Value =
            serde_json::from_str(line).expect("one JSON record per line");
        *counts
            .entry(record["id"].as_i64().expect("id"))
            .or_default() += 1;
    }
    counts
}

#[test]
fn a_killed_sync_rerun_writes_every_record_exactly_once() {
    let project = Project::new(PROJECT);
    // The 8th commit is in the middle of `orders` (20 batches): lines of the next batch
    // are on disk, uncommitted, when the process dies.
    crate::crash::kill_at(&project, "demo", "ndjson.before_commit:8:pause");
    let summary = project
        .elt(&["sync", "--connection", "demo", "--json"])
        .expect_code(0)
        .json();
    let orders = crate::common::stream(&summary, "orders");
    assert!(
        orders["rows_read"].as_u64().unwrap() < 20_000,
        "resumed: {orders}"
    );
    for (table, rows) in [("customers", 1000), ("products", 100), ("orders", 20_000)] {
        let counts = id_counts(&project, table);
        assert_eq!(counts.len(), rows, "{table}: every id");
        assert!(counts.values().all(|&n| n == 1), "{table}: each once");
    }
    // A rerun with nothing new adds no line.
    project
        .elt(&["sync", "--connection", "demo"])
        .expect_code(0);
    assert_eq!(
        id_counts(&project, "orders").values().sum::<usize>(),
        20_000
    );
    let state = project
        .elt(&["state", "show", "--connection", "demo"])
        .expect_code(0);
    assert!(state.stdout().contains("orders"), "{}", state.stdout());
}

#[test]
fn commands_the_destination_cannot_serve_say_why() {
    let tests = "\n[[connections.demo.tests]]\nstream = \"orders\"\nunique = [\"id\"]\n";
    let project = Project::new(&format!("{PROJECT}{tests}"));
    project
        .elt(&["sync", "--connection", "demo"])
        .expect_code(0);
    let runs = project
        .elt(&["runs", "--connection", "demo"])
        .expect_code(2);
    assert!(runs.stderr().contains("no run log"), "{}", runs.stderr());
    let test = project
        .elt(&["test", "--connection", "demo"])
        .expect_code(2);
    assert!(
        test.stderr().contains("no SQL over its tables"),
        "{}",
        test.stderr()
    );
    let merge = PROJECT.replace(
        r#"{ name = "orders", write = "append" }"#,
        r#"{ name = "orders" }"#,
    );
    project.write_config(&merge);
    let sync = project
        .elt(&["sync", "--connection", "demo"])
        .expect_code(4);
    assert!(sync.stdout().contains("only appends"), "{}", sync.stdout());
}
