//! The result layer: one method on [`Library`] per CUPTI function cutrace calls,
//! each returning `Result<T, Error>`.
//!
//! The methods are mechanical. The name is the C name in snake case without the
//! `cupti` prefix (`cuptiActivityEnable` → [`Library::activity_enable`]); out
//! parameters become return values; a function the library lacks answers
//! [`Error::Unsupported`]; a code other than `CUPTI_SUCCESS` becomes [`Error::Cupti`]
//! with CUPTI's own text, in one place (`check`). One code is not a failure:
//! `cuptiActivityGetNextRecord` ends a buffer with `CUPTI_ERROR_MAX_LIMIT_REACHED`,
//! which [`Library::activity_get_next_record`] answers with `Ok(None)`.
//!
//! A method is `unsafe` when CUPTI will use what it is given beyond the call (a
//! callback, a subscriber handle, a buffer); its `# Safety` section says what the
//! caller promises. NVIDIA documents the functions by group:
//! [activity](https://docs.nvidia.com/cupti/api/group__CUPTI__ACTIVITY__API.html),
//! [callback](https://docs.nvidia.com/cupti/api/group__CUPTI__CALLBACK__API.html),
//! [result codes](https://docs.nvidia.com/cupti/api/group__CUPTI__RESULT__API.html),
//! [version](https://docs.nvidia.com/cupti/api/group__CUPTI__VERSION__API.html).

use std::ffi::{CStr, c_char, c_void};
use std::ptr::{self, NonNull};

use crate::error::Error;
use crate::loader::Library;
use crate::sys::{
    CUcontext, CUpti_Activity, CUpti_ActivityAttribute, CUpti_ActivityKind,
    CUpti_ActivityThreadIdType, CUpti_BuffersCallbackCompleteFunc,
    CUpti_BuffersCallbackRequestFunc, CUpti_CallbackDomain, CUpti_CallbackFunc, CUpti_CallbackId,
    CUpti_ExternalCorrelationKind, CUpti_SubscriberHandle, CUpti_TimestampCallbackFunc,
    CUptiResult, Cupti,
};

/// The function pointer `$function` of `$api` (a [`Cupti`]), or
/// [`Error::Unsupported`] when the library lacks it.
macro_rules! function {
    ($api:expr, $function:ident) => {
        $api.$function
            .as_ref()
            .map(|pointer| *pointer)
            .map_err(|_| Error::Unsupported {
                function: stringify!($function),
            })
    };
}

/// Looks `$function` up, binds it to `$pointer`, runs `$call` (which calls it) and
/// [`check`]s the code it returns.
macro_rules! call {
    ($library:expr, $function:ident, |$pointer:ident| $call:expr) => {{
        let $pointer = function!($library.api, $function)?;
        check(&$library.api, stringify!($function), $call)
    }};
}

/// `Ok` for `CUPTI_SUCCESS`, the failure as an [`Error`] otherwise.
#[inline]
pub(crate) fn check(api: &Cupti, function: &'static str, code: CUptiResult) -> Result<(), Error> {
    if code == CUptiResult::CUPTI_SUCCESS {
        Ok(())
    } else {
        Err(failure(api, function, code))
    }
}

/// The one place a CUPTI result code becomes an [`Error`].
#[cold]
fn failure(api: &Cupti, function: &'static str, code: CUptiResult) -> Error {
    let message = result_text(api, code).unwrap_or_else(|| "no description from CUPTI".to_owned());
    Error::Cupti {
        function,
        code,
        message,
    }
}

/// CUPTI's text for `code`, when it has one. Does not go through [`check`]: a
/// failure here must not ask for another description.
fn result_text(api: &Cupti, code: CUptiResult) -> Option<String> {
    let describe = api.cuptiGetResultString.as_ref().ok()?;
    let mut text: *const c_char = ptr::null();
    // SAFETY: `text` is a valid place for CUPTI to store a pointer.
    let status = unsafe { describe(code, &mut text) };
    if status != CUptiResult::CUPTI_SUCCESS {
        return None;
    }
    // SAFETY: CUPTI succeeded, so `text` is null or one of its own strings.
    unsafe { owned_text(text) }
}

/// A copy of a string CUPTI handed out, `None` for a null pointer.
///
/// # Safety
///
/// `text` is null or points to a NUL-terminated string that stays valid during the
/// call. CUPTI's result and callback names live as long as the library.
unsafe fn owned_text(text: *const c_char) -> Option<String> {
    if text.is_null() {
        return None;
    }
    // SAFETY: not null, and the caller vouches for the rest.
    let text = unsafe { CStr::from_ptr(text) };
    Some(text.to_string_lossy().into_owned())
}

/// `cuptiGetVersion`, for the loader, which calls it before a [`Library`] exists.
pub(crate) fn query_version(api: &Cupti) -> Result<u32, Error> {
    let mut version = 0;
    let get = function!(api, cuptiGetVersion)?;
    // SAFETY: `version` is a valid u32 to write to.
    check(api, "cuptiGetVersion", unsafe { get(&mut version) })?;
    Ok(version)
}

impl Library {
    /// `cuptiGetVersion`: the CUPTI API version (see [`crate::CuptiVersion`]).
    pub fn get_version(&self) -> Result<u32, Error> {
        query_version(&self.api)
    }

    /// `cuptiGetResultString`: CUPTI's text for a result code.
    pub fn get_result_string(&self, code: CUptiResult) -> Result<String, Error> {
        let mut text: *const c_char = ptr::null();
        call!(self, cuptiGetResultString, |describe| {
            // SAFETY: `text` is a valid place for CUPTI to store a pointer.
            unsafe { describe(code, &mut text) }
        })?;
        // SAFETY: CUPTI succeeded, so `text` is null or one of its own strings.
        Ok(unsafe { owned_text(text) }.unwrap_or_default())
    }

    /// `cuptiGetTimestamp`: now, on the clock of every CUPTI record, in nanoseconds.
    pub fn get_timestamp(&self) -> Result<u64, Error> {
        let mut timestamp = 0;
        call!(self, cuptiGetTimestamp, |get| {
            // SAFETY: `timestamp` is a valid u64 to write to.
            unsafe { get(&mut timestamp) }
        })?;
        Ok(timestamp)
    }

    /// `cuptiSubscribe`: registers `callback` for the callback API; CUPTI allows one
    /// subscriber per process (see [`Error::is_multiple_subscribers`]).
    ///
    /// # Safety
    ///
    /// Until [`Library::unsubscribe`], CUPTI calls `callback` on any thread with
    /// `userdata`: the callback must not unwind and `userdata` must stay valid for it.
    pub unsafe fn subscribe(
        &self,
        callback: CUpti_CallbackFunc,
        userdata: *mut c_void,
    ) -> Result<CUpti_SubscriberHandle, Error> {
        let mut subscriber: CUpti_SubscriberHandle = ptr::null_mut();
        call!(self, cuptiSubscribe, |subscribe| {
            // SAFETY: `subscriber` is a valid place for the handle; the caller vouches
            // for `callback` and `userdata`.
            unsafe { subscribe(&mut subscriber, callback, userdata) }
        })?;
        Ok(subscriber)
    }

    /// `cuptiUnsubscribe`: ends a subscription; the callback is not called afterwards.
    ///
    /// # Safety
    ///
    /// `subscriber` comes from [`Library::subscribe`] and was not unsubscribed yet.
    pub unsafe fn unsubscribe(&self, subscriber: CUpti_SubscriberHandle) -> Result<(), Error> {
        call!(self, cuptiUnsubscribe, |unsubscribe| {
            // SAFETY: the caller vouches for `subscriber`.
            unsafe { unsubscribe(subscriber) }
        })
    }

    /// `cuptiEnableCallback`: turns one callback of a domain on or off.
    ///
    /// # Safety
    ///
    /// `subscriber` is a live handle from [`Library::subscribe`].
    pub unsafe fn enable_callback(
        &self,
        enable: bool,
        subscriber: CUpti_SubscriberHandle,
        domain: CUpti_CallbackDomain,
        cbid: CUpti_CallbackId,
    ) -> Result<(), Error> {
        call!(self, cuptiEnableCallback, |enable_callback| {
            // SAFETY: the caller vouches for `subscriber`; the rest are plain values.
            unsafe { enable_callback(enable.into(), subscriber, domain, cbid) }
        })
    }

    /// `cuptiEnableDomain`: turns every callback of a domain on or off.
    ///
    /// # Safety
    ///
    /// `subscriber` is a live handle from [`Library::subscribe`].
    pub unsafe fn enable_domain(
        &self,
        enable: bool,
        subscriber: CUpti_SubscriberHandle,
        domain: CUpti_CallbackDomain,
    ) -> Result<(), Error> {
        call!(self, cuptiEnableDomain, |enable_domain| {
            // SAFETY: the caller vouches for `subscriber`; the rest are plain values.
            unsafe { enable_domain(enable.into(), subscriber, domain) }
        })
    }

    /// `cuptiGetCallbackName`: the API function name of a callback id (optional).
    pub fn get_callback_name(
        &self,
        domain: CUpti_CallbackDomain,
        cbid: CUpti_CallbackId,
    ) -> Result<String, Error> {
        let mut name: *const c_char = ptr::null();
        call!(self, cuptiGetCallbackName, |get_name| {
            // SAFETY: `name` is a valid place for CUPTI to store a pointer.
            unsafe { get_name(domain, cbid, &mut name) }
        })?;
        // SAFETY: CUPTI succeeded, so `name` is null or one of its own strings.
        Ok(unsafe { owned_text(name) }.unwrap_or_default())
    }

    /// `cuptiActivityEnable`: starts recording one kind of activity.
    pub fn activity_enable(&self, kind: CUpti_ActivityKind) -> Result<(), Error> {
        call!(self, cuptiActivityEnable, |enable| {
            // SAFETY: a plain value; CUPTI checks it.
            unsafe { enable(kind) }
        })
    }

    /// `cuptiActivityDisable`: stops recording one kind of activity.
    pub fn activity_disable(&self, kind: CUpti_ActivityKind) -> Result<(), Error> {
        call!(self, cuptiActivityDisable, |disable| {
            // SAFETY: a plain value; CUPTI checks it.
            unsafe { disable(kind) }
        })
    }

    /// `cuptiActivityRegisterCallbacks`: the functions CUPTI asks for empty buffers
    /// and hands full ones back to.
    ///
    /// # Safety
    ///
    /// CUPTI calls both functions on its own threads for as long as activity is
    /// recorded. They must not unwind; a buffer handed out must be 8-byte aligned,
    /// writable for the size reported and left alone until it comes back.
    pub unsafe fn activity_register_callbacks(
        &self,
        requested: CUpti_BuffersCallbackRequestFunc,
        completed: CUpti_BuffersCallbackCompleteFunc,
    ) -> Result<(), Error> {
        call!(self, cuptiActivityRegisterCallbacks, |register| {
            // SAFETY: the caller vouches for both callbacks.
            unsafe { register(requested, completed) }
        })
    }

    /// `cuptiActivityFlushAll`: hands every buffer holding records to the completion
    /// callback; `flag` is 0 or `CUPTI_ACTIVITY_FLAG_FLUSH_FORCED`.
    pub fn activity_flush_all(&self, flag: u32) -> Result<(), Error> {
        call!(self, cuptiActivityFlushAll, |flush| {
            // SAFETY: a plain value; the callbacks it runs were vouched for when
            // they were registered.
            unsafe { flush(flag) }
        })
    }

    /// `cuptiActivityGetNextRecord`: the record after `current` in a completed buffer
    /// (the first one when `current` is null), `None` past the last.
    ///
    /// # Safety
    ///
    /// `buffer` holds `valid_size` bytes of records, as handed to the completion
    /// callback; `current` is null or a record this method returned for it.
    pub unsafe fn activity_get_next_record(
        &self,
        buffer: *mut u8,
        valid_size: usize,
        current: *mut CUpti_Activity,
    ) -> Result<Option<NonNull<CUpti_Activity>>, Error> {
        let next = function!(self.api, cuptiActivityGetNextRecord)?;
        let mut record = current;
        // SAFETY: the caller vouches for `buffer`, `valid_size` and `current`.
        let code = unsafe { next(buffer, valid_size, &mut record) };
        if code == CUptiResult::CUPTI_ERROR_MAX_LIMIT_REACHED {
            return Ok(None);
        }
        check(&self.api, "cuptiActivityGetNextRecord", code)?;
        Ok(NonNull::new(record))
    }

    /// `cuptiActivityGetNumDroppedRecords`: records CUPTI dropped for want of a
    /// buffer in a context and stream.
    ///
    /// # Safety
    ///
    /// `context` is null or a live CUDA context.
    pub unsafe fn activity_get_num_dropped_records(
        &self,
        context: CUcontext,
        stream_id: u32,
    ) -> Result<usize, Error> {
        let mut dropped = 0;
        call!(self, cuptiActivityGetNumDroppedRecords, |get| {
            // SAFETY: `dropped` is a valid usize to write to; the caller vouches for
            // `context`.
            unsafe { get(context, stream_id, &mut dropped) }
        })?;
        Ok(dropped)
    }

    /// `cuptiActivityPushExternalCorrelationId`: ties the calling thread's next CUDA
    /// calls to `id` (optional).
    pub fn activity_push_external_correlation_id(
        &self,
        kind: CUpti_ExternalCorrelationKind,
        id: u64,
    ) -> Result<(), Error> {
        call!(self, cuptiActivityPushExternalCorrelationId, |push| {
            // SAFETY: plain values.
            unsafe { push(kind, id) }
        })
    }

    /// `cuptiActivityPopExternalCorrelationId`: undoes the last push and returns its
    /// id (optional).
    pub fn activity_pop_external_correlation_id(
        &self,
        kind: CUpti_ExternalCorrelationKind,
    ) -> Result<u64, Error> {
        let mut id = 0;
        call!(self, cuptiActivityPopExternalCorrelationId, |pop| {
            // SAFETY: `id` is a valid u64 to write to.
            unsafe { pop(kind, &mut id) }
        })?;
        Ok(id)
    }

    /// `cuptiActivityRegisterTimestampCallback`: a clock for CUPTI to stamp records
    /// with instead of its own (optional).
    ///
    /// # Safety
    ///
    /// CUPTI calls `timestamp` on any thread while recording; it must not unwind.
    pub unsafe fn activity_register_timestamp_callback(
        &self,
        timestamp: CUpti_TimestampCallbackFunc,
    ) -> Result<(), Error> {
        call!(self, cuptiActivityRegisterTimestampCallback, |register| {
            // SAFETY: the caller vouches for the callback.
            unsafe { register(timestamp) }
        })
    }

    /// `cuptiActivityEnableLatencyTimestamps`: fills the `queued` and `submitted`
    /// times of kernel records (optional).
    pub fn activity_enable_latency_timestamps(&self, enable: bool) -> Result<(), Error> {
        call!(self, cuptiActivityEnableLatencyTimestamps, |latency| {
            // SAFETY: a plain value.
            unsafe { latency(enable.into()) }
        })
    }

    /// `cuptiActivityEnableRuntimeApi`: records one runtime API function, or stops
    /// (optional; CUDA 13).
    pub fn activity_enable_runtime_api(
        &self,
        cbid: CUpti_CallbackId,
        enable: bool,
    ) -> Result<(), Error> {
        call!(self, cuptiActivityEnableRuntimeApi, |runtime| {
            // SAFETY: plain values.
            unsafe { runtime(cbid, enable.into()) }
        })
    }

    /// `cuptiActivityEnableDriverApi`: records one driver API function, or stops
    /// (optional; CUDA 13).
    pub fn activity_enable_driver_api(
        &self,
        cbid: CUpti_CallbackId,
        enable: bool,
    ) -> Result<(), Error> {
        call!(self, cuptiActivityEnableDriverApi, |driver| {
            // SAFETY: plain values.
            unsafe { driver(cbid, enable.into()) }
        })
    }

    /// `cuptiActivitySetAttribute`: sets one attribute of the activity API, such as
    /// the device buffer size (optional).
    ///
    /// # Safety
    ///
    /// `T` is the type CUPTI documents for `attribute` (`size_t` for sizes, `uint8_t`
    /// for switches).
    pub unsafe fn activity_set_attribute<T>(
        &self,
        attribute: CUpti_ActivityAttribute,
        value: &mut T,
    ) -> Result<(), Error> {
        let mut size = size_of::<T>();
        call!(self, cuptiActivitySetAttribute, |set| {
            // SAFETY: `value` is valid for `size` bytes and the caller vouches that
            // its type is the attribute's.
            unsafe { set(attribute, &mut size, ptr::from_mut(value).cast()) }
        })
    }

    /// `cuptiSetThreadIdType`: which thread id CUPTI puts in API records (optional).
    pub fn set_thread_id_type(&self, kind: CUpti_ActivityThreadIdType) -> Result<(), Error> {
        call!(self, cuptiSetThreadIdType, |set| {
            // SAFETY: a plain value; CUPTI checks it.
            unsafe { set(kind) }
        })
    }

    /// `cuptiFinalize`: detaches CUPTI from the process, so that a later session
    /// starts clean (optional). Not to be called from a CUPTI callback.
    pub fn finalize(&self) -> Result<(), Error> {
        call!(self, cuptiFinalize, |finalize| {
            // SAFETY: takes nothing.
            unsafe { finalize() }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::{Environment, SearchPlan};
    use crate::test_fixture::{CuptiFixture, FIXTURE_DROPPED, FIXTURE_TIMESTAMP};

    /// A library loaded from a fresh fixture, with the folder that holds it.
    fn fixture() -> (tempfile::TempDir, Library) {
        let dir = tempfile::tempdir().unwrap();
        let path = CuptiFixture::new(130_001).build(dir.path(), "libcupti.so.13");
        let env = Environment {
            cupti_lib: Some(path),
            ..Environment::default()
        };
        let library = SearchPlan::new(&env).load().unwrap();
        (dir, library)
    }

    #[test]
    fn failure_codes_become_errors_with_cuptis_text() {
        let (_dir, library) = fixture();
        // SAFETY: the fixture's cuptiSubscribe stores nothing and calls nothing.
        let error = unsafe { library.subscribe(None, ptr::null_mut()) }.unwrap_err();
        assert!(error.is_multiple_subscribers(), "{error:?}");
        assert_eq!(
            error.to_string(),
            "cuptiSubscribe failed: fixture text for 39 (CUPTI error 39)"
        );
        let error = library.activity_flush_all(0).unwrap_err();
        assert!(error.is_not_initialized(), "{error:?}");
    }

    #[test]
    fn out_parameters_become_return_values() {
        let (_dir, library) = fixture();
        assert_eq!(library.get_version().unwrap(), 130_001);
        assert_eq!(library.get_timestamp().unwrap(), FIXTURE_TIMESTAMP);
        // SAFETY: a null context asks about every context; the fixture reads nothing.
        let dropped = unsafe { library.activity_get_num_dropped_records(ptr::null_mut(), 0) };
        assert_eq!(dropped.unwrap(), FIXTURE_DROPPED);
        assert_eq!(
            library
                .get_result_string(CUptiResult::CUPTI_ERROR_UNKNOWN)
                .unwrap(),
            "fixture text for 999"
        );
        let kind = CUpti_ExternalCorrelationKind::CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0;
        library
            .activity_push_external_correlation_id(kind, 42)
            .unwrap();
        assert_eq!(
            library.activity_pop_external_correlation_id(kind).unwrap(),
            42
        );
        library
            .activity_enable(CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL)
            .unwrap();
    }

    #[test]
    fn the_end_of_a_buffer_is_none_not_an_error() {
        let (_dir, library) = fixture();
        let mut buffer = [0u8; 64];
        // SAFETY: the buffer is valid for its length; the fixture reads none of it.
        let next = unsafe {
            library.activity_get_next_record(buffer.as_mut_ptr(), buffer.len(), ptr::null_mut())
        };
        assert!(matches!(next, Ok(None)), "{next:?}");
    }

    #[test]
    fn missing_optional_functions_are_unsupported() {
        let (_dir, library) = fixture();
        let unsupported = |result: Result<(), Error>| match result {
            Err(Error::Unsupported { function }) => function,
            other => panic!("expected Unsupported, got {other:?}"),
        };
        assert_eq!(unsupported(library.finalize()), "cuptiFinalize");
        assert_eq!(
            unsupported(library.activity_enable_runtime_api(0, true)),
            "cuptiActivityEnableRuntimeApi"
        );
        assert_eq!(
            unsupported(library.activity_enable_latency_timestamps(true)),
            "cuptiActivityEnableLatencyTimestamps"
        );
        assert_eq!(
            library
                .get_callback_name(CUpti_CallbackDomain::CUPTI_CB_DOMAIN_RUNTIME_API, 1)
                .unwrap_err()
                .to_string(),
            "cuptiGetCallbackName is not available in the loaded libcupti"
        );
    }
}
