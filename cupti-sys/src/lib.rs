//! NVIDIA CUPTI for cutrace: the raw bindings, the loader that finds libcupti while the
//! program runs, and a thin layer that turns every call into a `Result`.
//!
//! cutrace never links against libcupti. It opens it with `dlopen` ([`load`]), so one
//! binary runs with CUDA 12 or 13, or without CUDA at all (and says so). The crate is
//! layered the way cudarc layers its CUDA libraries:
//!
//! | layer | where | what it gives |
//! |---|---|---|
//! | sys | [`sys`] | bindgen's output, committed: record structs, constants, and [`sys::Cupti`], one `Result` field per C function |
//! | loader | [`load`], [`SearchPlan`], [`Library`] | finds libcupti, refuses a library older than CUDA 12.0 or lacking a required function, says where it came from |
//! | result | methods on [`Library`] ([`result`]) | one method per C function, returning `Result<T, Error>`; failures carry CUPTI's own text |
//!
//! The safe layer (subscriptions that end on drop, the buffer pool, record decoding)
//! belongs to the tracer crate, which knows what it needs.
//!
//! The one thing to know: **every function is optional.** A libcupti of another
//! release may lack any of them, and cutrace runs inside someone else's process, so
//! nothing here panics on a missing symbol (bindgen's own methods on [`sys::Cupti`]
//! would, and are never called). A library that lacks a function the tracer cannot do
//! without is refused when it is loaded ([`Problem::MissingFunctions`]); any other
//! missing function answers [`Error::Unsupported`] when it is called.
//!
//! Activity records are `packed(8)` and only grow between releases (Kernel9's fields
//! sit at the same offsets in Kernel10), so decoders read them with unaligned reads
//! and step through buffers only with [`Library::activity_get_next_record`], which
//! knows the running library's record sizes.

#![deny(missing_docs)]

mod error;
mod loader;
pub mod result;
mod search;
pub mod sys;
#[cfg(test)]
mod test_fixture;
mod version;

pub use error::{Attempt, Error, Problem};
pub use loader::{Library, load};
pub use search::{Environment, LIBRARY_NAMES, Location, OVERRIDE_VAR, Origin, SearchPlan, Step};
pub use sys::CUptiResult;
pub use version::{CudaRelease, CuptiVersion};
