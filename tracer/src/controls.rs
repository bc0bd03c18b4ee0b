//! Windows driven by the application itself: `cudaProfilerStart/Stop` and the ends
//! of NVTX ranges, seen through CUPTI's callback API (what injection mode needs).
//!
//! CUPTI calls [`on_callback`] on the application's thread around the API calls
//! enabled by [`enable`]; it turns them into [`Control`]s for the handler the host
//! installed with [`set_handler`]. Like the buffer callbacks, it never unwinds.

use std::cell::RefCell;
use std::ffi::{CStr, c_char, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, RwLock};

use cupti_sys::sys::{
    CUpti_ApiCallbackSite, CUpti_CallbackData, CUpti_CallbackDomain, CUpti_CallbackId,
    CUpti_NvtxData, CUpti_SubscriberHandle, CUpti_driver_api_trace_cbid_enum,
    CUpti_nvtx_api_trace_cbid, CUpti_runtime_api_trace_cbid_enum,
};
use rustc_hash::FxHashMap;

use crate::cupti::Cupti;
use crate::error::Error;

/// Something the application did that may start, stop or step a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// `cudaProfilerStart()` / `cuProfilerStart()` returned.
    ProfilerStart,
    /// `cudaProfilerStop()` / `cuProfilerStop()` was entered.
    ProfilerStop,
    /// An NVTX range (push/pop or start/end) with this message ended.
    RangeEnd(String),
}

/// Receives every [`Control`], on the application thread that caused it.
pub type ControlHandler = Arc<dyn Fn(Control) + Send + Sync>;

static HANDLER: RwLock<Option<ControlHandler>> = RwLock::new(None);

/// Routes controls to `handler` from now on.
pub(crate) fn set_handler(handler: ControlHandler) {
    *HANDLER.write().unwrap_or_else(|p| p.into_inner()) = Some(handler);
}

/// Stops routing controls.
pub(crate) fn disable() {
    *HANDLER.write().unwrap_or_else(|p| p.into_inner()) = None;
}

const RUNTIME: CUpti_CallbackDomain = CUpti_CallbackDomain::CUPTI_CB_DOMAIN_RUNTIME_API;
const DRIVER: CUpti_CallbackDomain = CUpti_CallbackDomain::CUPTI_CB_DOMAIN_DRIVER_API;
const NVTX: CUpti_CallbackDomain = CUpti_CallbackDomain::CUPTI_CB_DOMAIN_NVTX;

const RUNTIME_START: u32 =
    CUpti_runtime_api_trace_cbid_enum::CUPTI_RUNTIME_TRACE_CBID_cudaProfilerStart_v4000.0;
const RUNTIME_STOP: u32 =
    CUpti_runtime_api_trace_cbid_enum::CUPTI_RUNTIME_TRACE_CBID_cudaProfilerStop_v4000.0;
const DRIVER_START: u32 =
    CUpti_driver_api_trace_cbid_enum::CUPTI_DRIVER_TRACE_CBID_cuProfilerStart.0;
const DRIVER_STOP: u32 = CUpti_driver_api_trace_cbid_enum::CUPTI_DRIVER_TRACE_CBID_cuProfilerStop.0;
const PUSH: u32 = CUpti_nvtx_api_trace_cbid::CUPTI_CBID_NVTX_nvtxRangePushA.0;
const POP: u32 = CUpti_nvtx_api_trace_cbid::CUPTI_CBID_NVTX_nvtxRangePop.0;
const START: u32 = CUpti_nvtx_api_trace_cbid::CUPTI_CBID_NVTX_nvtxRangeStartA.0;
const END: u32 = CUpti_nvtx_api_trace_cbid::CUPTI_CBID_NVTX_nvtxRangeEnd.0;

/// Enables the profiler-API callbacks and, with `nvtx`, the NVTX range callbacks.
pub(crate) fn enable(
    cupti: &Cupti,
    subscriber: CUpti_SubscriberHandle,
    nvtx: bool,
) -> Result<(), Error> {
    for (domain, cbid) in [
        (RUNTIME, RUNTIME_START),
        (RUNTIME, RUNTIME_STOP),
        (DRIVER, DRIVER_START),
        (DRIVER, DRIVER_STOP),
    ] {
        cupti.enable_callback(subscriber, domain, cbid)?;
    }
    if nvtx {
        for cbid in [PUSH, POP, START, END] {
            cupti.enable_callback(subscriber, NVTX, cbid)?;
        }
    }
    Ok(())
}

thread_local! {
    /// Messages of the NVTX push/pop ranges open on this thread.
    static PUSHED: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Messages of the open NVTX start/end ranges, by range id (any thread may end them).
static STARTED: Mutex<Option<FxHashMap<u64, String>>> = Mutex::new(None);

/// The first parameter of `nvtxRangePushA` and `nvtxRangeStartA`: the message.
///
/// # Safety
/// `params` is null or points to a struct whose first field is a C string pointer.
unsafe fn message(params: *const c_void) -> String {
    if params.is_null() {
        return String::new();
    }
    // SAFETY: the caller's contract.
    let text = unsafe { params.cast::<*const c_char>().read_unaligned() };
    if text.is_null() {
        return String::new();
    }
    // SAFETY: NVTX messages are NUL-terminated strings.
    unsafe { CStr::from_ptr(text) }
        .to_string_lossy()
        .into_owned()
}

/// CUPTI's subscriber callback.
///
/// # Safety
/// Called by CUPTI with the callback data of `domain`.
pub(crate) unsafe extern "C" fn on_callback(
    _userdata: *mut c_void,
    domain: CUpti_CallbackDomain,
    cbid: CUpti_CallbackId,
    data: *const c_void,
) {
    if data.is_null() {
        return;
    }
    // A panic is dropped on purpose: it may not unwind into CUPTI.
    // SAFETY: CUPTI passes the callback data of `domain`.
    let _ = catch_unwind(AssertUnwindSafe(|| unsafe { route(domain, cbid, data) }));
}

/// # Safety
/// `data` is the callback data of `domain`.
unsafe fn route(domain: CUpti_CallbackDomain, cbid: u32, data: *const c_void) {
    let control = match domain {
        RUNTIME | DRIVER => {
            // SAFETY: API domains pass `CUpti_CallbackData`.
            let site = unsafe { (*data.cast::<CUpti_CallbackData>()).callbackSite };
            let enter = site == CUpti_ApiCallbackSite::CUPTI_API_ENTER;
            match (domain, cbid) {
                (RUNTIME, RUNTIME_START) | (DRIVER, DRIVER_START) if !enter => {
                    Control::ProfilerStart
                }
                (RUNTIME, RUNTIME_STOP) | (DRIVER, DRIVER_STOP) if enter => Control::ProfilerStop,
                _ => return,
            }
        }
        NVTX => {
            // SAFETY: the NVTX domain passes `CUpti_NvtxData`.
            let nvtx = unsafe { &*data.cast::<CUpti_NvtxData>() };
            match cbid {
                PUSH => {
                    // SAFETY: `nvtxRangePushA_params` starts with the message.
                    let text = unsafe { message(nvtx.functionParams) };
                    PUSHED.with(|stack| stack.borrow_mut().push(text));
                    return;
                }
                POP => match PUSHED.with(|stack| stack.borrow_mut().pop()) {
                    Some(text) => Control::RangeEnd(text),
                    None => return,
                },
                START => {
                    if nvtx.functionReturnValue.is_null() {
                        return;
                    }
                    // SAFETY: `nvtxRangeStartA_params` starts with the message and
                    // returns the range id.
                    let (text, id) = unsafe {
                        (
                            message(nvtx.functionParams),
                            nvtx.functionReturnValue.cast::<u64>().read_unaligned(),
                        )
                    };
                    STARTED
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get_or_insert_with(FxHashMap::default)
                        .insert(id, text);
                    return;
                }
                END => {
                    if nvtx.functionParams.is_null() {
                        return;
                    }
                    // SAFETY: `nvtxRangeEnd_params` holds the range id.
                    let id = unsafe { nvtx.functionParams.cast::<u64>().read_unaligned() };
                    let text = STARTED
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .as_mut()
                        .and_then(|started| started.remove(&id));
                    match text {
                        Some(text) => Control::RangeEnd(text),
                        None => return,
                    }
                }
                _ => return,
            }
        }
        _ => return,
    };
    let handler = HANDLER.read().unwrap_or_else(|p| p.into_inner()).clone();
    if let Some(handler) = handler {
        handler(control);
    }
}
