//! The CUPTI calls the session makes, each returning a `Result`.
//!
//! This is the one place that touches the loaded library. Every symbol is optional:
//! a missing one is [`Error::Missing`] when called, never a panic. The library is
//! loaded once per process and never unloaded (CUPTI may call back into us at any
//! time).

use std::ffi::{CStr, c_char, c_void};
use std::sync::OnceLock;

use cupti_sys::sys::{
    CUcontext, CUpti_Activity, CUpti_ActivityFlag, CUpti_ActivityKind, CUpti_ActivityThreadIdType,
    CUpti_BuffersCallbackCompleteFunc, CUpti_BuffersCallbackRequestFunc, CUpti_CallbackDomain,
    CUpti_CallbackFunc, CUpti_ExternalCorrelationKind, CUpti_SubscriberHandle, CUptiResult,
    Cupti as Library,
};

use crate::error::Error;

/// Environment variable naming the CUPTI library to load instead of searching.
pub const CUPTI_LIB_ENV: &str = "CUTRACE_CUPTI_LIB";

/// Where CUPTI is looked for when the environment names none, in order.
const SEARCH: &[&str] = &[
    "libcupti.so.13",
    "libcupti.so.12",
    "libcupti.so",
    "/usr/local/cuda/extras/CUPTI/lib64/libcupti.so",
];

/// A loaded CUPTI.
pub(crate) struct Cupti {
    lib: Library,
}

/// The process's CUPTI, loaded on first use.
pub(crate) fn cupti() -> Result<&'static Cupti, Error> {
    static LOADED: OnceLock<Result<Cupti, String>> = OnceLock::new();
    LOADED
        .get_or_init(load)
        .as_ref()
        .map_err(|e| Error::Load(e.clone()))
}

fn load() -> Result<Cupti, String> {
    let candidates: Vec<String> = match std::env::var(CUPTI_LIB_ENV) {
        Ok(path) if !path.is_empty() => vec![path],
        _ => SEARCH.iter().map(|s| (*s).to_owned()).collect(),
    };
    let mut errors = Vec::new();
    for candidate in &candidates {
        // SAFETY: loading CUPTI runs its initialisers, which have no preconditions.
        match unsafe { Library::new(candidate) } {
            Ok(lib) => return Ok(Cupti { lib }),
            Err(e) => errors.push(format!("{candidate}: {e}")),
        }
    }
    Err(errors.join("; "))
}

/// Calls an optional symbol of the library and turns its result into a `Result`.
macro_rules! call {
    ($self:ident . $name:ident ( $($arg:expr),* )) => {{
        let f = $self.lib.$name.as_ref().map_err(|_| Error::Missing(stringify!($name)))?;
        // SAFETY: each call site passes arguments as CUPTI's documentation requires.
        let result = unsafe { f($($arg),*) };
        $self.check(stringify!($name), result)
    }};
}

impl Cupti {
    #[cold]
    fn error(&self, function: &'static str, result: CUptiResult) -> Error {
        let mut text: *const c_char = std::ptr::null();
        let message = match self.lib.cuptiGetResultString.as_ref() {
            // SAFETY: `text` is a valid place for CUPTI to store a static string.
            Ok(f)
                if unsafe { f(result, &mut text) } == CUptiResult::CUPTI_SUCCESS
                    && !text.is_null() =>
            {
                // SAFETY: CUPTI returned a NUL-terminated static string.
                unsafe { CStr::from_ptr(text) }
                    .to_string_lossy()
                    .into_owned()
            }
            _ => format!("error {}", result.0),
        };
        Error::Cupti {
            function,
            code: result.0,
            message,
        }
    }

    fn check(&self, function: &'static str, result: CUptiResult) -> Result<(), Error> {
        if result == CUptiResult::CUPTI_SUCCESS {
            Ok(())
        } else {
            Err(self.error(function, result))
        }
    }

    /// `cuptiGetVersion`.
    pub fn version(&self) -> Result<u32, Error> {
        let mut version = 0u32;
        call!(self.cuptiGetVersion(&mut version))?;
        Ok(version)
    }

    /// `cuptiSubscribe`.
    pub fn subscribe(
        &self,
        callback: CUpti_CallbackFunc,
        userdata: *mut c_void,
    ) -> Result<CUpti_SubscriberHandle, Error> {
        let mut handle: CUpti_SubscriberHandle = std::ptr::null_mut();
        call!(self.cuptiSubscribe(&mut handle, callback, userdata))?;
        Ok(handle)
    }

    /// `cuptiUnsubscribe`.
    pub fn unsubscribe(&self, subscriber: CUpti_SubscriberHandle) -> Result<(), Error> {
        call!(self.cuptiUnsubscribe(subscriber))
    }

    /// `cuptiEnableCallback`.
    pub fn enable_callback(
        &self,
        subscriber: CUpti_SubscriberHandle,
        domain: CUpti_CallbackDomain,
        cbid: u32,
    ) -> Result<(), Error> {
        call!(self.cuptiEnableCallback(1, subscriber, domain, cbid))
    }

    /// `cuptiGetCallbackName`.
    pub fn callback_name(&self, domain: CUpti_CallbackDomain, cbid: u32) -> Result<String, Error> {
        let mut name: *const c_char = std::ptr::null();
        call!(self.cuptiGetCallbackName(domain, cbid, &mut name))?;
        if name.is_null() {
            return Ok(String::new());
        }
        // SAFETY: CUPTI returned a NUL-terminated string it owns.
        Ok(unsafe { CStr::from_ptr(name) }
            .to_string_lossy()
            .into_owned())
    }

    /// `cuptiGetTimestamp`: ns on CUPTI's clock.
    pub fn timestamp(&self) -> Result<i64, Error> {
        let mut ts = 0u64;
        call!(self.cuptiGetTimestamp(&mut ts))?;
        Ok(ts as i64)
    }

    /// `cuptiActivityEnable`.
    pub fn enable(&self, kind: CUpti_ActivityKind) -> Result<(), Error> {
        call!(self.cuptiActivityEnable(kind))
    }

    /// `cuptiActivityDisable`.
    pub fn disable(&self, kind: CUpti_ActivityKind) -> Result<(), Error> {
        call!(self.cuptiActivityDisable(kind))
    }

    /// `cuptiActivityGetNumDroppedRecords`.
    pub fn dropped_records(&self, context: CUcontext, stream: u32) -> Result<usize, Error> {
        let mut dropped = 0usize;
        call!(self.cuptiActivityGetNumDroppedRecords(context, stream, &mut dropped))?;
        Ok(dropped)
    }

    /// `cuptiActivityGetNextRecord`: the record after `*record` (the first when
    /// null), `false` at the end of the buffer.
    ///
    /// # Safety
    /// `buffer` holds `valid` bytes of records completed by CUPTI; `*record` is null
    /// or the record this function returned last for this buffer.
    pub unsafe fn next_record(
        &self,
        buffer: *mut u8,
        valid: usize,
        record: &mut *mut CUpti_Activity,
    ) -> Result<bool, Error> {
        let f = self
            .lib
            .cuptiActivityGetNextRecord
            .as_ref()
            .map_err(|_| Error::Missing("cuptiActivityGetNextRecord"))?;
        // SAFETY: the caller's contract.
        match unsafe { f(buffer, valid, record) } {
            CUptiResult::CUPTI_SUCCESS => Ok(true),
            CUptiResult::CUPTI_ERROR_MAX_LIMIT_REACHED => Ok(false),
            other => Err(self.error("cuptiActivityGetNextRecord", other)),
        }
    }

    /// `cuptiActivityRegisterCallbacks`.
    pub fn register_callbacks(
        &self,
        requested: CUpti_BuffersCallbackRequestFunc,
        completed: CUpti_BuffersCallbackCompleteFunc,
    ) -> Result<(), Error> {
        call!(self.cuptiActivityRegisterCallbacks(requested, completed))
    }

    /// `cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED)`: every buffer,
    /// even a partly filled one, is completed before this returns.
    pub fn flush_forced(&self) -> Result<(), Error> {
        call!(self.cuptiActivityFlushAll(CUpti_ActivityFlag::CUPTI_ACTIVITY_FLAG_FLUSH_FORCED.0))
    }

    /// `cuptiSetThreadIdType`.
    pub fn set_thread_id_type(&self, kind: CUpti_ActivityThreadIdType) -> Result<(), Error> {
        call!(self.cuptiSetThreadIdType(kind))
    }

    /// `cuptiActivityPushExternalCorrelationId`.
    pub fn push_external_id(
        &self,
        kind: CUpti_ExternalCorrelationKind,
        id: u64,
    ) -> Result<(), Error> {
        call!(self.cuptiActivityPushExternalCorrelationId(kind, id))
    }

    /// `cuptiActivityPopExternalCorrelationId`.
    pub fn pop_external_id(&self, kind: CUpti_ExternalCorrelationKind) -> Result<u64, Error> {
        let mut id = 0u64;
        call!(self.cuptiActivityPopExternalCorrelationId(kind, &mut id))?;
        Ok(id)
    }

    /// `cuptiActivityEnableLatencyTimestamps`.
    pub fn enable_latency_timestamps(&self, enable: bool) -> Result<(), Error> {
        call!(self.cuptiActivityEnableLatencyTimestamps(u8::from(enable)))
    }

    /// `cuptiActivityEnableRuntimeApi(cbid, 0)`: no records for this runtime call.
    pub fn mute_runtime_api(&self, cbid: u32) -> Result<(), Error> {
        call!(self.cuptiActivityEnableRuntimeApi(cbid, 0))
    }

    /// `cuptiActivityEnableDriverApi(cbid, 0)`: no records for this driver call.
    pub fn mute_driver_api(&self, cbid: u32) -> Result<(), Error> {
        call!(self.cuptiActivityEnableDriverApi(cbid, 0))
    }
}
