//! Two syncs of one connection at once: the second exits with the lock error and its exit
//! code, naming the holder; the first completes.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use crate::common::Project;

#[test]
fn a_second_sync_gets_the_lock_error_and_the_first_completes() {
    let project = Project::sample(20_000, 2_000, 0);
    let mut first = project
        .command(&["sync", "--connection", "demo"])
        .env("ELT_FAILPOINT", "duckdb.after_commit:3:sleep=3000")
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the first sync");
    let mut stderr = BufReader::new(first.stderr.take().expect("stderr"));
    let mut line = String::new();
    while !line.contains("failpoint") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).expect("read") > 0,
            "first sync ended early"
        );
    }
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
