//! The tracer's error type.

/// Why the tracer could not trace.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No CUPTI library could be loaded.
    #[error("cannot load CUPTI: {0}")]
    Load(String),
    /// The loaded CUPTI lacks a function the tracer needs.
    #[error("the loaded CUPTI has no {0}")]
    Missing(&'static str),
    /// A CUPTI call failed.
    #[error("{function} failed: {message} (CUPTI error {code})")]
    Cupti {
        /// The CUPTI function.
        function: &'static str,
        /// CUPTI's result code.
        code: u32,
        /// CUPTI's own message for the code.
        message: String,
    },
    /// The loaded CUPTI is older than the record layouts the decoder reads.
    #[error("CUPTI API version {found} is too old: cutrace needs {needed} (CUDA 12.0) or newer")]
    TooOld {
        /// Version reported by `cuptiGetVersion`.
        found: u32,
        /// Oldest version supported.
        needed: u32,
    },
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
        matches!(self, Error::Cupti { code, .. }
            if *code == cupti_sys::sys::CUptiResult::CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED.0)
    }
}
