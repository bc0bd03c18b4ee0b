//! Drives the CUPTI test double (`cupti-double/`) from integration tests.
//!
//! The double is a cdylib, which `cargo test` does not build for another package's
//! tests, so [`library_path`] builds it once per test binary with `cargo build -p
//! cupti-test-double` into the target directory the tests were built in (cargo
//! releases its build lock while tests run, so the nested build does not wait, and
//! it reuses the dependencies already built there) and points `CUTRACE_CUPTI_LIB`
//! at it. The tracer then loads it through its real loader; the tests load the
//! same file with `libloading` to script it.

#![allow(dead_code)]

use std::ffi::{CString, c_char, c_void};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use cupti_sys::OVERRIDE_VAR;
use cupti_sys::sys::*;
use cutrace_tracer::{Trace, TraceSink, WarningHook};
use libloading::Library;

/// Builds the double (once) and returns its path.
pub fn library_path() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .to_owned();
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"));
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "-p", "cupti-test-double"])
            .current_dir(&root)
            .status()
            .expect("run cargo to build the CUPTI test double");
        assert!(status.success(), "building the CUPTI test double failed");
        target.join("debug").join("libcupti_test_double.so")
    })
}

/// The double, loaded, with `CUTRACE_CUPTI_LIB` pointing at it.
pub struct Double {
    lib: Library,
}

static SERIAL: Mutex<()> = Mutex::new(());

/// Takes the process-wide CUPTI (tests run one at a time on it) and resets it.
pub fn take() -> (MutexGuard<'static, ()>, &'static Double) {
    static DOUBLE: OnceLock<Double> = OnceLock::new();
    let guard = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let double = DOUBLE.get_or_init(|| {
        let path = library_path();
        // SAFETY: set once, under the lock, before the tracer loads CUPTI.
        unsafe { std::env::set_var(OVERRIDE_VAR, path) };
        // SAFETY: the double has no load-time preconditions.
        let lib = unsafe { Library::new(path) }.unwrap();
        Double { lib }
    });
    double.reset();
    (guard, double)
}

/// Calls one of the double's control symbols.
macro_rules! control {
    ($self:ident, $name:literal, $ty:ty $(, $arg:expr)*) => {{
        // SAFETY: the double exports this symbol with this signature, and its
        // controls take plain values or pointers the caller keeps alive.
        unsafe {
            let f: libloading::Symbol<$ty> = $self.lib.get($name).unwrap();
            f($($arg),*)
        }
    }};
}

impl Double {
    pub fn reset(&self) {
        control!(self, b"cupti_double_reset", unsafe extern "C" fn())
    }

    /// Emits `record` (a generated record struct); 1 written, 0 filtered, -1 dropped.
    pub fn emit<T>(&self, record: &T) -> i32 {
        let ptr = (record as *const T).cast::<u8>();
        // SAFETY: every record starts with its kind.
        let kind = unsafe { ptr.cast::<u32>().read_unaligned() };
        control!(
            self,
            b"cupti_double_emit",
            unsafe extern "C" fn(u32, *const u8, usize) -> i32,
            kind,
            ptr,
            size_of::<T>()
        )
    }

    pub fn fail(&self, function: &str, code: CUptiResult) {
        let name = CString::new(function).unwrap();
        control!(
            self,
            b"cupti_double_fail",
            unsafe extern "C" fn(*const c_char, u32),
            name.as_ptr(),
            code.0
        )
    }

    pub fn report_multiple_subscribers(&self, on: bool) {
        control!(
            self,
            b"cupti_double_report_multiple_subscribers",
            unsafe extern "C" fn(bool),
            on
        )
    }

    pub fn set_version(&self, version: u32) {
        control!(
            self,
            b"cupti_double_set_version",
            unsafe extern "C" fn(u32),
            version
        )
    }

    pub fn hold_completions(&self, on: bool) {
        control!(
            self,
            b"cupti_double_hold_completions",
            unsafe extern "C" fn(bool),
            on
        )
    }

    /// Invokes the subscriber callback; 1 called, 0 not enabled, -1 no subscriber.
    pub fn invoke_callback(
        &self,
        domain: CUpti_CallbackDomain,
        cbid: u32,
        site: CUpti_ApiCallbackSite,
        params: *const c_void,
    ) -> i32 {
        control!(
            self,
            b"cupti_double_invoke_callback",
            unsafe extern "C" fn(u32, u32, u32, *const c_char, *const c_void) -> i32,
            domain.0,
            cbid,
            site.0,
            std::ptr::null(),
            params
        )
    }

    /// Invokes the NVTX callback `cbid` with `params` and a pointer to `returned`
    /// (or none); 1 called, 0 not enabled, -1 no subscriber.
    pub fn invoke_nvtx<P, R>(
        &self,
        cbid: CUpti_nvtx_api_trace_cbid,
        params: &P,
        returned: Option<&R>,
    ) -> i32 {
        let returned = returned.map_or(std::ptr::null(), |r| (r as *const R).cast::<c_void>());
        control!(
            self,
            b"cupti_double_invoke_nvtx_callback",
            unsafe extern "C" fn(u32, *const c_void, *const c_void) -> i32,
            cbid.0,
            (params as *const P).cast::<c_void>(),
            returned
        )
    }

    pub fn callback_enabled(&self, domain: CUpti_CallbackDomain, cbid: u32) -> bool {
        control!(
            self,
            b"cupti_double_callback_enabled",
            unsafe extern "C" fn(u32, u32) -> bool,
            domain.0,
            cbid
        )
    }

    pub fn subscribed(&self) -> bool {
        control!(
            self,
            b"cupti_double_subscribed",
            unsafe extern "C" fn() -> bool
        )
    }

    pub fn kind_enabled(&self, kind: CUpti_ActivityKind) -> bool {
        control!(
            self,
            b"cupti_double_kind_enabled",
            unsafe extern "C" fn(u32) -> bool,
            kind.0
        )
    }

    pub fn thread_id_type(&self) -> u32 {
        control!(
            self,
            b"cupti_double_thread_id_type",
            unsafe extern "C" fn() -> u32
        )
    }

    pub fn latency_timestamps(&self) -> u8 {
        control!(
            self,
            b"cupti_double_latency_timestamps",
            unsafe extern "C" fn() -> u8
        )
    }

    pub fn outstanding_buffers(&self) -> usize {
        control!(
            self,
            b"cupti_double_outstanding_buffers",
            unsafe extern "C" fn() -> usize
        )
    }

    pub fn peak_outstanding_bytes(&self) -> usize {
        control!(
            self,
            b"cupti_double_peak_outstanding_bytes",
            unsafe extern "C" fn() -> usize
        )
    }

    pub fn drop_records(&self, count: usize) {
        control!(
            self,
            b"cupti_double_drop_records",
            unsafe extern "C" fn(usize),
            count
        )
    }

    pub fn dropped_total(&self) -> usize {
        control!(
            self,
            b"cupti_double_dropped_total",
            unsafe extern "C" fn() -> usize
        )
    }
}

/// A sink keeping every window it gets.
#[derive(Default)]
pub struct Collect(pub Mutex<Vec<Trace>>);

impl TraceSink for Collect {
    fn window_finished(
        &self,
        trace: Trace,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.0.lock().unwrap().push(trace);
        Ok(())
    }
}

impl Collect {
    pub fn traces(&self) -> Vec<Trace> {
        self.0.lock().unwrap().clone()
    }
}

/// A warning hook keeping every warning.
pub fn warnings() -> (WarningHook, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = seen.clone();
    (
        Arc::new(move |w: &str| keep.lock().unwrap().push(w.to_owned())),
        seen,
    )
}

fn zeroed<T>() -> T {
    // SAFETY: activity records are plain integers, newtypes and raw pointers.
    unsafe { std::mem::zeroed() }
}

/// A concurrent kernel record (names must outlive the window: leak them).
pub fn kernel(
    name: &'static std::ffi::CStr,
    correlation: u32,
    stream: u32,
    start: u64,
) -> CUpti_ActivityKernel9 {
    let mut k: CUpti_ActivityKernel9 = zeroed();
    k.kind = CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL;
    k.start = start;
    k.end = start + 100;
    k.deviceId = 0;
    k.contextId = 1;
    k.streamId = stream;
    k.gridX = 80;
    k.gridY = 1;
    k.gridZ = 1;
    k.blockX = 256;
    k.blockY = 1;
    k.blockZ = 1;
    k.registersPerThread = 40;
    k.correlationId = correlation;
    k.name = name.as_ptr();
    k
}

/// A runtime or driver API record on the calling thread.
pub fn api(kind: CUpti_ActivityKind, cbid: u32, correlation: u32, start: u64) -> CUpti_ActivityAPI {
    let mut a: CUpti_ActivityAPI = zeroed();
    a.kind = kind;
    a.cbid = cbid;
    a.start = start;
    a.end = start + 5;
    a.processId = std::process::id();
    a.threadId = current_tid();
    a.correlationId = correlation;
    a
}

/// A memcpy record.
pub fn memcpy(
    copy: CUpti_ActivityMemcpyKind,
    src: CUpti_ActivityMemoryKind,
    dst: CUpti_ActivityMemoryKind,
    correlation: u32,
    start: u64,
) -> CUpti_ActivityMemcpy6 {
    let mut m: CUpti_ActivityMemcpy6 = zeroed();
    m.kind = CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_MEMCPY;
    m.copyKind = copy.0 as u8;
    m.srcKind = src.0 as u8;
    m.dstKind = dst.0 as u8;
    m.bytes = 1 << 16;
    m.start = start;
    m.end = start + 50;
    m.contextId = 1;
    m.streamId = 7;
    m.correlationId = correlation;
    m
}

/// This thread's OS id (what CUPTI reports with system thread ids).
pub fn current_tid() -> u32 {
    std::fs::read_link("/proc/thread-self")
        .unwrap()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

pub fn zero<T>() -> T {
    zeroed()
}
