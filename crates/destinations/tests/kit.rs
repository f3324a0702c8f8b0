//! The conformance kit (`elt_core::testkit`) against each destination: DuckDB in a
//! temporary file, PostgreSQL in a fresh database on the local server (`ELT_TEST_PG_URL`).

use elt_core::testkit::{ConfigCases, DestinationKit, fresh_pg_database};
use serde_json::json;

fn factory(kind: &str) -> elt_core::DestinationFactory {
    elt_destinations::destinations()
        .into_iter()
        .find(|f| f.kind == kind)
        .expect("registered")
}

#[tokio::test(flavor = "multi_thread")]
async fn duckdb_passes_the_kit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kit.duckdb").to_string_lossy().into_owned();
    let kit = DestinationKit {
        factory: factory("duckdb"),
        cases: ConfigCases {
            config: json!({ "path": path, "commit_rows": 1, "threads": 1 }),
            bad_options: vec![
                ("path", json!(":memory:")),
                ("commit_rows", json!(0)),
                ("memory_limit", json!("lots")),
            ],
            unreachable: Some(json!({ "path": "/proc/elt-kit/no/such/dir/kit.duckdb" })),
            secrets: vec![],
        },
        dataset: "raw".into(),
    };
    for check in kit.run().await {
        println!("duckdb: {check}");
    }
    // The kit found this: a dataset named like the file is ambiguous in DuckDB, so it is
    // refused with a message naming both.
    let same_name = DestinationKit {
        dataset: "kit".into(),
        ..kit
    };
    let destination = same_name.factory.build(&same_name.cases.config).unwrap();
    let error = destination.open("c", "kit").await.err().expect("refused");
    assert_eq!(error.kind(), elt_core::ErrorKind::Config);
    assert!(error.message().contains("same name"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_passes_the_kit() {
    let url = fresh_pg_database("elt_kit_destination").await;
    let kit = DestinationKit {
        factory: factory("postgres"),
        cases: ConfigCases {
            config: json!({ "url": url, "commit_rows": 1 }),
            bad_options: vec![("lease_secs", json!(0)), ("commit_rows", json!(-1))],
            unreachable: Some(json!({
                "url": "postgres://elt:kit-secret-pw@127.0.0.1:1/elt_kit_destination",
                "connect_timeout_secs": 2
            })),
            secrets: vec!["kit-secret-pw".into()],
        },
        dataset: "kit".into(),
    };
    for check in kit.run().await {
        println!("postgres: {check}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ndjson_passes_the_kit_and_keeps_only_committed_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("files").to_string_lossy().into_owned();
    let kit = DestinationKit {
        factory: factory("ndjson"),
        cases: ConfigCases {
            config: json!({ "path": path, "commit_rows": 1 }),
            bad_options: vec![("path", json!("")), ("commit_rows", json!(0))],
            unreachable: Some(json!({ "path": "/proc/elt-kit/no/such/dir" })),
            secrets: vec![],
        },
        dataset: "kit".into(),
    };
    for check in kit.run().await {
        println!("ndjson: {check}");
    }
    // The kit committed rows 1..=7 in two loads (its second stream stopped after a
    // checkpoint that commit_rows = 1 committed): every line is one of them, once.
    let lines = std::fs::read_to_string(dir.path().join("files/kit/elt_kit_items.ndjson")).unwrap();
    let ids: Vec<String> = lines
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].to_string())
        .collect();
    assert_eq!(ids, ["1", "2", "3", "4", "5", "6", "7"]);
    // A second writer of the same directory is refused while the first holds it.
    let destination = kit.factory.build(&kit.cases.config).unwrap();
    let _first = destination.open("elt_kit", "kit").await.unwrap();
    let second = destination
        .open("elt_kit", "kit")
        .await
        .err()
        .expect("locked");
    assert_eq!(second.kind(), elt_core::ErrorKind::Locked, "{second}");
}
