//! Two syncs of one connection at once: the second exits with the lock error and its exit
//! code, naming the holder, unless it waits for the lock with `--wait-for-lock`.

use crate::common::Project;

#[test]
fn a_second_sync_gets_the_lock_error_and_the_first_completes() {
    let project = Project::sample(20_000, 2_000, 0);
    let mut first = project.spawn_until(
        &["sync", "--connection", "demo"],
        "duckdb.after_commit:3:sleep=3000",
    );
    let second = project
        .elt(&["sync", "--connection", "demo"])
        .expect_code(3);
    let message = second.stderr();
    assert!(message.contains("in use by another process"), "{message}");
    assert!(
        message.contains(&format!("PID {}", first.id())),
        "names the holder: {message}"
    );
    assert_eq!(message.trim().lines().count(), 1, "one line: {message}");
    let status = first.wait().expect("first sync");
    assert_eq!(status.code(), Some(0));
    assert_eq!(
        project.query("SELECT count(*)::VARCHAR FROM raw.orders"),
        ["20000"]
    );
}

#[test]
fn wait_for_lock_waits_for_the_holder_then_syncs_or_gives_up() {
    let project = Project::sample(20_000, 2_000, 0);
    let mut first = project.spawn_until(
        &["sync", "--connection", "demo"],
        "duckdb.after_commit:3:sleep=4000",
    );
    let gave_up = project
        .elt(&["sync", "--connection", "demo", "--wait-for-lock", "1"])
        .expect_code(3);
    assert!(
        gave_up.stderr().contains("still locked after waiting 1s"),
        "{}",
        gave_up.stderr()
    );
    let started = std::time::Instant::now();
    let waited = project
        .elt(&[
            "sync",
            "--connection",
            "demo",
            "--wait-for-lock",
            "60",
            "--json",
        ])
        .expect_code(0);
    assert!(started.elapsed().as_secs_f64() > 1.0, "it had to wait");
    assert_eq!(first.wait().expect("first sync").code(), Some(0));
    let summary = waited.json();
    // The waiting run started after the first had committed everything: nothing new.
    assert_eq!(crate::common::stream(&summary, "orders")["rows_read"], 0);
    assert_eq!(
        project.query(
            "SELECT count(DISTINCT run_id)::VARCHAR FROM raw._elt_runs WHERE status = 'succeeded'"
        ),
        ["2"]
    );
}
