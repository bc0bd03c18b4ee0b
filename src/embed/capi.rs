//! The C ABI declared in `include/cutrace.h`, for programs that embed the tracer
//! (C, C++, or Python: the `cutrace` package drives the tracer through it).
//!
//! Every function goes through `ffi::trampoline`, which no panic crosses, and is
//! safe in any state: with no tracer installed (before `cutrace_init`, after a
//! failed one, after `cutrace_shutdown`) the calls that act on it do nothing.
//!
//! A configuration passed in is a JSON object with `CUTRACE_CONFIG`'s keys, read
//! over the process environment: its keys win over `CUTRACE_CONFIG` and the
//! `CUTRACE_*` variables, which fill in the keys it leaves out. Under `cutrace
//! run`, a program that names no `output_dir` so writes where `cutrace run -o`
//! says.

use std::ffi::{OsStr, OsString, c_char, c_int, c_longlong, c_void};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use cutrace_exporter::{KeyAverages, SortKey, read_trace};
use cutrace_tracer::ProfilerConfig;
use serde_json::{Map, Value};

use crate::ffi::{self, CReturn};
use crate::host::{HOST, Tracer};
use crate::{Error, OnTimeout};
use crate::{command, loaded, profiler, written};

/// `int cutrace_init(const char *config_json)`: installs the tracer; 0 on success.
///
/// # Safety
///
/// `config_json` is null or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cutrace_init(config_json: *const c_char) -> c_int {
    ffi::trampoline("cutrace_init", || {
        // SAFETY: the caller passes null or a NUL-terminated string.
        let config = unsafe { config_arg(config_json) }?;
        HOST.install(config.shutdown_wait(), || profiler::make(&config))?;
        Ok(0)
    })
}

/// `int cutrace_check_config(const char *config_json)`: 0 when the configuration
/// is usable; touches nothing else.
///
/// # Safety
///
/// `config_json` is null or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cutrace_check_config(config_json: *const c_char) -> c_int {
    ffi::trampoline("cutrace_check_config", || {
        // SAFETY: the caller passes null or a NUL-terminated string.
        unsafe { config_arg(config_json) }?;
        Ok(0)
    })
}

/// `int cutrace_attach(const char *config_json)`: installs the tracer (0), or
/// leaves the one already installed as it is (1).
///
/// # Safety
///
/// `config_json` is null or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cutrace_attach(config_json: *const c_char) -> c_int {
    ffi::trampoline("cutrace_attach", || {
        // SAFETY: the caller passes null or a NUL-terminated string.
        let config = unsafe { config_arg(config_json) }?;
        match HOST.install(config.shutdown_wait(), || profiler::make(&config)) {
            Ok(()) => Ok(0),
            Err(Error::AlreadyInitialised) => Ok(1),
            Err(error) => Err(error),
        }
    })
}

/// The configuration a C caller passes: `config_json` over the environment.
///
/// # Safety
///
/// `config_json` is null or a NUL-terminated string.
unsafe fn config_arg(config_json: *const c_char) -> Result<ProfilerConfig, Error> {
    // SAFETY: the caller passes null or a NUL-terminated string.
    let text = match unsafe { ffi::c_str(config_json) }.map(|t| t.to_str()) {
        None => None,
        Some(Ok(text)) => Some(text),
        Some(Err(_)) => {
            return Err(Error::NotUtf8 {
                argument: "config_json",
            });
        }
    };
    over(ProfilerConfig::from_env()?, text)
}

/// `explicit`'s keys over `base`: the object's keys win, `base` fills in the
/// rest, and the tracer's own reading checks the whole.
fn over(base: ProfilerConfig, explicit: Option<&str>) -> Result<ProfilerConfig, Error> {
    let Some(text) = explicit.filter(|t| !t.trim().is_empty()) else {
        return Ok(base);
    };
    let Ok(Value::Object(keys)) = serde_json::from_str::<Value>(text) else {
        // Not an object: the tracer's reading says so in its own words.
        return Ok(ProfilerConfig::from_json(text)?);
    };
    // A configuration always serializes to an object: its paths came from UTF-8
    // text (JSON, or the environment read lossily).
    let mut fields = match serde_json::to_value(&base) {
        Ok(Value::Object(fields)) => fields,
        _ => Map::new(),
    };
    fields.extend(keys);
    Ok(ProfilerConfig::from_json(
        &Value::Object(fields).to_string(),
    )?)
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

/// `const char *cutrace_windows_json(size_t first)`: the windows written so far,
/// from the `first`-th of the process's life on, as a JSON array.
#[unsafe(no_mangle)]
pub extern "C" fn cutrace_windows_json(first: usize) -> *const c_char {
    ffi::trampoline("cutrace_windows_json", || {
        let windows: Vec<Value> = written::since(first)
            .into_iter()
            .map(|w| {
                serde_json::json!({
                    "number": w.number,
                    "trace": w.trace.to_string_lossy(),
                    "table": w.table.to_string_lossy(),
                    "table_text": w.table_text,
                })
            })
            .collect();
        Ok(ffi::return_string(&Value::Array(windows).to_string()))
    })
}

/// `const char *cutrace_report_json(const char *trace, const char *sort_by, long
/// long row_limit)`: a trace file's key-averages rows, as `cutrace report
/// --format json` prints them.
///
/// # Safety
///
/// `trace` and `sort_by` are null or NUL-terminated strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cutrace_report_json(
    trace: *const c_char,
    sort_by: *const c_char,
    row_limit: c_longlong,
) -> *const c_char {
    ffi::trampoline("cutrace_report_json", || {
        // SAFETY: the caller passes null or a NUL-terminated string.
        let trace =
            unsafe { ffi::c_str(trace) }.ok_or(Error::NullArgument { argument: "trace" })?;
        // SAFETY: as above.
        let sort = match unsafe { ffi::c_str(sort_by) } {
            None => SortKey::default(),
            Some(name) => name.to_string_lossy().parse()?,
        };
        let limit = match row_limit {
            -1 => None,
            n => Some(usize::try_from(n).map_err(|_| Error::RowLimit(n))?),
        };
        let trace = read_trace(&PathBuf::from(OsStr::from_bytes(trace.to_bytes())))?;
        let rows = KeyAverages::from_trace(&trace).json(sort, limit);
        Ok(ffi::return_string(&rows))
    })
}

/// `cutrace_main`'s return value: the command's exit code, 101 (a Rust program's
/// exit code after a panic) when the command itself failed inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CommandStatus(c_int);

impl CReturn for CommandStatus {
    const FAILURE: Self = CommandStatus(101);
}

/// `int cutrace_main(int argc, const char *const *argv)`: runs the `cutrace`
/// command with `argv` (the program name first) and returns its exit code.
///
/// # Safety
///
/// `argv` is null or points to `argc` pointers, each null or a NUL-terminated
/// string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cutrace_main(argc: c_int, argv: *const *const c_char) -> c_int {
    let status = ffi::trampoline("cutrace_main", || {
        let count = if argv.is_null() {
            0
        } else {
            usize::try_from(argc).unwrap_or(0)
        };
        // SAFETY: the caller passes `argc` pointers at `argv` (none when null).
        let pointers = unsafe { std::slice::from_raw_parts(argv, count) };
        let args: Vec<OsString> = pointers
            .iter()
            // SAFETY: each is null or a NUL-terminated string.
            .filter_map(|&arg| unsafe { ffi::c_str(arg) })
            .map(|arg| OsStr::from_bytes(arg.to_bytes()).to_owned())
            .collect();
        let library = loaded::file_of(cutrace_main as *const c_void);
        Ok(CommandStatus(c_int::from(command::main(args, library))))
    });
    if status == CommandStatus::FAILURE {
        eprintln!("cutrace: {}", ffi::last_error_message());
    }
    status.0
}

/// `const char *cutrace_last_error(void)`: this thread's last failure, "" if none.
#[unsafe(no_mangle)]
pub extern "C" fn cutrace_last_error() -> *const c_char {
    // Only a failure writes the last error, and reading it cannot fail: the
    // message asked for is never overwritten here.
    ffi::trampoline("cutrace_last_error", || Ok(ffi::last_error_ptr()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutrace_tracer::CaptureRange;

    fn base() -> ProfilerConfig {
        ProfilerConfig {
            max_iters: 5,
            output_dir: "from-env".into(),
            ..ProfilerConfig::default()
        }
    }

    #[test]
    fn explicit_keys_win_and_the_environment_fills_in_the_rest() {
        let config = over(base(), Some(r#"{"delay_iters": 2, "max_iters": 3}"#)).unwrap();
        assert_eq!((config.delay_iters, config.max_iters), (2, 3));
        assert_eq!(config.output_dir, PathBuf::from("from-env"));
        assert_eq!(over(base(), None).unwrap(), base());
        assert_eq!(over(base(), Some("  ")).unwrap(), base());
        assert_eq!(over(base(), Some("{}")).unwrap(), base());
    }

    #[test]
    fn the_tracer_reading_names_what_is_wrong() {
        let error = over(base(), Some(r#"{"max_iter": 3}"#)).unwrap_err();
        assert!(error.to_string().contains("`max_iter`"), "{error}");
        let error = over(base(), Some("[1]")).unwrap_err();
        assert!(error.to_string().contains("not a JSON object"), "{error}");
        let error = over(base(), Some(r#"{"max_iters": "x"}"#)).unwrap_err();
        assert!(error.to_string().contains("max_iters"), "{error}");
    }

    #[test]
    fn the_whole_is_checked_together() {
        let base = ProfilerConfig {
            capture_range: CaptureRange::CudaProfilerApi,
            ..ProfilerConfig::default()
        };
        let error = over(base, Some(r#"{"duration_ms": 5}"#)).unwrap_err();
        assert!(error.to_string().contains("capture_range"), "{error}");
    }
}
