//! The error type of the root crate.

use std::fmt;
use std::time::Duration;

use cutrace_tracer::UnwrittenWindow;

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
    #[error("cannot start the {name} thread")]
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
