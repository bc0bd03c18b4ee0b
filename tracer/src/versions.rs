//! The CUDA driver and runtime versions of this process, for the trace's
//! `cuda_driver_version` and `cuda_runtime_version` (Kineto's keys).
//!
//! Only libraries the process has already loaded are asked (`RTLD_NOLOAD`): the
//! tracer must not pull a CUDA library into a process, nor pick a different one
//! than the application uses. A version that cannot be read is 0, as in Kineto.

use std::ffi::c_int;

use libloading::os::unix::Library;

/// `cuDriverGetVersion` and `cudaRuntimeGetVersion` share this signature.
type GetVersion = unsafe extern "C" fn(version: *mut c_int) -> c_int;

/// The CUDA driver's version (e.g. 13000 for 13.0), 0 when no driver is loaded.
pub fn cuda_driver_version() -> u32 {
    loaded_version(&["libcuda.so.1"], b"cuDriverGetVersion\0")
}

/// The CUDA runtime's version (e.g. 13000), 0 when no runtime library is loaded
/// (a statically linked runtime cannot be asked from outside).
pub fn cuda_runtime_version() -> u32 {
    loaded_version(
        &["libcudart.so.13", "libcudart.so.12", "libcudart.so"],
        b"cudaRuntimeGetVersion\0",
    )
}

/// The version `symbol` reports in the first of `sonames` already loaded.
fn loaded_version(sonames: &[&str], symbol: &[u8]) -> u32 {
    sonames
        .iter()
        .find_map(|soname| {
            // SAFETY: RTLD_NOLOAD only hands back a library the process already
            // loaded, so no initialiser runs.
            let library =
                unsafe { Library::open(Some(soname), libc::RTLD_LAZY | libc::RTLD_NOLOAD) }.ok()?;
            // SAFETY: both functions take one `int*` and return a status.
            let get: GetVersion = unsafe { *library.get::<GetVersion>(symbol).ok()? };
            let mut version: c_int = 0;
            // SAFETY: `version` is a valid out-pointer; neither call needs `cuInit`.
            let status = unsafe { get(&mut version) };
            (status == 0).then(|| u32::try_from(version).unwrap_or(0))
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libraries_the_process_has_not_loaded_are_not_asked() {
        // The test process loads no CUDA library; nothing may load one for us.
        assert_eq!(cuda_driver_version(), 0);
        assert_eq!(cuda_runtime_version(), 0);
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        assert!(!maps.contains("libcuda.so") && !maps.contains("libcudart.so"));
    }
}
