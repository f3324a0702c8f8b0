//! Retrying transient errors with exponential backoff: the shared schedule, and a helper
//! for calls that are retried whole (discovery). A stream's attempts, which resume from the
//! last checkpoint, use the schedule in `stream.rs`.

use std::time::Duration;

use backoff::backoff::Backoff;
use elt_core::Result;

/// Retries `work` on transient errors with exponential backoff.
pub(crate) async fn with_retries<T, F, Fut>(max_retries: u32, mut work: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut backoff = retry_backoff();
    let mut attempt = 0;
    loop {
        match work().await {
            Err(e) if e.is_retryable() && attempt < max_retries => {
                attempt += 1;
                let wait = backoff.next_backoff().unwrap_or(Duration::from_secs(30));
                tracing::warn!(error = %e, ?wait, "retrying after a transient error");
                tokio::time::sleep(wait).await;
            }
            other => return other,
        }
    }
}

pub(crate) fn retry_backoff() -> backoff::ExponentialBackoff {
    backoff::ExponentialBackoff {
        initial_interval: Duration::from_millis(500),
        max_interval: Duration::from_secs(30),
        max_elapsed_time: None,
        ..Default::default()
    }
}
