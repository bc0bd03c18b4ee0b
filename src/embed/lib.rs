//! cutrace: a CUDA GPU tracer that lives inside GPU worker processes and writes,
//! for each window of iterations, a Kineto-compatible trace and torch's
//! key-averages table.
//!
//! This root crate is how cutrace gets into a process, three ways:
//! - embedded in a Rust program: [`profiler`] gives a [`Profiler`] (`start`,
//!   `step` once per iteration, `stop`, `annotate`) that writes its windows to
//!   files;
//! - through the C ABI of `include/cutrace.h` ([`capi`]), for C, C++ and the
//!   Python package (`python/`), which drives the tracer through it;
//! - with no code change: the CUDA driver loads `libcutrace.so` as an injection
//!   library (`CUDA_INJECTION64_PATH`), which is what `cutrace run` sets up.
//!
//! The library also carries the `cutrace` command itself ([`command`], the code of
//! `src/cli/`), exported to C as `cutrace_main`: a Python wheel ships one kind of
//! artifact, so the pip-installed `cutrace` is a console script calling it in the
//! package's `libcutrace.so`, the same library that `cutrace run` then injects.
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
// The command's folder says whom it serves; the library carries it (see above).
#[path = "../cli/mod.rs"]
pub mod command;
mod error;
mod ffi;
mod host;
mod inject;
mod loaded;
mod profiler;
mod written;

/// Counts memory against the ceiling `report` and `convert` are held to, and turns
/// running out of memory into one line and exit status 1 rather than an abort.
/// The library installs it, not only the executable, because the command also
/// runs inside the library (`cutrace_main`); in a host process, where no command
/// sets a ceiling, it only counts.
#[global_allocator]
static ALLOCATOR: cutrace_exporter::memory::Ceiling = cutrace_exporter::memory::Ceiling;

pub use cutrace_tracer::{Profiler, ProfilerConfig, RangeGuard, identity};
pub use error::{Error, OnTimeout};
pub use profiler::profiler;
