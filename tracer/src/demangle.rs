//! Kernel names as torch.profiler prints them.
//!
//! Kineto demangles with the C++ runtime's `__cxa_demangle`; users compare our
//! tables and traces with theirs name by name, so we use the same function when the
//! process has a C++ runtime (every PyTorch worker does), opened at run time from
//! `libstdc++.so.6`. `cpp_demangle` is the fallback: it agrees on most names but
//! not all (it writes `void ` before a function template used as a template
//! argument, as in torch's `elementwise_kernel<128, 2, gpu_kernel_impl_nocast<...>`).

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::sync::OnceLock;

/// `abi::__cxa_demangle`.
type CxaDemangle = unsafe extern "C" fn(
    mangled: *const c_char,
    buffer: *mut c_char,
    length: *mut usize,
    status: *mut c_int,
) -> *mut c_char;

/// `free`, for the string `__cxa_demangle` returns.
type Free = unsafe extern "C" fn(ptr: *mut c_void);

struct CxxRuntime {
    demangle: CxaDemangle,
    free: Free,
    // Keeps the function pointers above valid.
    _library: libloading::Library,
}

/// The C++ runtime's demangler, looked up once per process.
fn cxx_runtime() -> Option<&'static CxxRuntime> {
    static RUNTIME: OnceLock<Option<CxxRuntime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            // SAFETY: libstdc++'s initialisers are safe to run at any time; a host
            // that uses C++ has already run them.
            let library = unsafe { libloading::Library::new("libstdc++.so.6") }.ok()?;
            // SAFETY: both symbols have the C signatures declared above.
            let (demangle, free) = unsafe {
                (
                    *library.get::<CxaDemangle>(b"__cxa_demangle\0").ok()?,
                    *library.get::<Free>(b"free\0").ok()?,
                )
            };
            Some(CxxRuntime {
                demangle,
                free,
                _library: library,
            })
        })
        .as_ref()
}

/// `mangled` demangled as the C++ runtime (and so torch.profiler) prints it;
/// anything that is not a mangled name comes back unchanged.
pub fn demangle(mangled: &[u8]) -> String {
    cxx_runtime()
        .and_then(|runtime| runtime.demangle(mangled))
        .or_else(|| {
            cpp_demangle::Symbol::new(mangled)
                .ok()
                .and_then(|symbol| symbol.demangle().ok())
        })
        .unwrap_or_else(|| String::from_utf8_lossy(mangled).into_owned())
}

impl CxxRuntime {
    fn demangle(&self, mangled: &[u8]) -> Option<String> {
        if !mangled.starts_with(b"_Z") {
            return None;
        }
        let mangled = CString::new(mangled).ok()?;
        let mut status: c_int = -1;
        // SAFETY: a NUL-terminated input, no buffer (the runtime allocates one with
        // malloc), and a valid status pointer.
        let out = unsafe {
            (self.demangle)(
                mangled.as_ptr(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                &mut status,
            )
        };
        if out.is_null() {
            return None;
        }
        let text = (status == 0).then(|| {
            // SAFETY: on success `out` is a NUL-terminated string the runtime
            // allocated.
            unsafe { CStr::from_ptr(out) }
                .to_string_lossy()
                .into_owned()
        });
        // SAFETY: `out` came from malloc inside the runtime and is freed once.
        unsafe { (self.free)(out.cast()) };
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mangled kernel names from PyTorch, CUTLASS and FlashAttention builds, with
    /// what `c++filt` (the runtime's algorithm) prints for them.
    const KERNELS: [(&str, &str); 4] = [
        (
            "_ZN2at6native29vectorized_elementwise_kernelILi4ENS0_11FillFunctorIfEENS_6detail5ArrayIPcLi1EEEEEviT0_T1_",
            "void at::native::vectorized_elementwise_kernel<4, at::native::FillFunctor<float>, at::detail::Array<char*, 1> >(int, at::native::FillFunctor<float>, at::detail::Array<char*, 1>)",
        ),
        (
            "_ZN2at6native18elementwise_kernelILi128ELi2EZNS0_22gpu_kernel_impl_nocastIZZZNS0_23direct_copy_kernel_cudaERNS_18TensorIteratorBaseEENKUlvE1_clEvENKUlvE5_clEvEUlfE_EEvS4_RKT_EUliE_EEviT1_",
            "void at::native::elementwise_kernel<128, 2, at::native::gpu_kernel_impl_nocast<at::native::direct_copy_kernel_cuda(at::TensorIteratorBase&)::{lambda()#3}::operator()() const::{lambda()#7}::operator()() const::{lambda(float)#1}>(at::TensorIteratorBase&, at::native::direct_copy_kernel_cuda(at::TensorIteratorBase&)::{lambda()#3}::operator()() const::{lambda()#7}::operator()() const::{lambda(float)#1} const&)::{lambda(int)#1}>(int, at::native::gpu_kernel_impl_nocast<at::native::direct_copy_kernel_cuda(at::TensorIteratorBase&)::{lambda()#3}::operator()() const::{lambda()#7}::operator()() const::{lambda(float)#1}>(at::TensorIteratorBase&, at::native::direct_copy_kernel_cuda(at::TensorIteratorBase&)::{lambda()#3}::operator()() const::{lambda()#7}::operator()() const::{lambda(float)#1} const&)::{lambda(int)#1})",
        ),
        (
            "_ZN7cutlass6KernelI50cutlass_80_tensorop_s1688gemm_64x64_32x6_nn_align4EEvNT_6ParamsE",
            "void cutlass::Kernel<cutlass_80_tensorop_s1688gemm_64x64_32x6_nn_align4>(cutlass_80_tensorop_s1688gemm_64x64_32x6_nn_align4::Params)",
        ),
        (
            "_Z10add_kernelPfPKfS1_i",
            "add_kernel(float*, float const*, float const*, int)",
        ),
    ];

    #[test]
    fn kernel_names_read_as_torch_prints_them() {
        assert!(
            cxx_runtime().is_some(),
            "libstdc++.so.6 is part of every machine that builds cutrace"
        );
        for (mangled, expected) in KERNELS {
            assert_eq!(demangle(mangled.as_bytes()), expected, "{mangled}");
        }
    }

    #[test]
    fn names_that_are_not_mangled_come_back_unchanged() {
        for name in [
            "ampere_sgemm_128x64_tn",
            "",
            "_Z",
            "_Zgarbage",
            "naïve kernel",
        ] {
            assert_eq!(demangle(name.as_bytes()), name);
        }
    }
}
