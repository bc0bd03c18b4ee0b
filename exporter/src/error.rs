//! The exporter's error type.
//!
//! An error says what went wrong at its own level and leaves the cause to
//! `source()`, never both, so that a message walking the chain says each cause
//! once.

use std::path::PathBuf;

/// Everything that can go wrong while exporting a trace.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Reading or writing a file failed.
    #[error("{}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The worker name cannot be part of a file name.
    #[error("invalid worker name {name:?}: {reason}")]
    InvalidWorkerName {
        /// The name as given.
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// The trace file is not valid JSON of the expected shape.
    #[error("{}: {reason}", path.display())]
    Malformed {
        /// The file read.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

impl ExportError {
    /// An I/O error on `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ExportError::Io {
            path: path.into(),
            source,
        }
    }
}
