//! With no CUPTI to load, the profiler warns once and does nothing. Its own test
//! binary: the library is loaded once per process.

use std::sync::{Arc, Mutex};

use cupti_sys::OVERRIDE_VAR;
use cutrace_tracer::{Profiler, ProfilerConfig, Trace, TraceSink};

struct Unreachable;

impl TraceSink for Unreachable {
    fn window_finished(&self, _: Trace) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        panic!("an untraced profiler wrote a window")
    }
}

#[test]
fn a_missing_library_gives_one_warning_and_a_no_op_profiler() {
    // SAFETY: the only test of this binary, before anything loads CUPTI.
    unsafe { std::env::set_var(OVERRIDE_VAR, "/nonexistent/libcupti.so.13") };
    let warned = Arc::new(Mutex::new(Vec::<String>::new()));
    let keep = warned.clone();
    let profiler = Profiler::with_warnings(
        ProfilerConfig::default(),
        Arc::new(Unreachable),
        Arc::new(move |w: &str| keep.lock().unwrap().push(w.to_owned())),
    );
    assert!(!profiler.is_traced());
    profiler.start();
    {
        let range = profiler.annotate("work");
        assert_eq!(range.external_id(), None);
    }
    profiler.step();
    assert!(!profiler.is_recording());
    profiler.stop();
    profiler.shutdown();
    drop(profiler);
    let warned = warned.lock().unwrap();
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(
        warned[0].starts_with("tracing disabled: cannot use /nonexistent/libcupti.so.13"),
        "{warned:?}"
    );
}
