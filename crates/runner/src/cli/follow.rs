//! `elt sync --follow`: runs the sync again and again, a pause between the end of one run
//! and the start of the next, until SIGTERM or Ctrl-C. A signal never interrupts a run: it
//! lets the current one finish and commit, then ends the loop (exit code of the last run).
//! A run that fails, or cannot start, is reported and followed by the next, so a source
//! that restarts is caught up with; a configuration error ends the loop at once, as do
//! three failed runs in a row. What it does not do: stream within one run (each run reads what is there).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use super::exit;

/// Failed runs in a row after which --follow gives up.
const MAX_FAILED_RUNS: u32 = 3;

/// Calls `run` (one sync, returning its exit code) until a signal, `interval` apart.
pub async fn follow<F, Fut>(interval: Duration, mut run: F) -> anyhow::Result<i32>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<i32>>,
{
    let stop = Arc::new(AtomicBool::new(false));
    let woken = Arc::new(Notify::new());
    watch_signals(stop.clone(), woken.clone())?;
    let mut failed_in_a_row = 0;
    for number in 1.. {
        let code = match run().await {
            Ok(code) => code,
            Err(e) if exit::for_error(&e) == exit::CONFIG => return Err(e),
            Err(e) => {
                // The run could not start (the source is down, the lock is held): try again.
                eprintln!("elt: run {number} failed: {e:#}");
                exit::FAILED
            }
        };
        if code == exit::SUCCESS || code == exit::PARTIAL {
            failed_in_a_row = 0;
        } else {
            failed_in_a_row += 1;
            if failed_in_a_row >= MAX_FAILED_RUNS {
                tracing::error!("--follow: {MAX_FAILED_RUNS} runs in a row failed; stopping");
                return Ok(code);
            }
        }
        if stop.load(Ordering::SeqCst) {
            tracing::info!("--follow: stopped by a signal after run {number}");
            return Ok(code);
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = woken.notified() => {
                tracing::info!("--follow: stopped by a signal after run {number}");
                return Ok(code);
            }
        }
    }
    Ok(exit::SUCCESS)
}

/// Sets `stop` and wakes the pause on SIGTERM or Ctrl-C.
fn watch_signals(stop: Arc<AtomicBool>, woken: Arc<Notify>) -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        stop.store(true, Ordering::SeqCst);
        woken.notify_one();
    });
    Ok(())
}
