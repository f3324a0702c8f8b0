//! What elt-bench reads from /proc: a process's peak RSS (VmHWM), the CPU seconds of the
//! children this process waited for, and those of the local PostgreSQL server (every
//! `postgres` process, with the backends it reaped). Linux only; nothing here writes.

/// Clock ticks per second of /proc's times (USER_HZ, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// The numbers of /proc/`pid`/stat from field 4 (the parent's pid) on, and whether the
/// command is `postgres`.
fn proc_stat(pid: &str) -> Option<(bool, Vec<u64>)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (head, rest) = text.rsplit_once(')')?;
    let numbers = rest
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    Some((head.ends_with("(postgres"), numbers))
}

/// Where [`proc_stat`]'s numbers hold utime and stime (fields 14, 15), then cutime and
/// cstime (16, 17: the children the process waited for).
const OWN_TIMES: std::ops::Range<usize> = 10..12;
const REAPED_TIMES: std::ops::Range<usize> = 12..14;

/// The seconds in `numbers[range]` (clock ticks).
fn seconds(numbers: &[u64], range: std::ops::Range<usize>) -> f64 {
    numbers.get(range).map_or(0, |t| t.iter().sum::<u64>()) as f64 / TICKS_PER_SEC
}

/// CPU seconds of the children this process waited for.
pub fn children_cpu_secs() -> f64 {
    proc_stat("self").map_or(0.0, |(_, numbers)| seconds(&numbers, REAPED_TIMES))
}

/// CPU seconds of every `postgres` process now, with the backends each reaped.
pub fn server_cpu_secs() -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|pid| proc_stat(&pid))
        .filter(|(postgres, _)| *postgres)
        .map(|(_, numbers)| seconds(&numbers, OWN_TIMES) + seconds(&numbers, REAPED_TIMES))
        .sum()
}

/// The peak resident set size in KB from the text of /proc/PID/status.
pub fn vm_hwm_kb(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
}
