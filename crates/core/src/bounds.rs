//! Upper bounds on durations and sizes that come from outside: the config, the command
//! line and a server's headers. Each bound is far above any sensible setting and far
//! below the point where `Duration`, `Instant`, chrono or byte arithmetic overflows, so a
//! typo or a hostile value ends in an error that names the option (or, for a server's
//! value, a capped wait), never in a panic or a silent wrap.
//!
//! What it does not do: decide defaults or lower bounds; each config says those itself.

use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// The longest duration elt accepts anywhere, in seconds: ten years.
pub const MAX_SECS: u64 = 10 * 366 * 24 * 3600;

/// The largest size elt accepts for a buffer or a body, in MiB: 64 GiB.
pub const MAX_MIB: u64 = 64 * 1024;

/// Checks a duration option in seconds against [`MAX_SECS`].
pub fn check_secs(option: &str, value: u64) -> Result<()> {
    if value > MAX_SECS {
        return Err(Error::config(format!(
            "`{option}` is {value} seconds; expected at most {MAX_SECS} (ten years)"
        )));
    }
    Ok(())
}

/// Checks a size option in MiB against [`MAX_MIB`] and returns it in bytes.
pub fn mib_to_bytes(option: &str, value: u64) -> Result<u64> {
    if value > MAX_MIB {
        return Err(Error::config(format!(
            "`{option}` is {value} MiB; expected at most {MAX_MIB} (64 GiB)"
        )));
    }
    Ok(value * 1024 * 1024)
}

/// `start + wait`, with `wait` capped at [`MAX_SECS`] (so the sum cannot overflow).
pub fn deadline(start: Instant, wait: Duration) -> Instant {
    start + wait.min(Duration::from_secs(MAX_SECS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_name_the_option_and_never_overflow() {
        assert!(check_secs("lookback_secs", MAX_SECS).is_ok());
        let err = check_secs("lookback_secs", 10_000_000_000_000).unwrap_err();
        assert!(err.message().contains("`lookback_secs`"), "{err}");
        assert_eq!(mib_to_bytes("max_response_mib", 2).unwrap(), 2 << 20);
        let err = mib_to_bytes("max_response_mib", 1 << 44).unwrap_err();
        assert!(err.message().contains("`max_response_mib`"), "{err}");
        // Arithmetic at the bounds stays in range.
        assert!(chrono::Duration::try_seconds(MAX_SECS as i64).is_some());
        let now = Instant::now();
        assert!(deadline(now, Duration::from_secs(u64::MAX)) > now);
    }
}
