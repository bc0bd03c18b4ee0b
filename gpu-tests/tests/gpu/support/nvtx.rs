//! NVTX push/pop from a shared library opened at run time.
//!
//! NVTX 3 is header-only; CUDA 13 ships its functions as a library only in
//! `libnvtx3interop.so.1` (the `nvidia-nvtx` wheel puts it in
//! `site-packages/nvidia/cu13/lib`, beside libcupti), CUDA 12 and older as
//! `libnvToolsExt.so.1`. Either way the calls reach CUPTI only when
//! `NVTX_INJECTION64_PATH` names the libcupti the tracer uses, before the first call.

use std::ffi::{CStr, c_char, c_int};
use std::path::PathBuf;

use libloading::{Library, Symbol};

/// The variable naming the NVTX library to open.
pub const LIBRARY_VAR: &str = "CUTRACE_TEST_NVTX_LIB";

/// The variable through which NVTX finds its injection library (libcupti).
pub const INJECTION_VAR: &str = "NVTX_INJECTION64_PATH";

/// Names tried when [`LIBRARY_VAR`] is unset, left to the dynamic linker's search.
const NAMES: [&str; 3] = [
    "libnvtx3interop.so.1",
    "libnvToolsExt.so.1",
    "libnvToolsExt.so",
];

type Push = unsafe extern "C" fn(*const c_char) -> c_int;
type Pop = unsafe extern "C" fn() -> c_int;

/// An opened NVTX library.
pub struct Nvtx {
    library: Library,
    path: PathBuf,
}

impl Nvtx {
    /// Opens the NVTX library, or says why the NVTX test cannot run here.
    pub fn open() -> Result<Nvtx, String> {
        if std::env::var_os(INJECTION_VAR).is_none_or(|v| v.is_empty()) {
            return Err(format!(
                "{INJECTION_VAR} is unset: NVTX calls would not reach CUPTI; set it to the libcupti in CUTRACE_CUPTI_LIB"
            ));
        }
        let candidates: Vec<PathBuf> = match std::env::var_os(LIBRARY_VAR) {
            Some(path) if !path.is_empty() => vec![path.into()],
            _ => NAMES.iter().map(PathBuf::from).collect(),
        };
        let mut errors = Vec::new();
        for path in candidates {
            // SAFETY: NVTX libraries run no initialisation that could clash with the
            // test: NVTX initialises lazily, on the first call.
            match unsafe { Library::new(&path) } {
                Ok(library) => return Ok(Nvtx { library, path }),
                Err(e) => errors.push(format!("{}: {e}", path.display())),
            }
        }
        Err(format!(
            "no NVTX library (set {LIBRARY_VAR}); tried {}",
            errors.join("; ")
        ))
    }

    /// The file it was opened from.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// `nvtxRangePushA(name)`.
    pub fn push(&self, name: &CStr) {
        // SAFETY: the symbol has this C signature in every NVTX version; the name is
        // a NUL-terminated string that outlives the call.
        unsafe {
            let push: Symbol<Push> = self.library.get(b"nvtxRangePushA\0").unwrap();
            push(name.as_ptr());
        }
    }

    /// `nvtxRangePop()`.
    pub fn pop(&self) {
        // SAFETY: the symbol has this C signature in every NVTX version.
        unsafe {
            let pop: Symbol<Pop> = self.library.get(b"nvtxRangePop\0").unwrap();
            pop();
        }
    }
}
