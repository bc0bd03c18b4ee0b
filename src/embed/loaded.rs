//! Which file a loaded function came from, as the dynamic loader knows it: a
//! library's name (`libcuda.so.1`) says nothing about where it was found, and
//! `cutrace_main` must know which `libcutrace.so` it runs in.

use std::ffi::{CStr, c_void};
use std::path::PathBuf;

/// The file of the loaded object holding `address`; `None` when the loader does
/// not know the address.
pub fn file_of(address: *const c_void) -> Option<PathBuf> {
    let mut info = std::mem::MaybeUninit::<libc::Dl_info>::zeroed();
    // SAFETY: dladdr only reads the address and fills the live out-struct.
    let found = unsafe { libc::dladdr(address, info.as_mut_ptr()) };
    // SAFETY: zero-initialised and, when found, filled by dladdr.
    let info = unsafe { info.assume_init() };
    if found == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: dladdr returned a NUL-terminated path owned by the loader, which
    // lives while the object stays loaded (it does for this call).
    let name = unsafe { CStr::from_ptr(info.dli_fname) };
    Some(PathBuf::from(name.to_string_lossy().into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_function_of_this_program_is_found_in_it() {
        let file = file_of(file_of as *const c_void).unwrap();
        let exe = std::env::current_exe().unwrap();
        assert_eq!(
            std::fs::canonicalize(file).unwrap(),
            std::fs::canonicalize(exe).unwrap()
        );
    }
}
