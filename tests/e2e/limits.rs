//! No number from a server, the config or the command line makes elt panic: each of these
//! overflowed `Duration`, `Instant` or byte arithmetic (exit 101, or a 0-byte size cap)
//! and now ends in a clear error.

use std::time::{Duration, Instant};

use elt_core::testkit::http::{Reply, TestServer};
use serde_json::json;

use crate::common::{Project, Run, sample_toml};
use crate::http::{project, record};

const ITEMS: &str = r#"
[[streams]]
name = "items"
path = "/items"
primary_key = ["id"]
"#;

fn no_panic(run: &Run) -> String {
    let output = run.stdout() + &run.stderr();
    assert_ne!(run.code(), 101, "panicked: {output}");
    assert!(!output.contains("panicked"), "{output}");
    output
}

#[test]
fn a_huge_retry_after_ends_the_retries_with_a_clear_error() {
    let server = TestServer::start(|_, _| {
        Reply::status(429, json!({})).with_header("retry-after", u64::MAX)
    });
    let project = project(&server, ITEMS, "max_retry_secs = 5");
    let started = Instant::now();
    let run = project.elt(&["sync", "--connection", "api"]);
    let output = no_panic(&run);
    assert_eq!(run.code(), 1, "{output}");
    assert!(output.contains("within `max_retry_secs`"), "{output}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "gave up at once"
    );
}

#[test]
fn huge_durations_and_sizes_in_the_config_are_refused_by_name() {
    let server = TestServer::start(|_, _| Reply::json(json!([record(1)])));
    for (option, expected) in [
        (
            "lookback_secs = 10000000000000",
            "`sources.api.lookback_secs` is 10000000000000 seconds",
        ),
        (
            "max_response_mib = 17592186044416",
            "`sources.api.max_response_mib` is 17592186044416 MiB",
        ),
        (
            "timeout_secs = 9223372036854775807",
            "`sources.api.timeout_secs`",
        ),
    ] {
        let run = project(&server, ITEMS, option).elt(&["sync", "--connection", "api"]);
        let output = no_panic(&run);
        assert_eq!(run.code(), 2, "{option}: {output}");
        assert!(output.contains(expected), "{option}: {output}");
    }
    let toml =
        sample_toml(10, 10, 0).replace("commit_rows = 1", "commit_interval_secs = 10000000000000");
    let run = Project::new(&toml).elt(&["sync", "--connection", "demo"]);
    let output = no_panic(&run);
    assert_eq!(run.code(), 2, "{output}");
    assert!(
        output.contains("`destinations.local.commit_interval_secs` is"),
        "{output}"
    );
}

#[test]
fn a_huge_channel_is_refused_by_name() {
    let toml = sample_toml(10, 10, 0) + "channel_batches = 9223372036854775807\n";
    let run = Project::new(&toml).elt(&["sync", "--connection", "demo"]);
    let output = no_panic(&run);
    assert_eq!(run.code(), 2, "{output}");
    assert!(
        output.contains(
            "`connections.demo.channel_batches` is 9223372036854775807; expected 1 to 1024"
        ),
        "{output}"
    );
}

#[test]
fn huge_numbers_on_the_command_line_are_refused_by_name() {
    let project = Project::sample(10, 10, 0);
    let run = project.elt(&[
        "sync",
        "--connection",
        "demo",
        "--wait-for-lock",
        "18446744073709551615",
    ]);
    let output = no_panic(&run);
    assert_eq!(run.code(), 2, "{output}");
    assert!(output.contains("--wait-for-lock"), "{output}");
    for args in [
        &[
            "runs",
            "--connection",
            "demo",
            "--limit",
            "18446744073709551615",
        ][..],
        &[
            "dead-letter",
            "list",
            "--connection",
            "demo",
            "--limit",
            "18446744073709551615",
        ],
    ] {
        let run = project.elt(args);
        let output = no_panic(&run);
        assert_eq!(run.code(), 2, "{args:?}: {output}");
        assert!(output.contains("--limit"), "{args:?}: {output}");
    }
}
