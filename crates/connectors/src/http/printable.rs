//! A server's bytes as text that is safe to put in an error message, a log line or
//! `_elt_runs`: nothing a terminal would act on. Redacting credentials is `auth.rs`'s job,
//! not this file's.

/// `bytes` as text with control characters (terminal escape sequences among them, and
/// line breaks) as `?`, and invalid UTF-8 as U+FFFD.
pub fn printable(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn escape_sequences_do_not_reach_the_terminal() {
        assert_eq!(
            super::printable(b"bad \x1b[2J\x1b]0;owned\x07 request\n\xff"),
            "bad ?[2J?]0;owned? request?\u{fffd}"
        );
    }
}
