//! Named fail points for crash tests: places where a test can make the real `elt` binary
//! stop, so it can be killed at a known instant and rerun.
//!
//! `ELT_FAILPOINT=NAME:N:ACTION` triggers on the N-th time the code passes `NAME`.
//! `ACTION` is `pause` (log a `failpoint reached` warning naming it, then sleep until
//! killed), `sleep=MS` (log, sleep, go on), `exit` (log, then exit with code 101 without
//! cleanup) or, at places marked with [`fail`], `fail` (a transient error, which the
//! runner retries). Unset, a fail point costs one `OnceLock` read.
//!
//! Only builds with the `failpoints` feature obey `ELT_FAILPOINT`: elt-runner's tests turn
//! it on through their dev-dependency, so the binary the tests drive has fail points, and a
//! release or `cargo run` build has none (every call below is then a no-op), so no
//! environment variable can stop or fail a production sync.

#[cfg(feature = "failpoints")]
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

struct Plan {
    name: String,
    at: u64,
    action: String,
    hits: AtomicU64,
}

#[cfg(not(feature = "failpoints"))]
fn plan() -> Option<&'static Plan> {
    None
}

#[cfg(feature = "failpoints")]
fn plan() -> Option<&'static Plan> {
    static PLAN: OnceLock<Option<Plan>> = OnceLock::new();
    PLAN.get_or_init(|| {
        let spec = std::env::var("ELT_FAILPOINT").ok()?;
        let mut parts = spec.splitn(3, ':');
        let name = parts.next()?.to_owned();
        let at = parts.next()?.parse().ok()?;
        let action = parts.next().unwrap_or("pause").to_owned();
        Some(Plan {
            name,
            at,
            action,
            hits: AtomicU64::new(0),
        })
    })
    .as_ref()
}

fn triggered(name: &str) -> Option<&'static Plan> {
    let plan = plan()?;
    (plan.name == name && plan.hits.fetch_add(1, Ordering::Relaxed) + 1 == plan.at).then(|| {
        tracing::warn!(failpoint = name, "failpoint reached");
        plan
    })
}

/// Marks the fail point `name` where an injected error can surface: `fail` returns a
/// transient error; other actions behave as in [`hit`].
pub fn fail(name: &str) -> crate::Result<()> {
    match triggered(name) {
        Some(plan) if plan.action == "fail" => {
            Err(crate::Error::transient(format!("failpoint {name}")))
        }
        Some(plan) => {
            act(plan);
            Ok(())
        }
        None => Ok(()),
    }
}

/// Marks the fail point `name`; see the module doc.
pub fn hit(name: &str) {
    if let Some(plan) = triggered(name) {
        act(plan);
    }
}

fn act(plan: &Plan) {
    match plan.action.as_str() {
        "exit" => std::process::exit(101),
        action => {
            let pause = action
                .strip_prefix("sleep=")
                .and_then(|ms| ms.parse().ok())
                .map(Duration::from_millis);
            std::thread::sleep(pause.unwrap_or(Duration::MAX));
        }
    }
}
