//! The plain-data trace model: what one finished window holds.
//!
//! Nothing here touches FFI, so the exporter and `cutrace report` work on machines
//! without CUDA. Every time is an absolute timestamp in nanoseconds on one clock
//! (CUPTI's, which counts from the Unix epoch); [`Trace::base_time_ns`] is the origin
//! the writer makes every `ts` relative to.
//!
//! Events are kept per kind in compact vectors rather than one big enum: a kernel is
//! the most numerous event by far and must stay small (64 bytes), so its names and
//! launch configuration are interned ([`Names`], [`LaunchConfig`]).

use std::sync::Arc;

use rustc_hash::FxHashMap;

/// Index of an interned string in [`Names`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct NameId(pub u32);

/// Interned strings: kernel names, API names, range names, categories.
///
/// Each string is held once, shared by the list and the index: a trace read from
/// a file may hold millions of distinct names.
#[derive(Debug, Clone, Default)]
pub struct Names {
    strings: Vec<Arc<str>>,
    index: FxHashMap<Arc<str>, NameId>,
}

impl Names {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The id of `s`, adding it on first sight.
    pub fn intern(&mut self, s: &str) -> NameId {
        if let Some(&id) = self.index.get(s) {
            return id;
        }
        let id = NameId(u32::try_from(self.strings.len()).unwrap_or(u32::MAX));
        let shared: Arc<str> = s.into();
        self.strings.push(Arc::clone(&shared));
        self.index.insert(shared, id);
        id
    }

    /// The id of `s` if it was interned.
    pub fn find(&self, s: &str) -> Option<NameId> {
        self.index.get(s).copied()
    }

    /// The string behind `id` ("" for an id this table never handed out).
    pub fn get(&self, id: NameId) -> &str {
        self.strings.get(id.0 as usize).map_or("", |s| s)
    }

    /// Number of distinct strings.
    pub fn len(&self) -> usize {
        self.strings.len()
    }

    /// Whether no string was interned yet.
    pub fn is_empty(&self) -> bool {
        self.strings.is_empty()
    }
}

/// Grid, block and resource use of a kernel launch, interned because a kernel is
/// launched many times with the same configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct LaunchConfig {
    /// Grid dimensions (blocks).
    pub grid: [u32; 3],
    /// Block dimensions (threads).
    pub block: [u32; 3],
    /// Registers per thread.
    pub registers_per_thread: u32,
    /// Static shared memory per block, bytes.
    pub static_shared_memory: u32,
    /// Dynamic shared memory per block, bytes.
    pub dynamic_shared_memory: u32,
}

/// Index of an interned [`LaunchConfig`] in [`Trace::launch_configs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ConfigId(pub u32);

/// One kernel execution on the GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Kernel {
    /// Start on the GPU, ns.
    pub start: i64,
    /// End on the GPU, ns.
    pub end: i64,
    /// When the launch was queued (latency timestamps), ns; 0 when unknown.
    pub queued: i64,
    /// Node of the CUDA graph it was launched from; 0 when not from a graph.
    pub graph_node_id: u64,
    /// CUPTI correlation id linking it to its launch call.
    pub correlation: u64,
    /// Demangled kernel name.
    pub name: NameId,
    /// Launch configuration.
    pub config: ConfigId,
    /// CUDA stream id.
    pub stream: u32,
    /// CUDA context id.
    pub context: u32,
    /// CUDA graph id; 0 when not from a graph.
    pub graph_id: u32,
    /// Device index.
    pub device: u32,
}

/// Direction of a memory copy (CUPTI's `CUpti_ActivityMemcpyKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CopyKind {
    /// Host to device.
    HtoD,
    /// Device to host.
    DtoH,
    /// Host to array.
    HtoA,
    /// Array to host.
    AtoH,
    /// Array to array.
    AtoA,
    /// Array to device.
    AtoD,
    /// Device to array.
    DtoA,
    /// Device to device on one device.
    DtoD,
    /// Host to host.
    HtoH,
    /// Peer to peer, between devices.
    PtoP,
    /// A kind this version does not know.
    #[default]
    Unknown,
}

impl CopyKind {
    /// The short name torch uses in `Memcpy <kind> (...)`.
    pub fn as_str(self) -> &'static str {
        match self {
            CopyKind::HtoD => "HtoD",
            CopyKind::DtoH => "DtoH",
            CopyKind::HtoA => "HtoA",
            CopyKind::AtoH => "AtoH",
            CopyKind::AtoA => "AtoA",
            CopyKind::AtoD => "AtoD",
            CopyKind::DtoA => "DtoA",
            CopyKind::DtoD => "DtoD",
            CopyKind::HtoH => "HtoH",
            CopyKind::PtoP => "PtoP",
            CopyKind::Unknown => "Unknown",
        }
    }
}

/// Kind of memory at one end of a copy or under a memset (`CUpti_ActivityMemoryKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MemoryKind {
    /// Unknown.
    #[default]
    Unknown,
    /// Pageable host memory.
    Pageable,
    /// Pinned host memory.
    Pinned,
    /// Device memory.
    Device,
    /// CUDA array.
    Array,
    /// Managed (unified) memory.
    Managed,
    /// Device-static memory.
    DeviceStatic,
    /// Managed static memory.
    ManagedStatic,
}

impl MemoryKind {
    /// The name torch prints in `Memcpy HtoD (Pageable -> Device)`.
    pub fn as_str(self) -> &'static str {
        match self {
            MemoryKind::Unknown => "Unknown",
            MemoryKind::Pageable => "Pageable",
            MemoryKind::Pinned => "Pinned",
            MemoryKind::Device => "Device",
            MemoryKind::Array => "Array",
            MemoryKind::Managed => "Managed",
            MemoryKind::DeviceStatic => "Device Static",
            MemoryKind::ManagedStatic => "Managed Static",
        }
    }
}

/// One memory copy on the GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Memcpy {
    /// Start, ns.
    pub start: i64,
    /// End, ns.
    pub end: i64,
    /// Bytes copied.
    pub bytes: u64,
    /// Correlation id of the call that issued it.
    pub correlation: u64,
    /// Direction.
    pub kind: CopyKind,
    /// Memory kind of the source.
    pub src_kind: MemoryKind,
    /// Memory kind of the destination.
    pub dst_kind: MemoryKind,
    /// Device index that executed the copy.
    pub device: u32,
    /// Source device (peer copies), else the same as `device`.
    pub src_device: u32,
    /// Destination device (peer copies), else the same as `device`.
    pub dst_device: u32,
    /// CUDA context id.
    pub context: u32,
    /// CUDA stream id.
    pub stream: u32,
    /// CUDA graph node id, 0 when not from a graph.
    pub graph_node_id: u64,
    /// The name the event had in the file it was read from, printed as written
    /// (`Memcpy HtoD (Host -> Device)` names a kind CUPTI lacks); `None` for
    /// CUPTI's records, which are named from their kinds.
    pub name: Option<NameId>,
}

/// One memset on the GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Memset {
    /// Start, ns.
    pub start: i64,
    /// End, ns.
    pub end: i64,
    /// Bytes set.
    pub bytes: u64,
    /// Correlation id of the call that issued it.
    pub correlation: u64,
    /// Kind of memory set.
    pub memory_kind: MemoryKind,
    /// Device index.
    pub device: u32,
    /// CUDA context id.
    pub context: u32,
    /// CUDA stream id.
    pub stream: u32,
    /// CUDA graph node id, 0 when not from a graph.
    pub graph_node_id: u64,
    /// The name the event had in the file it was read from, printed as written
    /// (`Memcpy HtoD (Host -> Device)` names a kind CUPTI lacks); `None` for
    /// CUPTI's records, which are named from their kinds.
    pub name: Option<NameId>,
}

/// Which CUDA API a host call belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ApiKind {
    /// CUDA runtime API (`cuda*`).
    #[default]
    Runtime,
    /// CUDA driver API (`cu*`).
    Driver,
}

/// Whether a runtime or driver call of this name launches a CUDA graph.
pub fn launches_a_graph(name: &str) -> bool {
    name.starts_with("cudaGraphLaunch") || name.starts_with("cuGraphLaunch")
}

/// One CUDA runtime or driver API call on a host thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ApiCall {
    /// Entry, ns.
    pub start: i64,
    /// Exit, ns.
    pub end: i64,
    /// Correlation id shared with the GPU work it issued.
    pub correlation: u64,
    /// External correlation id (our annotation or the framework's op), 0 when none.
    pub external_id: u64,
    /// Function name, without version suffix (`cudaLaunchKernel`).
    pub name: NameId,
    /// Runtime or driver.
    pub kind: ApiKind,
    /// CUPTI callback id.
    pub cbid: u32,
    /// OS process id.
    pub pid: u32,
    /// OS thread id.
    pub tid: u32,
}

/// What a synchronization waited for (`CUpti_ActivitySynchronizationType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SyncKind {
    /// Unknown.
    #[default]
    Unknown,
    /// `cudaEventSynchronize`.
    EventSync,
    /// `cudaStreamWaitEvent`.
    StreamWaitEvent,
    /// `cudaStreamSynchronize`.
    StreamSync,
    /// `cudaDeviceSynchronize` / context synchronize.
    ContextSync,
}

impl SyncKind {
    /// The event name in the trace (`Stream Sync`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            SyncKind::Unknown => "Unknown Sync",
            SyncKind::EventSync => "Event Sync",
            SyncKind::StreamWaitEvent => "Stream Wait Event",
            SyncKind::StreamSync => "Stream Sync",
            SyncKind::ContextSync => "Context Sync",
        }
    }
}

/// A host-side wait on the GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Synchronization {
    /// Start, ns.
    pub start: i64,
    /// End, ns.
    pub end: i64,
    /// Correlation id of the API call that waited.
    pub correlation: u64,
    /// What was waited for.
    pub kind: SyncKind,
    /// Stream waited on (`u32::MAX` when not a stream wait).
    pub stream: u32,
    /// CUDA context id.
    pub context: u32,
    /// Device index.
    pub device: u32,
    /// CUDA event id (event syncs), else 0.
    pub cuda_event: u32,
    /// OS process id of the waiting thread.
    pub pid: u32,
    /// OS thread id of the waiting thread.
    pub tid: u32,
    /// The name the event had in the file it was read from, printed as written
    /// (`Memcpy HtoD (Host -> Device)` names a kind CUPTI lacks); `None` for
    /// CUPTI's records, which are named from their kinds.
    pub name: Option<NameId>,
}

/// Where a host range came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RangeKind {
    /// `Profiler::annotate` or the C ABI's range push/pop.
    #[default]
    Annotation,
    /// An NVTX push/pop or start/end range.
    Nvtx,
    /// A framework operator read from another tracer's file (torch's `cpu_op`).
    CpuOp,
    /// A framework-level user annotation read from another tracer's file.
    UserAnnotation,
    /// Any other host slice read from another tracer's file (`python_function`, ...).
    Other,
}

/// A named span of host time on one thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HostRange {
    /// Start, ns.
    pub start: i64,
    /// End, ns.
    pub end: i64,
    /// Range name.
    pub name: NameId,
    /// Category as read from a file (`cpu_op`, ...); for our own ranges the
    /// category of [`RangeKind`].
    pub category: NameId,
    /// Source of the range.
    pub kind: RangeKind,
    /// External correlation id it pushed (annotations), or the framework's op id.
    pub external_id: u64,
    /// OS process id.
    pub pid: u32,
    /// OS thread id.
    pub tid: u32,
}

/// One launch of a whole CUDA graph (graph-level mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GraphLaunch {
    /// Start of the first node's work, ns.
    pub start: i64,
    /// End of the last node's work, ns.
    pub end: i64,
    /// Correlation id of the `cudaGraphLaunch` call.
    pub correlation: u64,
    /// CUDA graph id.
    pub graph_id: u32,
    /// Device index.
    pub device: u32,
    /// CUDA context id.
    pub context: u32,
    /// CUDA stream id.
    pub stream: u32,
}

/// Time CUPTI itself spent (buffer flushes, resource handling).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Overhead {
    /// Start, ns.
    pub start: i64,
    /// End, ns.
    pub end: i64,
    /// Overhead kind as CUPTI names it.
    pub name: NameId,
    /// OS process id.
    pub pid: u32,
    /// OS thread id.
    pub tid: u32,
}

/// Static properties of one GPU (the trace's `deviceProperties`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Device {
    /// Device index.
    pub id: u32,
    /// Marketing name (`NVIDIA H100 80GB HBM3`).
    pub name: String,
    /// Global memory, bytes.
    pub total_global_mem: u64,
    /// Compute capability, major.
    pub compute_major: u32,
    /// Compute capability, minor.
    pub compute_minor: u32,
    /// Maximum threads per block.
    pub max_threads_per_block: u32,
    /// Maximum threads per multiprocessor.
    pub max_threads_per_multiprocessor: u32,
    /// Registers per block.
    pub regs_per_block: u32,
    /// Threads per warp.
    pub warp_size: u32,
    /// Shared memory per block, bytes.
    pub shared_mem_per_block: u64,
    /// Number of multiprocessors.
    pub num_sms: u32,
    /// Registers per multiprocessor.
    pub regs_per_multiprocessor: u32,
    /// Shared memory per block with opt-in, bytes.
    pub shared_mem_per_block_optin: u64,
    /// Shared memory per multiprocessor, bytes.
    pub shared_mem_per_multiprocessor: u64,
}

/// A host thread's name, for the trace's `thread_name` metadata.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ThreadName {
    /// OS process id.
    pub pid: u32,
    /// OS thread id.
    pub tid: u32,
    /// Thread name (`python3`, `pt_main_thread`).
    pub name: String,
}

/// One recorded iteration: the span between two `step()` calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Iteration {
    /// Iteration number, counted from 1 at `start()`.
    pub number: u64,
    /// Start, ns.
    pub start: i64,
    /// End, ns.
    pub end: i64,
}

/// Facts about the run that wrote the trace, for the file's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TraceInfo {
    /// Worker name used in the file name (`<hostname>_<pid>` by default).
    pub worker_name: String,
    /// Distributed rank.
    pub rank: u32,
    /// Distributed world size.
    pub world_size: u32,
    /// Whether the rank is known: always in a trace cutrace recorded; in a file read
    /// back, whether its `distributedInfo` names one. Reports over several traces
    /// number the others by their order.
    pub rank_known: bool,
    /// Host name.
    pub host_name: String,
    /// OS process id of the traced process.
    pub pid: u32,
    /// Name of the traced process.
    pub process_name: String,
    /// CUPTI API version (`cuptiGetVersion`), 0 when unknown.
    pub cupti_version: u32,
    /// CUDA driver version (`cuDriverGetVersion`), 0 when unknown.
    pub cuda_driver_version: u32,
    /// CUDA runtime version, 0 when unknown.
    pub cuda_runtime_version: u32,
    /// Number of the window in this process, from 1.
    pub window: u32,
    /// Records CUPTI dropped in this window for want of buffer space, as
    /// `cuptiActivityGetNumDroppedRecords` counts them: those it could not write
    /// because a buffer request was refused (the pool was full), and device-side
    /// records that overflowed CUPTI's own device buffer. The exact count of lost
    /// records.
    pub dropped_records: u64,
    /// Buffer requests the pool refused in this window because every buffer was
    /// lent. Not a record count: CUPTI may drop many records (or none) per refusal.
    pub refused_buffers: u64,
    /// Records of kinds this version does not decode, skipped.
    pub unknown_records: u64,
    /// GPU records handed over before their work finished (no end time yet when the
    /// window was flushed), skipped.
    pub incomplete_records: u64,
    /// Version of the tool that wrote the trace.
    pub tracer_version: String,
}

/// One finished window: every event recorded in it, on one clock.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    /// Run and window facts.
    pub info: TraceInfo,
    /// Origin of the file's relative times, ns since the Unix epoch.
    pub base_time_ns: i64,
    /// Interned strings.
    pub names: Names,
    /// Interned kernel launch configurations.
    pub launch_configs: Vec<LaunchConfig>,
    /// GPUs seen.
    pub devices: Vec<Device>,
    /// Host thread names.
    pub threads: Vec<ThreadName>,
    /// Recorded iterations, in order.
    pub iterations: Vec<Iteration>,
    /// Kernels.
    pub kernels: Vec<Kernel>,
    /// Memory copies.
    pub memcpys: Vec<Memcpy>,
    /// Memsets.
    pub memsets: Vec<Memset>,
    /// Runtime and driver API calls.
    pub api_calls: Vec<ApiCall>,
    /// Host waits on the GPU.
    pub syncs: Vec<Synchronization>,
    /// Annotations, NVTX ranges and framework ops.
    pub ranges: Vec<HostRange>,
    /// Whole-graph launches (graph-level mode).
    pub graph_launches: Vec<GraphLaunch>,
    /// CUPTI overhead.
    pub overheads: Vec<Overhead>,
}

impl Trace {
    /// The launch configuration behind `id` (all zero for an unknown id).
    pub fn config(&self, id: ConfigId) -> LaunchConfig {
        self.launch_configs
            .get(id.0 as usize)
            .copied()
            .unwrap_or_default()
    }

    /// The id of `config`, adding it on first sight.
    pub fn intern_config(&mut self, config: LaunchConfig) -> ConfigId {
        // Linear search: a window holds a few hundred distinct configurations at most,
        // and the decoder keeps its own map on the hot path.
        if let Some(i) = self.launch_configs.iter().position(|c| *c == config) {
            return ConfigId(i as u32);
        }
        self.launch_configs.push(config);
        ConfigId((self.launch_configs.len() - 1) as u32)
    }

    /// Total number of events of every kind.
    pub fn event_count(&self) -> usize {
        self.kernels.len()
            + self.memcpys.len()
            + self.memsets.len()
            + self.api_calls.len()
            + self.syncs.len()
            + self.ranges.len()
            + self.graph_launches.len()
            + self.overheads.len()
    }
}

/// Receives each finished window; the exporter implements it.
pub trait TraceSink: Send + Sync {
    /// Takes one finished window. Called on a background thread, never the host's.
    ///
    /// An error becomes the warning `window <N>: <error>: <its causes>`, so it says
    /// what was and was not written ("the trace was not written", and why).
    fn window_finished(&self, trace: Trace)
    -> Result<(), Box<dyn std::error::Error + Send + Sync>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_event_fits_in_64_bytes() {
        assert!(
            std::mem::size_of::<Kernel>() <= 64,
            "{}",
            std::mem::size_of::<Kernel>()
        );
    }

    #[test]
    fn names_are_interned_once() {
        let mut names = Names::new();
        let a = names.intern("gemm");
        let b = names.intern("relu");
        assert_eq!(names.intern("gemm"), a);
        assert_ne!(a, b);
        assert_eq!(names.get(b), "relu");
        assert_eq!(names.len(), 2);
        assert_eq!(names.get(NameId(99)), "");
    }

    #[test]
    fn configs_are_interned_once() {
        let mut trace = Trace::default();
        let c = LaunchConfig {
            grid: [1, 2, 3],
            ..Default::default()
        };
        let id = trace.intern_config(c);
        assert_eq!(trace.intern_config(c), id);
        assert_eq!(trace.config(id), c);
        assert_eq!(trace.config(ConfigId(7)), LaunchConfig::default());
    }
}
