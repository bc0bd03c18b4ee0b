//! The tracer of cutrace: it records what the GPU did through CUPTI's activity API
//! inside iteration-bounded windows and hands each finished window, as a plain-data
//! [`Trace`], to a [`TraceSink`].
//!
//! The trace model ([`model`]) has no FFI in it, so everything downstream of the
//! tracer runs on machines without CUDA. [`decode`] turns CUPTI's activity records
//! into that model without calling CUPTI, so it is tested on byte buffers.

#![deny(missing_docs)]

pub mod decode;
pub mod model;

pub use model::{Trace, TraceSink};
