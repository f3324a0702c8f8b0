//! Named fail points for crash tests: places where a test can make the real `elt` binary
//! stop, so it can be killed at a known instant and rerun.
//!
//! `ELT_FAILPOINT=NAME:N:ACTION` triggers on the N-th time the code passes `NAME`.
//! `ACTION` is `pause` (print `failpoint NAME reached` on stderr, then sleep until killed),
//! `sleep=MS` (print, sleep, go on) or `exit` (print, then exit with code 101 without
//! cleanup). Unset, a fail point costs one relaxed atomic load.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

struct Plan {
    name: String,
    at: u64,
    action: String,
    hits: AtomicU64,
}

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

/// Marks the fail point `name`; see the module doc.
pub fn hit(name: &str) {
    let Some(plan) = plan() else { return };
    if plan.name != name || plan.hits.fetch_add(1, Ordering::Relaxed) + 1 != plan.at {
        return;
    }
    eprintln!("failpoint {name} reached");
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
