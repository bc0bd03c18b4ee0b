//! The CUDA versions a trace records come from the libraries the process loaded.
//! Its own test binary: it loads a stand-in `libcuda.so.1` into the process.

use std::path::Path;
use std::process::Command;

/// A test fixture standing in for the CUDA driver and runtime: each exports only
/// its version function.
fn fixture(dir: &Path, soname: &str, function: &str, version: u32) -> std::path::PathBuf {
    let source = dir.join(format!("{soname}.c"));
    std::fs::write(
        &source,
        format!("int {function}(int *v) {{ *v = {version}; return 0; }}\n"),
    )
    .unwrap();
    let out = dir.join(soname);
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&out)
        .arg(&source)
        .arg(format!("-Wl,-soname,{soname}"))
        .status()
        .expect("cannot run cc");
    assert!(status.success());
    out
}

#[test]
fn versions_come_from_the_loaded_driver_and_runtime() {
    assert_eq!(
        cutrace_tracer::cuda_driver_version(),
        0,
        "nothing loaded yet"
    );
    let dir = tempfile::tempdir().unwrap();
    let driver = fixture(dir.path(), "libcuda.so.1", "cuDriverGetVersion", 13000);
    let runtime = fixture(
        dir.path(),
        "libcudart.so.12",
        "cudaRuntimeGetVersion",
        12080,
    );
    // SAFETY: the fixtures have no initialisers.
    let _loaded = unsafe {
        (
            libloading::Library::new(&driver).unwrap(),
            libloading::Library::new(&runtime).unwrap(),
        )
    };
    assert_eq!(cutrace_tracer::cuda_driver_version(), 13000);
    assert_eq!(cutrace_tracer::cuda_runtime_version(), 12080);
}
