//! A **test double** of NVIDIA CUPTI, for cutrace's tests on machines without a GPU.
//! It is never shipped and never loaded outside tests.
//!
//! It is a shared library exporting the subset of the CUPTI C API that cutrace calls,
//! with the same names and signatures (the types come from `cupti-sys`), so the
//! tracer loads it through its real loader (`CUTRACE_CUPTI_LIB=<path of
//! libcupti_test_double.so>`) and runs its real callback protocol against it:
//!
//! - records are written into buffers asked for through the registered
//!   `bufferRequested` callback, on the thread that emits them, as CUPTI does;
//! - a full buffer is handed back through `bufferCompleted` from the double's own
//!   thread; `cuptiActivityFlushAll` hands back the full ones and, when forced, the
//!   one being filled, before it returns;
//! - a null buffer from `bufferRequested` drops the record and counts it, reported
//!   (and reset) by `cuptiActivityGetNumDroppedRecords`;
//! - only records of enabled kinds are written, API records whose callback id was
//!   filtered out with `cuptiActivityEnable{Runtime,Driver}Api` are not, and an API
//!   record emitted while the emitting thread has pushed external correlation ids is
//!   preceded by one `EXTERNAL_CORRELATION` record per pushed kind.
//!
//! The buffer layout is the double's own (each record is preceded by its length):
//! the tracer must step through it with `cuptiActivityGetNextRecord`, as with CUPTI.
//!
//! Tests script it through the extra `cupti_double_*` symbols (see each one's doc),
//! loaded with `libloading` from the same path. All state is process-global, like
//! CUPTI's; `cupti_double_reset` returns it to the state of a fresh load.

#![deny(missing_docs)]

use std::cell::RefCell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::{CStr, c_char, c_void};
use std::ptr::{self, NonNull};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use cupti_sys::sys::{
    CUcontext, CUpti_Activity, CUpti_ActivityAPI, CUpti_ActivityAttribute,
    CUpti_ActivityExternalCorrelation, CUpti_ActivityFlag, CUpti_ActivityKernel9,
    CUpti_ActivityKind, CUpti_ActivityThreadIdType, CUpti_ApiCallbackSite,
    CUpti_BuffersCallbackCompleteFunc, CUpti_BuffersCallbackRequestFunc, CUpti_CallbackData,
    CUpti_CallbackDomain, CUpti_CallbackFunc, CUpti_CallbackId, CUpti_ExternalCorrelationKind,
    CUpti_NvtxData, CUpti_SubscriberHandle, CUpti_TimestampCallbackFunc,
    CUpti_driver_api_trace_cbid_enum, CUpti_nvtx_api_trace_cbid, CUpti_runtime_api_trace_cbid_enum,
    CUptiResult,
};

/// The CUPTI API version the double reports unless a test sets another.
const DEFAULT_VERSION: u32 = 130001;

/// Bytes of the length header before each record.
const HEADER: usize = 8;

/// A buffer the tracer lent us.
struct Buffer {
    ptr: usize,
    size: usize,
    used: usize,
}

/// The subscriber's callback and its user data.
#[derive(Clone, Copy)]
struct Subscriber {
    callback: CUpti_CallbackFunc,
    userdata: usize,
}

/// Everything a loaded CUPTI would hold.
struct Double {
    version: u32,
    multiple_subscribers: bool,
    failures: HashMap<String, u32>,
    subscriber: Option<Subscriber>,
    enabled_domains: HashSet<u32>,
    enabled_callbacks: HashSet<(u32, u32)>,
    request: CUpti_BuffersCallbackRequestFunc,
    complete: CUpti_BuffersCallbackCompleteFunc,
    enabled_kinds: HashSet<u32>,
    disabled_apis: HashSet<(u32, u32)>,
    current: Option<Buffer>,
    full: VecDeque<Buffer>,
    hold: bool,
    completing: bool,
    dropped_unreported: usize,
    dropped_total: usize,
    outstanding: usize,
    outstanding_bytes: usize,
    peak_outstanding_bytes: usize,
    thread_id_type: u32,
    latency_timestamps: u8,
    last_timestamp: u64,
    next_correlation: u32,
}

impl Double {
    fn new() -> Self {
        Double {
            version: DEFAULT_VERSION,
            multiple_subscribers: false,
            failures: HashMap::new(),
            subscriber: None,
            enabled_domains: HashSet::new(),
            enabled_callbacks: HashSet::new(),
            request: None,
            complete: None,
            enabled_kinds: HashSet::new(),
            disabled_apis: HashSet::new(),
            current: None,
            full: VecDeque::new(),
            hold: false,
            completing: false,
            dropped_unreported: 0,
            dropped_total: 0,
            outstanding: 0,
            outstanding_bytes: 0,
            peak_outstanding_bytes: 0,
            thread_id_type: 0,
            latency_timestamps: 0,
            last_timestamp: 0,
            next_correlation: 1,
        }
    }

    /// The scripted failure of `function`, if any.
    fn failure(&self, function: &str) -> Option<CUptiResult> {
        self.failures.get(function).map(|&code| CUptiResult(code))
    }

    /// Hands a buffer back: the caller then calls `bufferCompleted` without the lock.
    fn retire(&mut self, buffer: &Buffer) {
        self.outstanding = self.outstanding.saturating_sub(1);
        self.outstanding_bytes = self.outstanding_bytes.saturating_sub(buffer.size);
    }
}

struct Shared {
    state: Mutex<Double>,
    changed: Condvar,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        std::thread::Builder::new()
            .name("cupti-double".into())
            .spawn(complete_full_buffers)
            .ok();
        Shared {
            state: Mutex::new(Double::new()),
            changed: Condvar::new(),
        }
    })
}

fn lock() -> MutexGuard<'static, Double> {
    shared()
        .state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

thread_local! {
    /// External correlation ids pushed by this thread, per kind.
    static EXTERNAL: RefCell<HashMap<u32, Vec<u64>>> = RefCell::new(HashMap::new());
}

/// The double's own thread: completes full buffers, as CUPTI's worker does.
fn complete_full_buffers() {
    let shared = shared();
    loop {
        let mut state = lock();
        while state.hold || state.full.is_empty() {
            state = shared
                .changed
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        let Some(buffer) = state.full.pop_front() else {
            continue;
        };
        state.retire(&buffer);
        state.completing = true;
        let complete = state.complete;
        drop(state);
        hand_back(complete, &buffer);
        lock().completing = false;
        shared.changed.notify_all();
    }
}

/// Calls `bufferCompleted` for `buffer` (without the lock held).
fn hand_back(complete: CUpti_BuffersCallbackCompleteFunc, buffer: &Buffer) {
    if let Some(complete) = complete {
        // SAFETY: the tracer registered this callback for exactly these arguments;
        // the buffer is one it lent us.
        unsafe {
            complete(
                ptr::null_mut(),
                0,
                buffer.ptr as *mut u8,
                buffer.size,
                buffer.used,
            )
        };
    }
}

/// Returns early with the scripted failure of the named function.
macro_rules! scripted_failure {
    ($state:expr, $name:literal) => {
        if let Some(code) = $state.failure($name) {
            return code;
        }
    };
}

const SUCCESS: CUptiResult = CUptiResult::CUPTI_SUCCESS;

/// `cuptiGetVersion`.
///
/// # Safety
/// `version` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuptiGetVersion(version: *mut u32) -> CUptiResult {
    let state = lock();
    scripted_failure!(state, "cuptiGetVersion");
    if version.is_null() {
        return CUptiResult::CUPTI_ERROR_INVALID_PARAMETER;
    }
    // SAFETY: checked non-null; the caller passes a writable u32.
    unsafe { version.write(state.version) };
    SUCCESS
}

/// `cuptiGetResultString`.
///
/// # Safety
/// `text` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuptiGetResultString(
    result: CUptiResult,
    text: *mut *const c_char,
) -> CUptiResult {
    if text.is_null() {
        return CUptiResult::CUPTI_ERROR_INVALID_PARAMETER;
    }
    let message: &'static CStr = match result {
        CUptiResult::CUPTI_SUCCESS => c"CUPTI_SUCCESS",
        CUptiResult::CUPTI_ERROR_INVALID_PARAMETER => c"CUPTI_ERROR_INVALID_PARAMETER",
        CUptiResult::CUPTI_ERROR_NOT_INITIALIZED => c"CUPTI_ERROR_NOT_INITIALIZED",
        CUptiResult::CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED => {
            c"CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED"
        }
        CUptiResult::CUPTI_ERROR_INSUFFICIENT_PRIVILEGES => c"CUPTI_ERROR_INSUFFICIENT_PRIVILEGES",
        _ => c"CUPTI_ERROR_UNKNOWN",
    };
    // SAFETY: checked non-null; the string is static.
    unsafe { text.write(message.as_ptr()) };
    SUCCESS
}

/// `cuptiSubscribe`: one subscriber at a time, as CUPTI allows.
///
/// # Safety
/// `subscriber` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuptiSubscribe(
    subscriber: *mut CUpti_SubscriberHandle,
    callback: CUpti_CallbackFunc,
    userdata: *mut c_void,
) -> CUptiResult {
    let mut state = lock();
    scripted_failure!(state, "cuptiSubscribe");
    if state.multiple_subscribers || state.subscriber.is_some() {
        return CUptiResult::CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED;
    }
    if subscriber.is_null() {
        return CUptiResult::CUPTI_ERROR_INVALID_PARAMETER;
    }
    state.subscriber = Some(Subscriber {
        callback,
        userdata: userdata as usize,
    });
    // SAFETY: checked non-null; the handle is opaque to the caller.
    unsafe { subscriber.write(NonNull::dangling().as_ptr()) };
    SUCCESS
}

/// `cuptiUnsubscribe`.
#[unsafe(no_mangle)]
pub extern "C" fn cuptiUnsubscribe(_subscriber: CUpti_SubscriberHandle) -> CUptiResult {
    let mut state = lock();
    scripted_failure!(state, "cuptiUnsubscribe");
    state.subscriber = None;
    state.enabled_domains.clear();
    state.enabled_callbacks.clear();
    SUCCESS
}

/// `cuptiEnableCallback`.
#[unsafe(no_mangle)]
pub extern "C" fn cuptiEnableCallback(
    enable: u32,
    _subscriber: CUpti_SubscriberHandle,
    domain: CUpti_CallbackDomain,
    cbid: CUpti_CallbackId,
) -> CUptiResult {
    let mut state = lock();
    scripted_failure!(state, "cuptiEnableCallback");
    if enable != 0 {
        state.enabled_callbacks.insert((domain.0, cbid));
    } else {
        state.enabled_callbacks.remove(&(domain.0, cbid));
    }
    SUCCESS
}

/// `cuptiEnableDomain`.
#[unsafe(no_mangle)]
pub extern "C" fn cuptiEnableDomain(
    enable: u32,
    _subscriber: CUpti_SubscriberHandle,
    domain: CUpti_CallbackDomain,
) -> CUptiResult {
    let mut state = lock();
    scripted_failure!(state, "cuptiEnableDomain");
    if enable != 0 {
        state.enabled_domains.insert(domain.0);
    } else {
        state.enabled_domains.remove(&domain.0);
    }
    SUCCESS
}

/// Callback names the double knows, with CUPTI's version suffixes.
fn callback_name(domain: CUpti_CallbackDomain, cbid: u32) -> Option<&'static CStr> {
    macro_rules! table {
        ($ty:ident, $value:expr, $($name:ident => $text:literal),* $(,)?) => {
            match $value {
                $(v if v == $ty::$name.0 => Some($text),)*
                _ => None,
            }
        };
    }
    match domain {
        CUpti_CallbackDomain::CUPTI_CB_DOMAIN_RUNTIME_API => table!(
            CUpti_runtime_api_trace_cbid_enum, cbid,
            CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000 => c"cudaLaunchKernel_v7000",
            CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyAsync_v3020 => c"cudaMemcpyAsync_v3020",
            CUPTI_RUNTIME_TRACE_CBID_cudaMemsetAsync_v3020 => c"cudaMemsetAsync_v3020",
            CUPTI_RUNTIME_TRACE_CBID_cudaStreamSynchronize_v3020 => c"cudaStreamSynchronize_v3020",
            CUPTI_RUNTIME_TRACE_CBID_cudaGraphLaunch_v10000 => c"cudaGraphLaunch_v10000",
            CUPTI_RUNTIME_TRACE_CBID_cudaGetDevice_v3020 => c"cudaGetDevice_v3020",
            CUPTI_RUNTIME_TRACE_CBID_cudaProfilerStart_v4000 => c"cudaProfilerStart_v4000",
            CUPTI_RUNTIME_TRACE_CBID_cudaProfilerStop_v4000 => c"cudaProfilerStop_v4000",
        ),
        CUpti_CallbackDomain::CUPTI_CB_DOMAIN_DRIVER_API => table!(
            CUpti_driver_api_trace_cbid_enum, cbid,
            CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel => c"cuLaunchKernel",
            CUPTI_DRIVER_TRACE_CBID_cuCtxGetCurrent => c"cuCtxGetCurrent",
            CUPTI_DRIVER_TRACE_CBID_cuProfilerStart => c"cuProfilerStart",
            CUPTI_DRIVER_TRACE_CBID_cuProfilerStop => c"cuProfilerStop",
        ),
        CUpti_CallbackDomain::CUPTI_CB_DOMAIN_NVTX => table!(
            CUpti_nvtx_api_trace_cbid, cbid,
            CUPTI_CBID_NVTX_nvtxRangePushA => c"nvtxRangePushA",
            CUPTI_CBID_NVTX_nvtxRangePushW => c"nvtxRangePushW",
            CUPTI_CBID_NVTX_nvtxRangePushEx => c"nvtxRangePushEx",
            CUPTI_CBID_NVTX_nvtxRangePop => c"nvtxRangePop",
            CUPTI_CBID_NVTX_nvtxRangeStartA => c"nvtxRangeStartA",
            CUPTI_CBID_NVTX_nvtxRangeStartW => c"nvtxRangeStartW",
            CUPTI_CBID_NVTX_nvtxRangeStartEx => c"nvtxRangeStartEx",
            CUPTI_CBID_NVTX_nvtxRangeEnd => c"nvtxRangeEnd",
            CUPTI_CBID_NVTX_nvtxDomainRangePushEx => c"nvtxDomainRangePushEx",
            CUPTI_CBID_NVTX_nvtxDomainRangePop => c"nvtxDomainRangePop",
            CUPTI_CBID_NVTX_nvtxDomainRangeStartEx => c"nvtxDomainRangeStartEx",
            CUPTI_CBID_NVTX_nvtxDomainRangeEnd => c"nvtxDomainRangeEnd",
            CUPTI_CBID_NVTX_nvtxDomainRegisterStringA => c"nvtxDomainRegisterStringA",
            CUPTI_CBID_NVTX_nvtxDomainRegisterStringW => c"nvtxDomainRegisterStringW",
        ),
        _ => None,
    }
}

/// `cuptiGetCallbackName`, for the callback ids the double knows.
///
/// # Safety
/// `name` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuptiGetCallbackName(
    domain: CUpti_CallbackDomain,
    cbid: u32,
    name: *mut *const c_char,
) -> CUptiResult {
    let state = lock();
    scripted_failure!(state, "cuptiGetCallbackName");
    if name.is_null() {
        return CUptiResult::CUPTI_ERROR_INVALID_PARAMETER;
    }
    match callback_name(domain, cbid) {
        Some(text) => {
            // SAFETY: checked non-null; the string is static.
            unsafe { name.write(text.as_ptr()) };
            SUCCESS
        }
        None => CUptiResult::CUPTI_ERROR_INVALID_PARAMETER,
    }
}

/// `cuptiGetTimestamp`: nanoseconds since the Unix epoch, strictly increasing.
///
/// # Safety
/// `timestamp` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuptiGetTimestamp(timestamp: *mut u64) -> CUptiResult {
    let mut state = lock();
    scripted_failure!(state, "cuptiGetTimestamp");
    if timestamp.is_null() {
        return CUptiResult::CUPTI_ERROR_INVALID_PARAMETER;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    state.last_timestamp = now.max(state.last_timestamp + 1);
    // SAFETY: checked non-null.
    unsafe { timestamp.write(state.last_timestamp) };
    SUCCESS
}

/// `cuptiActivityEnable`.
#[unsafe(no_mangle)]
pub extern "C" fn cuptiActivityEnable(kind: CUpti_ActivityKind) -> CUptiResult {
    let mut state = lock();
    scripted_failure!(state, "cuptiActivityEnable");
    state.enabled_kinds.insert(kind.0);
    SUCCESS
}

/// `cuptiActivityDisable`.
#[unsafe(no_mangle)]
pub extern "C" fn cuptiActivityDisable(kind: CUpti_ActivityKind) -> CUptiResult {
    let mut state = lock();
    scripted_failure!(state, "cuptiActivityDisable");
    state.enabled_kinds.remove(&kind.0);
    SUCCESS
}

/// `cuptiActivityGetNumDroppedRecords`: records dropped since the last call.
///
/// # Safety
/// `dropped` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuptiActivityGetNumDroppedRecords(
    _context: CUcontext,
    _stream: u32,
    dropped: *mut usize,
) -> CUptiResult {
    let mut state = lock();
    scripted_failure!(state, "cuptiActivityGetNumDroppedRecords");
    if dropped.is_null() {
        return CUptiResult::CUPTI_ERROR_INVALID_PARAMETER;
    }
    // SAFETY: checked non-null.
    unsafe { dropped.write(std::mem::take(&mut state.dropped_unreported)) };
    SUCCESS
}

fn padded(len: usize) -> usize {
    len.div_ceil(8) * 8
}

/// `cuptiActivityGetNextRecord` over the double's buffer layout.
///
/// # Safety
/// `buffer` holds `valid` bytes written by the double; `record` is writable and holds
/// null or the record this function returned last for this buffer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuptiActivityGetNextRecord(
    buffer: *mut u8,
    valid: usize,
    record: *mut *mut CUpti_Activity,
) -> CUptiResult {
    if buffer.is_null() || record.is_null() {
        return CUptiResult::CUPTI_ERROR_INVALID_PARAMETER;
    }
    // SAFETY: `record` is writable (the caller's contract).
    let previous = unsafe { record.read() }.cast::<u8>();
    let header = if previous.is_null() {
        0
    } else {
        // SAFETY: `previous` is a record of this buffer, preceded by its length.
        let (offset, len) = unsafe {
            let offset = previous.offset_from(buffer) as usize;
            (offset, previous.sub(HEADER).cast::<u64>().read() as usize)
        };
        offset + padded(len)
    };
    if header + HEADER > valid {
        return CUptiResult::CUPTI_ERROR_MAX_LIMIT_REACHED;
    }
    // SAFETY: `header + HEADER <= valid`, inside the buffer.
    unsafe { record.write(buffer.add(header + HEADER).cast()) };
    SUCCESS
}

/// `cuptiActivityRegisterCallbacks`.
#[unsafe(no_mangle)]
pub extern "C" fn cuptiActivityRegisterCallbacks(
    requested: CUpti_BuffersCallbackRequestFunc,
    completed: CUpti_BuffersCallbackCompleteFunc,
) -> CUptiResult {
    let mut state = lock();
    scripted_failure!(state, "cuptiActivityRegisterCallbacks");
    if requested.is_none() || completed.is_none() {
        return CUptiResult::CUPTI_ERROR_INVALID_PARAMETER;
    }
    state.request = requested;
    state.complete = completed;
    SUCCESS
}

/// `cuptiActivityFlushAll`: hands back the full buffers and, with
/// `CUPTI_ACTIVITY_FLAG_FLUSH_FORCED`, the one being filled, before returning.
#[unsafe(no_mangle)]
pub extern "C" fn cuptiActivityFlushAll(flag: u32) -> CUptiResult {
    let shared = shared();
    let mut state = lock();
    scripted_failure!(state, "cuptiActivityFlushAll");
    while state.completing {
        state = shared
            .changed
            .wait(state)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
    }
    let mut buffers: Vec<Buffer> = state.full.drain(..).collect();
    if flag & CUpti_ActivityFlag::CUPTI_ACTIVITY_FLAG_FLUSH_FORCED.0 != 0
        && let Some(current) = state.current.take()
    {
        buffers.push(current);
    }
    for buffer in &buffers {
        state.retire(buffer);
    }
    let complete = state.complete;
    drop(state);
    for buffer in &buffers {
        hand_back(complete, buffer);
    }
    SUCCESS
}

/// `cuptiActivitySetAttribute`: accepted and ignored.
#[unsafe(no_mangle)]
pub extern "C" fn cuptiActivitySetAttribute(
    _attribute: CUpti_ActivityAttribute,
    _size: *mut usize,
    _value: *mut c_void,
) -> CUptiResult {
    let state = lock();
    scripted_failure!(state, "cuptiActivitySetAttribute");
    SUCCESS
}

/// `cuptiSetThreadIdType`.
#[unsafe(no_mangle)]
pub extern "C" fn cuptiSetThreadIdType(kind: CUpti_ActivityThreadIdType) -> CUptiResult {
    let mut state = lock();
    scripted_failure!(state, "cuptiSetThreadIdType");
    state.thread_id_type = kind.0;
    SUCCESS
}

/// `cuptiFinalize`.
#[unsafe(no_mangle)]
pub extern "C" fn cuptiFinalize() -> CUptiResult {
    let state = lock();
    scripted_failure!(state, "cuptiFinalize");
    SUCCESS
}

/// `cuptiActivityPushExternalCorrelationId`, per calling thread.
#[unsafe(no_mangle)]
pub extern "C" fn cuptiActivityPushExternalCorrelationId(
    kind: CUpti_ExternalCorrelationKind,
    id: u64,
) -> CUptiResult {
    scripted_failure!(lock(), "cuptiActivityPushExternalCorrelationId");
    EXTERNAL.with(|stacks| stacks.borrow_mut().entry(kind.0).or_default().push(id));
    SUCCESS
}

/// `cuptiActivityPopExternalCorrelationId`, per calling thread.
///
/// # Safety
/// `last` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuptiActivityPopExternalCorrelationId(
    kind: CUpti_ExternalCorrelationKind,
    last: *mut u64,
) -> CUptiResult {
    scripted_failure!(lock(), "cuptiActivityPopExternalCorrelationId");
    let popped = EXTERNAL.with(|stacks| stacks.borrow_mut().get_mut(&kind.0)?.pop());
    match popped {
        Some(id) => {
            if !last.is_null() {
                // SAFETY: checked non-null.
                unsafe { last.write(id) };
            }
            SUCCESS
        }
        None => CUptiResult::CUPTI_ERROR_QUEUE_EMPTY,
    }
}

/// `cuptiActivityEnableLatencyTimestamps`.
#[unsafe(no_mangle)]
pub extern "C" fn cuptiActivityEnableLatencyTimestamps(enable: u8) -> CUptiResult {
    let mut state = lock();
    scripted_failure!(state, "cuptiActivityEnableLatencyTimestamps");
    state.latency_timestamps = enable;
    SUCCESS
}

/// `cuptiActivityRegisterTimestampCallback`: accepted and ignored.
#[unsafe(no_mangle)]
pub extern "C" fn cuptiActivityRegisterTimestampCallback(
    _timestamp: CUpti_TimestampCallbackFunc,
) -> CUptiResult {
    let state = lock();
    scripted_failure!(state, "cuptiActivityRegisterTimestampCallback");
    SUCCESS
}

fn enable_api(domain: CUpti_CallbackDomain, cbid: CUpti_CallbackId, enable: u8) {
    let mut state = lock();
    if enable != 0 {
        state.disabled_apis.remove(&(domain.0, cbid));
    } else {
        state.disabled_apis.insert((domain.0, cbid));
    }
}

/// `cuptiActivityEnableRuntimeApi`: filters runtime API records by callback id.
#[unsafe(no_mangle)]
pub extern "C" fn cuptiActivityEnableRuntimeApi(cbid: CUpti_CallbackId, enable: u8) -> CUptiResult {
    scripted_failure!(lock(), "cuptiActivityEnableRuntimeApi");
    enable_api(
        CUpti_CallbackDomain::CUPTI_CB_DOMAIN_RUNTIME_API,
        cbid,
        enable,
    );
    SUCCESS
}

/// `cuptiActivityEnableDriverApi`: filters driver API records by callback id.
#[unsafe(no_mangle)]
pub extern "C" fn cuptiActivityEnableDriverApi(cbid: CUpti_CallbackId, enable: u8) -> CUptiResult {
    scripted_failure!(lock(), "cuptiActivityEnableDriverApi");
    enable_api(
        CUpti_CallbackDomain::CUPTI_CB_DOMAIN_DRIVER_API,
        cbid,
        enable,
    );
    SUCCESS
}

/// Writes one record into the buffer being filled, asking the tracer for a new
/// buffer when it is full; returns the lock and whether the record was written.
fn write_record(
    mut state: MutexGuard<'static, Double>,
    bytes: &[u8],
) -> (MutexGuard<'static, Double>, bool) {
    let needed = HEADER + padded(bytes.len());
    let fits = |b: &Buffer| b.size - b.used >= needed;
    if state.current.as_ref().is_some_and(|b| !fits(b)) {
        if let Some(full) = state.current.take() {
            state.full.push_back(full);
            shared().changed.notify_all();
        }
    }
    if state.current.is_none() {
        let request = state.request;
        drop(state);
        let mut ptr: *mut u8 = ptr::null_mut();
        let mut size = 0usize;
        let mut max_records = 0usize;
        if let Some(request) = request {
            // SAFETY: the tracer registered this callback for exactly these arguments.
            unsafe { request(&mut ptr, &mut size, &mut max_records) };
        }
        state = lock();
        if !ptr.is_null() && size > 0 {
            state.outstanding += 1;
            state.outstanding_bytes += size;
            state.peak_outstanding_bytes =
                state.peak_outstanding_bytes.max(state.outstanding_bytes);
            state.current = Some(Buffer {
                ptr: ptr as usize,
                size,
                used: 0,
            });
        }
    }
    let Some(buffer) = state.current.as_mut().filter(|b| fits(b)) else {
        state.dropped_unreported += 1;
        state.dropped_total += 1;
        return (state, false);
    };
    let at = (buffer.ptr + buffer.used) as *mut u8;
    // SAFETY: the tracer lent `size` bytes at `ptr`; `used + needed <= size`, and
    // the header keeps the record 8-byte aligned in an 8-byte aligned buffer.
    unsafe {
        at.cast::<u64>().write_unaligned(bytes.len() as u64);
        ptr::copy_nonoverlapping(bytes.as_ptr(), at.add(HEADER), bytes.len());
        ptr::write_bytes(
            at.add(HEADER + bytes.len()),
            0,
            padded(bytes.len()) - bytes.len(),
        );
    }
    buffer.used += needed;
    (state, true)
}

/// Test control: writes a record of `kind` (`len` bytes at `record`, laid out with
/// the generated struct of its kind) as CUPTI would. Returns 1 when written, 0 when
/// filtered out (kind disabled, or API callback id disabled), -1 when dropped for
/// want of a buffer. A kind at or past `CUPTI_ACTIVITY_KIND_COUNT` (one a newer
/// CUPTI might write) is always written.
///
/// # Safety
/// `record` points to `len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cupti_double_emit(kind: u32, record: *const u8, len: usize) -> i32 {
    if record.is_null() || len < 4 {
        return 0;
    }
    // SAFETY: the caller passes `len` readable bytes.
    let bytes = unsafe { std::slice::from_raw_parts(record, len) };
    let mut state = lock();
    // Kinds past the headers' count stand for a newer CUPTI's kinds: no switch
    // turns them off here.
    let known = kind < CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_COUNT.0;
    if known && !state.enabled_kinds.contains(&kind) {
        return 0;
    }
    let api_domain = match CUpti_ActivityKind(kind) {
        CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_RUNTIME => {
            Some(CUpti_CallbackDomain::CUPTI_CB_DOMAIN_RUNTIME_API)
        }
        CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_DRIVER => {
            Some(CUpti_CallbackDomain::CUPTI_CB_DOMAIN_DRIVER_API)
        }
        _ => None,
    };
    if let Some(domain) = api_domain
        && len >= size_of::<CUpti_ActivityAPI>()
    {
        // SAFETY: an API record has at least `CUpti_ActivityAPI`'s size (checked).
        let api = unsafe { record.cast::<CUpti_ActivityAPI>().read_unaligned() };
        if state.disabled_apis.contains(&(domain.0, api.cbid)) {
            return 0;
        }
        let external_enabled = state
            .enabled_kinds
            .contains(&CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION.0);
        let pushed: Vec<(u32, u64)> = EXTERNAL.with(|stacks| {
            let mut pushed: Vec<(u32, u64)> = stacks
                .borrow()
                .iter()
                .filter_map(|(&kind, ids)| Some((kind, *ids.last()?)))
                .collect();
            pushed.sort_unstable();
            pushed
        });
        for (external_kind, external_id) in pushed.into_iter().filter(|_| external_enabled) {
            let correlation = CUpti_ActivityExternalCorrelation {
                kind: CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION,
                externalKind: CUpti_ExternalCorrelationKind(external_kind),
                externalId: external_id,
                correlationId: api.correlationId,
                reserved: 0,
            };
            // SAFETY: a plain-data struct viewed as its bytes.
            let raw = unsafe {
                std::slice::from_raw_parts(
                    (&raw const correlation).cast::<u8>(),
                    size_of::<CUpti_ActivityExternalCorrelation>(),
                )
            };
            state = write_record(state, raw).0;
        }
    }
    match write_record(state, bytes) {
        (_, true) => 1,
        (_, false) => -1,
    }
}

/// Test control: invokes the subscriber's callback for (`domain`, `cbid`) at `site`
/// (`CUPTI_API_ENTER` = 0, `CUPTI_API_EXIT` = 1) with `function_name` and `params`
/// (the API's parameter struct, e.g. `nvtxRangePushA_params`), as CUPTI does around
/// an API call; an NVTX callback gets no return value (see
/// `cupti_double_invoke_nvtx_callback`). Returns 1 when called, 0 when that
/// callback is not enabled, -1 when nobody is subscribed.
///
/// # Safety
/// `function_name` is null or a C string; `params` is null or what the callback
/// expects for that callback id.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cupti_double_invoke_callback(
    domain: u32,
    cbid: u32,
    site: u32,
    function_name: *const c_char,
    params: *const c_void,
) -> i32 {
    // SAFETY: the caller's contract.
    unsafe { invoke(domain, cbid, site, function_name, params, ptr::null()) }
}

/// Test control: invokes the subscriber's NVTX callback `cbid` as CUPTI does once
/// the NVTX call returned: `CUpti_NvtxData` with the call's name (from the
/// double's table, null when unknown), `params` (its struct from
/// `generated_nvtx_meta.h`, e.g. `nvtxDomainRangePushEx_params`) and
/// `return_value` (a pointer to what it returned, e.g. the `nvtxRangeId_t` of
/// `nvtxRangeStartA` or the `nvtxStringHandle_t` of `nvtxDomainRegisterStringA`;
/// null for none). Returns as `cupti_double_invoke_callback`.
///
/// # Safety
/// `params` and `return_value` are null or what the callback expects for `cbid`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cupti_double_invoke_nvtx_callback(
    cbid: u32,
    params: *const c_void,
    return_value: *const c_void,
) -> i32 {
    let domain = CUpti_CallbackDomain::CUPTI_CB_DOMAIN_NVTX;
    let name = callback_name(domain, cbid).map_or(ptr::null(), CStr::as_ptr);
    // SAFETY: the caller's contract; the name is static.
    unsafe { invoke(domain.0, cbid, 0, name, params, return_value) }
}

/// Calls the subscriber's callback with the callback data of `domain`.
///
/// # Safety
/// As `cupti_double_invoke_nvtx_callback`; `function_name` is null or a C string.
unsafe fn invoke(
    domain: u32,
    cbid: u32,
    site: u32,
    function_name: *const c_char,
    params: *const c_void,
    return_value: *const c_void,
) -> i32 {
    let mut state = lock();
    let Some(subscriber) = state.subscriber else {
        return -1;
    };
    if !state.enabled_domains.contains(&domain)
        && !state.enabled_callbacks.contains(&(domain, cbid))
    {
        return 0;
    }
    let correlation = state.next_correlation;
    state.next_correlation += 1;
    drop(state);
    let mut correlation_data = 0u64;
    let api = CUpti_CallbackData {
        callbackSite: CUpti_ApiCallbackSite(site),
        functionName: function_name,
        functionParams: params,
        functionReturnValue: ptr::null_mut(),
        symbolName: ptr::null(),
        context: ptr::null_mut(),
        contextUid: 0,
        correlationData: &mut correlation_data,
        correlationId: correlation,
    };
    let nvtx = CUpti_NvtxData {
        functionName: function_name,
        functionParams: params,
        functionReturnValue: return_value,
    };
    let data: *const c_void = match CUpti_CallbackDomain(domain) {
        CUpti_CallbackDomain::CUPTI_CB_DOMAIN_NVTX => (&raw const nvtx).cast(),
        _ => (&raw const api).cast(),
    };
    if let Some(callback) = subscriber.callback {
        // SAFETY: the subscriber registered this callback for exactly these
        // arguments; `data` outlives the call.
        unsafe {
            callback(
                subscriber.userdata as *mut c_void,
                CUpti_CallbackDomain(domain),
                cbid,
                data,
            )
        };
    }
    1
}

/// Test control: a kernel launch as CUPTI reports it, for test programs that do
/// not lay records out themselves (the Python package's tests): a runtime
/// `cudaLaunchKernel` record, then a kernel named `name` that ran `micros`
/// microseconds on stream 7, both with one fresh correlation id, so that an
/// annotation open on the calling thread is linked to the kernel. Returns as
/// `cupti_double_emit` does for the kernel.
///
/// # Safety
/// `name` is a C string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cupti_double_launch_kernel(name: *const c_char, micros: u64) -> i32 {
    if name.is_null() {
        return 0;
    }
    // The tracer reads kernel names later, on its own thread; CUPTI keeps them for
    // the process's life, and so does this.
    // SAFETY: the caller passes a C string.
    let name = unsafe { CStr::from_ptr(name) }.to_owned().into_raw();
    let mut start = 0;
    // SAFETY: the out-pointer is a live local.
    unsafe { cuptiGetTimestamp(&mut start) };
    let correlation = {
        let mut state = lock();
        let correlation = state.next_correlation;
        state.next_correlation += 1;
        correlation
    };
    // SAFETY: all-zero records are valid plain-data values.
    let mut api: CUpti_ActivityAPI = unsafe { std::mem::zeroed() };
    api.kind = CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_RUNTIME;
    api.cbid = CUpti_runtime_api_trace_cbid_enum::CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000.0;
    api.start = start;
    api.end = start + 1_000;
    api.processId = std::process::id();
    // SAFETY: gettid has no preconditions.
    api.threadId = unsafe { libc::gettid() } as u32;
    api.correlationId = correlation;
    // SAFETY: as above.
    let mut kernel: CUpti_ActivityKernel9 = unsafe { std::mem::zeroed() };
    kernel.kind = CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL;
    kernel.start = start + 2_000;
    kernel.end = kernel.start + micros * 1_000;
    kernel.completed = kernel.end;
    kernel.streamId = 7;
    kernel.contextId = 1;
    (kernel.gridX, kernel.gridY, kernel.gridZ) = (1, 1, 1);
    (kernel.blockX, kernel.blockY, kernel.blockZ) = (128, 1, 1);
    kernel.correlationId = correlation;
    kernel.name = name;
    // SAFETY: both are live structs of the lengths passed.
    unsafe {
        cupti_double_emit(
            api.kind.0,
            (&raw const api).cast(),
            size_of::<CUpti_ActivityAPI>(),
        );
        cupti_double_emit(
            kernel.kind.0,
            (&raw const kernel).cast(),
            size_of::<CUpti_ActivityKernel9>(),
        )
    }
}

/// Test control: makes every later call of `function` (e.g. `cuptiSubscribe`)
/// return `code`, until `cupti_double_reset`.
///
/// # Safety
/// `function` is a C string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cupti_double_fail(function: *const c_char, code: u32) {
    if function.is_null() {
        return;
    }
    // SAFETY: the caller passes a C string.
    let name = unsafe { CStr::from_ptr(function) }
        .to_string_lossy()
        .into_owned();
    lock().failures.insert(name, code);
}

/// Test control: when `on`, `cuptiSubscribe` fails with
/// `CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED`, as when nsys or torch.profiler
/// already subscribed.
#[unsafe(no_mangle)]
pub extern "C" fn cupti_double_report_multiple_subscribers(on: bool) {
    lock().multiple_subscribers = on;
}

/// Test control: the CUPTI API version `cuptiGetVersion` reports.
#[unsafe(no_mangle)]
pub extern "C" fn cupti_double_set_version(version: u32) {
    lock().version = version;
}

/// Test control: when `on`, full buffers are kept instead of handed back, until a
/// flush or until it is turned off (makes a full buffer pool deterministic).
#[unsafe(no_mangle)]
pub extern "C" fn cupti_double_hold_completions(on: bool) {
    lock().hold = on;
    shared().changed.notify_all();
}

/// Test control: whether activity `kind` is enabled.
#[unsafe(no_mangle)]
pub extern "C" fn cupti_double_kind_enabled(kind: u32) -> bool {
    lock().enabled_kinds.contains(&kind)
}

/// Test control: whether API records of (`domain`, `cbid`) are collected.
#[unsafe(no_mangle)]
pub extern "C" fn cupti_double_api_enabled(domain: u32, cbid: u32) -> bool {
    !lock().disabled_apis.contains(&(domain, cbid))
}

/// Test control: whether the callback (`domain`, `cbid`) is enabled for the
/// subscriber, by itself or through its whole domain.
#[unsafe(no_mangle)]
pub extern "C" fn cupti_double_callback_enabled(domain: u32, cbid: u32) -> bool {
    let state = lock();
    state.enabled_domains.contains(&domain) || state.enabled_callbacks.contains(&(domain, cbid))
}

/// Test control: whether someone is subscribed.
#[unsafe(no_mangle)]
pub extern "C" fn cupti_double_subscribed() -> bool {
    lock().subscriber.is_some()
}

/// Test control: the thread id type last set with `cuptiSetThreadIdType`.
#[unsafe(no_mangle)]
pub extern "C" fn cupti_double_thread_id_type() -> u32 {
    lock().thread_id_type
}

/// Test control: the value last given to `cuptiActivityEnableLatencyTimestamps`.
#[unsafe(no_mangle)]
pub extern "C" fn cupti_double_latency_timestamps() -> u8 {
    lock().latency_timestamps
}

/// Test control: buffers lent by the tracer and not handed back yet.
#[unsafe(no_mangle)]
pub extern "C" fn cupti_double_outstanding_buffers() -> usize {
    lock().outstanding
}

/// Test control: the most bytes of lent buffers the double held at once.
#[unsafe(no_mangle)]
pub extern "C" fn cupti_double_peak_outstanding_bytes() -> usize {
    lock().peak_outstanding_bytes
}

/// Test control: counts `count` records as dropped without asking for a buffer, as
/// CUPTI does for device-side records that overflow its device buffer.
#[unsafe(no_mangle)]
pub extern "C" fn cupti_double_drop_records(count: usize) {
    let mut state = lock();
    state.dropped_unreported += count;
    state.dropped_total += count;
}

/// Test control: records dropped for want of a buffer since the last reset.
#[unsafe(no_mangle)]
pub extern "C" fn cupti_double_dropped_total() -> usize {
    lock().dropped_total
}

/// Test control: forgets every subscriber, callback, enabled kind, scripted failure,
/// buffer and count, as after a fresh load. Buffers still lent are not handed back:
/// reset only after the tracer shut down.
#[unsafe(no_mangle)]
pub extern "C" fn cupti_double_reset() {
    let shared = shared();
    let mut state = lock();
    while state.completing {
        state = shared
            .changed
            .wait(state)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
    }
    *state = Double::new();
    drop(state);
    EXTERNAL.with(|stacks| stacks.borrow_mut().clear());
}
