//! The one error type of the library crates, classified so the runner can decide what to do.
//!
//! The runner retries only [`ErrorKind::Transient`] errors and maps each kind to an exit
//! code. An error carries the stream and the position (cursor, page, file) where it
//! happened, and its source chain. It never carries a secret: connectors build messages
//! from redacted values only (see [`crate::Secret`]).

use std::fmt;

/// What went wrong, as far as retrying and exit codes are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The configuration or environment is wrong; the fix is in `elt.toml` or a variable.
    Config,
    /// A passing fault (network, timeout, overload); retried with backoff.
    Transient,
    /// The system refuses (missing table, permission denied); retrying will not help.
    Permanent,
    /// A record or value cannot be represented in the destination.
    Data,
    /// Another run holds the lock of this connection or stream.
    Locked,
    /// An invariant of elt itself broke; a bug to report.
    Bug,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::Config => "config error",
            Self::Transient => "transient error",
            Self::Permanent => "error",
            Self::Data => "data error",
            Self::Locked => "lock held",
            Self::Bug => "internal error (a bug in elt, please report it)",
        };
        f.write_str(name)
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A classified error with its stream, position and cause.
#[derive(Debug, thiserror::Error)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    stream: Option<String>,
    position: Option<String>,
    #[source]
    source: Option<BoxError>,
}

/// The result type of every library crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind` with a message that says what happened and, where it can, the fix.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            stream: None,
            position: None,
            source: None,
        }
    }

    /// A configuration error; the message names the option and the expected value.
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }

    /// A passing fault worth retrying.
    pub fn transient(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Transient, message)
    }

    /// A refusal that retrying will not change.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Permanent, message)
    }

    /// A value that cannot be represented.
    pub fn data(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Data, message)
    }

    /// A broken invariant of elt.
    pub fn bug(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Bug, message)
    }

    /// Another run holds a lock; the message names the holder.
    pub fn locked(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Locked, message)
    }

    /// Attaches the stream the error happened in (kept if one is already set).
    #[must_use]
    pub fn in_stream(mut self, stream: impl Into<String>) -> Self {
        self.stream.get_or_insert_with(|| stream.into());
        self
    }

    /// Attaches the position (cursor value, page, file) the error happened at.
    #[must_use]
    pub fn at(mut self, position: impl Into<String>) -> Self {
        self.position = Some(position.into());
        self
    }

    /// Attaches the underlying cause; it is printed after the message.
    #[must_use]
    pub fn caused_by(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The classification.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The stream, when the error belongs to one.
    pub fn stream(&self) -> Option<&str> {
        self.stream.as_deref()
    }

    /// The message without stream, position or cause.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the runner may retry the work that failed.
    pub fn is_retryable(&self) -> bool {
        self.kind == ErrorKind::Transient
    }

    /// The message, position and causes without the stream: for a record that already
    /// belongs to the stream (its summary entry, its `_elt_runs` row).
    pub fn detail(&self) -> String {
        format!("{:#}", Detail(self))
    }
}

/// An error's text without its stream.
struct Detail<'a>(&'a Error);

impl fmt::Display for Detail<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let error = self.0;
        f.write_str(&error.message)?;
        if let Some(position) = &error.position {
            write!(f, " (at {position})")?;
        }
        // The cause is printed by whoever walks the chain (`{:#}` in the binary), so that
        // it appears once; `Display` alone is still useful for short logs.
        if !f.alternate() {
            return Ok(());
        }
        let mut cause = std::error::Error::source(error);
        while let Some(err) = cause {
            write!(f, ": {err}")?;
            cause = err.source();
        }
        Ok(())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(stream) = &self.stream {
            write!(f, "stream {stream}: ")?;
        }
        if f.alternate() {
            write!(f, "{:#}", Detail(self))
        } else {
            write!(f, "{}", Detail(self))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_stream_position_and_cause() {
        let io = std::io::Error::other("connection reset");
        let err = Error::transient("reading page failed")
            .in_stream("orders")
            .at("page 3")
            .caused_by(io);
        assert_eq!(
            err.to_string(),
            "stream orders: reading page failed (at page 3)"
        );
        assert_eq!(
            format!("{err:#}"),
            "stream orders: reading page failed (at page 3): connection reset"
        );
        assert!(err.is_retryable());
        assert!(!Error::config("x").is_retryable());
    }

    #[test]
    fn first_stream_wins() {
        let err = Error::data("bad").in_stream("a").in_stream("b");
        assert_eq!(err.stream(), Some("a"));
    }
}
