//! The tracer's error type, and how the tracer words an error with its causes.
//!
//! An error says what went wrong at its own level and leaves the cause to
//! [`std::error::Error::source`], never both: a message that walks the chain (the
//! tracer's warnings, anyhow's `{:#}`) then says each cause once.

/// Why the tracer could not trace.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Loading CUPTI or a CUPTI call failed.
    #[error(transparent)]
    Cupti(#[from] cupti_sys::Error),
    /// Another profiler in this process holds CUPTI (its subscription is process-wide).
    #[error("another cutrace profiler is already active in this process")]
    Busy,
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A background thread could not be started.
    #[error("cannot start the {name} thread")]
    Thread {
        /// The thread's role.
        name: &'static str,
        /// Why.
        source: std::io::Error,
    },
}

/// `error` and each of its causes, joined by `: `.
pub(crate) fn with_causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(next) = cause {
        text.push_str(": ");
        text.push_str(&next.to_string());
        cause = next.source();
    }
    text
}

impl Error {
    /// Whether CUPTI refused because another tool (nsys, torch.profiler) subscribed.
    pub fn is_multiple_subscribers(&self) -> bool {
        matches!(self, Error::Cupti(e) if e.is_multiple_subscribers())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cause_is_said_once() {
        let error = Error::Thread {
            name: "decode",
            source: std::io::Error::from_raw_os_error(11),
        };
        assert_eq!(
            with_causes(&error),
            "cannot start the decode thread: Resource temporarily unavailable (os error 11)"
        );
    }
}
