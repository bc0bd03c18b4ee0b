//! The tracer of cutrace: it records what the GPU did through CUPTI's activity API
//! inside iteration-bounded windows and hands each finished window, as a plain-data
//! [`Trace`], to a [`TraceSink`].
//!
//! The trace model ([`model`]) has no FFI in it, so everything downstream of the
//! tracer runs on machines without CUDA. Nor do the [`ProfilerConfig`] (what to
//! record, read from JSON or the environment) and the window state machine
//! ([`Windows`]).
//!
//! A [`Profiler`] runs the machine over a CUPTI session: activity buffers from a
//! bounded pool, decoded ([`decode`]) on a background thread, each finished window
//! built and handed to the sink off the host's thread. The session calls CUPTI
//! through `cupti-sys`'s result layer directly (`cupti_sys::load` and the methods of
//! `cupti_sys::Library`): that layer already loads the library once per process and
//! turns every call into a `Result`, so nothing here restates it. It never hurts the host: no
//! CUPTI, a CUPTI failure or another CUPTI client gives one warning and an untraced
//! profiler whose every call does nothing.
//!
//! # Windows
//!
//! `start()` arms the tracer and `step()` is called once per iteration: iteration `k`
//! is the span between the `(k-1)`-th and the `k`-th `step()` after `start()`
//! (iteration 1 runs from `start()` to the first `step()`). With `delay_iters = D`,
//! `max_iters = M`, `warmup_iters = W` and `repeat = R`:
//!
//! - iterations `D+1 … D+M` are recorded, as window 1; window `r` is iterations
//!   `D+(r-1)M+1 … D+rM`, and `R` windows follow back to back, each its own trace
//!   (`R = 0`: until `stop()`); `M = 0` records one window until `stop()`;
//! - the warmup is the last `W` iterations of the delay (`D-W+1 … D`): collection
//!   runs, and what it gathers is discarded. Only `D` warmup iterations fit before
//!   iteration `D+1`, so a `W` above `D` counts as `D`;
//! - `stop()` ends the iteration in progress: a window being recorded is cut short
//!   there and still written; in the delay or the warmup, no window is written.
//!   `start()` while started and `stop()` while not started are ignored. Once all
//!   `R` windows are written the tracer is idle again, and a new `start()` counts
//!   iterations from 1. `shutdown()` stops and ignores every later call.
//!
//! | `D` | `M` | `W` | `R` | warmup (discarded) | recorded: window → iterations |
//! |----:|----:|----:|----:|-------------------|--------------------------------|
//! | 0 | 0 | 0 | 1 | — | 1 → 1 … `stop()` |
//! | 0 | 3 | 0 | 1 | — | 1 → 1–3 |
//! | 2 | 3 | 0 | 1 | — | 1 → 3–5 |
//! | 5 | 2 | 2 | 1 | 4–5 | 1 → 6–7 |
//! | 1 | 2 | 3 | 1 | 1 (`W` counts as 1) | 1 → 2–3 |
//! | 2 | 2 | 1 | 3 | 2 | 1 → 3–4, 2 → 5–6, 3 → 7–8 |
//! | 1 | 2 | 0 | 0 | — | 1 → 2–3, 2 → 4–5, … until `stop()` |
//! | 3 | 2 | 1 | 1 | `stop()` in iteration 3: 3 | none |
//!
//! The defaults (`D = M = W = 0`, `R = 1`) give one window per `start()`/`stop()`
//! pair, which is how a timer or the application's `cudaProfilerStart/Stop` drive it.
//! Window numbers in the table count from each `start()`; the numbers in the
//! [`Action`]s go on over the life of the machine, as the trace files' do.

#![deny(missing_docs)]

mod annotate;
mod buffers;
mod config;
mod controls;
pub mod decode;
mod demangle;
mod error;
pub mod identity;
pub mod model;
mod nvtx;
mod process;
mod profiler;
mod session;
mod versions;
mod window;

pub use annotate::RangeGuard;
pub use config::{
    Activity, CONFIG_FIELDS, CONFIG_VAR, CaptureRange, ConfigError, DEFAULT_OUTPUT_DIR, GraphMode,
    ProfilerConfig, SortKey, Spelling, UnknownSortKey, field_var,
};
pub use controls::{Control, ControlHandler};
pub use error::Error;
pub use identity::{Identity, IdentityError, Rank};
pub use model::{Trace, TraceSink};
pub use process::host_name;
pub use profiler::Profiler;
pub use session::{UnwrittenWindow, WarningHook};
pub use versions::{cuda_driver_version, cuda_runtime_version};
pub use window::{Action, Ignored, Schedule, State, Windows};
