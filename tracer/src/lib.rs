//! The tracer of cutrace: it records what the GPU did through CUPTI's activity API
//! inside iteration-bounded windows and hands each finished window, as a plain-data
//! [`Trace`], to a [`TraceSink`].
//!
//! The trace model ([`model`]) has no FFI in it, so everything downstream of the
//! tracer runs on machines without CUDA.

#![deny(missing_docs)]

pub mod model;
mod window;

pub use model::{Trace, TraceSink};
pub use window::{Action, Ignored, Schedule, State, Windows};
