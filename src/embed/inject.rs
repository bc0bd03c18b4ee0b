//! Zero-code tracing: `InitializeInjection`, which the CUDA driver calls inside
//! `cuInit` when `CUDA_INJECTION64_PATH` names `libcutrace.so`.
//!
//! It reads the configuration from the environment (`CUTRACE_CONFIG` and the
//! `CUTRACE_*` variables), installs the tracer with the exporter as its sink, and
//! opens windows as `capture_range` says: right away (or after `delay_ms`, for
//! `duration_ms`), or at the program's own `cudaProfilerStart`/`Stop`, which the
//! tracer's CUPTI callbacks handle, as they handle NVTX steps.
//!
//! At exit an open window is closed and written. That runs from a `libc::atexit`
//! handler registered here, rather than from CUPTI's context-destroy callback:
//! programs seldom destroy their contexts, so that callback often never comes.
//! Handlers run in the reverse order of registration, and this one is registered
//! inside `cuInit`, after the CUDA runtime's own, so it runs while CUDA and CUPTI
//! still work. It waits for the writer a bounded time (`shutdown_wait_ms`); past that
//! the windows not written yet are given up: the warning names each one, and what
//! the writer had begun of them is removed, so no hidden temporary file is left
//! behind.
//!
//! A process has one tracer. When the program made it before CUDA initialised
//! (`cutrace_attach`, as the Python package does, or `cutrace_init`), the
//! injection leaves it as it is and says so; the program's own calls drive it.
//!
//! Nothing here may hurt the host: every failure is one warning on stderr and
//! the program runs on untraced.

use std::ffi::c_int;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cutrace_tracer::{CaptureRange, ProfilerConfig};

use crate::error::{Error, OnTimeout};
use crate::ffi::{self, CReturn};
use crate::host::HOST;
use crate::profiler;

/// `InitializeInjection`'s return value: 1 when tracing, 0 when not (the
/// convention of NVIDIA's injection samples; the driver carries on either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct InjectionStatus(c_int);

impl CReturn for InjectionStatus {
    const FAILURE: Self = InjectionStatus(0);
}

/// Called by the CUDA driver once per process, inside `cuInit`.
#[unsafe(no_mangle)]
pub extern "C" fn InitializeInjection() -> c_int {
    let status = ffi::trampoline("InitializeInjection", || {
        inject().map(|()| InjectionStatus(1))
    });
    if status == InjectionStatus::FAILURE {
        warn_untraced();
    }
    status.0
}

fn inject() -> Result<(), Error> {
    // The driver calls this once, but a program that also loads the library
    // through LD_PRELOAD or dlopen must not end up with two tracers.
    static INJECTED: AtomicBool = AtomicBool::new(false);
    if INJECTED.swap(true, Ordering::SeqCst) {
        return Ok(());
    }
    let config = ProfilerConfig::from_env()?;
    match HOST.install(config.shutdown_wait(), || profiler::make(&config)) {
        // The program made its tracer before CUDA initialised (through the C ABI
        // or the Python package): that one is the process's, and stays as it is.
        Err(Error::AlreadyInitialised) => {
            eprintln!(
                "cutrace: this process already has a tracer, made through cutrace's C ABI or Python package; the injected library leaves it as it is, so the settings of the environment (cutrace run's options) are not used"
            );
            return Ok(());
        }
        installed => installed?,
    }
    // SAFETY: `at_exit` is an `extern "C" fn()` that cannot unwind (it goes
    // through the trampoline) and touches only this library's state.
    if unsafe { libc::atexit(at_exit) } != 0 {
        // Without the handler nothing would write the last window: tracing
        // would only cost the host.
        let _ = HOST.shutdown(OnTimeout::KeepWriting);
        return Err(Error::AtExit);
    }
    match config.capture_range {
        CaptureRange::None => open_timed_window(config.delay_ms, config.duration_ms),
        // The tracer's callbacks on cudaProfilerStart/Stop start and stop it.
        CaptureRange::CudaProfilerApi => Ok(()),
    }
}

/// Starts the tracer now, or `delay_ms` from now, and stops it `duration_ms`
/// later (never, for 0: the window then closes at exit).
fn open_timed_window(delay_ms: u64, duration_ms: u64) -> Result<(), Error> {
    if delay_ms == 0 {
        HOST.with(|t| t.start());
        if duration_ms == 0 {
            return Ok(());
        }
    }
    // A detached thread: it does not keep the process alive, and a window it
    // has not closed yet is closed at exit.
    std::thread::Builder::new()
        .name("cutrace-timer".into())
        .spawn(move || {
            if delay_ms > 0 {
                std::thread::sleep(Duration::from_millis(delay_ms));
                HOST.with(|t| t.start());
            }
            if duration_ms > 0 {
                std::thread::sleep(Duration::from_millis(duration_ms));
                HOST.with(|t| t.stop());
            }
        })
        .map(drop)
        .map_err(|e| Error::Thread {
            name: "timer",
            source: e,
        })
}

/// Closes the open window and writes it when the process exits.
extern "C" fn at_exit() {
    let shut_down = ffi::trampoline("at exit", || {
        HOST.shutdown(OnTimeout::Abandon).map(|()| true)
    });
    if !shut_down {
        eprintln!("cutrace: {}", ffi::last_error_message());
    }
}

fn warn_untraced() {
    eprintln!(
        "cutrace: {}; this process runs untraced",
        ffi::last_error_message()
    );
}
