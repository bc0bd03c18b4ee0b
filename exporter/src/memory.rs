//! A memory ceiling for the programs that read and write traces.
//!
//! [`Ceiling`] is a global allocator over the system's that counts the bytes in
//! use. Past the ceiling set with [`set_limit`], [`check`] fails, and the reader
//! calls it as it goes, so a trace too large for the ceiling ends in a
//! [`CeilingPassed`] error that names the file. Between two checks one vector
//! may double; should an allocation take the process half as far again past the
//! ceiling (or the system refuse one), the allocator itself removes the files
//! being written, prints one line and exits with status 1 instead of aborting: a
//! program installs it with `#[global_allocator]` and never dies of memory with a
//! core dump or leaves a temporary file behind.
//!
//! Without the allocator installed nothing is counted and [`check`] always passes.

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Bytes allocated and not yet freed.
static IN_USE: AtomicUsize = AtomicUsize::new(0);
/// The most [`IN_USE`] has been.
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// The ceiling, bytes; `usize::MAX` until one is set.
static LIMIT: AtomicUsize = AtomicUsize::new(usize::MAX);
/// Set once the allocator stops the process: what it allocates on its way out
/// (removing files) passes the hard limit instead of stopping it again.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// Where the allocator stops the process: half as far again as the ceiling the
/// checks stop at, room for a vector that doubled between two checks and for the
/// error to unwind through (temporary files removed, the message formatted).
fn hard_limit(limit: usize) -> usize {
    limit.saturating_add(limit / 2)
}

/// Sets the ceiling, in bytes.
pub fn set_limit(bytes: u64) {
    LIMIT.store(
        usize::try_from(bytes).unwrap_or(usize::MAX),
        Ordering::Relaxed,
    );
}

/// The ceiling, bytes, when one is set.
pub fn limit() -> Option<u64> {
    match LIMIT.load(Ordering::Relaxed) {
        usize::MAX => None,
        limit => Some(limit as u64),
    }
}

/// Bytes in use through [`Ceiling`] (0 when it is not the global allocator).
pub fn in_use() -> u64 {
    IN_USE.load(Ordering::Relaxed) as u64
}

/// The most bytes ever in use through [`Ceiling`].
pub fn peak() -> u64 {
    PEAK.load(Ordering::Relaxed) as u64
}

/// Memory use passed the ceiling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CeilingPassed {
    /// The ceiling, bytes.
    pub limit: u64,
}

impl fmt::Display for CeilingPassed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "memory use reached the ceiling of {}", Bytes(self.limit))
    }
}

impl std::error::Error for CeilingPassed {}

/// Fails once the bytes in use pass the ceiling.
pub fn check() -> Result<(), CeilingPassed> {
    let limit = LIMIT.load(Ordering::Relaxed);
    if IN_USE.load(Ordering::Relaxed) > limit {
        return Err(CeilingPassed {
            limit: limit as u64,
        });
    }
    Ok(())
}

/// A size in bytes in the largest binary unit that keeps it readable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bytes(pub u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
        let mut unit = 0;
        let mut value = self.0 as f64;
        while value >= 1024.0 && unit + 1 < UNITS.len() {
            value /= 1024.0;
            unit += 1;
        }
        if unit == 0 {
            write!(f, "{} bytes", self.0)
        } else {
            write!(f, "{value:.1} {}", UNITS[unit])
        }
    }
}

/// The system allocator, counted and held to the ceiling.
#[derive(Debug, Default, Clone, Copy)]
pub struct Ceiling;

impl Ceiling {
    /// Counts `size` more bytes in use; past the ceiling, stops the process.
    fn take(size: usize) {
        let now = IN_USE.fetch_add(size, Ordering::Relaxed) + size;
        PEAK.fetch_max(now, Ordering::Relaxed);
        let limit = LIMIT.load(Ordering::Relaxed);
        if now > hard_limit(limit) && !STOPPING.load(Ordering::Relaxed) {
            stop(limit);
        }
    }

    fn give_back(size: usize) {
        IN_USE.fetch_sub(size, Ordering::Relaxed);
    }
}

/// Removes the files being written, prints why and exits with status 1: no lock
/// waited for, no unwinding, and no allocation but what removing a file with a
/// long path may need, since this runs inside the allocator.
#[cold]
fn stop(limit: usize) -> ! {
    STOPPING.store(true, Ordering::Relaxed);
    crate::unfinished::abandon_when_stopping();
    let mut line = Line::default();
    let _ = if limit == usize::MAX {
        fmt::write(
            &mut line,
            format_args!("cutrace: error: the system has no memory left\n"),
        )
    } else {
        fmt::write(
            &mut line,
            format_args!(
                "cutrace: error: memory use reached the ceiling of {} \
                 (--memory-limit raises it)\n",
                Bytes(limit as u64)
            ),
        )
    };
    // SAFETY: writes initialised bytes of a live buffer to stderr, then ends the
    // process without running anything that could allocate.
    unsafe {
        libc::write(2, line.buf.as_ptr().cast(), line.len);
        libc::_exit(1)
    }
}

/// A fixed buffer that `fmt::write` fills without allocating.
struct Line {
    buf: [u8; 160],
    len: usize,
}

impl Default for Line {
    fn default() -> Self {
        Line {
            buf: [0; 160],
            len: 0,
        }
    }
}

impl fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.len() - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

// SAFETY: every call goes to `System` with the caller's layout; the counting
// around it neither allocates nor unwinds.
unsafe impl GlobalAlloc for Ceiling {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::take(layout.size());
        // SAFETY: the caller's contract for `alloc` is passed on unchanged.
        let ptr = unsafe { System.alloc(layout) };
        if ptr.is_null() {
            stop(usize::MAX);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::take(layout.size());
        // SAFETY: the caller's contract for `alloc_zeroed` is passed on unchanged.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if ptr.is_null() {
            stop(usize::MAX);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, hence from `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        Self::give_back(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            Self::take(new_size - layout.size());
        }
        // SAFETY: the caller's contract for `realloc` is passed on unchanged.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if new.is_null() {
            stop(usize::MAX);
        }
        if new_size < layout.size() {
            Self::give_back(layout.size() - new_size);
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(Bytes(512).to_string(), "512 bytes");
        assert_eq!(Bytes(1536).to_string(), "1.5 KiB");
        assert_eq!(Bytes(4 << 30).to_string(), "4.0 GiB");
        assert_eq!(
            CeilingPassed { limit: 64 << 20 }.to_string(),
            "memory use reached the ceiling of 64.0 MiB"
        );
    }

    #[test]
    fn the_allocator_stops_half_as_far_again() {
        assert_eq!(hard_limit(800), 1200);
        assert_eq!(hard_limit(usize::MAX), usize::MAX);
    }
}
