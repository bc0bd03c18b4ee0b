//! The error type of the root crate.

use std::fmt;
use std::time::Duration;

use cutrace_tracer::UnwrittenWindow;

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
    #[error("cannot start the {name} thread")]
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
    /// The tracer did not finish shutting down in time.
    #[error("{}", TimedOut { wait: *wait, unwritten, on_timeout: *on_timeout })]
    ShutdownTimedOut {
        /// How long it was waited for.
        wait: Duration,
        /// The windows it had not written then.
        unwritten: Vec<UnwrittenWindow>,
        /// What became of them.
        on_timeout: OnTimeout,
    },
}

/// What a shutdown that takes too long does with the windows not written yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnTimeout {
    /// The process goes on: they are written in the background.
    KeepWriting,
    /// The process is exiting: what was begun of them is removed.
    Abandon,
}

/// The message of [`Error::ShutdownTimedOut`].
struct TimedOut<'a> {
    wait: Duration,
    unwritten: &'a [UnwrittenWindow],
    on_timeout: OnTimeout,
}

impl fmt::Display for TimedOut<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let wait = self.wait;
        if self.unwritten.is_empty() {
            return write!(
                f,
                "gave up waiting {wait:?} for the tracer to shut down; nothing was left to write"
            );
        }
        match self.on_timeout {
            OnTimeout::KeepWriting => write!(
                f,
                "gave up waiting {wait:?} for the trace writer; still being written: "
            )?,
            OnTimeout::Abandon => write!(
                f,
                "gave up waiting {wait:?} for the trace writer; lost, their unfinished files removed: "
            )?,
        }
        for (i, window) in self.unwritten.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{window}")?;
        }
        Ok(())
    }
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
