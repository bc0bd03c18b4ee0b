//! Windows driven by the application itself: `cudaProfilerStart/Stop` and the ends
//! of NVTX ranges, seen through CUPTI's callback API (what injection mode needs).
//!
//! CUPTI calls [`on_callback`] on the application's thread around the API calls
//! enabled by [`enable`]; it turns them into [`Control`]s for the handler the host
//! installed with [`set_handler`]. Like the buffer callbacks, it never unwinds.
//!
//! Every NVTX range flavour ends in a [`Control::RangeEnd`]: push/pop and
//! start/end, with ASCII (`A`), wide (`W`) or attribute (`Ex`) messages, in the
//! global domain or a named one (`nvtxDomainRangePushEx`, as NVIDIA's Python `nvtx`
//! package calls it). An `Ex` message may be a string registered with
//! `nvtxDomainRegisterString{A,W}`: the tracer follows those registrations, so it
//! knows the strings registered while it is subscribed. A string registered before
//! (CUPTI gives no way to read an older handle's text) leaves its ranges unnamed,
//! and an unnamed range ends without a `RangeEnd`.

use std::cell::RefCell;
use std::ffi::{CStr, c_char, c_void};
use std::mem::offset_of;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, RwLock};

use cupti_sys::Library;
use cupti_sys::sys::{
    CUpti_ApiCallbackSite, CUpti_CallbackData, CUpti_CallbackDomain, CUpti_CallbackId,
    CUpti_NvtxData, CUpti_SubscriberHandle, CUpti_driver_api_trace_cbid_enum,
    CUpti_runtime_api_trace_cbid_enum, nvtxDomainRangeEnd_params, nvtxDomainRangePop_params,
    nvtxDomainRangePushEx_params, nvtxDomainRangeStartEx_params, nvtxDomainRegisterStringA_params,
    nvtxEventAttributes_t, nvtxMessageType_t, nvtxMessageValue_t, nvtxRangeEnd_params,
    nvtxRangeId_t, nvtxRangePushA_params, nvtxRangePushEx_params, nvtxRangePushW_params,
    nvtxRangeStartA_params, nvtxRangeStartEx_params, nvtxRangeStartW_params, nvtxStringHandle_t,
    wchar_t,
};

use crate::error::Error;
use crate::nvtx::{Domain, GLOBAL, PushedRanges, RegisteredStrings, StartedRanges, from_wide};

/// Something the application did that may start, stop or step a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// `cudaProfilerStart()` / `cuProfilerStart()` returned.
    ProfilerStart,
    /// `cudaProfilerStop()` / `cuProfilerStop()` was entered.
    ProfilerStop,
    /// An NVTX range (push/pop or start/end, any domain) with this message ended.
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

/// The NVTX calls that open or close a range, or register a string a range may
/// name itself by.
mod cbid {
    use cupti_sys::sys::CUpti_nvtx_api_trace_cbid as Nvtx;

    pub const PUSH_A: u32 = Nvtx::CUPTI_CBID_NVTX_nvtxRangePushA.0;
    pub const PUSH_W: u32 = Nvtx::CUPTI_CBID_NVTX_nvtxRangePushW.0;
    pub const PUSH_EX: u32 = Nvtx::CUPTI_CBID_NVTX_nvtxRangePushEx.0;
    pub const POP: u32 = Nvtx::CUPTI_CBID_NVTX_nvtxRangePop.0;
    pub const START_A: u32 = Nvtx::CUPTI_CBID_NVTX_nvtxRangeStartA.0;
    pub const START_W: u32 = Nvtx::CUPTI_CBID_NVTX_nvtxRangeStartW.0;
    pub const START_EX: u32 = Nvtx::CUPTI_CBID_NVTX_nvtxRangeStartEx.0;
    pub const END: u32 = Nvtx::CUPTI_CBID_NVTX_nvtxRangeEnd.0;
    pub const DOMAIN_PUSH_EX: u32 = Nvtx::CUPTI_CBID_NVTX_nvtxDomainRangePushEx.0;
    pub const DOMAIN_POP: u32 = Nvtx::CUPTI_CBID_NVTX_nvtxDomainRangePop.0;
    pub const DOMAIN_START_EX: u32 = Nvtx::CUPTI_CBID_NVTX_nvtxDomainRangeStartEx.0;
    pub const DOMAIN_END: u32 = Nvtx::CUPTI_CBID_NVTX_nvtxDomainRangeEnd.0;
    pub const REGISTER_A: u32 = Nvtx::CUPTI_CBID_NVTX_nvtxDomainRegisterStringA.0;
    pub const REGISTER_W: u32 = Nvtx::CUPTI_CBID_NVTX_nvtxDomainRegisterStringW.0;

    /// Every NVTX callback the tracer follows.
    pub const ALL: [u32; 14] = [
        PUSH_A,
        PUSH_W,
        PUSH_EX,
        POP,
        START_A,
        START_W,
        START_EX,
        END,
        DOMAIN_PUSH_EX,
        DOMAIN_POP,
        DOMAIN_START_EX,
        DOMAIN_END,
        REGISTER_A,
        REGISTER_W,
    ];
}

/// Enables the profiler-API callbacks and, with `nvtx`, the NVTX range callbacks.
///
/// # Safety
/// `subscriber` is a live subscription of `cupti`.
pub(crate) unsafe fn enable(
    cupti: &Library,
    subscriber: CUpti_SubscriberHandle,
    nvtx: bool,
) -> Result<(), Error> {
    let nvtx_callbacks = cbid::ALL.iter().filter(|_| nvtx).map(|&cbid| (NVTX, cbid));
    for (domain, cbid) in [
        (RUNTIME, RUNTIME_START),
        (RUNTIME, RUNTIME_STOP),
        (DRIVER, DRIVER_START),
        (DRIVER, DRIVER_STOP),
    ]
    .into_iter()
    .chain(nvtx_callbacks)
    {
        // SAFETY: the caller's contract.
        unsafe { cupti.enable_callback(true, subscriber, domain, cbid) }?;
    }
    Ok(())
}

thread_local! {
    /// The NVTX push/pop ranges open on this thread.
    static PUSHED: RefCell<PushedRanges> = RefCell::new(PushedRanges::default());
}

/// The open NVTX start/end ranges (any thread may end them).
static STARTED: LazyLock<Mutex<StartedRanges>> = LazyLock::new(Mutex::default);

/// The strings registered while the tracer was subscribed.
static REGISTERED: LazyLock<RwLock<RegisteredStrings>> = LazyLock::new(RwLock::default);

/// Reads the parameter struct `T` CUPTI points to, if any.
///
/// # Safety
/// `params` is null or points to a `T`.
unsafe fn params<T: Copy>(params: *const c_void) -> Option<T> {
    // SAFETY: the caller's contract; CUPTI gives no alignment promise.
    (!params.is_null()).then(|| unsafe { params.cast::<T>().read_unaligned() })
}

/// # Safety
/// `text` is null or a NUL-terminated string.
unsafe fn ascii(text: *const c_char) -> Option<String> {
    (!text.is_null()).then(|| {
        // SAFETY: the caller's contract.
        unsafe { CStr::from_ptr(text) }
            .to_string_lossy()
            .into_owned()
    })
}

/// # Safety
/// `text` is null or a NUL-terminated `wchar_t` string.
unsafe fn wide(text: *const wchar_t) -> Option<String> {
    if text.is_null() {
        return None;
    }
    // SAFETY: the caller's contract: every unit up to the NUL is readable, and
    // `from_wide` stops at the NUL.
    let units = (0..).map(|i| unsafe { text.add(i).read_unaligned() });
    Some(from_wide(units))
}

/// The bytes of `nvtxEventAttributes_t` up to the end of its message: what a
/// caller's `size` must cover for the message to be there.
const ATTRIBUTES_WITH_MESSAGE: usize =
    offset_of!(nvtxEventAttributes_t, message) + size_of::<nvtxMessageValue_t>();

/// The message of an `nvtxEventAttributes_t`: ASCII, wide, or a registered string
/// whose registration the tracer saw. `None` when there is none it can read.
///
/// # Safety
/// `attributes` is null or points to attributes of at least their `size` bytes.
unsafe fn attributes_message(attributes: *const nvtxEventAttributes_t) -> Option<String> {
    if attributes.is_null() {
        return None;
    }
    // SAFETY: every version of the struct starts with `version` and `size`.
    let size = unsafe { (&raw const (*attributes).size).read_unaligned() };
    if usize::from(size) < ATTRIBUTES_WITH_MESSAGE {
        return None;
    }
    // SAFETY: `size` says the caller's struct reaches past the message.
    let (kind, value) = unsafe {
        (
            (&raw const (*attributes).messageType).read_unaligned(),
            (&raw const (*attributes).message).read_unaligned(),
        )
    };
    // SAFETY: the message type says which member of the union is set, and NVTX
    // messages are NUL-terminated strings.
    unsafe {
        match nvtxMessageType_t(kind as u32) {
            nvtxMessageType_t::NVTX_MESSAGE_TYPE_ASCII => ascii(value.ascii),
            nvtxMessageType_t::NVTX_MESSAGE_TYPE_UNICODE => wide(value.unicode),
            nvtxMessageType_t::NVTX_MESSAGE_TYPE_REGISTERED => REGISTERED
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .get(value.registered as usize),
            _ => None,
        }
    }
}

/// What an NVTX range opens with.
enum Open {
    Push(Domain, Option<String>),
    Start(Domain, Option<String>),
}

/// Follows one NVTX callback: opens a range, registers a string, or returns the
/// name of the range it ended.
///
/// # Safety
/// `nvtx` is CUPTI's callback data for `cbid`: its parameters (as laid out in
/// `generated_nvtx_meta.h`) and return value.
unsafe fn nvtx_range_end(cbid: u32, nvtx: &CUpti_NvtxData) -> Option<String> {
    let at = nvtx.functionParams;
    // SAFETY: `at` holds the parameter struct of `cbid` (what each `params` reads),
    // and each of its strings is NUL-terminated.
    let open = unsafe {
        match cbid {
            cbid::PUSH_A => Open::Push(
                GLOBAL,
                params::<nvtxRangePushA_params>(at).and_then(|p| ascii(p.message)),
            ),
            cbid::PUSH_W => Open::Push(
                GLOBAL,
                params::<nvtxRangePushW_params>(at).and_then(|p| wide(p.message)),
            ),
            cbid::PUSH_EX => Open::Push(
                GLOBAL,
                params::<nvtxRangePushEx_params>(at)
                    .and_then(|p| attributes_message(p.eventAttrib)),
            ),
            cbid::DOMAIN_PUSH_EX => {
                let p = params::<nvtxDomainRangePushEx_params>(at)?;
                Open::Push(p.domain as Domain, attributes_message(p.core.eventAttrib))
            }
            cbid::START_A => Open::Start(
                GLOBAL,
                params::<nvtxRangeStartA_params>(at).and_then(|p| ascii(p.message)),
            ),
            cbid::START_W => Open::Start(
                GLOBAL,
                params::<nvtxRangeStartW_params>(at).and_then(|p| wide(p.message)),
            ),
            cbid::START_EX => Open::Start(
                GLOBAL,
                params::<nvtxRangeStartEx_params>(at)
                    .and_then(|p| attributes_message(p.eventAttrib)),
            ),
            cbid::DOMAIN_START_EX => {
                let p = params::<nvtxDomainRangeStartEx_params>(at)?;
                Open::Start(p.domain as Domain, attributes_message(p.core.eventAttrib))
            }
            cbid::POP => return PUSHED.with(|pushed| pushed.borrow_mut().pop(GLOBAL)),
            cbid::DOMAIN_POP => {
                let domain = params::<nvtxDomainRangePop_params>(at)?.domain as Domain;
                return PUSHED.with(|pushed| pushed.borrow_mut().pop(domain));
            }
            cbid::END => {
                let id = params::<nvtxRangeEnd_params>(at)?.id;
                return started().end(GLOBAL, id);
            }
            cbid::DOMAIN_END => {
                let p = params::<nvtxDomainRangeEnd_params>(at)?;
                return started().end(p.domain as Domain, p.core.id);
            }
            cbid::REGISTER_A | cbid::REGISTER_W => {
                // The header declares the W variant's string as `char*`, but
                // `nvtxDomainRegisterStringW` passes its `wchar_t*` there.
                let p = params::<nvtxDomainRegisterStringA_params>(at)?;
                let text = match cbid {
                    cbid::REGISTER_A => ascii(p.string)?,
                    _ => wide(p.string.cast())?,
                };
                let handle = params::<nvtxStringHandle_t>(nvtx.functionReturnValue)?;
                REGISTERED
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .register(handle as usize, text);
                return None;
            }
            _ => return None,
        }
    };
    match open {
        Open::Push(domain, name) => PUSHED.with(|pushed| pushed.borrow_mut().push(domain, name)),
        Open::Start(domain, name) => {
            // SAFETY: a range start returns its `nvtxRangeId_t`.
            let id = unsafe { params::<nvtxRangeId_t>(nvtx.functionReturnValue) }?;
            started().start(domain, id, name);
        }
    }
    None
}

fn started() -> MutexGuard<'static, StartedRanges> {
    STARTED.lock().unwrap_or_else(|p| p.into_inner())
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
            // SAFETY: CUPTI passes the parameters and return value of `cbid`.
            match unsafe { nvtx_range_end(cbid, nvtx) } {
                Some(name) => Control::RangeEnd(name),
                None => return,
            }
        }
        _ => return,
    };
    let handler = HANDLER.read().unwrap_or_else(|p| p.into_inner()).clone();
    if let Some(handler) = handler {
        handler(control);
    }
}
