//! cutrace: a CUDA GPU tracer that lives inside GPU worker processes and writes,
//! for each window of iterations, a Kineto-compatible trace and torch's
//! key-averages table.
//!
//! This root crate is how cutrace gets into a process, three ways:
//! - embedded in a Rust program: [`profiler`] gives a [`Profiler`] (`start`,
//!   `step` once per iteration, `stop`, `annotate`) that writes its windows to
//!   files;
//! - through the C ABI of `include/cutrace.h` ([`capi`]), for C, C++ or Python's
//!   `ctypes`;
//! - with no code change: the CUDA driver loads `libcutrace.so` as an injection
//!   library (`CUDA_INJECTION64_PATH`), which is what `cutrace run` sets up.
//!
//! The one rule every entry point keeps: cutrace lives in someone else's process,
//! so no failure of its own may stop, crash or hang that process. Each `extern
//! "C"` function catches panics in one trampoline; a missing CUPTI or driver is a
//! warning and an untraced run.
//!
//! The work itself is done by the crates below this one: `cupti-sys` (bindings
//! and loader), `cutrace-tracer` (CUPTI session, windows, trace model) and
//! `cutrace-exporter` (trace files, tables, reading traces back).

#![deny(missing_docs)]

pub mod capi;
mod error;
mod ffi;
mod host;
mod inject;
mod profiler;

pub use cutrace_tracer::{Profiler, ProfilerConfig, RangeGuard, identity};
pub use error::Error;
pub use profiler::profiler;
