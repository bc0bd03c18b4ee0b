//! The error type of the root crate.

/// What can go wrong in cutrace's injection library, C ABI and driver probe.
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
    /// The CUDA driver library could not be opened.
    #[error("no CUDA driver: cannot open {name}: {reason}")]
    DriverNotFound {
        /// Library name or path tried.
        name: String,
        /// The dynamic loader's message.
        reason: String,
    },
    /// The CUDA driver library lacks a function cutrace calls.
    #[error("the CUDA driver has no {symbol} function")]
    DriverSymbol {
        /// Missing symbol.
        symbol: &'static str,
    },
    /// A CUDA driver call failed.
    #[error("{call} failed: {message} (CUresult {code})")]
    DriverCall {
        /// Function called.
        call: &'static str,
        /// `CUresult` returned.
        code: i32,
        /// The driver's message for it.
        message: String,
    },
}
