//! What can go wrong: finding and checking libcupti, and calling it.

use std::fmt;
use std::path::PathBuf;

use crate::search::{OVERRIDE_VAR, Origin, Step};
use crate::sys::CUptiResult;
use crate::version::{CudaRelease, CuptiVersion};

/// The error of every fallible function in this crate.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A library was found (or named) but cannot be used.
    #[error("cannot use {} ({origin}): {problem}", path.display())]
    Unusable {
        /// The file, or the bare name handed to the dynamic linker.
        path: PathBuf,
        /// The search step that offered it.
        origin: Origin,
        /// What is wrong with it.
        problem: Problem,
    },
    /// No step of the search gave a usable library.
    #[error(
        "no usable libcupti found (set {OVERRIDE_VAR} to its path); searched:{}",
        AttemptList(attempts)
    )]
    NotFound {
        /// Every step tried, in order, with what it found.
        attempts: Vec<Attempt>,
    },
    /// The loaded libcupti lacks an optional function.
    #[error("{function} is not available in the loaded libcupti")]
    Unsupported {
        /// The C function's name.
        function: &'static str,
    },
    /// A CUPTI function returned a failure.
    #[error("{function} failed: {message} (CUPTI error {})", code.0)]
    Cupti {
        /// The C function's name.
        function: &'static str,
        /// What it returned; compare with the `CUptiResult` constants.
        code: CUptiResult,
        /// CUPTI's own description of `code` (`cuptiGetResultString`).
        message: String,
    },
}

impl Error {
    /// The result code, when CUPTI returned a failure.
    pub fn cupti_code(&self) -> Option<CUptiResult> {
        match self {
            Error::Cupti { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether CUPTI refused because another subscriber (Nsight Systems,
    /// torch.profiler...) already holds it.
    pub fn is_multiple_subscribers(&self) -> bool {
        self.cupti_code() == Some(CUptiResult::CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED)
    }

    /// Whether CUPTI could not initialise (typically: no driver or no device).
    pub fn is_not_initialized(&self) -> bool {
        self.cupti_code() == Some(CUptiResult::CUPTI_ERROR_NOT_INITIALIZED)
    }
}

/// Why a library cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// The named file does not exist.
    #[error("no such file")]
    Absent,
    /// `dlopen` failed; the text is the dynamic linker's.
    #[error("{0}")]
    Open(String),
    /// Functions the tracer cannot do without are missing.
    #[error("it lacks the required functions {}", .0.join(", "))]
    MissingFunctions(Vec<&'static str>),
    /// The library belongs to a CUDA release older than 12.0.
    #[error("it is {0}; cutrace needs CUDA {min} or newer", min = CudaRelease::MINIMUM)]
    TooOld(CuptiVersion),
    /// `cuptiGetVersion` failed.
    #[error("cannot read its version: {0}")]
    Version(Box<Error>),
}

/// One step of a search that found nothing usable.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The step.
    pub step: Step,
    /// Each library the step offered and why it was refused; empty when there was
    /// none (a folder without any of the library names in it).
    pub refused: Vec<(PathBuf, Problem)>,
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.step)?;
        if self.refused.is_empty() {
            return f.write_str("nothing found");
        }
        for (i, (path, problem)) in self.refused.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            match problem {
                // The dynamic linker's text already starts with the name.
                Problem::Open(text) => f.write_str(text)?,
                problem => write!(f, "{}: {problem}", path.display())?,
            }
        }
        Ok(())
    }
}

/// Attempts, one indented line each.
struct AttemptList<'a>(&'a [Attempt]);

impl fmt::Display for AttemptList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0
            .iter()
            .try_for_each(|attempt| write!(f, "\n  {attempt}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cupti(code: CUptiResult) -> Error {
        Error::Cupti {
            function: "cuptiSubscribe",
            code,
            message: "text".into(),
        }
    }

    #[test]
    fn predicates_match_only_their_code() {
        let multiple = cupti(CUptiResult::CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED);
        assert!(multiple.is_multiple_subscribers());
        assert!(!multiple.is_not_initialized());
        let uninitialized = cupti(CUptiResult::CUPTI_ERROR_NOT_INITIALIZED);
        assert!(uninitialized.is_not_initialized());
        assert!(!uninitialized.is_multiple_subscribers());
        let unsupported = Error::Unsupported {
            function: "cuptiFinalize",
        };
        assert_eq!(unsupported.cupti_code(), None);
        assert!(!unsupported.is_multiple_subscribers());
    }

    #[test]
    fn cupti_failures_name_the_function_the_text_and_the_code() {
        let error = Error::Cupti {
            function: "cuptiSubscribe",
            code: CUptiResult::CUPTI_ERROR_UNKNOWN,
            message: "CUPTI_ERROR_UNKNOWN".into(),
        };
        assert_eq!(
            error.to_string(),
            "cuptiSubscribe failed: CUPTI_ERROR_UNKNOWN (CUPTI error 999)"
        );
    }
}
