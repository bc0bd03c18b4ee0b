//! The C ABI declared in `include/cutrace.h`, for programs that embed the tracer
//! (C, C++, or Python through `ctypes`).
//!
//! Every function goes through [`ffi::trampoline`] and is safe in any state: with
//! no tracer installed (before `cutrace_init`, after a failed one, after
//! `cutrace_shutdown`) the calls that act on it do nothing.

use std::ffi::{c_char, c_int};

use cutrace_tracer::ProfilerConfig;

use crate::ffi;
use crate::host::{HOST, Tracer};
use crate::profiler;
use crate::{Error, OnTimeout};

/// `int cutrace_init(const char *config_json)`: installs the tracer; 0 on success.
///
/// # Safety
///
/// `config_json` is null or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cutrace_init(config_json: *const c_char) -> c_int {
    ffi::trampoline("cutrace_init", || {
        // SAFETY: the caller passes null or a NUL-terminated string.
        let text = unsafe { ffi::c_str(config_json) };
        let config = match text.map(|t| t.to_str()) {
            None => ProfilerConfig::from_env()?,
            Some(Ok(text)) if text.trim().is_empty() => ProfilerConfig::from_env()?,
            Some(Ok(text)) => ProfilerConfig::from_json(text)?,
            Some(Err(_)) => {
                return Err(Error::NotUtf8 {
                    argument: "config_json",
                });
            }
        };
        HOST.install(config.shutdown_wait(), || profiler::make(&config))?;
        Ok(0)
    })
}

/// `void cutrace_start(void)`: arms the tracer.
#[unsafe(no_mangle)]
pub extern "C" fn cutrace_start() {
    on_tracer("cutrace_start", |t| t.start());
}

/// `void cutrace_step(void)`: ends an iteration.
#[unsafe(no_mangle)]
pub extern "C" fn cutrace_step() {
    on_tracer("cutrace_step", |t| t.step());
}

/// `void cutrace_stop(void)`: ends the window being recorded.
#[unsafe(no_mangle)]
pub extern "C" fn cutrace_stop() {
    on_tracer("cutrace_stop", |t| t.stop());
}

/// `void cutrace_range_push(const char *name)`: opens a range on this thread.
///
/// # Safety
///
/// `name` is null or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cutrace_range_push(name: *const c_char) {
    ffi::trampoline("cutrace_range_push", || {
        // SAFETY: the caller passes null or a NUL-terminated string.
        let name = unsafe { ffi::c_str(name) }.ok_or(Error::NullArgument { argument: "name" })?;
        let name = name.to_string_lossy();
        HOST.with(|t| t.range_push(&name));
        Ok(())
    });
}

/// `void cutrace_range_pop(void)`: closes this thread's innermost range.
#[unsafe(no_mangle)]
pub extern "C" fn cutrace_range_pop() {
    on_tracer("cutrace_range_pop", |t| t.range_pop());
}

/// `void cutrace_shutdown(void)`: stops, writes, and releases the tracer.
#[unsafe(no_mangle)]
pub extern "C" fn cutrace_shutdown() {
    // The program goes on: what is not written by then is written in the
    // background.
    ffi::trampoline("cutrace_shutdown", || HOST.shutdown(OnTimeout::KeepWriting));
}

/// Runs `f` on the installed tracer, if any, behind the trampoline of `entry`.
fn on_tracer(entry: &str, f: impl FnOnce(&dyn Tracer)) {
    ffi::trampoline(entry, || {
        HOST.with(f);
        Ok(())
    });
}

/// `const char *cutrace_last_error(void)`: this thread's last failure, "" if none.
#[unsafe(no_mangle)]
pub extern "C" fn cutrace_last_error() -> *const c_char {
    // Only a failure writes the last error, and reading it cannot fail: the
    // message asked for is never overwritten here.
    ffi::trampoline("cutrace_last_error", || Ok(ffi::last_error_ptr()))
}
