//! The tracer's error type.

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
    #[error("cannot start the {name} thread: {source}")]
    Thread {
        /// The thread's role.
        name: &'static str,
        /// Why.
        source: std::io::Error,
    },
}

impl Error {
    /// Whether CUPTI refused because another tool (nsys, torch.profiler) subscribed.
    pub fn is_multiple_subscribers(&self) -> bool {
        matches!(self, Error::Cupti(e) if e.is_multiple_subscribers())
    }
}
