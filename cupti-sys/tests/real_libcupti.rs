//! The loader and the result layer against NVIDIA's real libcupti, when
//! `CUTRACE_TEST_LIBCUPTI` names one (`scripts/ci/fetch-libcupti.sh` fetches CUDA 13.0's
//! and prints its path). The library loads without a GPU; CUPTI then fails to
//! subscribe, which must come back as an error carrying CUPTI's text. On a machine with
//! a driver the subscription succeeds and is ended again.
//!
//! A test binary of its own: CUPTI's state is process-wide.

use std::ffi::c_void;
use std::ptr;

use cupti_sys::sys::{CUpti_CallbackDomain, CUpti_CallbackId};
use cupti_sys::{CUptiResult, CudaRelease, Environment, Error, Origin, SearchPlan};

/// The variable naming the libcupti to test.
const LIBCUPTI_VAR: &str = "CUTRACE_TEST_LIBCUPTI";

/// A callback that ignores everything: this test subscribes only to see what CUPTI says.
unsafe extern "C" fn ignore(
    _userdata: *mut c_void,
    _domain: CUpti_CallbackDomain,
    _cbid: CUpti_CallbackId,
    _data: *const c_void,
) {
}

#[test]
fn real_libcupti_loads_and_its_failures_are_errors() {
    let Some(path) = std::env::var_os(LIBCUPTI_VAR) else {
        eprintln!(
            "skipped: set {LIBCUPTI_VAR} to a libcupti.so.13 \
             (scripts/ci/fetch-libcupti.sh prints one)"
        );
        return;
    };
    let env = Environment {
        cupti_lib: Some(path.into()),
        ..Environment::default()
    };
    let library = SearchPlan::new(&env).load().unwrap();

    assert_eq!(library.origin(), Origin::Override);
    assert!(
        library.version().cuda() >= CudaRelease::new(13, 0),
        "{}",
        library.version()
    );
    assert_eq!(library.get_version().unwrap(), library.version().api());
    let text = library
        .get_result_string(CUptiResult::CUPTI_ERROR_INVALID_PARAMETER)
        .unwrap();
    assert!(!text.is_empty());

    // SAFETY: `ignore` does nothing, never unwinds and reads no user data.
    match unsafe { library.subscribe(Some(ignore), ptr::null_mut()) } {
        Err(Error::Cupti {
            function,
            code,
            message,
        }) => {
            assert_eq!(function, "cuptiSubscribe");
            assert_ne!(code, CUptiResult::CUPTI_SUCCESS);
            assert_eq!(message, library.get_result_string(code).unwrap());
            eprintln!(
                "cuptiSubscribe failed as expected without a driver: {message} ({})",
                code.0
            );
        }
        // SAFETY: the handle was just returned by `subscribe`.
        Ok(subscriber) => unsafe { library.unsubscribe(subscriber) }.unwrap(),
        Err(other) => panic!("cuptiSubscribe: expected a CUPTI failure, got {other:?}"),
    }
}
