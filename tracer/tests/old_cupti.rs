//! A CUPTI older than CUDA 12.0 is refused with one warning. Its own test binary:
//! the library is loaded, and its version checked, once per process.

mod double;

use std::sync::Arc;

use cupti_sys::OVERRIDE_VAR;
use cutrace_tracer::{Profiler, ProfilerConfig};
use double::{Collect, warnings};
use libloading::Library;

#[test]
fn a_cupti_older_than_cuda_12_is_refused() {
    let path = double::library_path();
    // SAFETY: the only test of this binary, before anything loads CUPTI.
    unsafe { std::env::set_var(OVERRIDE_VAR, path) };
    // SAFETY: the double has no load-time preconditions, and it exports this control
    // with this signature.
    unsafe {
        let lib = Library::new(path).unwrap();
        let set_version: libloading::Symbol<unsafe extern "C" fn(u32)> =
            lib.get(b"cupti_double_set_version").unwrap();
        set_version(17);
        // Stays loaded: the tracer opens the same library next.
        std::mem::forget(lib);
    }
    let (warn, warned) = warnings();
    let profiler = Profiler::with_warnings(
        ProfilerConfig::default(),
        Arc::new(Collect::default()),
        warn,
    );
    assert!(!profiler.is_traced());
    let warned = warned.lock().unwrap();
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(warned[0].contains("CUPTI API version 17"), "{warned:?}");
}
