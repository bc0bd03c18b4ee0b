//! The figures themselves: plain data, serializable, with every time in integer
//! nanoseconds. Text, `--format json` and any later rendering are made from these
//! and compute nothing of their own.

use cutrace_tracer::model::{NameId, Names};
use serde::Serialize;

use crate::ranks;

/// Where a trace's rank came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RankSource {
    /// The file's `distributedInfo` (or the process itself, for a trace in memory).
    DistributedInfo,
    /// Its place in the list of traces, for a file that names no rank.
    FileOrder,
}

/// A GPU the trace's work ran on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gpu {
    /// Device index.
    pub device: u32,
    /// Its name from `deviceProperties`; empty when the trace has none.
    pub name: String,
}

/// What the GPUs did over the trace's span: the time covered by each kind of work.
/// The kinds may overlap each other (work on several streams), never `busy_ns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct GpuTime {
    /// From the first event of any kind (host or GPU) to the end of the last.
    pub span_ns: i64,
    /// Time some kernel, copy, memset or graph launch ran.
    pub busy_ns: i64,
    /// Time some computation ran (graph launches without their nodes count here).
    pub computation_ns: i64,
    /// Time some communication kernel ran.
    pub communication_ns: i64,
    /// Time some copy or memset ran.
    pub memory_ns: i64,
    /// Time some other kernel ran (see [`WorkClass::Other`](crate::WorkClass::Other)).
    pub other_ns: i64,
    /// `span_ns - busy_ns`.
    pub idle_ns: i64,
}

/// HolisticTraceAnalysis's `get_temporal_breakdown` of one rank, over the events HTA
/// takes for GPU work: kernels, copies, memsets, graph launches and the
/// synchronizations that name a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct TemporalBreakdown {
    /// From the start of the first of those events to the end of the last
    /// (HTA's `kernel_time`).
    pub kernel_time_ns: i64,
    /// The part of it no event covers.
    pub idle_ns: i64,
    /// The part some computation covers.
    pub compute_ns: i64,
    /// The rest: `kernel_time_ns - idle_ns - compute_ns`.
    pub non_compute_ns: i64,
}

/// HolisticTraceAnalysis's `get_comm_comp_overlap` of one rank: how much of the
/// communication time had computation running beside it.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct CommCompOverlap {
    /// Time some communication kernel ran.
    pub communication_ns: i64,
    /// The part of it in which some computation ran too.
    pub overlapped_ns: i64,
    /// `overlapped_ns / communication_ns`; `None` without communication.
    pub ratio: Option<f64>,
}

/// GPU time launched in one iteration of one trace (as the single-trace report's
/// "GPU time per iteration" counts it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct IterationGpu {
    /// Iteration number.
    pub number: u64,
    /// Wall time of the iteration.
    pub duration_ns: i64,
    /// Summed duration of the GPU work launched in it (its launch call is in the
    /// trace and starts inside the iteration).
    pub gpu_ns: i64,
    /// Number of those GPU events.
    pub gpu_events: u64,
    /// Summed duration of the GPU work that started in the iteration but whose
    /// launch the trace does not hold.
    pub unlaunched_gpu_ns: i64,
}

/// The summed time of one kernel name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KernelTotal {
    /// Kernel name.
    pub name: String,
    /// Launches.
    pub calls: u64,
    /// Summed duration.
    pub total_ns: i64,
}

impl KernelTotal {
    /// Totals by name, the longest first (ties by name, for a stable order).
    pub(crate) fn ranked(
        totals: impl IntoIterator<Item = (NameId, (u64, i64))>,
        names: &Names,
    ) -> Vec<KernelTotal> {
        let mut kernels: Vec<KernelTotal> = totals
            .into_iter()
            .map(|(name, (calls, total_ns))| KernelTotal {
                name: names.get(name).to_owned(),
                calls,
                total_ns,
            })
            .collect();
        kernels.sort_by(|a, b| {
            b.total_ns
                .cmp(&a.total_ns)
                .then_with(|| a.name.cmp(&b.name))
        });
        kernels
    }
}

/// How a trace told its CUDA graph launches apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GraphSource {
    /// Each node's kernel, with its graph id (cutrace's node mode).
    Nodes,
    /// One slice per launch (cutrace's graph mode): no kernels are known.
    GraphLaunches,
    /// The GPU work correlated to `cudaGraphLaunch` calls, without graph ids (torch's
    /// traces): launches that ran the same kernels in the same order are one graph.
    LaunchCalls,
}

/// The figures of one CUDA graph. A launch's time is its span on the GPU, from the
/// start of its first node to the end of its last.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GraphFigures {
    /// CUDA graph id; `None` when the trace has none (see [`GraphSource::LaunchCalls`]).
    pub id: Option<u32>,
    /// `graph <id>`, or `graph #<n>` numbered by first launch without an id.
    pub label: String,
    /// How the launches were found.
    pub source: GraphSource,
    /// Number of launches.
    pub launches: u64,
    /// Summed time of all launches.
    pub total_ns: i64,
    /// Mean time per launch.
    pub mean_ns: i64,
    /// Shortest launch.
    pub min_ns: i64,
    /// Longest launch.
    pub max_ns: i64,
    /// Mean number of kernels per launch; `None` when no kernel is known.
    pub kernels_per_launch: Option<f64>,
    /// The node kernels by name, most total time first.
    pub kernels: Vec<KernelTotal>,
}

/// What the trace says about how it was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Recording {
    /// CUPTI API version; 0 when the trace does not say.
    pub cupti_version: u32,
    /// CUDA driver version (`1000 * major + 10 * minor`); 0 when the trace does not say.
    pub cuda_driver_version: u32,
    /// CUDA runtime version, in the same form; 0 when the trace does not say.
    pub cuda_runtime_version: u32,
    /// Events of every kind, host and GPU.
    pub events: u64,
    /// Records CUPTI dropped for want of buffer space.
    pub dropped_records: u64,
    /// Buffer requests cutrace's pool refused.
    pub refused_buffers: u64,
}

/// The summed duration and count of each kind of GPU work. Work on several
/// streams at once counts once per event, as the key-averages table counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct KindTimes {
    /// Kernels' summed duration.
    pub kernel_ns: i64,
    /// Kernels.
    pub kernels: u64,
    /// Copies' summed duration.
    pub memcpy_ns: i64,
    /// Copies.
    pub memcpys: u64,
    /// Memsets' summed duration.
    pub memset_ns: i64,
    /// Memsets.
    pub memsets: u64,
    /// Whole-graph launches' summed duration (graph mode).
    pub graph_ns: i64,
    /// Whole-graph launches.
    pub graphs: u64,
}

/// How busy the GPU work kept something over the trace's span, cut into equal
/// bins: the time of each bin some work covered.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Timeline {
    /// Start of the first bin, ns since the Unix epoch (the trace's `start_ns`).
    pub start_ns: i64,
    /// Width of every bin; 0 when the span is empty.
    pub bin_ns: i64,
    /// Busy time in each bin, never more than `bin_ns`; the last bin may reach
    /// past the span's end.
    pub busy_ns: Vec<i64>,
}

/// One stream's GPU work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StreamFigures {
    /// Device index.
    pub device: u32,
    /// CUDA stream id.
    pub stream: u32,
    /// Kernels, copies, memsets and graph launches on it.
    pub events: u64,
    /// Time some of them ran.
    pub busy_ns: i64,
    /// That time over the trace's span, in the bins of the trace's timeline.
    pub timeline: Vec<i64>,
}

/// The figures of one trace.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceFigures {
    /// The file, as it was given.
    pub file: String,
    /// Rank.
    pub rank: u32,
    /// Where the rank came from.
    pub rank_source: RankSource,
    /// Worker name.
    pub worker: String,
    /// Host name; empty when the trace does not say.
    pub host: String,
    /// Window number in its process; 0 when the trace does not say.
    pub window: u32,
    /// Start of the trace's first event, ns since the Unix epoch.
    pub start_ns: i64,
    /// GPUs the work ran on.
    pub gpus: Vec<Gpu>,
    /// Versions, event count and lost records.
    pub recording: Recording,
    /// What the GPUs did.
    pub gpu_time: GpuTime,
    /// GPU time by kind of work.
    pub kinds: KindTimes,
    /// When some GPU work ran, over the span.
    pub timeline: Timeline,
    /// Each stream's work, by device and stream id.
    pub streams: Vec<StreamFigures>,
    /// HTA's temporal breakdown.
    pub temporal_breakdown: TemporalBreakdown,
    /// HTA's communication-computation overlap.
    pub comm_comp_overlap: CommCompOverlap,
    /// GPU time per iteration, in order.
    pub iterations: Vec<IterationGpu>,
    /// Kernels by name, most total time first.
    pub kernels: Vec<KernelTotal>,
    /// CUDA graphs, most total time first.
    pub graphs: Vec<GraphFigures>,
}

/// One rank's GPU time in one iteration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RankGpu {
    /// Index of the trace in [`Figures::traces`].
    pub trace: usize,
    /// Its rank.
    pub rank: u32,
    /// GPU time launched in the iteration.
    pub gpu_ns: i64,
}

/// One iteration across the traces that recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IterationAcrossRanks {
    /// Iteration number.
    pub number: u64,
    /// Each trace's GPU time, in the order of the traces.
    pub ranks: Vec<RankGpu>,
    /// The median of those (the mean of the middle two for an even count, rounded
    /// down).
    pub median_ns: i64,
    /// The slowest: the most GPU time (the first such trace on a tie).
    pub slowest: RankGpu,
    /// How much more the slowest took than the median.
    pub excess_ns: i64,
}

/// How one kernel's total time differs between traces (0 where it did not run).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KernelSpread {
    /// Kernel name.
    pub name: String,
    /// Each trace's total, in the order of the traces.
    pub totals_ns: Vec<i64>,
    /// The smallest total, and the first trace that has it.
    pub min: RankGpu,
    /// The largest total, and the first trace that has it.
    pub max: RankGpu,
    /// `max - min`.
    pub spread_ns: i64,
}

/// A trace that could not be read, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// The file.
    pub file: String,
    /// The error, as one line.
    pub error: String,
}

/// The report over several traces: each one's figures and how they compare.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    /// Every trace read, in the order given.
    pub traces: Vec<TraceFigures>,
    /// Iterations by number, each with its stragglers.
    pub iterations: Vec<IterationAcrossRanks>,
    /// Kernels by how much their totals differ between traces, most first.
    pub kernel_spread: Vec<KernelSpread>,
    /// Traces that could not be read.
    pub skipped: Vec<Skipped>,
}

impl Figures {
    /// The report over `traces` (given in order), with the files that were skipped.
    pub fn new(traces: Vec<TraceFigures>, skipped: Vec<Skipped>) -> Figures {
        Figures {
            iterations: ranks::iterations(&traces),
            kernel_spread: ranks::kernel_spread(&traces),
            traces,
            skipped,
        }
    }
}
