//! What every end-to-end test needs: the built programs and libraries, the test
//! stand-ins for the CUDA driver and CUPTI, and a fresh directory.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Variables of the test's own environment that would change what cutrace does.
const INHERITED: [&str; 9] = [
    "CUDA_INJECTION64_PATH",
    "NVTX_INJECTION64_PATH",
    "CUTRACE_CONFIG",
    "CUTRACE_CUPTI_LIB",
    "CUTRACE_CUDA_LIB",
    "CUTRACE_LIB",
    "RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
];

/// The directory cargo builds into for this profile (`target/debug`).
pub fn build_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_cutrace"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `cutrace` with a clean environment: none of the variables above, and the
/// fake driver, the CUPTI test double and the injection library in place.
pub fn cutrace() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cutrace"));
    for var in INHERITED {
        command.env_remove(var);
    }
    command
        .env("CUTRACE_CUDA_LIB", fake_libcuda())
        .env("CUTRACE_CUPTI_LIB", cupti_double())
        .env("CUTRACE_LIB", injection_library());
    command
}

/// The stand-in for libcuda.so.1, compiled from `tests/support/fake_libcuda.c`.
pub fn fake_libcuda() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fake-driver/libcuda.so.1");
        compile_c(
            &[support("fake_libcuda.c")],
            &out,
            &["-shared", "-fPIC", "-ldl"],
        );
        out
    })
}

/// libcutrace.so, the injection library.
pub fn injection_library() -> PathBuf {
    built_artifacts();
    build_dir().join("libcutrace.so")
}

/// The CUPTI test double.
pub fn cupti_double() -> PathBuf {
    built_artifacts();
    build_dir().join("libcupti_test_double.so")
}

/// The stand-in CUDA program (`examples/fake_cuda_program.rs`).
pub fn fake_program() -> PathBuf {
    built_artifacts();
    build_dir().join("examples/fake_cuda_program")
}

/// Compiles C `sources` into `out` with the system `cc`.
pub fn compile_c(sources: &[PathBuf], out: &Path, flags: &[&str]) {
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let status = Command::new("cc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(out)
        .args(sources)
        .args(flags)
        .status()
        .expect("cannot run cc");
    assert!(status.success(), "cc failed for {sources:?}");
}

/// A file of `tests/support`.
pub fn support(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support")
        .join(name)
}

/// A fresh directory, removed when dropped.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("cutrace-test-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap()
}

/// Builds what the tests run but `cargo test` does not always build: the two
/// shared libraries and the example (cargo releases its build lock while tests
/// run, so a nested build is safe).
fn built_artifacts() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args([
                "build",
                "--quiet",
                "-p",
                "cutrace",
                "-p",
                "cupti-test-double",
            ])
            .args(["--lib", "--example", "fake_cuda_program"]);
        if !cfg!(debug_assertions) {
            cargo.arg("--release");
        }
        let status = cargo.status().expect("cannot run cargo");
        assert!(status.success(), "building the test artifacts failed");
    });
}
