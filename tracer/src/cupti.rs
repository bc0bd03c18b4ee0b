//! The CUPTI calls the session makes, over `cupti-sys`'s loader and result layer.
//!
//! A thin adapter: it names the calls as the session uses them and is the one place
//! the tracer touches the loaded library. The library is found and checked once per
//! process (`cupti_sys::load`, which refuses anything older than CUDA 12.0 or
//! lacking a required function) and never unloaded: CUPTI may call back into us at
//! any time.

use std::ffi::c_void;
use std::sync::OnceLock;

use cupti_sys::Library;
use cupti_sys::sys::{
    CUcontext, CUpti_Activity, CUpti_ActivityFlag, CUpti_ActivityKind, CUpti_ActivityThreadIdType,
    CUpti_BuffersCallbackCompleteFunc, CUpti_BuffersCallbackRequestFunc, CUpti_CallbackDomain,
    CUpti_CallbackFunc, CUpti_ExternalCorrelationKind, CUpti_SubscriberHandle,
};

use crate::error::Error;

/// The loaded CUPTI.
pub(crate) struct Cupti {
    lib: &'static Library,
}

/// The process's CUPTI, loaded on first use.
pub(crate) fn cupti() -> Result<&'static Cupti, Error> {
    static LOADED: OnceLock<Result<Cupti, cupti_sys::Error>> = OnceLock::new();
    LOADED
        .get_or_init(|| cupti_sys::load().map(|lib| Cupti { lib }))
        .as_ref()
        .map_err(|e| Error::Cupti(e.clone()))
}

impl Cupti {
    /// `cuptiGetVersion`.
    pub fn version(&self) -> u32 {
        self.lib.version().api()
    }

    /// `cuptiSubscribe`.
    pub fn subscribe(
        &self,
        callback: CUpti_CallbackFunc,
        userdata: *mut c_void,
    ) -> Result<CUpti_SubscriberHandle, Error> {
        // SAFETY: the session subscribes only `controls::on_callback`, which never
        // unwinds and ignores `userdata`.
        Ok(unsafe { self.lib.subscribe(callback, userdata) }?)
    }

    /// `cuptiUnsubscribe`.
    pub fn unsubscribe(&self, subscriber: CUpti_SubscriberHandle) -> Result<(), Error> {
        // SAFETY: the session unsubscribes its own handle, once.
        Ok(unsafe { self.lib.unsubscribe(subscriber) }?)
    }

    /// `cuptiEnableCallback(1, ...)`.
    pub fn enable_callback(
        &self,
        subscriber: CUpti_SubscriberHandle,
        domain: CUpti_CallbackDomain,
        cbid: u32,
    ) -> Result<(), Error> {
        // SAFETY: the session passes its live subscription.
        Ok(unsafe { self.lib.enable_callback(true, subscriber, domain, cbid) }?)
    }

    /// `cuptiGetCallbackName`.
    pub fn callback_name(&self, domain: CUpti_CallbackDomain, cbid: u32) -> Result<String, Error> {
        Ok(self.lib.get_callback_name(domain, cbid)?)
    }

    /// `cuptiGetTimestamp`: ns on CUPTI's clock.
    pub fn timestamp(&self) -> Result<i64, Error> {
        Ok(self.lib.get_timestamp()? as i64)
    }

    /// `cuptiActivityEnable`.
    pub fn enable(&self, kind: CUpti_ActivityKind) -> Result<(), Error> {
        Ok(self.lib.activity_enable(kind)?)
    }

    /// `cuptiActivityDisable`.
    pub fn disable(&self, kind: CUpti_ActivityKind) -> Result<(), Error> {
        Ok(self.lib.activity_disable(kind)?)
    }

    /// `cuptiActivityGetNumDroppedRecords`.
    ///
    /// # Safety
    /// `context` is null or a live CUDA context (as CUPTI passes to
    /// `bufferCompleted`).
    pub unsafe fn dropped_records(&self, context: CUcontext, stream: u32) -> Result<usize, Error> {
        // SAFETY: the caller's contract.
        Ok(unsafe { self.lib.activity_get_num_dropped_records(context, stream) }?)
    }

    /// `cuptiActivityGetNextRecord`: the record after `current` (the first when
    /// null), `None` at the end of the buffer.
    ///
    /// # Safety
    /// `buffer` holds `valid` bytes of records completed by CUPTI; `current` is null
    /// or the record this function returned last for this buffer.
    pub unsafe fn next_record(
        &self,
        buffer: *mut u8,
        valid: usize,
        current: *mut CUpti_Activity,
    ) -> Result<Option<*mut CUpti_Activity>, Error> {
        // SAFETY: the caller's contract.
        let next = unsafe { self.lib.activity_get_next_record(buffer, valid, current) }?;
        Ok(next.map(|record| record.as_ptr()))
    }

    /// `cuptiActivityRegisterCallbacks`.
    pub fn register_callbacks(
        &self,
        requested: CUpti_BuffersCallbackRequestFunc,
        completed: CUpti_BuffersCallbackCompleteFunc,
    ) -> Result<(), Error> {
        // SAFETY: the session registers `buffers::buffer_requested` and
        // `buffers::buffer_completed`: they never unwind, lend 8-byte aligned buffers
        // of the size they report and leave them alone until CUPTI hands them back.
        Ok(unsafe { self.lib.activity_register_callbacks(requested, completed) }?)
    }

    /// `cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED)`: every buffer,
    /// even a partly filled one, is completed before this returns.
    pub fn flush_forced(&self) -> Result<(), Error> {
        Ok(self
            .lib
            .activity_flush_all(CUpti_ActivityFlag::CUPTI_ACTIVITY_FLAG_FLUSH_FORCED.0)?)
    }

    /// `cuptiSetThreadIdType`.
    pub fn set_thread_id_type(&self, kind: CUpti_ActivityThreadIdType) -> Result<(), Error> {
        Ok(self.lib.set_thread_id_type(kind)?)
    }

    /// `cuptiActivityPushExternalCorrelationId`.
    pub fn push_external_id(
        &self,
        kind: CUpti_ExternalCorrelationKind,
        id: u64,
    ) -> Result<(), Error> {
        Ok(self.lib.activity_push_external_correlation_id(kind, id)?)
    }

    /// `cuptiActivityPopExternalCorrelationId`.
    pub fn pop_external_id(&self, kind: CUpti_ExternalCorrelationKind) -> Result<u64, Error> {
        Ok(self.lib.activity_pop_external_correlation_id(kind)?)
    }

    /// `cuptiActivityEnableLatencyTimestamps`.
    pub fn enable_latency_timestamps(&self, enable: bool) -> Result<(), Error> {
        Ok(self.lib.activity_enable_latency_timestamps(enable)?)
    }

    /// `cuptiActivityEnableRuntimeApi(cbid, 0)`: no records for this runtime call.
    pub fn mute_runtime_api(&self, cbid: u32) -> Result<(), Error> {
        Ok(self.lib.activity_enable_runtime_api(cbid, false)?)
    }

    /// `cuptiActivityEnableDriverApi(cbid, 0)`: no records for this driver call.
    pub fn mute_driver_api(&self, cbid: u32) -> Result<(), Error> {
        Ok(self.lib.activity_enable_driver_api(cbid, false)?)
    }
}
