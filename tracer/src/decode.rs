//! Turns CUPTI activity records into the compact events of the trace model.
//!
//! The decoder is pure: it reads records that someone else stepped to (the session
//! walks a buffer with `cuptiActivityGetNextRecord`, tests build records with the
//! generated structs) and never calls CUPTI. The one thing it needs from CUPTI, the
//! name of an API callback id, comes through [`CallbackNames`], so tests and the
//! benchmark pass a closure.
//!
//! Records are read with the CUDA 12 layouts (`Kernel9`, `Memcpy6`, ...). CUPTI only
//! ever appends fields to a record kind, so these prefixes are valid for every newer
//! library; no field past the CUDA 12.0 layouts is read, and the loader refuses
//! anything older, so no record needs a version check. Every field is read
//! unaligned: the structs are `packed(8)`.
//!
//! Names are interned once per window: a kernel name is demangled once per process
//! (cached by its mangled bytes) and looked up per record by the address CUPTI
//! stores it at; an API name is asked for once per (domain, callback id).

use std::ffi::{CStr, c_char};
use std::ptr::{addr_of, read_unaligned};

use cupti_sys::sys::{
    CUpti_Activity, CUpti_ActivityAPI, CUpti_ActivityContext, CUpti_ActivityDevice5,
    CUpti_ActivityExternalCorrelation, CUpti_ActivityFlag, CUpti_ActivityGraphTrace2,
    CUpti_ActivityKernel9, CUpti_ActivityKind, CUpti_ActivityMarker2, CUpti_ActivityMemcpy6,
    CUpti_ActivityMemcpyKind, CUpti_ActivityMemcpyPtoP4, CUpti_ActivityMemoryKind,
    CUpti_ActivityMemset4, CUpti_ActivityName, CUpti_ActivityObjectKind, CUpti_ActivityOverhead,
    CUpti_ActivityOverheadKind, CUpti_ActivitySynchronization, CUpti_ActivitySynchronizationType,
};
use rustc_hash::FxHashMap;

use crate::demangle::demangle;
use crate::model::{
    ApiCall, ApiKind, ConfigId, CopyKind, Device, GraphLaunch, HostRange, Kernel, LaunchConfig,
    Memcpy, MemoryKind, Memset, NameId, Overhead, RangeKind, SyncKind, Synchronization, ThreadName,
    Trace,
};

/// Reads one field of a record behind a raw pointer without assuming alignment.
macro_rules! rd {
    ($r:ident . $field:ident) => {
        read_unaligned(addr_of!((*$r).$field))
    };
}

/// Category given to our own host ranges and NVTX ranges in the trace.
pub const USER_ANNOTATION: &str = "user_annotation";

/// Where the decoder gets the name of a runtime or driver API callback id.
pub trait CallbackNames {
    /// The name CUPTI gives `cbid` in the API of `kind` (`cudaLaunchKernel_v7000`),
    /// `None` when it has none.
    fn callback_name(&mut self, kind: ApiKind, cbid: u32) -> Option<String>;
}

impl<F: FnMut(ApiKind, u32) -> Option<String>> CallbackNames for F {
    fn callback_name(&mut self, kind: ApiKind, cbid: u32) -> Option<String> {
        self(kind, cbid)
    }
}

/// A kernel name as seen at one address in this window.
struct SeenName {
    mangled: Box<[u8]>,
    id: NameId,
}

/// An NVTX range whose start record was seen and whose end was not yet.
#[derive(Clone, Copy)]
struct OpenMarker {
    start: i64,
    name: NameId,
    pid: u32,
    tid: u32,
}

/// Decodes activity records into one window's [`Trace`] at a time.
///
/// Devices, context-to-device mappings and thread names outlive a window (CUPTI
/// reports them once); events, names and counts start afresh with each window.
pub struct Decoder<N> {
    names_source: N,
    trace: Trace,
    kernel_names: FxHashMap<usize, SeenName>,
    demangled: FxHashMap<Box<[u8]>, Box<str>>,
    api_names: FxHashMap<(ApiKind, u32), NameId>,
    configs: FxHashMap<LaunchConfig, ConfigId>,
    open_markers: FxHashMap<u32, OpenMarker>,
    external_ids: FxHashMap<u32, u64>,
    unknown_records: u64,
    incomplete_records: u64,
    devices: Vec<Device>,
    context_devices: FxHashMap<u32, u32>,
    first_device: Option<u32>,
    thread_names: Vec<ThreadName>,
}

impl<N: CallbackNames> Decoder<N> {
    /// A decoder that asks `names_source` for API names.
    pub fn new(names_source: N) -> Self {
        Decoder {
            names_source,
            trace: Trace::default(),
            kernel_names: FxHashMap::default(),
            demangled: FxHashMap::default(),
            api_names: FxHashMap::default(),
            configs: FxHashMap::default(),
            open_markers: FxHashMap::default(),
            external_ids: FxHashMap::default(),
            unknown_records: 0,
            incomplete_records: 0,
            devices: Vec::new(),
            context_devices: FxHashMap::default(),
            first_device: None,
            thread_names: Vec::new(),
        }
    }

    /// Decodes one record into the current window.
    ///
    /// # Safety
    /// `record` points to a complete activity record as CUPTI lays it out (at least
    /// the CUDA 12 layout of its kind), and every string pointer in it is null or a
    /// valid NUL-terminated string.
    pub unsafe fn decode(&mut self, record: *const CUpti_Activity) {
        // SAFETY: every record starts with its kind.
        let kind = unsafe { read_unaligned(addr_of!((*record).kind)) };
        let r = record.cast::<u8>();
        // SAFETY: the caller guarantees the record is complete for `kind`, so each arm
        // reads it with the layout of its kind.
        unsafe {
            match kind {
                CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_KERNEL
                | CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL => {
                    self.kernel(r.cast())
                }
                CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_MEMCPY => self.memcpy(r.cast()),
                CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_MEMCPY2 => self.peer_memcpy(r.cast()),
                CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_MEMSET => self.memset(r.cast()),
                CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_RUNTIME => {
                    self.api(r.cast(), ApiKind::Runtime)
                }
                CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_DRIVER => {
                    self.api(r.cast(), ApiKind::Driver)
                }
                CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_SYNCHRONIZATION => self.sync(r.cast()),
                CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION => {
                    self.external_correlation(r.cast())
                }
                CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_MARKER => self.marker(r.cast()),
                CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_GRAPH_TRACE => self.graph(r.cast()),
                CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_OVERHEAD => self.overhead(r.cast()),
                CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_DEVICE => self.device(r.cast()),
                CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_NAME => self.name(r.cast()),
                CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_CONTEXT => self.context(r.cast()),
                _ => self.unknown_records += 1,
            }
        }
    }

    /// The device of the first context the process created, as its context record
    /// says; else, for a context created before collection began (which CUPTI
    /// reports no record of), the device of the first GPU record. `None` until
    /// either is decoded. Kept over the decoder's life, like the contexts.
    pub fn first_device(&self) -> Option<u32> {
        self.first_device
    }

    /// Records of kinds this decoder skips, in the current window.
    pub fn unknown_records(&self) -> u64 {
        self.unknown_records
    }

    /// Throws away what the current window collected (warmup), keeping devices,
    /// contexts and thread names.
    pub fn discard_window(&mut self) {
        self.finish_window();
    }

    /// Ends the current window: applies external correlation ids to API calls,
    /// completes synchronizations from their API calls and contexts, and returns the
    /// window's trace with devices and thread names filled in (`info` holds only
    /// `unknown_records`; the caller adds the rest).
    pub fn finish_window(&mut self) -> Trace {
        let mut trace = std::mem::take(&mut self.trace);
        self.kernel_names.clear();
        self.api_names.clear();
        self.configs.clear();
        self.open_markers.clear();
        let external_ids = std::mem::take(&mut self.external_ids);

        if !external_ids.is_empty() {
            for call in &mut trace.api_calls {
                if let Ok(correlation) = u32::try_from(call.correlation)
                    && let Some(&external) = external_ids.get(&correlation)
                {
                    call.external_id = external;
                }
            }
        }
        if !trace.syncs.is_empty() {
            // Only the calls that waited are looked up: a window holds far more
            // launches than synchronizations.
            let mut callers: FxHashMap<u64, (u32, u32)> = trace
                .syncs
                .iter()
                .map(|s| (s.correlation, (0, 0)))
                .collect();
            for call in &trace.api_calls {
                if let Some(caller) = callers.get_mut(&call.correlation) {
                    *caller = (call.pid, call.tid);
                }
            }
            for sync in &mut trace.syncs {
                if let Some(&(pid, tid)) = callers.get(&sync.correlation) {
                    sync.pid = pid;
                    sync.tid = tid;
                }
                if let Some(&device) = self.context_devices.get(&sync.context) {
                    sync.device = device;
                }
            }
        }
        // Growth left up to half of each vector unused; the window is read-only now.
        trace.kernels.shrink_to_fit();
        trace.api_calls.shrink_to_fit();
        trace.memcpys.shrink_to_fit();
        trace.ranges.shrink_to_fit();
        trace.devices = self.devices.clone();
        trace.threads = self.thread_names.clone();
        trace.info.unknown_records = std::mem::take(&mut self.unknown_records);
        trace.info.incomplete_records = std::mem::take(&mut self.incomplete_records);
        trace
    }

    /// Notes the device of a context or GPU record, the first of which is the
    /// process's first device.
    fn saw_device(&mut self, device: u32) {
        self.first_device.get_or_insert(device);
    }

    /// Whether a GPU record's times are known, counting it as incomplete when not:
    /// a forced flush hands over records of work still running, whose end (or
    /// start) is still 0.
    fn completed(&mut self, start: i64, end: i64) -> bool {
        let known = start > 0 && end >= start;
        if !known {
            self.incomplete_records += 1;
        }
        known
    }

    unsafe fn kernel(&mut self, r: *const CUpti_ActivityKernel9) {
        // SAFETY: `r` is a complete Kernel9 record (the caller's contract).
        let (name_ptr, config, mut kernel) = unsafe {
            let config = LaunchConfig {
                grid: [
                    rd!(r.gridX) as u32,
                    rd!(r.gridY) as u32,
                    rd!(r.gridZ) as u32,
                ],
                block: [
                    rd!(r.blockX) as u32,
                    rd!(r.blockY) as u32,
                    rd!(r.blockZ) as u32,
                ],
                registers_per_thread: u32::from(rd!(r.registersPerThread)),
                static_shared_memory: rd!(r.staticSharedMemory) as u32,
                dynamic_shared_memory: rd!(r.dynamicSharedMemory) as u32,
            };
            let kernel = Kernel {
                start: rd!(r.start) as i64,
                end: rd!(r.end) as i64,
                queued: rd!(r.queued) as i64,
                graph_node_id: rd!(r.graphNodeId),
                correlation: u64::from(rd!(r.correlationId)),
                name: NameId::default(),
                config: ConfigId::default(),
                stream: rd!(r.streamId),
                context: rd!(r.contextId),
                graph_id: rd!(r.graphId),
                device: rd!(r.deviceId),
            };
            (rd!(r.name), config, kernel)
        };
        if !self.completed(kernel.start, kernel.end) {
            return;
        }
        // SAFETY: CUPTI's name pointer is null or a NUL-terminated string.
        kernel.name = unsafe { self.kernel_name(name_ptr) };
        kernel.config = match self.configs.get(&config) {
            Some(&id) => id,
            None => {
                let id = self.trace.intern_config(config);
                self.configs.insert(config, id);
                id
            }
        };
        self.saw_device(kernel.device);
        self.trace.kernels.push(kernel);
    }

    /// The interned, demangled name at `ptr`.
    ///
    /// # Safety
    /// `ptr` is null or a valid NUL-terminated string.
    unsafe fn kernel_name(&mut self, ptr: *const c_char) -> NameId {
        if ptr.is_null() {
            return self.trace.names.intern("");
        }
        // SAFETY: the caller guarantees a NUL-terminated string.
        let mangled = unsafe { CStr::from_ptr(ptr) }.to_bytes();
        // Addresses are only a fast path: a module unloaded and another loaded at the
        // same place may put a different name there, so the bytes must still match.
        if let Some(seen) = self.kernel_names.get(&(ptr as usize))
            && *seen.mangled == *mangled
        {
            return seen.id;
        }
        let demangled = self
            .demangled
            .entry(mangled.into())
            .or_insert_with(|| demangle(mangled).into_boxed_str());
        let id = self.trace.names.intern(demangled);
        self.kernel_names.insert(
            ptr as usize,
            SeenName {
                mangled: mangled.into(),
                id,
            },
        );
        id
    }

    unsafe fn memcpy(&mut self, r: *const CUpti_ActivityMemcpy6) {
        // SAFETY: `r` is a complete Memcpy6 record.
        let memcpy = unsafe {
            let device = rd!(r.deviceId);
            Memcpy {
                start: rd!(r.start) as i64,
                end: rd!(r.end) as i64,
                bytes: rd!(r.bytes),
                correlation: u64::from(rd!(r.correlationId)),
                kind: copy_kind(rd!(r.copyKind)),
                src_kind: memory_kind(u32::from(rd!(r.srcKind))),
                dst_kind: memory_kind(u32::from(rd!(r.dstKind))),
                device,
                src_device: device,
                dst_device: device,
                context: rd!(r.contextId),
                stream: rd!(r.streamId),
                graph_node_id: rd!(r.graphNodeId),
                name: None,
            }
        };
        if self.completed(memcpy.start, memcpy.end) {
            self.saw_device(memcpy.device);
            self.trace.memcpys.push(memcpy);
        }
    }

    unsafe fn peer_memcpy(&mut self, r: *const CUpti_ActivityMemcpyPtoP4) {
        // SAFETY: `r` is a complete MemcpyPtoP4 record.
        let memcpy = unsafe {
            Memcpy {
                start: rd!(r.start) as i64,
                end: rd!(r.end) as i64,
                bytes: rd!(r.bytes),
                correlation: u64::from(rd!(r.correlationId)),
                kind: copy_kind(rd!(r.copyKind)),
                src_kind: memory_kind(u32::from(rd!(r.srcKind))),
                dst_kind: memory_kind(u32::from(rd!(r.dstKind))),
                device: rd!(r.deviceId),
                src_device: rd!(r.srcDeviceId),
                dst_device: rd!(r.dstDeviceId),
                context: rd!(r.contextId),
                stream: rd!(r.streamId),
                graph_node_id: rd!(r.graphNodeId),
                name: None,
            }
        };
        if self.completed(memcpy.start, memcpy.end) {
            self.saw_device(memcpy.device);
            self.trace.memcpys.push(memcpy);
        }
    }

    unsafe fn memset(&mut self, r: *const CUpti_ActivityMemset4) {
        // SAFETY: `r` is a complete Memset4 record.
        let memset = unsafe {
            Memset {
                start: rd!(r.start) as i64,
                end: rd!(r.end) as i64,
                bytes: rd!(r.bytes),
                correlation: u64::from(rd!(r.correlationId)),
                memory_kind: memory_kind(u32::from(rd!(r.memoryKind))),
                device: rd!(r.deviceId),
                context: rd!(r.contextId),
                stream: rd!(r.streamId),
                graph_node_id: rd!(r.graphNodeId),
                name: None,
            }
        };
        if self.completed(memset.start, memset.end) {
            self.saw_device(memset.device);
            self.trace.memsets.push(memset);
        }
    }

    unsafe fn api(&mut self, r: *const CUpti_ActivityAPI, kind: ApiKind) {
        // SAFETY: `r` is a complete API record.
        let mut call = unsafe {
            ApiCall {
                start: rd!(r.start) as i64,
                end: rd!(r.end) as i64,
                correlation: u64::from(rd!(r.correlationId)),
                external_id: 0,
                name: NameId::default(),
                kind,
                cbid: rd!(r.cbid),
                pid: rd!(r.processId),
                tid: rd!(r.threadId),
            }
        };
        call.name = match self.api_names.get(&(kind, call.cbid)) {
            Some(&id) => id,
            None => {
                let name = match self.names_source.callback_name(kind, call.cbid) {
                    Some(raw) => strip_version_suffix(&raw).to_owned(),
                    None => format!("{} api {}", api_label(kind), call.cbid),
                };
                let id = self.trace.names.intern(&name);
                self.api_names.insert((kind, call.cbid), id);
                id
            }
        };
        self.trace.api_calls.push(call);
    }

    unsafe fn sync(&mut self, r: *const CUpti_ActivitySynchronization) {
        // SAFETY: `r` is at least a Synchronization record (Synchronization2 extends it).
        let sync = unsafe {
            Synchronization {
                start: rd!(r.start) as i64,
                end: rd!(r.end) as i64,
                correlation: u64::from(rd!(r.correlationId)),
                kind: sync_kind(rd!(r.type_)),
                stream: rd!(r.streamId),
                context: rd!(r.contextId),
                device: 0,
                cuda_event: rd!(r.cudaEventId),
                pid: 0,
                tid: 0,
                name: None,
            }
        };
        self.trace.syncs.push(sync);
    }

    unsafe fn external_correlation(&mut self, r: *const CUpti_ActivityExternalCorrelation) {
        // SAFETY: `r` is a complete ExternalCorrelation record.
        let (correlation, external) = unsafe { (rd!(r.correlationId), rd!(r.externalId)) };
        self.external_ids.insert(correlation, external);
    }

    unsafe fn marker(&mut self, r: *const CUpti_ActivityMarker2) {
        // SAFETY: `r` is a complete Marker2 record; its name is null or a C string.
        let (flags, timestamp, id, name_ptr, (pid, tid)) = unsafe {
            (
                rd!(r.flags).0,
                rd!(r.timestamp) as i64,
                rd!(r.id),
                rd!(r.name),
                object_thread(rd!(r.objectKind), addr_of!((*r).objectId).cast()),
            )
        };
        let name = |trace: &mut Trace| {
            let text = if name_ptr.is_null() {
                std::borrow::Cow::Borrowed("")
            } else {
                // SAFETY: a non-null marker name is a NUL-terminated string.
                unsafe { CStr::from_ptr(name_ptr) }.to_string_lossy()
            };
            trace.names.intern(&text)
        };
        if flags & CUpti_ActivityFlag::CUPTI_ACTIVITY_FLAG_MARKER_START.0 != 0 {
            let name = name(&mut self.trace);
            self.open_markers.insert(
                id,
                OpenMarker {
                    start: timestamp,
                    name,
                    pid,
                    tid,
                },
            );
        } else if flags & CUpti_ActivityFlag::CUPTI_ACTIVITY_FLAG_MARKER_END.0 != 0 {
            // An end without its start began before the window: nothing to draw.
            if let Some(open) = self.open_markers.remove(&id) {
                self.push_range(open, timestamp);
            }
        } else if flags & CUpti_ActivityFlag::CUPTI_ACTIVITY_FLAG_MARKER_INSTANTANEOUS.0 != 0 {
            let open = OpenMarker {
                start: timestamp,
                name: name(&mut self.trace),
                pid,
                tid,
            };
            self.push_range(open, timestamp);
        }
    }

    fn push_range(&mut self, open: OpenMarker, end: i64) {
        let category = self.trace.names.intern(USER_ANNOTATION);
        self.trace.ranges.push(HostRange {
            start: open.start,
            end,
            name: open.name,
            category,
            kind: RangeKind::Nvtx,
            external_id: 0,
            pid: open.pid,
            tid: open.tid,
        });
    }

    unsafe fn graph(&mut self, r: *const CUpti_ActivityGraphTrace2) {
        // SAFETY: `r` is a complete GraphTrace2 record.
        let launch = unsafe {
            GraphLaunch {
                start: rd!(r.start) as i64,
                end: rd!(r.end) as i64,
                correlation: u64::from(rd!(r.correlationId)),
                graph_id: rd!(r.graphId),
                device: rd!(r.deviceId),
                context: rd!(r.contextId),
                stream: rd!(r.streamId),
            }
        };
        if self.completed(launch.start, launch.end) {
            self.saw_device(launch.device);
            self.trace.graph_launches.push(launch);
        }
    }

    unsafe fn overhead(&mut self, r: *const CUpti_ActivityOverhead) {
        // SAFETY: `r` is at least an Overhead record (Overhead3 extends it).
        let (start, end, kind, (pid, tid)) = unsafe {
            (
                rd!(r.start) as i64,
                rd!(r.end) as i64,
                rd!(r.overheadKind),
                object_thread(rd!(r.objectKind), addr_of!((*r).objectId).cast()),
            )
        };
        let name = self.trace.names.intern(overhead_name(kind));
        self.trace.overheads.push(Overhead {
            start,
            end,
            name,
            pid,
            tid,
        });
    }

    unsafe fn device(&mut self, r: *const CUpti_ActivityDevice5) {
        // SAFETY: `r` is a complete Device record of the CUDA 12 layout; its name is
        // null or a C string.
        let device = unsafe {
            let warp = rd!(r.numThreadsPerWarp);
            let name = rd!(r.name);
            Device {
                id: rd!(r.id),
                name: if name.is_null() {
                    String::new()
                } else {
                    CStr::from_ptr(name).to_string_lossy().into_owned()
                },
                total_global_mem: rd!(r.globalMemorySize),
                compute_major: rd!(r.computeCapabilityMajor),
                compute_minor: rd!(r.computeCapabilityMinor),
                max_threads_per_block: rd!(r.maxThreadsPerBlock),
                max_threads_per_multiprocessor: rd!(r.maxWarpsPerMultiprocessor)
                    .saturating_mul(warp),
                regs_per_block: rd!(r.maxRegistersPerBlock),
                warp_size: warp,
                shared_mem_per_block: u64::from(rd!(r.maxSharedMemoryPerBlock)),
                num_sms: rd!(r.numMultiprocessors),
                regs_per_multiprocessor: rd!(r.maxRegistersPerMultiprocessor),
                // CUPTI's record lacks the opt-in limit; 0 says unknown.
                shared_mem_per_block_optin: 0,
                shared_mem_per_multiprocessor: u64::from(rd!(r.maxSharedMemoryPerMultiprocessor)),
            }
        };
        match self.devices.iter_mut().find(|d| d.id == device.id) {
            Some(known) => *known = device,
            None => {
                self.devices.push(device);
                self.devices.sort_by_key(|d| d.id);
            }
        }
    }

    unsafe fn name(&mut self, r: *const CUpti_ActivityName) {
        // SAFETY: `r` is a complete Name record; its name is null or a C string.
        let (object_kind, (pid, tid), name) = unsafe {
            let kind = rd!(r.objectKind);
            let name = rd!(r.name);
            if name.is_null() {
                return;
            }
            (
                kind,
                object_thread(kind, addr_of!((*r).objectId).cast()),
                CStr::from_ptr(name).to_string_lossy().into_owned(),
            )
        };
        if object_kind != CUpti_ActivityObjectKind::CUPTI_ACTIVITY_OBJECT_THREAD {
            return;
        }
        match self
            .thread_names
            .iter_mut()
            .find(|t| t.pid == pid && t.tid == tid)
        {
            Some(known) => known.name = name,
            None => self.thread_names.push(ThreadName { pid, tid, name }),
        }
    }

    unsafe fn context(&mut self, r: *const CUpti_ActivityContext) {
        // SAFETY: `r` is at least a Context record (Context3 extends it).
        let (context, device) = unsafe { (rd!(r.contextId), rd!(r.deviceId)) };
        self.context_devices.insert(context, device);
        self.saw_device(device);
    }
}

/// The (pid, tid) of an activity object id, when the object is a thread or process.
///
/// # Safety
/// `id` points to a `CUpti_ActivityObjectKindId` (12 bytes).
unsafe fn object_thread(kind: CUpti_ActivityObjectKind, id: *const u32) -> (u32, u32) {
    match kind {
        CUpti_ActivityObjectKind::CUPTI_ACTIVITY_OBJECT_THREAD
        | CUpti_ActivityObjectKind::CUPTI_ACTIVITY_OBJECT_PROCESS => {
            // SAFETY: the `pt` member is {processId, threadId}, two u32 at the start.
            unsafe { (read_unaligned(id), read_unaligned(id.add(1))) }
        }
        _ => (0, 0),
    }
}

/// `cudaLaunchKernel_v7000` → `cudaLaunchKernel`; names without a `_v<digits>`
/// suffix are returned whole.
pub fn strip_version_suffix(name: &str) -> &str {
    match name.rsplit_once("_v") {
        Some((base, version))
            if !base.is_empty()
                && !version.is_empty()
                && version.bytes().all(|b| b.is_ascii_digit()) =>
        {
            base
        }
        _ => name,
    }
}

fn api_label(kind: ApiKind) -> &'static str {
    match kind {
        ApiKind::Runtime => "runtime",
        ApiKind::Driver => "driver",
    }
}

fn copy_kind(raw: u8) -> CopyKind {
    match CUpti_ActivityMemcpyKind(u32::from(raw)) {
        CUpti_ActivityMemcpyKind::CUPTI_ACTIVITY_MEMCPY_KIND_HTOD => CopyKind::HtoD,
        CUpti_ActivityMemcpyKind::CUPTI_ACTIVITY_MEMCPY_KIND_DTOH => CopyKind::DtoH,
        CUpti_ActivityMemcpyKind::CUPTI_ACTIVITY_MEMCPY_KIND_HTOA => CopyKind::HtoA,
        CUpti_ActivityMemcpyKind::CUPTI_ACTIVITY_MEMCPY_KIND_ATOH => CopyKind::AtoH,
        CUpti_ActivityMemcpyKind::CUPTI_ACTIVITY_MEMCPY_KIND_ATOA => CopyKind::AtoA,
        CUpti_ActivityMemcpyKind::CUPTI_ACTIVITY_MEMCPY_KIND_ATOD => CopyKind::AtoD,
        CUpti_ActivityMemcpyKind::CUPTI_ACTIVITY_MEMCPY_KIND_DTOA => CopyKind::DtoA,
        CUpti_ActivityMemcpyKind::CUPTI_ACTIVITY_MEMCPY_KIND_DTOD => CopyKind::DtoD,
        CUpti_ActivityMemcpyKind::CUPTI_ACTIVITY_MEMCPY_KIND_HTOH => CopyKind::HtoH,
        CUpti_ActivityMemcpyKind::CUPTI_ACTIVITY_MEMCPY_KIND_PTOP => CopyKind::PtoP,
        _ => CopyKind::Unknown,
    }
}

fn memory_kind(raw: u32) -> MemoryKind {
    match CUpti_ActivityMemoryKind(raw) {
        CUpti_ActivityMemoryKind::CUPTI_ACTIVITY_MEMORY_KIND_PAGEABLE => MemoryKind::Pageable,
        CUpti_ActivityMemoryKind::CUPTI_ACTIVITY_MEMORY_KIND_PINNED => MemoryKind::Pinned,
        CUpti_ActivityMemoryKind::CUPTI_ACTIVITY_MEMORY_KIND_DEVICE => MemoryKind::Device,
        CUpti_ActivityMemoryKind::CUPTI_ACTIVITY_MEMORY_KIND_ARRAY => MemoryKind::Array,
        CUpti_ActivityMemoryKind::CUPTI_ACTIVITY_MEMORY_KIND_MANAGED => MemoryKind::Managed,
        CUpti_ActivityMemoryKind::CUPTI_ACTIVITY_MEMORY_KIND_DEVICE_STATIC => {
            MemoryKind::DeviceStatic
        }
        CUpti_ActivityMemoryKind::CUPTI_ACTIVITY_MEMORY_KIND_MANAGED_STATIC => {
            MemoryKind::ManagedStatic
        }
        _ => MemoryKind::Unknown,
    }
}

fn sync_kind(raw: CUpti_ActivitySynchronizationType) -> SyncKind {
    match raw {
        CUpti_ActivitySynchronizationType::CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_EVENT_SYNCHRONIZE => {
            SyncKind::EventSync
        }
        CUpti_ActivitySynchronizationType::CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_STREAM_WAIT_EVENT => {
            SyncKind::StreamWaitEvent
        }
        CUpti_ActivitySynchronizationType::CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_STREAM_SYNCHRONIZE => {
            SyncKind::StreamSync
        }
        CUpti_ActivitySynchronizationType::CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_CONTEXT_SYNCHRONIZE => {
            SyncKind::ContextSync
        }
        _ => SyncKind::Unknown,
    }
}

fn overhead_name(kind: CUpti_ActivityOverheadKind) -> &'static str {
    match kind {
        CUpti_ActivityOverheadKind::CUPTI_ACTIVITY_OVERHEAD_DRIVER_COMPILER => "Driver Compiler",
        CUpti_ActivityOverheadKind::CUPTI_ACTIVITY_OVERHEAD_CUPTI_BUFFER_FLUSH => {
            "CUPTI Buffer Flush"
        }
        CUpti_ActivityOverheadKind::CUPTI_ACTIVITY_OVERHEAD_CUPTI_INSTRUMENTATION => {
            "CUPTI Instrumentation"
        }
        CUpti_ActivityOverheadKind::CUPTI_ACTIVITY_OVERHEAD_CUPTI_RESOURCE => "CUPTI Resource",
        CUpti_ActivityOverheadKind::CUPTI_ACTIVITY_OVERHEAD_RUNTIME_TRIGGERED_MODULE_LOADING => {
            "Runtime Triggered Module Loading"
        }
        CUpti_ActivityOverheadKind::CUPTI_ACTIVITY_OVERHEAD_LAZY_FUNCTION_LOADING => {
            "Lazy Function Loading"
        }
        CUpti_ActivityOverheadKind::CUPTI_ACTIVITY_OVERHEAD_COMMAND_BUFFER_FULL => {
            "Command Buffer Full"
        }
        CUpti_ActivityOverheadKind::CUPTI_ACTIVITY_OVERHEAD_ACTIVITY_BUFFER_REQUEST => {
            "Activity Buffer Request"
        }
        CUpti_ActivityOverheadKind::CUPTI_ACTIVITY_OVERHEAD_UVM_ACTIVITY_INIT => {
            "UVM Activity Init"
        }
        _ => "Unknown Overhead",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cupti_sys::sys::{CUpti_ActivityObjectKindId, CUpti_ExternalCorrelationKind};
    use std::cell::Cell;
    use std::ffi::CString;
    use std::rc::Rc;

    fn zeroed<T>() -> T {
        // SAFETY: every activity record is plain integers, newtypes and raw pointers,
        // for which all-zero bytes are valid.
        unsafe { std::mem::zeroed() }
    }

    fn names(kind: ApiKind, cbid: u32) -> Option<String> {
        match (kind, cbid) {
            (ApiKind::Runtime, 211) => Some("cudaLaunchKernel_v7000".into()),
            (ApiKind::Driver, 307) => Some("cuLaunchKernel".into()),
            (ApiKind::Runtime, 131) => Some("cudaStreamSynchronize_v3020".into()),
            _ => None,
        }
    }

    fn decoder() -> Decoder<fn(ApiKind, u32) -> Option<String>> {
        Decoder::new(names as fn(ApiKind, u32) -> Option<String>)
    }

    fn feed<T, N: CallbackNames>(decoder: &mut Decoder<N>, record: &T) {
        // SAFETY: `record` is a complete record built from the generated layout.
        unsafe { decoder.decode((record as *const T).cast()) }
    }

    fn kernel_record(name: &CString, correlation: u32, stream: u32) -> CUpti_ActivityKernel9 {
        let mut k: CUpti_ActivityKernel9 = zeroed();
        k.kind = CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL;
        k.start = 1_000;
        k.end = 1_500;
        k.queued = 900;
        k.deviceId = 1;
        k.contextId = 2;
        k.streamId = stream;
        k.gridX = 4;
        k.gridY = 5;
        k.gridZ = 6;
        k.blockX = 128;
        k.blockY = 2;
        k.blockZ = 1;
        k.registersPerThread = 32;
        k.staticSharedMemory = 1024;
        k.dynamicSharedMemory = 2048;
        k.correlationId = correlation;
        k.name = name.as_ptr();
        k.graphNodeId = 77;
        k.graphId = 3;
        k
    }

    #[test]
    fn kernel_fields_are_decoded_and_interned() {
        let name = CString::new("_Z6kernelPfi").unwrap();
        let mut d = decoder();
        feed(&mut d, &kernel_record(&name, 42, 7));
        let mut other = kernel_record(&name, 43, 8);
        other.blockX = 256;
        feed(&mut d, &other);
        feed(&mut d, &kernel_record(&name, 44, 7));
        let trace = d.finish_window();

        assert_eq!(trace.kernels.len(), 3);
        let k = trace.kernels[0];
        assert_eq!((k.start, k.end, k.queued), (1_000, 1_500, 900));
        assert_eq!((k.device, k.context, k.stream), (1, 2, 7));
        assert_eq!((k.correlation, k.graph_id, k.graph_node_id), (42, 3, 77));
        assert_eq!(trace.names.get(k.name), "kernel(float*, int)");
        assert_eq!(
            trace.config(k.config),
            LaunchConfig {
                grid: [4, 5, 6],
                block: [128, 2, 1],
                registers_per_thread: 32,
                static_shared_memory: 1024,
                dynamic_shared_memory: 2048,
            }
        );
        assert_eq!(trace.kernels[1].name, k.name);
        assert_ne!(trace.kernels[1].config, k.config);
        assert_eq!(trace.config(trace.kernels[1].config).block, [256, 2, 1]);
        assert_eq!(trace.kernels[2].config, k.config);
        assert_eq!(trace.launch_configs.len(), 2);
        assert_eq!(trace.names.len(), 1);
    }

    #[test]
    fn gpu_records_without_times_are_counted_and_left_out() {
        let name = CString::new("_Z6kernelPfi").unwrap();
        let mut d = decoder();
        let mut running = kernel_record(&name, 1, 7);
        running.end = 0;
        feed(&mut d, &running);
        let mut unstarted = kernel_record(&name, 2, 7);
        unstarted.start = 0;
        feed(&mut d, &unstarted);
        let mut copy: CUpti_ActivityMemcpy6 = zeroed();
        copy.kind = CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_MEMCPY;
        feed(&mut d, &copy);
        let mut set: CUpti_ActivityMemset4 = zeroed();
        set.kind = CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_MEMSET;
        set.start = 10;
        feed(&mut d, &set);
        feed(&mut d, &kernel_record(&name, 3, 7));
        let trace = d.finish_window();
        assert_eq!(trace.info.incomplete_records, 4);
        assert_eq!(
            trace
                .kernels
                .iter()
                .map(|k| k.correlation)
                .collect::<Vec<_>>(),
            [3]
        );
        assert!(trace.memcpys.is_empty() && trace.memsets.is_empty());
        assert_eq!(
            d.finish_window().info.incomplete_records,
            0,
            "counted per window"
        );
    }

    #[test]
    fn a_new_name_at_a_known_address_is_read_again() {
        let mut bytes = *b"_Z3fooi\0";
        let mut d = decoder();
        let mut k = kernel_record(&CString::new("x").unwrap(), 1, 1);
        k.name = bytes.as_ptr().cast();
        feed(&mut d, &k);
        bytes[3] = b'g'; // "_Z3goo i": another kernel where the first one was
        k.name = bytes.as_ptr().cast();
        feed(&mut d, &k);
        let trace = d.finish_window();
        assert_eq!(trace.names.get(trace.kernels[0].name), "foo(int)");
        assert_eq!(trace.names.get(trace.kernels[1].name), "goo(int)");
    }

    #[test]
    fn unmangled_and_missing_kernel_names_are_kept() {
        let plain = CString::new("my_c_kernel").unwrap();
        let mut d = decoder();
        feed(&mut d, &kernel_record(&plain, 1, 1));
        let mut nameless = kernel_record(&plain, 2, 1);
        nameless.name = std::ptr::null();
        feed(&mut d, &nameless);
        let trace = d.finish_window();
        assert_eq!(trace.names.get(trace.kernels[0].name), "my_c_kernel");
        assert_eq!(trace.names.get(trace.kernels[1].name), "");
    }

    #[test]
    fn memcpys_and_memsets_are_decoded() {
        let mut m: CUpti_ActivityMemcpy6 = zeroed();
        m.kind = CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_MEMCPY;
        m.copyKind = CUpti_ActivityMemcpyKind::CUPTI_ACTIVITY_MEMCPY_KIND_HTOD.0 as u8;
        m.srcKind = CUpti_ActivityMemoryKind::CUPTI_ACTIVITY_MEMORY_KIND_PAGEABLE.0 as u8;
        m.dstKind = CUpti_ActivityMemoryKind::CUPTI_ACTIVITY_MEMORY_KIND_DEVICE.0 as u8;
        m.bytes = 4096;
        m.start = 10;
        m.end = 20;
        m.deviceId = 0;
        m.contextId = 1;
        m.streamId = 7;
        m.correlationId = 5;
        m.graphNodeId = 9;

        let mut p: CUpti_ActivityMemcpyPtoP4 = zeroed();
        p.kind = CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_MEMCPY2;
        p.copyKind = CUpti_ActivityMemcpyKind::CUPTI_ACTIVITY_MEMCPY_KIND_PTOP.0 as u8;
        p.srcKind = CUpti_ActivityMemoryKind::CUPTI_ACTIVITY_MEMORY_KIND_DEVICE.0 as u8;
        p.dstKind = CUpti_ActivityMemoryKind::CUPTI_ACTIVITY_MEMORY_KIND_DEVICE.0 as u8;
        p.bytes = 1 << 20;
        p.start = 30;
        p.end = 50;
        p.deviceId = 0;
        p.srcDeviceId = 0;
        p.dstDeviceId = 1;
        p.contextId = 1;
        p.streamId = 8;
        p.correlationId = 6;

        let mut s: CUpti_ActivityMemset4 = zeroed();
        s.kind = CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_MEMSET;
        s.bytes = 256;
        s.start = 60;
        s.end = 61;
        s.deviceId = 1;
        s.contextId = 3;
        s.streamId = 9;
        s.correlationId = 8;
        s.memoryKind = CUpti_ActivityMemoryKind::CUPTI_ACTIVITY_MEMORY_KIND_MANAGED.0 as u16;
        s.graphNodeId = 4;

        let mut d = decoder();
        feed(&mut d, &m);
        feed(&mut d, &p);
        feed(&mut d, &s);
        let trace = d.finish_window();
        assert_eq!(
            trace.memcpys,
            vec![
                Memcpy {
                    start: 10,
                    end: 20,
                    bytes: 4096,
                    correlation: 5,
                    kind: CopyKind::HtoD,
                    src_kind: MemoryKind::Pageable,
                    dst_kind: MemoryKind::Device,
                    device: 0,
                    src_device: 0,
                    dst_device: 0,
                    context: 1,
                    stream: 7,
                    graph_node_id: 9,
                    name: None,
                },
                Memcpy {
                    start: 30,
                    end: 50,
                    bytes: 1 << 20,
                    correlation: 6,
                    kind: CopyKind::PtoP,
                    src_kind: MemoryKind::Device,
                    dst_kind: MemoryKind::Device,
                    device: 0,
                    src_device: 0,
                    dst_device: 1,
                    context: 1,
                    stream: 8,
                    graph_node_id: 0,
                    name: None,
                },
            ]
        );
        assert_eq!(
            trace.memsets,
            vec![Memset {
                start: 60,
                end: 61,
                bytes: 256,
                correlation: 8,
                memory_kind: MemoryKind::Managed,
                device: 1,
                context: 3,
                stream: 9,
                graph_node_id: 4,
                name: None,
            }]
        );
    }

    fn api_record(kind: CUpti_ActivityKind, cbid: u32, correlation: u32) -> CUpti_ActivityAPI {
        let mut a: CUpti_ActivityAPI = zeroed();
        a.kind = kind;
        a.cbid = cbid;
        a.start = 100;
        a.end = 110;
        a.processId = 1234;
        a.threadId = 1235;
        a.correlationId = correlation;
        a
    }

    #[test]
    fn api_names_are_asked_once_and_lose_their_version() {
        let asked = Rc::new(Cell::new(0));
        let counter = asked.clone();
        let mut d = Decoder::new(move |kind, cbid| {
            counter.set(counter.get() + 1);
            names(kind, cbid)
        });
        let runtime = CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_RUNTIME;
        let driver = CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_DRIVER;
        feed(&mut d, &api_record(runtime, 211, 1));
        feed(&mut d, &api_record(runtime, 211, 2));
        feed(&mut d, &api_record(driver, 307, 3));
        feed(&mut d, &api_record(driver, 999, 4));
        let trace = d.finish_window();
        assert_eq!(asked.get(), 3);
        let names: Vec<&str> = trace
            .api_calls
            .iter()
            .map(|c| trace.names.get(c.name))
            .collect();
        assert_eq!(
            names,
            [
                "cudaLaunchKernel",
                "cudaLaunchKernel",
                "cuLaunchKernel",
                "driver api 999"
            ]
        );
        let c = trace.api_calls[2];
        assert_eq!(
            (c.kind, c.cbid, c.correlation, c.pid, c.tid, c.start, c.end),
            (ApiKind::Driver, 307, 3, 1234, 1235, 100, 110)
        );
    }

    #[test]
    fn external_ids_reach_their_api_calls() {
        let mut d = decoder();
        let mut e: CUpti_ActivityExternalCorrelation = zeroed();
        e.kind = CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION;
        e.externalKind = CUpti_ExternalCorrelationKind::CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0;
        e.externalId = 0xdead_beef_0001;
        e.correlationId = 2;
        feed(&mut d, &e);
        let runtime = CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_RUNTIME;
        feed(&mut d, &api_record(runtime, 211, 1));
        feed(&mut d, &api_record(runtime, 211, 2));
        let trace = d.finish_window();
        assert_eq!(trace.api_calls[0].external_id, 0);
        assert_eq!(trace.api_calls[1].external_id, 0xdead_beef_0001);
    }

    #[test]
    fn the_first_device_is_the_first_contexts_and_outlives_windows() {
        let context = |id: u32, device: u32| {
            let mut c: CUpti_ActivityContext = zeroed();
            c.kind = CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_CONTEXT;
            c.contextId = id;
            c.deviceId = device;
            c
        };
        let name = CString::new("k").unwrap();
        let mut d = decoder();
        assert_eq!(d.first_device(), None);
        feed(&mut d, &context(4, 2));
        // Work on another device and a later context change nothing.
        feed(&mut d, &kernel_record(&name, 1, 7));
        feed(&mut d, &context(5, 6));
        assert_eq!(d.first_device(), Some(2));
        d.finish_window();
        assert_eq!(d.first_device(), Some(2));

        // A context made before collection began has no record: its work says.
        let mut d = decoder();
        feed(&mut d, &kernel_record(&name, 1, 7));
        assert_eq!(d.first_device(), Some(1));
        feed(&mut d, &context(5, 6));
        assert_eq!(d.first_device(), Some(1));
    }

    #[test]
    fn syncs_take_device_from_context_and_thread_from_their_call() {
        let mut d = decoder();
        let mut c: CUpti_ActivityContext = zeroed();
        c.kind = CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_CONTEXT;
        c.contextId = 5;
        c.deviceId = 3;
        feed(&mut d, &c);
        let mut s: CUpti_ActivitySynchronization = zeroed();
        s.kind = CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_SYNCHRONIZATION;
        s.type_ =
            CUpti_ActivitySynchronizationType::CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_STREAM_SYNCHRONIZE;
        s.start = 200;
        s.end = 300;
        s.correlationId = 9;
        s.contextId = 5;
        s.streamId = 7;
        s.cudaEventId = 0;
        feed(&mut d, &s);
        feed(
            &mut d,
            &api_record(CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_RUNTIME, 131, 9),
        );
        let trace = d.finish_window();
        assert_eq!(
            trace.syncs,
            vec![Synchronization {
                start: 200,
                end: 300,
                correlation: 9,
                kind: SyncKind::StreamSync,
                stream: 7,
                context: 5,
                device: 3,
                cuda_event: 0,
                pid: 1234,
                tid: 1235,
                name: None,
            }]
        );
    }

    fn marker(
        flags: CUpti_ActivityFlag,
        id: u32,
        ts: u64,
        name: Option<&CString>,
    ) -> CUpti_ActivityMarker2 {
        let mut m: CUpti_ActivityMarker2 = zeroed();
        m.kind = CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_MARKER;
        m.flags = flags;
        m.timestamp = ts;
        m.id = id;
        m.objectKind = CUpti_ActivityObjectKind::CUPTI_ACTIVITY_OBJECT_THREAD;
        let mut object: CUpti_ActivityObjectKindId = zeroed();
        object.pt.processId = 10;
        object.pt.threadId = 11;
        m.objectId = object;
        m.name = name.map_or(std::ptr::null(), |n| n.as_ptr());
        m
    }

    #[test]
    fn nvtx_start_and_end_make_nested_ranges() {
        let outer = CString::new("step").unwrap();
        let inner = CString::new("forward").unwrap();
        let start = CUpti_ActivityFlag::CUPTI_ACTIVITY_FLAG_MARKER_START;
        let end = CUpti_ActivityFlag::CUPTI_ACTIVITY_FLAG_MARKER_END;
        let mut d = decoder();
        feed(&mut d, &marker(end, 99, 5, None)); // began before the window
        feed(&mut d, &marker(start, 1, 10, Some(&outer)));
        feed(&mut d, &marker(start, 2, 20, Some(&inner)));
        feed(&mut d, &marker(end, 2, 30, None));
        feed(&mut d, &marker(end, 1, 40, None));
        feed(&mut d, &marker(start, 3, 50, Some(&inner))); // still open at the end
        let trace = d.finish_window();
        let ranges: Vec<(&str, i64, i64, u32, u32, RangeKind, &str)> = trace
            .ranges
            .iter()
            .map(|r| {
                (
                    trace.names.get(r.name),
                    r.start,
                    r.end,
                    r.pid,
                    r.tid,
                    r.kind,
                    trace.names.get(r.category),
                )
            })
            .collect();
        assert_eq!(
            ranges,
            [
                ("forward", 20, 30, 10, 11, RangeKind::Nvtx, USER_ANNOTATION),
                ("step", 10, 40, 10, 11, RangeKind::Nvtx, USER_ANNOTATION),
            ]
        );
    }

    #[test]
    fn graph_launches_overheads_and_unknown_kinds() {
        let mut g: CUpti_ActivityGraphTrace2 = zeroed();
        g.kind = CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_GRAPH_TRACE;
        g.correlationId = 12;
        g.start = 1;
        g.end = 9;
        g.deviceId = 0;
        g.graphId = 4;
        g.contextId = 1;
        g.streamId = 13;
        let mut o: CUpti_ActivityOverhead = zeroed();
        o.kind = CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_OVERHEAD;
        o.overheadKind = CUpti_ActivityOverheadKind::CUPTI_ACTIVITY_OVERHEAD_CUPTI_BUFFER_FLUSH;
        o.objectKind = CUpti_ActivityObjectKind::CUPTI_ACTIVITY_OBJECT_THREAD;
        o.objectId.pt.processId = 3;
        o.objectId.pt.threadId = 4;
        o.start = 5;
        o.end = 6;
        let mut unknown: CUpti_ActivityExternalCorrelation = zeroed();
        unknown.kind = CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_PC_SAMPLING;

        let mut d = decoder();
        feed(&mut d, &g);
        feed(&mut d, &o);
        feed(&mut d, &unknown);
        feed(&mut d, &unknown);
        assert_eq!(d.unknown_records(), 2);
        let trace = d.finish_window();
        assert_eq!(
            trace.graph_launches,
            vec![GraphLaunch {
                start: 1,
                end: 9,
                correlation: 12,
                graph_id: 4,
                device: 0,
                context: 1,
                stream: 13,
            }]
        );
        assert_eq!(trace.overheads.len(), 1);
        let o = trace.overheads[0];
        assert_eq!(trace.names.get(o.name), "CUPTI Buffer Flush");
        assert_eq!((o.start, o.end, o.pid, o.tid), (5, 6, 3, 4));
        assert_eq!(trace.info.unknown_records, 2);
        assert_eq!(d.unknown_records(), 0);
    }

    #[test]
    fn devices_and_thread_names_outlive_the_window() {
        let gpu = CString::new("NVIDIA H100 80GB HBM3").unwrap();
        let mut r: CUpti_ActivityDevice5 = zeroed();
        r.kind = CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_DEVICE;
        r.id = 0;
        r.name = gpu.as_ptr();
        r.globalMemorySize = 80 << 30;
        r.computeCapabilityMajor = 9;
        r.computeCapabilityMinor = 0;
        r.maxThreadsPerBlock = 1024;
        r.maxWarpsPerMultiprocessor = 64;
        r.numThreadsPerWarp = 32;
        r.maxRegistersPerBlock = 65536;
        r.maxSharedMemoryPerBlock = 49152;
        r.numMultiprocessors = 132;
        r.maxRegistersPerMultiprocessor = 65536;
        r.maxSharedMemoryPerMultiprocessor = 233472;
        let thread = CString::new("worker").unwrap();
        let mut n: CUpti_ActivityName = zeroed();
        n.kind = CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_NAME;
        n.objectKind = CUpti_ActivityObjectKind::CUPTI_ACTIVITY_OBJECT_THREAD;
        n.objectId.pt.processId = 1;
        n.objectId.pt.threadId = 2;
        n.name = thread.as_ptr();

        let mut d = decoder();
        feed(&mut d, &r);
        feed(&mut d, &n);
        let first = d.finish_window();
        let second = d.finish_window();
        let expected = Device {
            id: 0,
            name: "NVIDIA H100 80GB HBM3".into(),
            total_global_mem: 80 << 30,
            compute_major: 9,
            compute_minor: 0,
            max_threads_per_block: 1024,
            max_threads_per_multiprocessor: 2048,
            regs_per_block: 65536,
            warp_size: 32,
            shared_mem_per_block: 49152,
            num_sms: 132,
            regs_per_multiprocessor: 65536,
            shared_mem_per_block_optin: 0,
            shared_mem_per_multiprocessor: 233472,
        };
        for trace in [&first, &second] {
            assert_eq!(trace.devices, vec![expected.clone()]);
            assert_eq!(
                trace.threads,
                vec![ThreadName {
                    pid: 1,
                    tid: 2,
                    name: "worker".into()
                }]
            );
        }
    }

    #[test]
    fn a_window_starts_empty() {
        let name = CString::new("k").unwrap();
        let mut d = decoder();
        feed(&mut d, &kernel_record(&name, 1, 1));
        d.discard_window();
        feed(&mut d, &kernel_record(&name, 2, 1));
        let trace = d.finish_window();
        assert_eq!(trace.kernels.len(), 1);
        assert_eq!(trace.kernels[0].correlation, 2);
        assert_eq!(trace.names.get(trace.kernels[0].name), "k");
        assert_eq!(trace.config(trace.kernels[0].config).grid, [4, 5, 6]);
    }

    #[test]
    fn version_suffixes_are_stripped() {
        assert_eq!(
            strip_version_suffix("cudaLaunchKernel_v7000"),
            "cudaLaunchKernel"
        );
        assert_eq!(strip_version_suffix("cuMemcpyHtoD_v2"), "cuMemcpyHtoD");
        assert_eq!(strip_version_suffix("cudaMalloc"), "cudaMalloc");
        assert_eq!(strip_version_suffix("cuda_vx"), "cuda_vx");
        assert_eq!(strip_version_suffix("_v2"), "_v2");
        assert_eq!(strip_version_suffix("cuFoo_v"), "cuFoo_v");
    }
}
