//! The CUPTI session: subscription, collection, and the three threads behind it.
//!
//! The host's thread only flips CUPTI's switches and sends messages; the work runs
//! on three background threads, so that `stop()` returns at once:
//!
//! - the *flusher* calls `cuptiActivityFlushAll(FORCED)` when a window ends (or its
//!   warmup is discarded) and then queues a marker behind the buffers the flush
//!   completed;
//! - the *decoder* decodes buffers in the order CUPTI completed them into the
//!   current window, gives them back to the pool, and at each marker reports the
//!   flush done, then discards the window or finishes it into a [`Trace`];
//! - the *writer* hands finished traces to the [`TraceSink`], reporting its errors
//!   and panics as warnings.
//!
//! Because markers travel behind the buffers on one queue, a window holds exactly
//! the records completed between its markers. Its losses are counted the same way:
//! each buffer carries the drops CUPTI reported when it was completed, and the
//! flusher queues, ahead of its marker, the drops CUPTI reported after the flush
//! and the buffer requests the pool refused.
//!
//! A window does not begin, nor does collection resume, while a flush is pending,
//! and a flush is done only once the decoder has reached its marker: every buffer
//! the flush completed is decoded and back in the pool. The host waits for that
//! and for nothing else (not for the window to be built or written). Without it a
//! host opening windows back to back, faster than the decoder gets through them,
//! would take a fresh buffer for each window while the last ones still queued
//! for decoding, until the pool ran dry and every window lost its records. It
//! also keeps the host's own next records out of the window that just ended.
//!
//! What arrives while collection is off (late completions) belongs to no window:
//! it is thrown away when collection is switched on again. Between two windows
//! that follow each other with collection on, nothing is thrown away: whatever
//! the end-of-window flush did not catch goes to the next window. Windows are cut
//! by the order in which records complete, not by their timestamps, so records
//! that another thread's work completes between a window's end and its flush
//! still land in the window that ended.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use cupti_sys::Library;
use cupti_sys::sys::{
    CUpti_Activity, CUpti_ActivityFlag, CUpti_ActivityKind, CUpti_ActivityThreadIdType,
    CUpti_CallbackDomain, CUpti_ExternalCorrelationKind, CUpti_SubscriberHandle,
    CUpti_driver_api_trace_cbid_enum, CUpti_runtime_api_trace_cbid_enum,
};

use crate::buffers::{self, BufferPool, Collector, FilledBuffer};
use crate::controls;

use crate::decode::{Decoder, USER_ANNOTATION};
use crate::error::{Error, with_causes};
use crate::identity::Identity;
use crate::model::{
    ApiKind, HostRange, Iteration, RangeKind, ThreadName, Trace, TraceInfo, TraceSink,
};
use crate::process;
use crate::versions;

/// Reports a warning to the host (stderr unless the host installs its own hook).
pub type WarningHook = Arc<dyn Fn(&str) + Send + Sync>;

/// A window that began and that the sink has not finished writing yet: being
/// recorded, flushed, decoded, or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnwrittenWindow {
    /// The window's number, as in [`TraceInfo::window`].
    pub window: u32,
    /// Its events, once its trace is built; `None` while it is still being
    /// recorded, or its records flushed or decoded.
    pub events: Option<usize>,
}

impl std::fmt::Display for UnwrittenWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.events {
            Some(1) => write!(f, "window {} (1 event)", self.window),
            Some(events) => write!(f, "window {} ({events} events)", self.window),
            None => write!(f, "window {} (records not decoded yet)", self.window),
        }
    }
}

/// The windows between their beginning and the sink's return, oldest first.
#[derive(Default)]
struct Unwritten(Mutex<Vec<UnwrittenWindow>>);

impl Unwritten {
    fn windows(&self) -> MutexGuard<'_, Vec<UnwrittenWindow>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn began(&self, window: u32) {
        self.windows().push(UnwrittenWindow {
            window,
            events: None,
        });
    }

    fn built(&self, window: u32, events: usize) {
        if let Some(w) = self.windows().iter_mut().find(|w| w.window == window) {
            w.events = Some(events);
        }
    }

    fn written(&self, window: u32) {
        self.windows().retain(|w| w.window != window);
    }
}

/// External correlation kind our annotations push (frameworks use CUSTOM0/1).
pub(crate) const ANNOTATION_KIND: CUpti_ExternalCorrelationKind =
    CUpti_ExternalCorrelationKind::CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM2;

/// Kinds enabled for the whole session: facts CUPTI reports once (devices,
/// contexts, NVTX names), needed by every window.
const METADATA_KINDS: [CUpti_ActivityKind; 3] = [
    CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_DEVICE,
    CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_CONTEXT,
    CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_NAME,
];

/// Runtime calls too frequent and too cheap to be worth a record each.
const NOISY_RUNTIME: [CUpti_runtime_api_trace_cbid_enum; 12] = [
    CUpti_runtime_api_trace_cbid_enum::CUPTI_RUNTIME_TRACE_CBID_cudaGetDevice_v3020,
    CUpti_runtime_api_trace_cbid_enum::CUPTI_RUNTIME_TRACE_CBID_cudaGetDeviceCount_v3020,
    CUpti_runtime_api_trace_cbid_enum::CUPTI_RUNTIME_TRACE_CBID_cudaGetLastError_v3020,
    CUpti_runtime_api_trace_cbid_enum::CUPTI_RUNTIME_TRACE_CBID_cudaPeekAtLastError_v3020,
    CUpti_runtime_api_trace_cbid_enum::CUPTI_RUNTIME_TRACE_CBID_cudaEventCreate_v3020,
    CUpti_runtime_api_trace_cbid_enum::CUPTI_RUNTIME_TRACE_CBID_cudaEventCreateWithFlags_v3020,
    CUpti_runtime_api_trace_cbid_enum::CUPTI_RUNTIME_TRACE_CBID_cudaEventDestroy_v3020,
    CUpti_runtime_api_trace_cbid_enum::CUPTI_RUNTIME_TRACE_CBID_cudaEventRecord_v3020,
    CUpti_runtime_api_trace_cbid_enum::CUPTI_RUNTIME_TRACE_CBID_cudaEventRecordWithFlags_v11010,
    CUpti_runtime_api_trace_cbid_enum::CUPTI_RUNTIME_TRACE_CBID_cudaEventQuery_v3020,
    CUpti_runtime_api_trace_cbid_enum::CUPTI_RUNTIME_TRACE_CBID_cudaStreamIsCapturing_v10000,
    CUpti_runtime_api_trace_cbid_enum::CUPTI_RUNTIME_TRACE_CBID_cudaStreamIsCapturing_ptsz_v10000,
];

/// Driver calls muted for the same reason.
const NOISY_DRIVER: [CUpti_driver_api_trace_cbid_enum; 4] = [
    CUpti_driver_api_trace_cbid_enum::CUPTI_DRIVER_TRACE_CBID_cuCtxGetCurrent,
    CUpti_driver_api_trace_cbid_enum::CUPTI_DRIVER_TRACE_CBID_cuEventRecord,
    CUpti_driver_api_trace_cbid_enum::CUPTI_DRIVER_TRACE_CBID_cuEventQuery,
    CUpti_driver_api_trace_cbid_enum::CUPTI_DRIVER_TRACE_CBID_cuStreamIsCapturing,
];

/// What a session needs to know, resolved from the profiler's configuration.
#[derive(Clone)]
pub(crate) struct SessionOptions {
    /// Activity kinds enabled while collecting.
    pub kinds: Vec<CUpti_ActivityKind>,
    /// Size of each activity buffer, bytes.
    pub buffer_size: usize,
    /// Cap on all activity buffers together, bytes.
    pub max_buffer_bytes: usize,
    /// Whether kernels get their queued/submitted timestamps.
    pub latency_timestamps: bool,
    /// Facts copied into every trace's info (worker, host, pid...).
    pub info: TraceInfo,
    /// Where each trace's rank and world size come from.
    pub identity: Identity,
    /// Where warnings go.
    pub warn: WarningHook,
}

/// A host range recorded by an annotation or a step, named when the window is
/// built.
pub(crate) struct PendingRange {
    pub name: String,
    pub kind: RangeKind,
    pub start: i64,
    pub end: i64,
    pub external_id: u64,
    pub tid: u32,
}

/// Everything the decoder needs to turn a window's events into a trace.
struct WindowEnd {
    number: u32,
    base_time: i64,
    iterations: Vec<Iteration>,
    ranges: Vec<PendingRange>,
}

/// What a window lost: records CUPTI dropped, buffer requests the pool refused.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Losses {
    dropped: u64,
    refused: u64,
}

impl Losses {
    fn add(&mut self, more: Losses) {
        self.dropped += more.dropped;
        self.refused += more.refused;
    }

    /// The losses reported since the last count (both counters reset on reading).
    fn count(cupti: &Library, collector: &Collector) -> Losses {
        // SAFETY: a null context asks for the global queue's count.
        let dropped = unsafe { cupti.activity_get_num_dropped_records(std::ptr::null_mut(), 0) };
        Losses {
            dropped: dropped.map_or(0, |d| d as u64),
            refused: collector.pool.take_refused(),
        }
    }

    /// The warning a window with these losses gets, if any.
    fn warning(&self, window: u32) -> Option<String> {
        let mut parts = Vec::new();
        if self.dropped > 0 {
            parts.push(format!("{} records dropped by CUPTI", self.dropped));
        }
        if self.refused > 0 {
            parts.push(format!(
                "{} buffer requests refused because the buffer pool was full; raise max_buffer_mb",
                self.refused
            ));
        }
        (!parts.is_empty()).then(|| format!("window {window}: {}", parts.join(", ")))
    }
}

/// Messages to the decode thread, in CUPTI's completion order.
enum Work {
    /// A completed buffer, with the records CUPTI reported dropped before it.
    Buffer(FilledBuffer, u64),
    /// The end of a flush: every buffer it completed is ahead of it. `lost` is what
    /// was lost since the last buffer; then comes what the flush was for.
    Flushed { lost: Losses, then: Marker },
    /// Throws away what was collected so far: it arrived while collection was off.
    Discard,
}

/// What a flush is for, done by the decoder once it reaches the flush's end.
enum Marker {
    /// The warmup is over: throw its records away.
    Discard,
    /// A window ended: build its trace.
    Finish(Box<WindowEnd>),
    /// The session ends.
    Exit,
}

/// Messages to the flusher: flush, then pass the marker on behind the flushed
/// buffers.
struct Flush(Marker);

/// The window being recorded.
struct OpenWindow {
    number: u32,
    base_time: i64,
    iteration_start: i64,
    iterations: Vec<Iteration>,
}

#[derive(Default)]
struct HostState {
    collecting: bool,
    window: Option<OpenWindow>,
    shut_down: bool,
}

/// Counts flushes requested and not done yet (see the module doc for "done").
#[derive(Default)]
struct PendingFlushes {
    state: Mutex<FlushCount>,
    done: Condvar,
}

#[derive(Default)]
struct FlushCount {
    pending: usize,
    /// A background thread has ended: no pending flush will be reported done.
    abandoned: bool,
}

impl PendingFlushes {
    fn state(&self) -> MutexGuard<'_, FlushCount> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn requested(&self) {
        self.state().pending += 1;
    }

    fn finished(&self) {
        let mut state = self.state();
        state.pending = state.pending.saturating_sub(1);
        self.done.notify_all();
    }

    /// Waits until no flush is pending, or until none can finish any more.
    fn wait_idle(&self) {
        let mut state = self.state();
        while state.pending > 0 && !state.abandoned {
            state = self.done.wait(state).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// Held by the flusher and the decoder for as long as they run: when either ends,
/// normally or by a panic, the host stops waiting for flushes.
struct AbandonOnExit(Arc<PendingFlushes>);

impl Drop for AbandonOnExit {
    fn drop(&mut self) {
        self.0.state().abandoned = true;
        self.0.done.notify_all();
    }
}

struct Threads {
    flusher: Sender<Flush>,
    handles: Vec<(&'static str, JoinHandle<()>)>,
}

/// A live CUPTI session. Its methods are the actions of the window state machine.
pub(crate) struct Session {
    cupti: &'static Library,
    kinds: Vec<CUpti_ActivityKind>,
    warn: WarningHook,
    subscriber: usize,
    collector: Arc<Collector>,
    decode_queue: Sender<Work>,
    flushes: Arc<PendingFlushes>,
    unwritten: Arc<Unwritten>,
    host: Mutex<HostState>,
    ranges: Mutex<Vec<PendingRange>>,
    threads: Mutex<Option<Threads>>,
}

static NEXT_EXTERNAL_ID: AtomicU64 = AtomicU64::new(1);

impl Session {
    /// Loads CUPTI, subscribes, registers the buffer callbacks and starts the
    /// background threads; `sink` receives every finished window.
    pub fn new(options: SessionOptions, sink: Arc<dyn TraceSink>) -> Result<Session, Error> {
        let cupti = cupti_sys::load()?;
        let pool = BufferPool::new(options.buffer_size, options.max_buffer_bytes)?;
        let (decode_queue, decode_inbox) = channel::<Work>();
        let queue = Mutex::new(decode_queue.clone());
        let collector = Arc::new(Collector {
            pool,
            on_filled: Box::new(move |buffer, dropped| {
                let queue = queue.lock().unwrap_or_else(|p| p.into_inner());
                if queue.send(Work::Buffer(buffer, dropped)).is_err() {
                    // The decoder is gone: the buffer goes back unread.
                    buffers::free_unread(buffer);
                }
            }),
        });
        buffers::install(collector.clone())?;
        let subscriber = match Self::subscribe(cupti, &options) {
            Ok(subscriber) => subscriber,
            Err(e) => {
                buffers::uninstall(&collector);
                return Err(e);
            }
        };
        let mut info = options.info.clone();
        info.cupti_version = cupti.version().api();
        let session = Session {
            cupti,
            kinds: options.kinds.clone(),
            warn: options.warn.clone(),
            subscriber: subscriber as usize,
            collector: collector.clone(),
            decode_queue: decode_queue.clone(),
            flushes: Arc::default(),
            unwritten: Arc::default(),
            host: Mutex::default(),
            ranges: Mutex::default(),
            threads: Mutex::new(None),
        };
        match session.spawn_threads(
            decode_inbox,
            decode_queue,
            info,
            options.identity.clone(),
            sink,
        ) {
            Ok(threads) => {
                *session.threads.lock().unwrap_or_else(|p| p.into_inner()) = Some(threads);
                Ok(session)
            }
            Err(e) => {
                // Shutting down gives the subscription and callbacks up, once.
                drop(session);
                Err(e)
            }
        }
    }

    /// Subscribes and sets CUPTI up; unsubscribes again when a later step fails.
    fn subscribe(
        cupti: &Library,
        options: &SessionOptions,
    ) -> Result<CUpti_SubscriberHandle, Error> {
        // SAFETY: `controls::on_callback` never unwinds and ignores `userdata`.
        let subscriber =
            unsafe { cupti.subscribe(Some(controls::on_callback), std::ptr::null_mut()) }?;
        let setup = || -> Result<(), Error> {
            // SAFETY: both callbacks never unwind; `buffer_requested` lends 8-byte
            // aligned buffers of the size it reports, and the pool leaves them alone
            // until CUPTI hands them back to `buffer_completed`.
            unsafe {
                cupti.activity_register_callbacks(
                    Some(buffers::buffer_requested),
                    Some(buffers::buffer_completed),
                )
            }?;
            cupti.set_thread_id_type(
                CUpti_ActivityThreadIdType::CUPTI_ACTIVITY_THREAD_ID_TYPE_SYSTEM,
            )?;
            if options.latency_timestamps {
                cupti.activity_enable_latency_timestamps(true)?;
            }
            // Filtering is an optimisation older libraries lack: failures only mean
            // more records.
            for cbid in NOISY_RUNTIME {
                let _ = cupti.activity_enable_runtime_api(cbid.0, false);
            }
            for cbid in NOISY_DRIVER {
                let _ = cupti.activity_enable_driver_api(cbid.0, false);
            }
            for kind in METADATA_KINDS {
                cupti.activity_enable(kind)?;
            }
            Ok(())
        };
        setup().inspect_err(|_| {
            // SAFETY: the handle just subscribed, unsubscribed once.
            let _ = unsafe { cupti.unsubscribe(subscriber) };
        })?;
        Ok(subscriber)
    }

    fn spawn_threads(
        &self,
        decode_inbox: Receiver<Work>,
        decode_queue: Sender<Work>,
        info: TraceInfo,
        identity: Identity,
        sink: Arc<dyn TraceSink>,
    ) -> Result<Threads, Error> {
        let spawn = |name: &'static str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(format!("cutrace-{name}"))
                .spawn(f)
                .map(|handle| (name, handle))
                .map_err(|source| Error::Thread { name, source })
        };
        let (traces, trace_inbox) = channel::<Trace>();
        let (flusher, flush_inbox) = channel::<Flush>();
        let mut handles = Vec::new();
        let writer = WriteThread {
            sink,
            unwritten: self.unwritten.clone(),
            warn: self.warn.clone(),
        };
        handles.push(spawn("writer", Box::new(move || writer.run(trace_inbox)))?);
        let decoder = DecodeThread {
            cupti: self.cupti,
            collector: self.collector.clone(),
            flushes: self.flushes.clone(),
            unwritten: self.unwritten.clone(),
            traces,
            info,
            identity,
            warn: self.warn.clone(),
        };
        handles.push(spawn(
            "decode",
            Box::new(move || decoder.run(decode_inbox)),
        )?);
        let flusher_state = FlushThread {
            cupti: self.cupti,
            collector: self.collector.clone(),
            decode_queue,
            flushes: self.flushes.clone(),
            warn: self.warn.clone(),
        };
        handles.push(spawn(
            "flush",
            Box::new(move || flusher_state.run(flush_inbox)),
        )?);
        Ok(Threads { flusher, handles })
    }

    fn host(&self) -> MutexGuard<'_, HostState> {
        self.host.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The session's warning hook.
    pub fn warn(&self, message: &str) {
        (self.warn)(message);
    }

    /// Enables the configured activity kinds (after any pending flush); what
    /// arrived while collection was off, and what was lost then, is thrown away.
    pub fn enable_collection(&self) {
        self.flushes.wait_idle();
        let mut host = self.host();
        if host.shut_down || host.collecting {
            return;
        }
        // Reading the counts resets them.
        let _ = Losses::count(self.cupti, &self.collector);
        let _ = self.decode_queue.send(Work::Discard);
        host.collecting = true;
        for &kind in &self.kinds {
            if let Err(e) = self.cupti.activity_enable(kind) {
                self.warn(&format!("activity kind {} not recorded: {e}", kind.0));
            }
        }
    }

    /// Disables the configured activity kinds.
    pub fn disable_collection(&self) {
        let mut host = self.host();
        if !host.collecting {
            return;
        }
        host.collecting = false;
        for &kind in &self.kinds {
            let _ = self.cupti.activity_disable(kind);
        }
    }

    /// Throws away everything collected so far (the warmup).
    pub fn discard_collected(&self) {
        self.request_flush(Marker::Discard);
    }

    /// Starts window `number`: its events are those completed from the end of the
    /// last flush (or from when collection was switched on) until
    /// [`Session::end_window`].
    pub fn begin_window(&self, number: u32) {
        self.flushes.wait_idle();
        let now = self.now();
        let mut host = self.host();
        if host.shut_down || host.window.is_some() {
            return;
        }
        host.window = Some(OpenWindow {
            number,
            base_time: now,
            iteration_start: now,
            iterations: Vec::new(),
        });
        self.unwritten.began(number);
        self.ranges
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Ends iteration `number` (counted from 1 at `start()`) of the open window.
    ///
    /// The iteration is also a `ProfilerStep#<number>` range on the calling thread,
    /// as torch.profiler marks its steps: HolisticTraceAnalysis finds iterations by
    /// that name.
    pub fn iteration_end(&self, number: u64) {
        let now = self.now();
        let Some(start) = self.host().window.as_mut().map(|window| {
            let start = window.iteration_start;
            window.iterations.push(Iteration {
                number,
                start,
                end: now,
            });
            window.iteration_start = now;
            start
        }) else {
            return;
        };
        self.ranges
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(PendingRange {
                name: format!("ProfilerStep#{number}"),
                kind: RangeKind::UserAnnotation,
                start,
                end: now,
                external_id: 0,
                tid: process::current_tid(),
            });
    }

    /// Ends the open window; it is flushed, decoded and written in the background.
    pub fn end_window(&self) {
        let Some(window) = self.host().window.take() else {
            return;
        };
        let ranges = std::mem::take(&mut *self.ranges.lock().unwrap_or_else(|p| p.into_inner()));
        self.request_flush(Marker::Finish(Box::new(WindowEnd {
            number: window.number,
            base_time: window.base_time,
            iterations: window.iterations,
            ranges,
        })));
    }

    /// The windows that began and are not written yet, oldest first.
    pub fn unwritten(&self) -> Vec<UnwrittenWindow> {
        self.unwritten.windows().clone()
    }

    /// Whether a window is open.
    pub fn is_recording(&self) -> bool {
        self.host().window.is_some()
    }

    /// CUPTI's clock now (0 when CUPTI cannot tell).
    pub fn now(&self) -> i64 {
        self.cupti.get_timestamp().map_or(0, |ns| ns as i64)
    }

    fn request_flush(&self, then: Marker) {
        let threads = self.threads.lock().unwrap_or_else(|p| p.into_inner());
        let Some(threads) = threads.as_ref() else {
            return;
        };
        self.flushes.requested();
        if threads.flusher.send(Flush(then)).is_err() {
            self.flushes.finished();
        }
    }

    /// Opens an annotation on this thread: pushes a fresh external correlation id
    /// and returns it with the start time, or `None` when no window is open.
    pub fn open_range(&self) -> Option<(u64, i64)> {
        if !self.is_recording() {
            return None;
        }
        let id = NEXT_EXTERNAL_ID.fetch_add(1, Ordering::Relaxed);
        self.cupti
            .activity_push_external_correlation_id(ANNOTATION_KIND, id)
            .ok()?;
        Some((id, self.now()))
    }

    /// Closes the annotation `open_range` opened on this thread.
    pub fn close_range(&self, name: &str, external_id: u64, start: i64) {
        let _ = self
            .cupti
            .activity_pop_external_correlation_id(ANNOTATION_KIND);
        let end = self.now();
        if self.is_recording() {
            self.ranges
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(PendingRange {
                    name: name.to_owned(),
                    kind: RangeKind::Annotation,
                    start,
                    end,
                    external_id,
                    tid: process::current_tid(),
                });
        }
    }

    /// Enables the callbacks that drive windows from the application (injection).
    pub fn enable_controls(&self, nvtx: bool) -> Result<(), Error> {
        // SAFETY: the session's subscription lives until `shutdown`.
        unsafe { controls::enable(self.cupti, self.subscriber as CUpti_SubscriberHandle, nvtx) }
    }

    /// Ends any open window, stops collecting, hands CUPTI's buffers back, and
    /// joins the background threads once every window is written.
    pub fn shutdown(&self) {
        {
            let mut host = self.host();
            if host.shut_down {
                return;
            }
            host.shut_down = true;
        }
        self.end_window();
        self.disable_collection();
        for kind in METADATA_KINDS {
            let _ = self.cupti.activity_disable(kind);
        }
        self.request_flush(Marker::Exit);
        let threads = self
            .threads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(Threads { flusher, handles }) = threads {
            drop(flusher);
            for (name, handle) in handles {
                if handle.join().is_err() {
                    self.warn(&format!("the {name} thread panicked"));
                }
            }
        }
        let lent = self.collector.pool.lent();
        if lent > 0 {
            // Freeing them could let CUPTI write into freed memory.
            self.warn(&format!(
                "CUPTI kept {lent} activity buffers after the final flush; they stay allocated"
            ));
        }
        self.release();
    }

    /// Gives CUPTI's subscription and buffer callbacks up; called once, at the end
    /// of `shutdown`.
    fn release(&self) {
        controls::disable();
        // SAFETY: the session's own handle; `shutdown` runs this part once.
        let _ = unsafe {
            self.cupti
                .unsubscribe(self.subscriber as CUpti_SubscriberHandle)
        };
        buffers::uninstall(&self.collector);
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The flusher thread's state.
struct FlushThread {
    cupti: &'static Library,
    collector: Arc<Collector>,
    decode_queue: Sender<Work>,
    flushes: Arc<PendingFlushes>,
    warn: WarningHook,
}

impl FlushThread {
    /// Flushes on request, then queues the flush's end behind the buffers it
    /// completed, with what was lost up to the flush (drops with no buffer
    /// completed after them included) and the marker.
    fn run(self, inbox: Receiver<Flush>) {
        let _abandon = AbandonOnExit(self.flushes.clone());
        for Flush(then) in inbox {
            // Forced: the partly filled buffers are completed too, before it returns.
            let flushed = self
                .cupti
                .activity_flush_all(CUpti_ActivityFlag::CUPTI_ACTIVITY_FLAG_FLUSH_FORCED.0);
            if let Err(e) = flushed {
                (self.warn)(&format!("records of this window may be missing: {e}"));
            }
            let lost = Losses::count(self.cupti, &self.collector);
            let exit = matches!(then, Marker::Exit);
            if self
                .decode_queue
                .send(Work::Flushed { lost, then })
                .is_err()
            {
                // No decoder will reach the flush's end.
                self.flushes.finished();
            }
            if exit {
                break;
            }
        }
    }
}

/// The decode thread's state.
struct DecodeThread {
    cupti: &'static Library,
    collector: Arc<Collector>,
    flushes: Arc<PendingFlushes>,
    unwritten: Arc<Unwritten>,
    traces: Sender<Trace>,
    info: TraceInfo,
    identity: Identity,
    warn: WarningHook,
}

impl DecodeThread {
    fn run(self, inbox: Receiver<Work>) {
        let cupti = self.cupti;
        let mut decoder = Decoder::new(move |kind, cbid| {
            let domain = match kind {
                ApiKind::Runtime => CUpti_CallbackDomain::CUPTI_CB_DOMAIN_RUNTIME_API,
                ApiKind::Driver => CUpti_CallbackDomain::CUPTI_CB_DOMAIN_DRIVER_API,
            };
            cupti.get_callback_name(domain, cbid).ok()
        });
        let _abandon = AbandonOnExit(self.flushes.clone());
        let mut walk_failed = false;
        let mut losses = Losses::default();
        for work in inbox {
            match work {
                Work::Buffer(buffer, dropped) => {
                    losses.dropped += dropped;
                    if let Err(e) = self.decode_buffer(&mut decoder, buffer) {
                        if !walk_failed {
                            (self.warn)(&format!("records lost: {e}"));
                        }
                        walk_failed = true;
                    }
                    self.collector.pool.give_back(buffer);
                }
                Work::Flushed { lost, then } => {
                    // Before the marker's own work: the host waits for this, not
                    // for the window to be built.
                    self.flushes.finished();
                    losses.add(lost);
                    match then {
                        Marker::Discard => {
                            decoder.discard_window();
                            losses = Losses::default();
                        }
                        Marker::Finish(end) => {
                            let trace =
                                self.finish(&mut decoder, *end, std::mem::take(&mut losses));
                            self.unwritten.built(trace.info.window, trace.event_count());
                            if self.traces.send(trace).is_err() {
                                (self.warn)(
                                    "a finished window was lost: the writer thread is gone",
                                );
                            }
                        }
                        Marker::Exit => break,
                    }
                }
                Work::Discard => {
                    decoder.discard_window();
                    losses = Losses::default();
                }
            }
        }
    }

    fn decode_buffer<N: crate::decode::CallbackNames>(
        &self,
        decoder: &mut Decoder<N>,
        buffer: FilledBuffer,
    ) -> Result<(), Error> {
        let mut record: *mut CUpti_Activity = std::ptr::null_mut();
        loop {
            // SAFETY: CUPTI completed `valid` bytes of records in this buffer, and
            // `record` is only ever what this call returned for it.
            let next = unsafe {
                self.cupti
                    .activity_get_next_record(buffer.ptr as *mut u8, buffer.valid, record)?
            };
            let Some(next) = next else {
                return Ok(());
            };
            record = next.as_ptr();
            // SAFETY: CUPTI steps only to complete records, whose strings it keeps
            // alive.
            unsafe { decoder.decode(record) };
        }
    }

    fn finish<N: crate::decode::CallbackNames>(
        &self,
        decoder: &mut Decoder<N>,
        end: WindowEnd,
        losses: Losses,
    ) -> Trace {
        let mut trace = decoder.finish_window();
        if let Some(warning) = losses.warning(end.number) {
            (self.warn)(&warning);
        }
        let (rank, world_size) = self.identity.place(decoder.first_device());
        trace.info = TraceInfo {
            rank,
            world_size,
            rank_known: true,
            window: end.number,
            dropped_records: losses.dropped,
            refused_buffers: losses.refused,
            unknown_records: trace.info.unknown_records,
            incomplete_records: trace.info.incomplete_records,
            // Asked per window: the application may load CUDA after the profiler
            // was made.
            cuda_driver_version: versions::cuda_driver_version(),
            cuda_runtime_version: versions::cuda_runtime_version(),
            ..self.info.clone()
        };
        if trace.info.incomplete_records > 0 {
            (self.warn)(&format!(
                "window {}: {} GPU records were still incomplete when the window was flushed and are left out",
                end.number, trace.info.incomplete_records
            ));
        }
        trace.base_time_ns = end.base_time;
        trace.iterations = end.iterations;
        let category = trace.names.intern(USER_ANNOTATION);
        let pid = self.info.pid;
        for range in end.ranges {
            let name = trace.names.intern(&range.name);
            trace.ranges.push(HostRange {
                start: range.start,
                end: range.end,
                name,
                category,
                kind: range.kind,
                external_id: range.external_id,
                pid,
                tid: range.tid,
            });
        }
        name_threads(&mut trace, pid);
        trace
    }
}

/// Adds the `/proc` name of every thread of this process that appears in `trace`
/// and has no name from NVTX.
fn name_threads(trace: &mut Trace, pid: u32) {
    let mut tids: Vec<u32> = trace
        .api_calls
        .iter()
        .map(|c| (c.pid, c.tid))
        .chain(trace.ranges.iter().map(|r| (r.pid, r.tid)))
        .chain(trace.syncs.iter().map(|s| (s.pid, s.tid)))
        .filter(|&(p, _)| p == pid)
        .map(|(_, tid)| tid)
        .collect();
    tids.sort_unstable();
    tids.dedup();
    for tid in tids {
        if trace.threads.iter().any(|t| t.pid == pid && t.tid == tid) {
            continue;
        }
        if let Some(name) = process::thread_name(tid) {
            trace.threads.push(ThreadName { pid, tid, name });
        }
    }
}

/// The writer thread's state.
struct WriteThread {
    sink: Arc<dyn TraceSink>,
    unwritten: Arc<Unwritten>,
    warn: WarningHook,
}

impl WriteThread {
    /// Hands each trace to the sink; its errors and panics become warnings, never
    /// the host's problem.
    fn run(self, inbox: Receiver<Trace>) {
        for trace in inbox {
            let window = trace.info.window;
            let written = catch_unwind(AssertUnwindSafe(|| self.sink.window_finished(trace)));
            self.unwritten.written(window);
            match written {
                Ok(Ok(())) => {}
                // The sink's error says what it did and did not write.
                Ok(Err(e)) => (self.warn)(&format!("window {window}: {}", with_causes(&*e))),
                Err(_) => (self.warn)(&format!("window {window}: the trace sink panicked")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unwritten_window_says_what_it_holds() {
        let window = |events| UnwrittenWindow { window: 4, events }.to_string();
        assert_eq!(window(None), "window 4 (records not decoded yet)");
        assert_eq!(window(Some(0)), "window 4 (0 events)");
        assert_eq!(window(Some(1)), "window 4 (1 event)");
        assert_eq!(window(Some(25)), "window 4 (25 events)");
    }

    #[test]
    fn losses_warn_with_what_was_lost() {
        let warning = |dropped, refused| Losses { dropped, refused }.warning(3);
        assert_eq!(warning(0, 0), None);
        assert_eq!(
            warning(5, 0).as_deref(),
            Some("window 3: 5 records dropped by CUPTI")
        );
        assert_eq!(
            warning(0, 2).as_deref(),
            Some(
                "window 3: 2 buffer requests refused because the buffer pool was full; raise max_buffer_mb"
            )
        );
        assert_eq!(
            warning(5, 2).as_deref(),
            Some(
                "window 3: 5 records dropped by CUPTI, 2 buffer requests refused because the buffer pool was full; raise max_buffer_mb"
            )
        );
    }
}
