//! Asking the CUDA driver (libcuda) what it is and which GPUs it sees, for
//! `cutrace doctor` and `cutrace run`.
//!
//! libcuda is opened at run time and five functions are declared by hand below.
//! No driver-API crate is used because the one that would fit, cudarc, panics
//! when libcuda or one of its symbols is missing, and "no driver here" is a normal
//! answer for this module: it must come back as an error to print, never a panic.

use std::ffi::{CStr, OsString, c_char, c_int, c_uint, c_void};
use std::path::PathBuf;

use libloading::Library;

/// What can go wrong asking the driver.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The CUDA driver library could not be opened.
    #[error("no CUDA driver: cannot open {name}: {reason}")]
    NotFound {
        /// Library name or path tried.
        name: String,
        /// The dynamic loader's message.
        reason: String,
    },
    /// The CUDA driver library lacks a function cutrace calls.
    #[error("the CUDA driver has no {symbol} function")]
    Symbol {
        /// Missing symbol.
        symbol: &'static str,
    },
    /// A CUDA driver call failed.
    #[error("{call} failed: {message} (CUresult {code})")]
    Call {
        /// Function called.
        call: &'static str,
        /// `CUresult` returned.
        code: i32,
        /// The driver's message for it.
        message: String,
    },
}

/// Environment variable naming the libcuda to open instead of `libcuda.so.1`.
pub const CUDA_LIB_ENV: &str = "CUTRACE_CUDA_LIB";

/// What the driver said about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverInfo {
    /// File the driver library was loaded from.
    pub path: PathBuf,
    /// `cuDriverGetVersion`: the CUDA version the driver supports, e.g. 13000.
    pub version: i32,
    /// The GPUs it sees, in device order.
    pub gpus: Vec<Gpu>,
}

/// One GPU as the driver describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gpu {
    /// Device ordinal.
    pub index: u32,
    /// Marketing name.
    pub name: String,
    /// Compute capability, major and minor.
    pub compute_capability: (i32, i32),
    /// Global memory, bytes.
    pub total_memory: u64,
}

/// `CUresult`: 0 is success.
type CuResult = c_int;
/// `CUdevice`: a device ordinal handle.
type CuDevice = c_int;

type CuInit = unsafe extern "C" fn(flags: c_uint) -> CuResult;
type CuDriverGetVersion = unsafe extern "C" fn(version: *mut c_int) -> CuResult;
type CuDeviceGetCount = unsafe extern "C" fn(count: *mut c_int) -> CuResult;
type CuDeviceGet = unsafe extern "C" fn(device: *mut CuDevice, ordinal: c_int) -> CuResult;
type CuDeviceGetName =
    unsafe extern "C" fn(name: *mut c_char, len: c_int, device: CuDevice) -> CuResult;
type CuDeviceGetAttribute =
    unsafe extern "C" fn(value: *mut c_int, attribute: c_int, device: CuDevice) -> CuResult;
type CuDeviceTotalMem = unsafe extern "C" fn(bytes: *mut usize, device: CuDevice) -> CuResult;
type CuGetErrorString = unsafe extern "C" fn(error: CuResult, text: *mut *const c_char) -> CuResult;

/// `CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR`.
const ATTRIBUTE_CC_MAJOR: c_int = 75;
/// `CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR`.
const ATTRIBUTE_CC_MINOR: c_int = 76;

/// The name the driver library is opened by: [`CUDA_LIB_ENV`] or `libcuda.so.1`.
pub fn library_name() -> OsString {
    std::env::var_os(CUDA_LIB_ENV)
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "libcuda.so.1".into())
}

/// Opens the driver library without initialising it: enough to know that CUDA
/// programs here will find a driver, at none of `cuInit`'s cost.
pub fn find() -> Result<PathBuf, Error> {
    let library = open()?;
    let path = library_path(&library);
    Ok(path)
}

/// Initialises the driver and asks for its version and GPUs.
pub fn probe() -> Result<DriverInfo, Error> {
    let library = open()?;
    let path = library_path(&library);
    let api = Api::load(&library)?;
    api.check("cuInit", {
        // SAFETY: cuInit takes flags that must be 0 and has no other precondition.
        unsafe { (api.init)(0) }
    })?;
    let mut version = 0;
    api.check("cuDriverGetVersion", {
        // SAFETY: the out-pointer is a live local.
        unsafe { (api.driver_get_version)(&mut version) }
    })?;
    let mut count = 0;
    api.check("cuDeviceGetCount", {
        // SAFETY: the out-pointer is a live local; the driver is initialised.
        unsafe { (api.device_get_count)(&mut count) }
    })?;
    let gpus = (0..count)
        .map(|ordinal| api.gpu(ordinal))
        .collect::<Result<_, _>>()?;
    // An initialised driver is not made to be unloaded; programs never do, so
    // neither does this one.
    std::mem::forget(library);
    Ok(DriverInfo {
        path,
        version,
        gpus,
    })
}

/// `13000` → `"13.0"`, the way CUDA versions are written.
pub fn format_version(version: i32) -> String {
    format!("{}.{}", version / 1000, (version % 1000) / 10)
}

fn open() -> Result<Library, Error> {
    let name = library_name();
    // SAFETY: loading libcuda runs its initialisers, which have no preconditions;
    // a library named through CUTRACE_CUDA_LIB is the user's choice to trust.
    unsafe { Library::new(&name) }.map_err(|e| Error::NotFound {
        name: name.to_string_lossy().into_owned(),
        reason: e.to_string(),
    })
}

/// The file `library` was loaded from, found through one of its symbols.
fn library_path(library: &Library) -> PathBuf {
    // SAFETY: the symbol is only used as an address for dladdr, never called.
    let symbol = unsafe { library.get::<*const c_void>(b"cuInit\0") };
    symbol
        .ok()
        .and_then(|symbol| crate::loaded::file_of(*symbol))
        .unwrap_or_else(|| library_name().into())
}

/// The driver functions cutrace calls, resolved from the library.
struct Api {
    init: CuInit,
    driver_get_version: CuDriverGetVersion,
    device_get_count: CuDeviceGetCount,
    device_get: CuDeviceGet,
    device_get_name: CuDeviceGetName,
    device_get_attribute: CuDeviceGetAttribute,
    device_total_mem: CuDeviceTotalMem,
    get_error_string: Option<CuGetErrorString>,
}

impl Api {
    fn load(library: &Library) -> Result<Api, Error> {
        fn symbol<T: Copy>(library: &Library, name: &'static str) -> Result<T, Error> {
            let mut with_nul = name.as_bytes().to_vec();
            with_nul.push(0);
            // SAFETY: each `T` below is the C signature documented for `name` in
            // cuda.h; the pointer is used only while `library` stays loaded.
            let symbol = unsafe { library.get::<T>(&with_nul) };
            symbol
                .map(|s| *s)
                .map_err(|_| Error::Symbol { symbol: name })
        }
        Ok(Api {
            init: symbol(library, "cuInit")?,
            driver_get_version: symbol(library, "cuDriverGetVersion")?,
            device_get_count: symbol(library, "cuDeviceGetCount")?,
            device_get: symbol(library, "cuDeviceGet")?,
            device_get_name: symbol(library, "cuDeviceGetName")?,
            device_get_attribute: symbol(library, "cuDeviceGetAttribute")?,
            device_total_mem: symbol(library, "cuDeviceTotalMem_v2")?,
            get_error_string: symbol(library, "cuGetErrorString").ok(),
        })
    }

    fn gpu(&self, ordinal: c_int) -> Result<Gpu, Error> {
        let mut device = 0;
        self.check("cuDeviceGet", {
            // SAFETY: the out-pointer is a live local; the ordinal is below the count.
            unsafe { (self.device_get)(&mut device, ordinal) }
        })?;
        let mut name = [0 as c_char; 256];
        self.check("cuDeviceGetName", {
            // SAFETY: the buffer is writable for the length passed.
            unsafe { (self.device_get_name)(name.as_mut_ptr(), name.len() as c_int, device) }
        })?;
        // The driver NUL-terminates within the length; the last byte is forced to
        // NUL anyway so that a driver that does not cannot make us read past it.
        name[name.len() - 1] = 0;
        // SAFETY: the buffer is NUL-terminated (see above) and outlives the borrow.
        let name = unsafe { CStr::from_ptr(name.as_ptr()) }
            .to_string_lossy()
            .into_owned();
        let attribute = |attribute| {
            let mut value = 0;
            // SAFETY: the out-pointer is a live local.
            let rc = unsafe { (self.device_get_attribute)(&mut value, attribute, device) };
            self.check("cuDeviceGetAttribute", rc).map(|()| value)
        };
        let compute_capability = (
            attribute(ATTRIBUTE_CC_MAJOR)?,
            attribute(ATTRIBUTE_CC_MINOR)?,
        );
        let mut total_memory = 0usize;
        self.check("cuDeviceTotalMem", {
            // SAFETY: the out-pointer is a live local.
            unsafe { (self.device_total_mem)(&mut total_memory, device) }
        })?;
        Ok(Gpu {
            index: ordinal as u32,
            name,
            compute_capability,
            total_memory: total_memory as u64,
        })
    }

    /// Turns a `CUresult` into an error carrying the driver's own message.
    fn check(&self, call: &'static str, rc: CuResult) -> Result<(), Error> {
        if rc == 0 {
            return Ok(());
        }
        let mut text: *const c_char = std::ptr::null();
        let message = match self.get_error_string {
            // SAFETY: the out-pointer is a live local; the driver hands back a
            // static string or leaves it null.
            Some(get) if unsafe { get(rc, &mut text) } == 0 && !text.is_null() => {
                // SAFETY: non-null and pointing at the driver's static message.
                unsafe { CStr::from_ptr(text) }
                    .to_string_lossy()
                    .into_owned()
            }
            _ => "unknown error".to_owned(),
        };
        Err(Error::Call {
            call,
            code: rc,
            message,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_written_the_cuda_way() {
        assert_eq!(format_version(13000), "13.0");
        assert_eq!(format_version(12080), "12.8");
        assert_eq!(format_version(11040), "11.4");
    }
}
