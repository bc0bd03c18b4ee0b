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
            source: without_temporary_path(source),
        }
    }
}

/// The cause of an error `tempfile` made, without the temporary file's name it
/// appends (`... at path "/dir/.x.tmp"`): the file the user named says where.
fn without_temporary_path(error: std::io::Error) -> std::io::Error {
    let message = match error.get_ref() {
        Some(inner) => inner.to_string(),
        None => return error,
    };
    match message.find(" at path \"") {
        Some(at) => std::io::Error::new(error.kind(), &message[..at]),
        None => error,
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error;

    use super::*;

    #[test]
    fn a_temporary_file_is_not_named_in_the_cause() {
        let missing = tempfile::NamedTempFile::new_in("/nonexistent/dir").unwrap_err();
        assert!(missing.to_string().contains("at path"), "{missing}");
        let error = ExportError::io("/nonexistent/dir", missing);
        assert_eq!(error.to_string(), "/nonexistent/dir");
        assert_eq!(
            error.source().unwrap().to_string(),
            "No such file or directory (os error 2)"
        );
    }
}
