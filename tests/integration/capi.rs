//! The C ABI from a C program compiled with the system `cc` against
//! `include/cutrace.h` and linked against `libcutrace.so`.

use std::path::Path;

use crate::util::{
    TestDir, build_dir, clean_command, compile_c, cupti_double, injection_library,
    kernels_and_ranges, stderr, stdout, support, traces,
};

#[test]
fn a_c_program_traces_through_the_header() {
    let lib_dir = injection_library().parent().unwrap().to_path_buf();
    let program = Path::new(env!("CARGO_TARGET_TMPDIR")).join("capi/capi_test");
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("include");
    compile_c(
        &[support("capi_test.c")],
        &program,
        &[
            &format!("-I{}", include.display()),
            &format!("-L{}", lib_dir.display()),
            "-lcutrace",
            &format!("-Wl,-rpath,{}", build_dir().display()),
        ],
    );
    let dir = TestDir::new();
    let out = clean_command(&program)
        .arg(dir.root())
        .env("CUTRACE_CUPTI_LIB", cupti_double())
        .output()
        .unwrap();
    let stderr = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // `cutrace_main` ran `cutrace --version` on the way.
    let version = concat!("cutrace ", env!("CARGO_PKG_VERSION"));
    assert_eq!(stdout(&out), format!("{version}\nok\n"), "{stderr}");
    // ... and `cutrace report` of a missing file, and one without its argument.
    assert!(
        stderr.contains("cutrace: error: ") && stderr.contains("/nonexistent/trace.json.gz"),
        "{stderr}"
    );
    assert!(stderr.contains("Usage: cutrace report"), "{stderr}");
    let traces = traces(dir.root());
    assert_eq!(traces.len(), 1, "{stderr}");
    let (name, trace) = &traces[0];
    assert!(name.starts_with("capi."), "{name}");
    let (_, ranges) = kernels_and_ranges(trace);
    assert_eq!(
        ranges,
        [
            "ProfilerStep#1",
            "iteration",
            "inner",
            "ProfilerStep#2",
            "iteration",
            "inner"
        ]
    );
}
