//! The error type of the root crate.

use std::time::Duration;

/// What can go wrong in cutrace's injection library and C ABI.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An environment variable holds a value that cannot be used.
    #[error("environment variable {name}={value:?} is not a non-negative integer")]
    BadEnvironment {
        /// Variable name.
        name: String,
        /// Its value.
        value: String,
    },
    /// The configuration cannot be used.
    #[error(transparent)]
    Config(#[from] cutrace_tracer::ConfigError),
    /// The tracer could not start (no CUPTI, CUPTI failed, ...).
    #[error(transparent)]
    Tracer(cutrace_tracer::Error),
    /// Another CUPTI client subscribed first; CUPTI takes one.
    #[error(
        "another CUPTI client (nsys, torch.profiler, ...) is already subscribed in this process"
    )]
    AnotherSubscriber,
    /// A trace file could not be read.
    #[error(transparent)]
    Read(#[from] cutrace_exporter::ReadError),
    /// A table sort key is not one of torch's.
    #[error(transparent)]
    SortKey(#[from] cutrace_tracer::UnknownSortKey),
    /// A table row limit below -1.
    #[error("row_limit {0} is negative (use -1 for all rows)")]
    RowLimit(i64),
    /// A tracer is already installed in this process.
    #[error("cutrace is already initialised in this process (call cutrace_shutdown first)")]
    AlreadyInitialised,
    /// A required pointer argument was null.
    #[error("{argument} is null")]
    NullArgument {
        /// The argument's name.
        argument: &'static str,
    },
    /// A string argument is not UTF-8.
    #[error("{argument} is not UTF-8")]
    NotUtf8 {
        /// The argument's name.
        argument: &'static str,
    },
    /// A background thread could not be started.
    #[error("cannot start the {name} thread: {source}")]
    Thread {
        /// The thread's role.
        name: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// The fork handler that keeps a forked child from driving its parent's
    /// tracer could not be registered.
    #[error("cannot register the fork handler that keeps a forked child off the tracer")]
    AtFork,
    /// The at-exit handler that writes the last window could not be registered.
    #[error("cannot register the at-exit handler that writes the last window")]
    AtExit,
    /// Shutting the tracer down panicked.
    #[error("shutting the tracer down failed; the last window may be missing")]
    ShutdownFailed,
    /// The tracer did not finish writing in time.
    #[error("gave up waiting {0:?} for the trace writer; the last window may be missing")]
    ShutdownTimedOut(Duration),
}

impl From<cutrace_tracer::Error> for Error {
    fn from(error: cutrace_tracer::Error) -> Self {
        if error.is_multiple_subscribers() {
            Error::AnotherSubscriber
        } else {
            Error::Tracer(error)
        }
    }
}
