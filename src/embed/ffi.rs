//! The one way from C into cutrace.
//!
//! Every `extern "C"` entry point (the C ABI, `InitializeInjection`, the at-exit
//! handler) runs its body through [`trampoline`]: a panic is caught there, and a
//! failure becomes the function's C return value in exactly one place, with its
//! message kept as this thread's last error for `cutrace_last_error`. Should
//! anything still unwind past the catch (a panic while dropping a panic payload),
//! a guard aborts the process rather than unwind into C, which is undefined
//! behaviour.

use std::any::Any;
use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char, c_int};
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::Error;

thread_local! {
    /// Message of the last failure on this thread, "" while there was none.
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
    /// The last string a function handed back to C on this thread.
    static RETURNED: RefCell<CString> = RefCell::new(CString::default());
}

/// A C return type: what a failed call returns.
pub(crate) trait CReturn {
    /// The value a failed call hands back to C.
    const FAILURE: Self;
}

impl CReturn for () {
    const FAILURE: Self = ();
}

impl CReturn for *const c_char {
    const FAILURE: Self = c"".as_ptr();
}

impl CReturn for bool {
    const FAILURE: Self = false;
}

impl CReturn for c_int {
    const FAILURE: Self = -1;
}

/// Runs `body` for an `extern "C"` function named `entry`: a returned error or a
/// panic is recorded as this thread's last error, prefixed with `entry`, and the
/// call returns [`CReturn::FAILURE`].
pub(crate) fn trampoline<R: CReturn>(entry: &str, body: impl FnOnce() -> Result<R, Error>) -> R {
    let trap = AbortOnUnwind(entry);
    // The body only touches cutrace's own state, which keeps no invariant that a
    // panic half-way could break for a later call: every global sits behind a
    // mutex whose poisoning is recovered from.
    let value = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(value)) => value,
        Ok(Err(error)) => {
            // `{:#}`: the error with each of its causes, once.
            set_last_error(&format!("{entry}: {:#}", anyhow::Error::from(error)));
            R::FAILURE
        }
        Err(payload) => {
            set_last_error(&format!(
                "{entry}: internal error: {}",
                panic_message(&*payload)
            ));
            // Dropping the payload may itself panic; the trap still covers it.
            drop(payload);
            R::FAILURE
        }
    };
    std::mem::forget(trap);
    value
}

/// Records `message` as this thread's last failure.
pub(crate) fn set_last_error(message: &str) {
    // A message with an interior NUL loses everything from it on rather than the
    // whole message.
    let message = message.split('\0').next().unwrap_or_default();
    let message = CString::new(message).unwrap_or_default();
    LAST_ERROR.with(|last| *last.borrow_mut() = message);
}

/// This thread's last failure message, "" when there was none.
pub(crate) fn last_error_message() -> String {
    LAST_ERROR.with(|last| last.borrow().to_string_lossy().into_owned())
}

/// A pointer to this thread's last failure message, valid until the next failure
/// on this thread (the thread-local string lives as long as the thread).
pub(crate) fn last_error_ptr() -> *const c_char {
    LAST_ERROR.with(|last| last.borrow().as_ptr())
}

/// Keeps `text` as this thread's returned string and points at it; the pointer
/// stays valid until the next function that returns a string runs on this
/// thread. Callers hand back JSON, which never holds a NUL; text after one would
/// be cut off.
pub(crate) fn return_string(text: &str) -> *const c_char {
    let text = CString::new(text.split('\0').next().unwrap_or_default()).unwrap_or_default();
    RETURNED.with(|returned| {
        *returned.borrow_mut() = text;
        returned.borrow().as_ptr()
    })
}

/// Reads a C string argument: `None` for a null pointer.
///
/// # Safety
///
/// `ptr` is null or points to a NUL-terminated string that stays valid for `'a`.
pub(crate) unsafe fn c_str<'a>(ptr: *const c_char) -> Option<&'a CStr> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: not null, and the caller promises a valid NUL-terminated string.
    Some(unsafe { CStr::from_ptr(ptr) })
}

/// The text of a panic payload.
fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "panic"
    }
}

/// Aborts the process if dropped during an unwind: forgotten on every normal path.
struct AbortOnUnwind<'a>(&'a str);

impl Drop for AbortOnUnwind<'_> {
    fn drop(&mut self) {
        eprintln!(
            "cutrace: {}: a panic escaped the FFI guard, aborting",
            self.0
        );
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_returns_the_value_and_keeps_the_last_error() {
        set_last_error("earlier");
        assert_eq!(trampoline("f", || Ok(7)), 7);
        assert_eq!(last_error_message(), "earlier");
    }

    #[test]
    fn an_error_becomes_failure_and_the_last_error() {
        let r: c_int = trampoline("cutrace_init", || {
            Err(Error::NullArgument {
                argument: "config_json",
            })
        });
        assert_eq!(r, -1);
        assert_eq!(last_error_message(), "cutrace_init: config_json is null");
    }

    #[test]
    fn a_panic_is_caught_and_named() {
        trampoline("cutrace_step", || -> Result<(), Error> {
            panic!("boom {}", 1)
        });
        assert_eq!(last_error_message(), "cutrace_step: internal error: boom 1");
    }

    #[test]
    fn the_last_error_is_per_thread() {
        set_last_error("main thread");
        let other = std::thread::spawn(last_error_message).join().unwrap();
        assert_eq!(other, "");
        assert_eq!(last_error_message(), "main thread");
    }

    #[test]
    fn a_returned_string_lives_until_the_next_one() {
        let first = return_string("[1]");
        // SAFETY: the pointer is this thread's live returned string.
        assert_eq!(unsafe { CStr::from_ptr(first) }.to_str().unwrap(), "[1]");
        let second = return_string("[2]\0junk");
        // SAFETY: as above.
        assert_eq!(unsafe { CStr::from_ptr(second) }.to_str().unwrap(), "[2]");
    }

    #[test]
    fn interior_nul_truncates_the_message() {
        set_last_error("before\0after");
        // SAFETY: the pointer is this thread's live last-error string.
        let s = unsafe { CStr::from_ptr(last_error_ptr()) };
        assert_eq!(s.to_str().unwrap(), "before");
    }
}
