//! Workers of the `postgres` destination, each test in its own database: kill-and-rerun,
//! concurrent workers on different streams, and fencing of a paused worker whose stream was
//! taken over.

use std::process::Command;
use std::time::Duration;

use crate::common::Project;
use crate::pg::{fresh_database, query};
use crate::pg_destination::{clean_digests, digest, sample_to_pg};

#[test]
fn killed_mid_load_then_rerun_equals_a_clean_run() {
    let url = fresh_database("pgdest_kill");
    let project = Project::new(&sample_to_pg(&url, 40_000, 2_000, 0));
    crate::crash::kill_at(&project, "merge", "postgres.after_commit:8:pause");
    let partial: u64 = query(&url, "SELECT count(*)::text FROM merge.orders")[0]
        .parse()
        .unwrap();
    assert!(
        partial > 0 && partial < 40_000,
        "killed mid-load: {partial}"
    );
    // The killed worker's lease (1 s) still holds the stream for a moment: wait for it.
    project
        .elt(&[
            "sync",
            "--connection",
            "merge",
            "--quiet",
            "--wait-for-lock",
            "10",
        ])
        .expect_code(0);
    let (orders, customers) = clean_digests("pgdest_kill_ref", 40_000, 0);
    assert_eq!(digest(&url, "merge.orders"), orders);
    assert_eq!(digest(&url, "merge.customers"), customers);
    assert_eq!(
        query(
            &url,
            "SELECT status FROM merge._elt_runs WHERE stream = 'orders' ORDER BY run_id"
        ),
        ["abandoned", "succeeded"]
    );
}

#[test]
fn workers_on_different_streams_run_at_once_and_a_stream_has_one_worker() {
    let url = fresh_database("pgdest_workers");
    let project = Project::new(&sample_to_pg(&url, 20_000, 1_000, 0));
    let mut orders = project.spawn_until(
        &[
            "sync",
            "--connection",
            "merge",
            "--streams",
            "orders",
            "--quiet",
        ],
        "postgres.after_commit:2:sleep=6000",
    );
    let started = std::time::Instant::now();
    let customers = project.elt(&[
        "sync",
        "--connection",
        "merge",
        "--streams",
        "customers,products",
    ]);
    customers.expect_code(0);
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "the customers worker did not wait for the orders worker"
    );
    let same_stream = project
        .elt(&["sync", "--connection", "merge", "--streams", "orders"])
        .expect_code(3);
    assert!(
        same_stream
            .stdout()
            .contains("is being loaded by another worker"),
        "{}",
        same_stream.stdout()
    );
    // A worker on every stream loads the free ones and reports the held one: partial.
    let all = project
        .elt(&["sync", "--connection", "merge", "--json"])
        .expect_code(4)
        .json();
    let statuses: Vec<_> = all["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{}={}",
                s["stream"].as_str().unwrap(),
                s["status"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        statuses,
        ["customers=succeeded", "products=succeeded", "orders=failed"]
    );
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "all within the first worker's pause"
    );
    assert_eq!(orders.wait().unwrap().code(), Some(0));
    let (clean_orders, clean_customers) = clean_digests("pgdest_workers_ref", 20_000, 0);
    assert_eq!(digest(&url, "merge.orders"), clean_orders);
    assert_eq!(digest(&url, "merge.customers"), clean_customers);
}

#[test]
fn a_paused_worker_whose_stream_was_taken_over_commits_nothing() {
    let url = fresh_database("pgdest_fence");
    let project = Project::new(&sample_to_pg(&url, 20_000, 1_000, 0));
    let first = project.spawn_until(
        &[
            "sync",
            "--connection",
            "merge",
            "--streams",
            "orders",
            "--json",
        ],
        "postgres.after_commit:3:sleep=500",
    );
    let signal = |sig: &str| {
        let ok = Command::new("kill")
            .args([sig, &first.id().to_string()])
            .status()
            .expect("kill");
        assert!(ok.success());
    };
    signal("-STOP");
    let committed_by_first = query(&url, "SELECT count(*)::text FROM merge.orders").remove(0);
    // The lease (1 s) runs out while the first worker is stopped.
    std::thread::sleep(Duration::from_millis(2_500));
    let second = project
        .elt(&[
            "sync",
            "--connection",
            "merge",
            "--streams",
            "orders",
            "--json",
        ])
        .expect_code(0)
        .json();
    let after_second = digest(&url, "merge.orders");
    signal("-CONT");
    let output = first.wait_with_output().expect("first worker");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(
        output.status.code(),
        Some(3),
        "the first worker fails: {stdout}"
    );
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).expect("summary");
    let error = crate::common::stream(&summary, "orders")["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(error.contains("lost the lock of stream orders"), "{error}");
    // Nothing changed after the second worker: the data is what it loaded.
    assert_eq!(digest(&url, "merge.orders"), after_second);
    let (clean_orders, _) = clean_digests("pgdest_fence_ref", 20_000, 0);
    assert_eq!(after_second, clean_orders);
    assert_eq!(
        query(
            &url,
            "SELECT run_id FROM merge._elt_state WHERE stream = 'orders'"
        ),
        [second["run_id"].as_str().unwrap()]
    );
    let read_by_second = crate::common::stream(&second, "orders")["rows_read"]
        .as_u64()
        .unwrap();
    assert_eq!(
        read_by_second,
        20_000 - committed_by_first.parse::<u64>().unwrap(),
        "the second worker resumed from the first one's last commit"
    );
}
