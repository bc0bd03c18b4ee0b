//! cutrace: a CUDA GPU tracer. This root crate holds the command line, the injection
//! library and the C ABI; the work is done by `cupti-sys`, `cutrace-tracer` and
//! `cutrace-exporter`.

#![deny(missing_docs)]

pub mod capi;
pub mod driver;
mod error;
mod ffi;
mod host;
pub mod identity;
mod inject;
mod profiler;

pub use error::Error;
