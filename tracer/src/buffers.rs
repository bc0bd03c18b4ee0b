//! The bounded pool of activity buffers and CUPTI's buffer callbacks.
//!
//! CUPTI asks for a buffer (`bufferRequested`) whenever it has records to write and
//! hands it back full (`bufferCompleted`), from any thread, at any time. The pool
//! lends 8-byte aligned buffers of one size and never holds more than its cap: when
//! every buffer is out, the request gets a null buffer and CUPTI drops the records.
//! CUPTI counts the records it drops (`cuptiActivityGetNumDroppedRecords`, read
//! with each completed buffer and after each flush); the pool counts the requests
//! it refuses. `bufferCompleted` only queues the buffer, with the drops CUPTI
//! reported up to it, for the decode thread, which walks it and gives it back.
//!
//! The callbacks are process-wide (CUPTI has one registration per process), so they
//! reach the active session through [`install`]ed global state. Both are `extern "C"`
//! trampolines that catch every panic: none may unwind into CUPTI.

use std::alloc::{Layout, alloc, dealloc};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use cupti_sys::sys::CUcontext;
use rustc_hash::FxHashSet;

use crate::error::Error;

/// Alignment CUPTI requires of activity buffers.
const ALIGN: usize = 8;

/// A buffer CUPTI filled and handed back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FilledBuffer {
    /// Start of the buffer.
    pub ptr: usize,
    /// Its size, as lent.
    pub size: usize,
    /// Bytes of records in it.
    pub valid: usize,
}

/// Lends fixed-size buffers up to a cap.
pub(crate) struct BufferPool {
    buffer_size: usize,
    max_buffers: usize,
    state: Mutex<PoolState>,
}

#[derive(Default)]
struct PoolState {
    free: Vec<usize>,
    lent: FxHashSet<usize>,
    refused: u64,
}

impl BufferPool {
    /// A pool of `buffer_size`-byte buffers holding at most `max_bytes` in all.
    pub fn new(buffer_size: usize, max_bytes: usize) -> Result<Self, Error> {
        if buffer_size < 1024 || buffer_size % ALIGN != 0 {
            return Err(Error::Config(format!(
                "buffer_size {buffer_size} must be a multiple of 8 of at least 1024 bytes"
            )));
        }
        let max_buffers = max_bytes / buffer_size;
        if max_buffers == 0 {
            return Err(Error::Config(format!(
                "the buffer cap of {max_bytes} bytes holds no buffer of {buffer_size} bytes"
            )));
        }
        Ok(BufferPool {
            buffer_size,
            max_buffers,
            state: Mutex::new(PoolState::default()),
        })
    }

    fn state(&self) -> MutexGuard<'_, PoolState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn layout(size: usize) -> Option<Layout> {
        Layout::from_size_align(size, ALIGN).ok()
    }

    /// Size of each buffer.
    pub fn buffer_size(&self) -> usize {
        self.buffer_size
    }

    /// A free buffer, a new one while under the cap, or `None` (counted) when every
    /// buffer is lent.
    pub fn lend(&self) -> Option<NonNull<u8>> {
        let mut state = self.state();
        let ptr = match state.free.pop() {
            Some(ptr) => ptr,
            None if state.lent.len() < self.max_buffers => {
                let layout = Self::layout(self.buffer_size)?;
                // SAFETY: the layout has a non-zero size (at least 1024).
                let ptr = unsafe { alloc(layout) };
                if ptr.is_null() {
                    state.refused += 1;
                    return None;
                }
                ptr as usize
            }
            None => {
                state.refused += 1;
                return None;
            }
        };
        state.lent.insert(ptr);
        NonNull::new(ptr as *mut u8)
    }

    /// Takes back a buffer; one this pool did not lend (a previous session's,
    /// completed late) is freed.
    pub fn give_back(&self, buffer: FilledBuffer) {
        let mut state = self.state();
        if state.lent.remove(&buffer.ptr) {
            state.free.push(buffer.ptr);
        } else {
            drop(state);
            free_unread(buffer);
        }
    }

    /// Requests refused since the last call.
    pub fn take_refused(&self) -> u64 {
        std::mem::take(&mut self.state().refused)
    }

    /// Buffers lent and not given back.
    pub fn lent(&self) -> usize {
        self.state().lent.len()
    }

    /// Bytes allocated, lent or free.
    #[cfg(test)]
    fn allocated_bytes(&self) -> usize {
        let state = self.state();
        (state.lent.len() + state.free.len()) * self.buffer_size
    }
}

impl Drop for BufferPool {
    fn drop(&mut self) {
        let state = self.state();
        if let Some(layout) = Self::layout(self.buffer_size) {
            for &ptr in &state.free {
                // SAFETY: free buffers were allocated by `lend` with this layout and
                // nobody holds them.
                unsafe { dealloc(ptr as *mut u8, layout) };
            }
        }
        // Lent buffers are left alone: CUPTI may still write into them. Whoever
        // receives them later frees them (`free_unread`).
    }
}

/// Frees a buffer nobody will read: one that reached us after the pool that lent
/// it was gone, or after the decoder stopped.
pub(crate) fn free_unread(buffer: FilledBuffer) {
    if let Some(layout) = BufferPool::layout(buffer.size) {
        // SAFETY: every buffer CUPTI holds was lent by a pool with `alloc` and this
        // size and alignment (only our `buffer_requested` hands buffers to CUPTI),
        // and CUPTI handed it back, so nothing else refers to it.
        unsafe { dealloc(buffer.ptr as *mut u8, layout) };
    }
}

/// What the buffer callbacks reach: the active session's pool and decode queue.
pub(crate) struct Collector {
    /// The pool buffers are lent from.
    pub pool: BufferPool,
    /// Queues a filled buffer for decoding, with the records CUPTI reported
    /// dropped since it last asked (gives the buffer back itself when it cannot).
    pub on_filled: Box<dyn Fn(FilledBuffer, u64) + Send + Sync>,
}

static ACTIVE: RwLock<Option<Arc<Collector>>> = RwLock::new(None);

fn active() -> Option<Arc<Collector>> {
    ACTIVE
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone()
}

/// Routes CUPTI's buffer callbacks to `collector`; [`Error::Busy`] when another
/// session has them.
pub(crate) fn install(collector: Arc<Collector>) -> Result<(), Error> {
    let mut slot = ACTIVE
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if slot.is_some() {
        return Err(Error::Busy);
    }
    *slot = Some(collector);
    Ok(())
}

/// Stops routing the buffer callbacks to `collector`.
pub(crate) fn uninstall(collector: &Arc<Collector>) {
    let mut slot = ACTIVE
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if slot.as_ref().is_some_and(|c| Arc::ptr_eq(c, collector)) {
        *slot = None;
    }
}

/// CUPTI's `bufferRequested`: a pooled buffer, or null and size 0 when none is free.
///
/// # Safety
/// Called by CUPTI with writable (or null) out-pointers.
pub(crate) unsafe extern "C" fn buffer_requested(
    buffer: *mut *mut u8,
    size: *mut usize,
    max_records: *mut usize,
) {
    let lent = catch_unwind(|| {
        let collector = active()?;
        let ptr = collector.pool.lend()?;
        Some((ptr.as_ptr(), collector.pool.buffer_size()))
    })
    .ok()
    .flatten();
    let (ptr, len) = lent.unwrap_or((std::ptr::null_mut(), 0));
    // SAFETY: CUPTI passes pointers we may write; each is checked for null.
    unsafe {
        if !buffer.is_null() {
            buffer.write(ptr);
        }
        if !size.is_null() {
            size.write(len);
        }
        if !max_records.is_null() {
            // 0: as many records as fit.
            max_records.write(0);
        }
    }
}

/// CUPTI's `bufferCompleted`: queues the buffer for decoding with CUPTI's
/// dropped-record count.
///
/// # Safety
/// Called by CUPTI with a buffer `buffer_requested` lent.
pub(crate) unsafe extern "C" fn buffer_completed(
    context: CUcontext,
    stream: u32,
    buffer: *mut u8,
    size: usize,
    valid: usize,
) {
    if buffer.is_null() {
        return;
    }
    let filled = FilledBuffer {
        ptr: buffer as usize,
        size,
        valid,
    };
    // A panic here is dropped on purpose: it may not unwind into CUPTI, and the
    // buffer is then lost rather than the process.
    let _ = catch_unwind(AssertUnwindSafe(|| match active() {
        Some(collector) => {
            let dropped = cupti_sys::load().ok().and_then(|cupti| {
                // SAFETY: CUPTI passes the context and stream the buffer was filled for.
                unsafe { cupti.activity_get_num_dropped_records(context, stream) }.ok()
            });
            (collector.on_filled)(filled, dropped.map_or(0, |d| d as u64));
        }
        None => free_unread(filled),
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_never_lends_past_its_cap() {
        let pool = BufferPool::new(4096, 3 * 4096 + 100).unwrap();
        let lent: Vec<_> = (0..3).map(|_| pool.lend().unwrap()).collect();
        assert!(lent.iter().all(|p| p.as_ptr() as usize % 8 == 0));
        assert!(pool.lend().is_none());
        assert!(pool.lend().is_none());
        assert_eq!(pool.take_refused(), 2);
        assert_eq!(pool.take_refused(), 0);
        assert_eq!(pool.allocated_bytes(), 3 * 4096);

        let first = lent[0].as_ptr() as usize;
        pool.give_back(FilledBuffer {
            ptr: first,
            size: 4096,
            valid: 0,
        });
        assert_eq!(pool.lent(), 2);
        assert_eq!(pool.lend().map(|p| p.as_ptr() as usize), Some(first));
        assert_eq!(pool.allocated_bytes(), 3 * 4096);
        for p in lent {
            pool.give_back(FilledBuffer {
                ptr: p.as_ptr() as usize,
                size: 4096,
                valid: 0,
            });
        }
        assert_eq!(pool.lent(), 0);
    }

    #[test]
    fn a_foreign_buffer_is_freed_not_pooled() {
        let pool = BufferPool::new(1024, 1024).unwrap();
        let other = BufferPool::new(2048, 2048).unwrap();
        let stray = other.lend().unwrap();
        drop(other);
        pool.give_back(FilledBuffer {
            ptr: stray.as_ptr() as usize,
            size: 2048,
            valid: 0,
        });
        assert_eq!(pool.allocated_bytes(), 0);
        assert!(pool.lend().is_some());
    }

    #[test]
    fn bad_sizes_are_refused() {
        assert!(matches!(
            BufferPool::new(1000, 1 << 20),
            Err(Error::Config(_))
        ));
        assert!(matches!(BufferPool::new(4096, 4095), Err(Error::Config(_))));
    }
}
