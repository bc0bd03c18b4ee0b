//! The error type of the root crate.

use std::time::Duration;

/// What can go wrong in cutrace's injection library and C ABI.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A rank-style environment variable holds a value that cannot be used.
    #[error(transparent)]
    Identity(#[from] cutrace_tracer::IdentityError),
    /// The configuration cannot be used.
    #[error(transparent)]
    Config(#[from] cutrace_tracer::ConfigError),
    /// The tracer could not start (no CUPTI, another CUPTI subscriber, ...).
    #[error(transparent)]
    Tracer(#[from] cutrace_tracer::Error),
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
