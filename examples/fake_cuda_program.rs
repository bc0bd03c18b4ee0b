//! A stand-in for a CUDA program, used by cutrace's end-to-end tests on machines
//! without a GPU; not an example of using cutrace.
//!
//! It initialises "CUDA" by calling `cuInit` of the library `CUTRACE_CUDA_LIB`
//! names (the tests' fake libcuda, which loads `CUDA_INJECTION64_PATH` and calls
//! its `InitializeInjection`, as the real driver does), then plays what a GPU
//! workload makes CUPTI report, through the control symbols of the CUPTI test
//! double that `CUTRACE_CUPTI_LIB` names. Its arguments are a script:
//!
//! - `context DEVICE`: the program created a CUDA context on device DEVICE (CUPTI
//!   reports a context record); the kernels after it run there (before any, on
//!   device 0, in a context CUPTI reported none of);
//! - `kernel NAME MICROS`: a kernel of that name and duration ran;
//! - `kernels NAME COUNT MICROS`: COUNT such kernels ran, one after the other;
//! - `profiler-start`, `profiler-stop`: the program called `cudaProfilerStart`/`Stop`;
//! - `cu-profiler-start`, `cu-profiler-stop`: the same through the driver API;
//! - `nvtx NAME`: an NVTX range of that name was pushed and popped;
//! - `nvtx-domain NAME`: as NVIDIA's Python `nvtx` package does it: NAME registered
//!   as a string of a domain, a range of that domain pushed with the registered
//!   string as its message, then popped;
//! - `ready`: prints `ready` on stdout;
//! - `wait-signal`: blocks until a signal ends the process;
//! - `exit-on-signal CODE`: from here on SIGINT/SIGTERM make it exit with CODE
//!   (running at-exit handlers, as Python does on KeyboardInterrupt);
//! - `log-signals COUNT`: catches the signals a terminal or a job manager sends
//!   (SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT,
//!   SIGTSTP, SIGTTIN, SIGTTOU), prints `ready`, then the name of each one it
//!   gets, a line each, and exits once it got COUNT of them;
//! - `exit CODE`: exits with CODE.

use std::ffi::{CString, c_char, c_int, c_uint, c_void};
use std::io::Write;
use std::process::ExitCode;

use cupti_sys::sys::{
    CUpti_ActivityContext, CUpti_ActivityKernel9, CUpti_ActivityKind, CUpti_ApiCallbackSite,
    CUpti_CallbackDomain, CUpti_driver_api_trace_cbid_enum as DriverCbid,
    CUpti_nvtx_api_trace_cbid as NvtxCbid, CUpti_runtime_api_trace_cbid_enum as RuntimeCbid,
    nvtxDomainRangePop_params, nvtxDomainRangePushEx_params, nvtxDomainRegisterStringA_params,
    nvtxEventAttributes_t, nvtxMessageType_t, nvtxMessageValue_t, nvtxRangePushEx_params,
    nvtxStringHandle_t,
};
use libloading::Library;

type Emit = unsafe extern "C" fn(kind: u32, record: *const u8, len: usize) -> i32;
type Invoke = unsafe extern "C" fn(
    domain: u32,
    cbid: u32,
    site: u32,
    function_name: *const c_char,
    params: *const c_void,
) -> i32;
type InvokeNvtx =
    unsafe extern "C" fn(cbid: u32, params: *const c_void, return_value: *const c_void) -> i32;
type Timestamp = unsafe extern "C" fn(timestamp: *mut u64) -> u32;

/// `nvtxRangePushA_params`.
#[repr(C)]
struct RangePushParams {
    message: *const c_char,
}

struct Double {
    emit: Emit,
    invoke: Invoke,
    invoke_nvtx: InvokeNvtx,
    timestamp: Timestamp,
    next_correlation: u32,
    next_string_handle: usize,
    device: u32,
    context: u32,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fake_cuda_program: {e}");
            ExitCode::from(101)
        }
    }
}

fn run() -> Result<(), String> {
    init_cuda()?;
    let path = std::env::var("CUTRACE_CUPTI_LIB").map_err(|_| "CUTRACE_CUPTI_LIB is not set")?;
    // SAFETY: the test double has no load-time preconditions; it is already
    // loaded by the tracer, and this handle shares its state.
    let library = unsafe { Library::new(&path) }.map_err(|e| format!("{path}: {e}"))?;
    // SAFETY: the signatures are those the double documents for these symbols.
    let mut double = unsafe {
        Double {
            emit: *library
                .get::<Emit>(b"cupti_double_emit\0")
                .map_err(|e| e.to_string())?,
            invoke: *library
                .get::<Invoke>(b"cupti_double_invoke_callback\0")
                .map_err(|e| e.to_string())?,
            invoke_nvtx: *library
                .get::<InvokeNvtx>(b"cupti_double_invoke_nvtx_callback\0")
                .map_err(|e| e.to_string())?,
            timestamp: *library
                .get::<Timestamp>(b"cuptiGetTimestamp\0")
                .map_err(|e| e.to_string())?,
            next_correlation: 1,
            next_string_handle: 0x1000,
            device: 0,
            context: 1,
        }
    };
    let mut args = std::env::args().skip(1);
    while let Some(step) = args.next() {
        let mut arg = || {
            args.next()
                .ok_or_else(|| format!("{step} needs an argument"))
        };
        match step.as_str() {
            "context" => {
                let device: u32 = arg()?.parse().map_err(|_| "context DEVICE: not a number")?;
                double.context(device);
            }
            "kernel" => {
                let name = arg()?;
                let micros: u64 = arg()?.parse().map_err(|_| "kernel MICROS: not a number")?;
                double.kernel(&name, micros);
            }
            "kernels" => {
                let name = arg()?;
                let count: u64 = arg()?.parse().map_err(|_| "kernels COUNT: not a number")?;
                let micros: u64 = arg()?.parse().map_err(|_| "kernels MICROS: not a number")?;
                for _ in 0..count {
                    double.kernel(&name, micros);
                }
            }
            "profiler-start" => double.api(
                RuntimeCbid::CUPTI_RUNTIME_TRACE_CBID_cudaProfilerStart_v4000.0,
                "cudaProfilerStart",
                false,
            ),
            "profiler-stop" => double.api(
                RuntimeCbid::CUPTI_RUNTIME_TRACE_CBID_cudaProfilerStop_v4000.0,
                "cudaProfilerStop",
                false,
            ),
            "cu-profiler-start" => double.api(
                DriverCbid::CUPTI_DRIVER_TRACE_CBID_cuProfilerStart.0,
                "cuProfilerStart",
                true,
            ),
            "cu-profiler-stop" => double.api(
                DriverCbid::CUPTI_DRIVER_TRACE_CBID_cuProfilerStop.0,
                "cuProfilerStop",
                true,
            ),
            "nvtx" => double.nvtx_range(&arg()?),
            "nvtx-domain" => double.nvtx_domain_range(&arg()?),
            "ready" => {
                println!("ready");
                std::io::stdout().flush().map_err(|e| e.to_string())?;
            }
            "wait-signal" => loop {
                std::thread::park();
            },
            "exit-on-signal" => {
                let code: i32 = arg()?
                    .parse()
                    .map_err(|_| "exit-on-signal CODE: not a number")?;
                let mut signals = signal_hook::iterator::Signals::new([
                    signal_hook::consts::SIGINT,
                    signal_hook::consts::SIGTERM,
                ])
                .map_err(|e| e.to_string())?;
                std::thread::spawn(move || {
                    if signals.forever().next().is_some() {
                        std::process::exit(code);
                    }
                });
            }
            "log-signals" => {
                let count: usize = arg()?
                    .parse()
                    .map_err(|_| "log-signals COUNT: not a number")?;
                log_signals(count)?;
            }
            "exit" => {
                let code: i32 = arg()?.parse().map_err(|_| "exit CODE: not a number")?;
                std::process::exit(code);
            }
            other => return Err(format!("unknown step {other:?}")),
        }
    }
    Ok(())
}

/// Prints `ready`, then the name of each signal of a terminal or job manager it
/// gets, until it got `count`.
fn log_signals(count: usize) -> Result<(), String> {
    use signal_hook::consts::signal::*;
    let mut signals = signal_hook::iterator::Signals::new([
        SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT, SIGTSTP, SIGTTIN,
        SIGTTOU,
    ])
    .map_err(|e| e.to_string())?;
    let mut out = std::io::stdout();
    writeln!(out, "ready")
        .and_then(|()| out.flush())
        .map_err(|e| e.to_string())?;
    for signal in signals.forever().take(count) {
        let name = signal_hook::low_level::signal_name(signal).unwrap_or("unknown");
        writeln!(out, "{name}")
            .and_then(|()| out.flush())
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Calls `cuInit(0)` of the driver library, which injects the tracer.
fn init_cuda() -> Result<(), String> {
    let name = std::env::var("CUTRACE_CUDA_LIB").unwrap_or_else(|_| "libcuda.so.1".into());
    // SAFETY: the tests' fake libcuda has no load-time preconditions.
    let library = unsafe { Library::new(&name) }.map_err(|e| format!("{name}: {e}"))?;
    // SAFETY: cuInit's documented signature.
    let cu_init = unsafe { library.get::<unsafe extern "C" fn(c_uint) -> c_int>(b"cuInit\0") }
        .map_err(|e| e.to_string())?;
    // SAFETY: flags must be 0.
    let rc = unsafe { cu_init(0) };
    if rc != 0 {
        return Err(format!("cuInit failed: {rc}"));
    }
    // A program keeps its driver loaded to the end.
    std::mem::forget(library);
    Ok(())
}

impl Double {
    fn now(&self) -> u64 {
        let mut t = 0;
        // SAFETY: the out-pointer is a live local.
        unsafe { (self.timestamp)(&mut t) };
        t
    }

    fn kernel(&mut self, name: &str, micros: u64) {
        // The tracer reads the name while decoding, later and on another thread;
        // CUPTI keeps kernel names alive for the process's life, so does this.
        let name = CString::new(name).unwrap_or_default().into_raw();
        let start = self.now();
        // SAFETY: an all-zero record is a valid plain-data value.
        let mut record: CUpti_ActivityKernel9 = unsafe { std::mem::zeroed() };
        record.kind = CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL;
        record.start = start;
        record.end = start + micros * 1000;
        record.completed = record.end;
        record.streamId = 7;
        record.contextId = self.context;
        record.deviceId = self.device;
        record.gridX = 1;
        record.gridY = 1;
        record.gridZ = 1;
        record.blockX = 128;
        record.blockY = 1;
        record.blockZ = 1;
        record.correlationId = self.next_correlation;
        self.next_correlation += 1;
        record.name = name;
        // SAFETY: the record is a live struct of the length passed.
        unsafe {
            (self.emit)(
                record.kind.0,
                (&raw const record).cast(),
                std::mem::size_of::<CUpti_ActivityKernel9>(),
            )
        };
    }

    /// A context created on `device`, the one the kernels after it run in.
    fn context(&mut self, device: u32) {
        self.context += 1;
        self.device = device;
        // SAFETY: an all-zero record is a valid plain-data value.
        let mut record: CUpti_ActivityContext = unsafe { std::mem::zeroed() };
        record.kind = CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_CONTEXT;
        record.contextId = self.context;
        record.deviceId = device;
        // SAFETY: the record is a live struct of the length passed.
        unsafe {
            (self.emit)(
                record.kind.0,
                (&raw const record).cast(),
                std::mem::size_of::<CUpti_ActivityContext>(),
            )
        };
    }

    /// A runtime (or driver) API call, as CUPTI reports it: enter, then exit.
    fn api(&self, cbid: u32, name: &str, driver: bool) {
        let domain = if driver {
            CUpti_CallbackDomain::CUPTI_CB_DOMAIN_DRIVER_API
        } else {
            CUpti_CallbackDomain::CUPTI_CB_DOMAIN_RUNTIME_API
        };
        let name = CString::new(name).unwrap_or_default();
        for site in [
            CUpti_ApiCallbackSite::CUPTI_API_ENTER,
            CUpti_ApiCallbackSite::CUPTI_API_EXIT,
        ] {
            // SAFETY: the name is a live C string; these calls take no parameters.
            unsafe { (self.invoke)(domain.0, cbid, site.0, name.as_ptr(), std::ptr::null()) };
        }
    }

    /// `nvtxRangePushA(name)` then `nvtxRangePop()`.
    fn nvtx_range(&self, name: &str) {
        let domain = CUpti_CallbackDomain::CUPTI_CB_DOMAIN_NVTX.0;
        let message = CString::new(name).unwrap_or_default();
        let push = RangePushParams {
            message: message.as_ptr(),
        };
        let push_name = c"nvtxRangePushA";
        let pop_name = c"nvtxRangePop";
        // SAFETY: the names and the parameter struct are live for the calls; pop
        // takes no parameters.
        unsafe {
            (self.invoke)(
                domain,
                NvtxCbid::CUPTI_CBID_NVTX_nvtxRangePushA.0,
                CUpti_ApiCallbackSite::CUPTI_API_ENTER.0,
                push_name.as_ptr(),
                (&raw const push).cast(),
            );
            (self.invoke)(
                domain,
                NvtxCbid::CUPTI_CBID_NVTX_nvtxRangePop.0,
                CUpti_ApiCallbackSite::CUPTI_API_ENTER.0,
                pop_name.as_ptr(),
                std::ptr::null(),
            );
        }
    }

    /// `nvtxDomainRegisterStringA(domain, name)` (CUPTI returning a fresh handle),
    /// `nvtxDomainRangePushEx(domain, {REGISTERED, handle})`, then
    /// `nvtxDomainRangePop(domain)`.
    fn nvtx_domain_range(&mut self, name: &str) {
        // An opaque handle, as `nvtxDomainCreateA` would return.
        let domain = 0xd0 as *mut _;
        let text = CString::new(name).unwrap_or_default();
        let handle = self.next_string_handle as nvtxStringHandle_t;
        self.next_string_handle += 1;
        let register = nvtxDomainRegisterStringA_params {
            domain,
            string: text.as_ptr(),
        };
        // SAFETY: an all-zero attribute struct is a valid plain-data value.
        let mut attributes: nvtxEventAttributes_t = unsafe { std::mem::zeroed() };
        attributes.version = 3;
        attributes.size = std::mem::size_of::<nvtxEventAttributes_t>() as u16;
        attributes.messageType = nvtxMessageType_t::NVTX_MESSAGE_TYPE_REGISTERED.0 as i32;
        attributes.message = nvtxMessageValue_t { registered: handle };
        let push = nvtxDomainRangePushEx_params {
            domain,
            core: nvtxRangePushEx_params {
                eventAttrib: &attributes,
            },
        };
        let pop = nvtxDomainRangePop_params { domain };
        // SAFETY: the parameter structs, the strings they point to and the
        // returned handle are live for the calls.
        unsafe {
            (self.invoke_nvtx)(
                NvtxCbid::CUPTI_CBID_NVTX_nvtxDomainRegisterStringA.0,
                (&raw const register).cast(),
                (&raw const handle).cast(),
            );
            (self.invoke_nvtx)(
                NvtxCbid::CUPTI_CBID_NVTX_nvtxDomainRangePushEx.0,
                (&raw const push).cast(),
                std::ptr::null(),
            );
            (self.invoke_nvtx)(
                NvtxCbid::CUPTI_CBID_NVTX_nvtxDomainRangePop.0,
                (&raw const pop).cast(),
                std::ptr::null(),
            );
        }
    }
}
