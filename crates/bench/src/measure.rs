//! Running one workload in a child process (the bench re-executes itself) and measuring it:
//! wall time, peak RSS (VmHWM, sampled every 20 ms), CPU seconds of the child and of the
//! local PostgreSQL server, and the number the child printed. What it does not do: judge
//! the numbers.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::procfs::{children_cpu_secs, server_cpu_secs, vm_hwm_kb};

/// One measured child run: wall time, peak RSS, CPU seconds of the child and of the
/// PostgreSQL server, and what it printed (rows or bytes).
pub struct Measure {
    pub secs: f64,
    pub peak_rss_mb: f64,
    pub cpu_secs: f64,
    pub server_cpu_secs: f64,
    pub output: u64,
}

/// Runs this program with `args` in a child process and measures it.
pub fn measure(args: &[&str]) -> Result<Measure> {
    let (cpu_before, server_before) = (children_cpu_secs(), server_cpu_secs());
    let started = Instant::now();
    let mut child = Command::new(std::env::current_exe()?)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("starting a child")?;
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak_kb = 0u64;
    while child.try_wait()?.is_none() {
        if let Some(kb) = std::fs::read_to_string(&status_path)
            .ok()
            .as_deref()
            .and_then(vm_hwm_kb)
        {
            peak_kb = peak_kb.max(kb);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let secs = started.elapsed().as_secs_f64();
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("child {args:?} failed");
    }
    // A backend's times reach the postmaster when it is reaped, just after it exits.
    std::thread::sleep(Duration::from_millis(100));
    let cpu_secs = children_cpu_secs() - cpu_before;
    let server_cpu_secs = (server_cpu_secs() - server_before).max(0.0);
    let output = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    Ok(Measure {
        secs,
        peak_rss_mb: peak_kb as f64 / 1024.0,
        cpu_secs,
        server_cpu_secs,
        output,
    })
}
