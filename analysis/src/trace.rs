//! The figures of one trace, accumulated event by event ([`TraceAccumulator`]): the
//! time each kind of GPU work covered, HolisticTraceAnalysis's temporal breakdown and
//! communication-computation overlap, the GPU time of each iteration, the kernels'
//! totals and the CUDA graphs.
//!
//! The accumulator keeps, per GPU event, only what the figures need (times, class,
//! correlation, graph id, name id), and per launch call its correlation and start;
//! the unions and the attribution to iterations are made when it finishes. A reader
//! can feed it while it reads; [`measure`] feeds it a whole trace, whose GPU work
//! it then reads where it lies instead of keeping a copy.

use std::collections::BTreeMap;

use cutrace_exporter::{InIteration, IterationOf};
use cutrace_tracer::Trace;
use cutrace_tracer::model::{
    ApiCall, GraphLaunch, Iteration, Kernel, Memcpy, Memset, NameId, Names, Synchronization,
    launches_a_graph,
};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::classify::WorkClass;
use crate::figures::{
    CommCompOverlap, Gpu, GpuTime, IterationGpu, KernelTotal, KindTimes, RankSource, Recording,
    StreamFigures, TemporalBreakdown, Timeline, TraceFigures,
};
use crate::graphs;
use crate::intervals::Intervals;

/// What a GPU event was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WorkKind {
    Kernel,
    Copy,
    GraphLaunch,
}

/// One GPU event, reduced to what the figures need.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Work {
    pub(crate) start: i64,
    pub(crate) end: i64,
    pub(crate) correlation: u64,
    pub(crate) graph_id: u32,
    pub(crate) name: NameId,
    pub(crate) kind: WorkKind,
    pub(crate) class: WorkClass,
    pub(crate) device: u32,
    pub(crate) stream: u32,
}

impl Work {
    fn of_kernel(k: &Kernel, class: WorkClass) -> Work {
        Work {
            start: k.start,
            end: k.end,
            correlation: k.correlation,
            graph_id: k.graph_id,
            name: k.name,
            kind: WorkKind::Kernel,
            class,
            device: k.device,
            stream: k.stream,
        }
    }

    fn of_copy(start: i64, end: i64, correlation: u64, (device, stream): (u32, u32)) -> Work {
        // Their names start with `Memcpy` or `Memset`: memory, by HTA's rule too.
        Work {
            start,
            end,
            correlation,
            graph_id: 0,
            name: NameId::default(),
            kind: WorkKind::Copy,
            class: WorkClass::Memory,
            device,
            stream,
        }
    }

    fn of_memcpy(m: &Memcpy) -> Work {
        Work::of_copy(m.start, m.end, m.correlation, (m.device, m.stream))
    }

    fn of_memset(m: &Memset) -> Work {
        Work::of_copy(m.start, m.end, m.correlation, (m.device, m.stream))
    }

    fn of_graph_launch(g: &GraphLaunch) -> Work {
        // Named `Graph <id>` in the file, which HTA's rule counts as computation.
        Work {
            start: g.start,
            end: g.end,
            correlation: g.correlation,
            graph_id: g.graph_id,
            name: NameId::default(),
            kind: WorkKind::GraphLaunch,
            class: WorkClass::Computation,
            device: g.device,
            stream: g.stream,
        }
    }
}

/// Number of bins in a trace's [`Timeline`]: enough to see phases and gaps in a
/// strip across a page, few enough that a report over many ranks stays small.
pub const TIMELINE_BINS: usize = 120;

/// Gathers one trace's events; [`TraceAccumulator::finish`] gives its figures.
#[derive(Debug)]
pub struct TraceAccumulator<'t> {
    classes: FxHashMap<NameId, WorkClass>,
    work: Vec<Work>,
    /// The trace whose GPU work is read where it lies rather than copied into
    /// `work` ([`measure`]'s: a copy of millions of events would be most of a
    /// report's memory).
    in_trace: Option<&'t Trace>,
    /// Synchronizations on a stream, which HTA counts among the GPU's events.
    syncs: Vec<(i64, i64, WorkClass)>,
    graph_calls: FxHashSet<u64>,
    /// Each launch call's correlation and start.
    launches: Vec<(u64, i64)>,
    iterations: Vec<Iteration>,
    /// Calls and summed time per kernel name.
    kernel_totals: FxHashMap<NameId, (u64, i64)>,
    kinds: KindTimes,
    devices: Vec<u32>,
    first: i64,
    last: i64,
}

/// What [`TraceAccumulator::finish`] measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    /// Start of the first event, ns; 0 without events.
    pub start_ns: i64,
    /// Devices the GPU work ran on, in order.
    pub devices: Vec<u32>,
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
    /// Kernels by name, most total time first (then by name).
    pub kernels: Vec<KernelTotal>,
    /// The CUDA graphs.
    pub graphs: Vec<crate::GraphFigures>,
}

impl Default for TraceAccumulator<'_> {
    fn default() -> Self {
        TraceAccumulator {
            classes: FxHashMap::default(),
            work: Vec::new(),
            in_trace: None,
            syncs: Vec::new(),
            graph_calls: FxHashSet::default(),
            launches: Vec::new(),
            iterations: Vec::new(),
            kernel_totals: FxHashMap::default(),
            kinds: KindTimes::default(),
            devices: Vec::new(),
            // No event yet: the span is empty until one widens it.
            first: i64::MAX,
            last: i64::MIN,
        }
    }
}

impl<'t> TraceAccumulator<'t> {
    /// An accumulator that has seen nothing.
    pub fn new() -> Self {
        TraceAccumulator::default()
    }

    /// An accumulator to be fed the events of `trace`, whose GPU work it then
    /// reads where it lies.
    fn over(trace: &'t Trace) -> Self {
        TraceAccumulator {
            in_trace: Some(trace),
            ..TraceAccumulator::default()
        }
    }

    /// The GPU work taken, in the order it was taken.
    fn work(&self) -> impl Iterator<Item = Work> + Clone + '_ {
        let in_trace = self.in_trace.into_iter().flat_map(move |t| {
            // Every kernel's class was found as it was taken.
            let class = move |k: &Kernel| self.classes.get(&k.name).copied();
            let kernels = t
                .kernels
                .iter()
                .map(move |k| Work::of_kernel(k, class(k).unwrap_or(WorkClass::Other)));
            kernels
                .chain(t.memcpys.iter().map(Work::of_memcpy))
                .chain(t.memsets.iter().map(Work::of_memset))
                .chain(t.graph_launches.iter().map(Work::of_graph_launch))
        });
        self.work.iter().copied().chain(in_trace)
    }

    fn span(&mut self, start: i64, end: i64) {
        self.first = self.first.min(start);
        self.last = self.last.max(end);
    }

    fn gpu(&mut self, work: Work) {
        self.span(work.start, work.end);
        if !self.devices.contains(&work.device) {
            self.devices.push(work.device);
        }
        if self.in_trace.is_none() {
            self.work.push(work);
        }
    }

    /// Takes a kernel whose names are in `names`.
    pub fn kernel(&mut self, k: &Kernel, names: &Names) {
        let class = *self
            .classes
            .entry(k.name)
            .or_insert_with(|| WorkClass::of(names.get(k.name)));
        let total = self.kernel_totals.entry(k.name).or_default();
        total.0 += 1;
        total.1 += k.end - k.start;
        self.kinds.kernel_ns += k.end - k.start;
        self.kinds.kernels += 1;
        self.gpu(Work::of_kernel(k, class));
    }

    /// Takes a memory copy.
    pub fn memcpy(&mut self, m: &Memcpy) {
        self.kinds.memcpy_ns += m.end - m.start;
        self.kinds.memcpys += 1;
        self.gpu(Work::of_memcpy(m));
    }

    /// Takes a memset.
    pub fn memset(&mut self, m: &Memset) {
        self.kinds.memset_ns += m.end - m.start;
        self.kinds.memsets += 1;
        self.gpu(Work::of_memset(m));
    }

    /// Takes a whole graph's launch (graph mode).
    pub fn graph_launch(&mut self, g: &GraphLaunch) {
        self.kinds.graph_ns += g.end - g.start;
        self.kinds.graphs += 1;
        self.gpu(Work::of_graph_launch(g));
    }

    /// Takes a host wait on the GPU.
    pub fn sync(&mut self, s: &Synchronization) {
        self.span(s.start, s.end);
        if s.stream != u32::MAX {
            self.syncs
                .push((s.start, s.end, WorkClass::of(s.kind.as_str())));
        }
    }

    /// Takes a runtime or driver call whose names are in `names`.
    pub fn api_call(&mut self, c: &ApiCall, names: &Names) {
        self.span(c.start, c.end);
        if c.correlation != 0 {
            self.launches.push((c.correlation, c.start));
        }
        if launches_a_graph(names.get(c.name)) {
            self.graph_calls.insert(c.correlation);
        }
    }

    /// Takes a recorded iteration (they come in order).
    pub fn iteration(&mut self, i: &Iteration) {
        self.iterations.push(*i);
    }

    /// Takes any other host event (a range, CUPTI's overhead): it counts in the span.
    pub fn host(&mut self, start: i64, end: i64) {
        self.span(start, end);
    }

    /// The figures of everything taken; names are looked up in `names`.
    pub fn finish(mut self, names: &Names) -> Measured {
        let (start, span) = if self.first <= self.last {
            (self.first, self.last - self.first)
        } else {
            (0, 0)
        };
        // Each set of intervals is built, merged and measured before the next one
        // is built, so that one copy of the GPU's intervals is held at a time
        // beside the work.
        let union_of = |keep: &dyn Fn(&Work) -> bool| {
            let mut intervals = Intervals::default();
            for w in self.work().filter(|w| keep(w)) {
                intervals.push(w.start, w.end);
            }
            intervals.union()
        };
        // `span` is never negative; `i64::div_ceil` is not stable.
        let bin_ns = (span + TIMELINE_BINS as i64 - 1) / TIMELINE_BINS as i64;
        let bins = if bin_ns > 0 {
            usize::try_from((span + bin_ns - 1) / bin_ns).unwrap_or(TIMELINE_BINS)
        } else {
            0
        };
        let busy = union_of(&|_| true);
        let timeline = Timeline {
            start_ns: start,
            bin_ns,
            busy_ns: busy.bins(start, bin_ns, bins),
        };
        let busy = busy.length();
        let [communication, memory, computation, other] =
            [0, 1, 2, 3].map(|class| union_of(&|w| class_index(w.class) == class).length());
        let gpu_time = GpuTime {
            span_ns: span,
            busy_ns: busy,
            computation_ns: computation,
            communication_ns: communication,
            memory_ns: memory,
            other_ns: other,
            idle_ns: span - busy,
        };
        let mut by_stream: BTreeMap<(u32, u32), (u64, Intervals)> = BTreeMap::new();
        for w in self.work() {
            let stream = by_stream.entry((w.device, w.stream)).or_default();
            stream.0 += 1;
            stream.1.push(w.start, w.end);
        }
        let streams = by_stream
            .into_iter()
            .map(|((device, stream), (events, intervals))| {
                let union = intervals.union();
                StreamFigures {
                    device,
                    stream,
                    events,
                    busy_ns: union.length(),
                    timeline: union.bins(start, bin_ns, bins),
                }
            })
            .collect();

        // HTA's set of GPU events: the work and the synchronizations on a stream.
        let hta_events = || {
            self.work()
                .map(|w| (w.start, w.end, w.class))
                .chain(self.syncs.iter().copied())
        };
        let (mut all, mut compute, mut comm) = (
            Intervals::default(),
            Intervals::default(),
            Intervals::default(),
        );
        let (mut first, mut last) = (i64::MAX, i64::MIN);
        for (start, end, _) in hta_events() {
            first = first.min(start);
            last = last.max(end);
            all.push(start, end);
        }
        let kernel_time = if first <= last { last - first } else { 0 };
        let covered = all.union().length();
        for (start, end, class) in hta_events() {
            match class {
                WorkClass::Computation => compute.push(start, end),
                WorkClass::Communication => comm.push(start, end),
                WorkClass::Memory | WorkClass::Other => {}
            }
        }
        let (compute, comm) = (compute.union(), comm.union());
        let temporal_breakdown = TemporalBreakdown {
            kernel_time_ns: kernel_time,
            idle_ns: kernel_time - covered,
            compute_ns: compute.length(),
            non_compute_ns: covered - compute.length(),
        };
        let communication_ns = comm.length();
        let overlapped_ns = comm.overlap(&compute);
        let comm_comp_overlap = CommCompOverlap {
            communication_ns,
            overlapped_ns,
            ratio: (communication_ns > 0).then(|| overlapped_ns as f64 / communication_ns as f64),
        };

        let mut iterations: Vec<IterationGpu> = self
            .iterations
            .iter()
            .map(|i| IterationGpu {
                number: i.number,
                duration_ns: i.end - i.start,
                gpu_ns: 0,
                gpu_events: 0,
                unlaunched_gpu_ns: 0,
            })
            .collect();
        // The rule of the single-trace report's "GPU time per iteration".
        let launches = std::mem::take(&mut self.launches);
        let iteration_of = IterationOf::with_launches(launches, &self.iterations);
        for w in self.work() {
            match iteration_of.of_work(w.start, w.correlation) {
                Some(InIteration::Launched(k)) => {
                    iterations[k].gpu_ns += w.end - w.start;
                    iterations[k].gpu_events += 1;
                }
                Some(InIteration::Unlaunched(k)) => {
                    iterations[k].unlaunched_gpu_ns += w.end - w.start;
                }
                None => {}
            }
        }
        let kernels = KernelTotal::ranked(std::mem::take(&mut self.kernel_totals), names);

        let launches = graphs::launches(self.work(), &self.graph_calls);
        Measured {
            start_ns: start,
            devices: self.devices,
            gpu_time,
            kinds: self.kinds,
            timeline,
            streams,
            temporal_breakdown,
            comm_comp_overlap,
            iterations,
            kernels,
            graphs: graphs::figures(launches, names),
        }
    }
}

fn class_index(class: WorkClass) -> usize {
    match class {
        WorkClass::Communication => 0,
        WorkClass::Memory => 1,
        WorkClass::Computation => 2,
        WorkClass::Other => 3,
    }
}

/// The CUDA graph figures of `trace`, the same as [`measure`]'s: for the report of
/// one trace, which prints no other figure of `measure`'s, without a copy of every
/// GPU event (a fifth of the report's memory at a million launches).
pub fn graph_figures(trace: &Trace) -> Vec<crate::GraphFigures> {
    let mut acc = TraceAccumulator::new();
    acc.graph_calls = trace
        .api_calls
        .iter()
        .filter(|c| launches_a_graph(trace.names.get(c.name)))
        .map(|c| c.correlation)
        .collect();
    // Only the work a launch can hold, which is what `graphs::launches` keeps.
    let node_kernels = trace.kernels.iter().map(|k| (k.correlation, k.graph_id));
    let calls = graphs::calls(&acc.graph_calls, node_kernels);
    for k in trace
        .kernels
        .iter()
        .filter(|k| calls.contains(&k.correlation))
    {
        acc.kernel(k, &trace.names);
    }
    for m in trace
        .memcpys
        .iter()
        .filter(|m| calls.contains(&m.correlation))
    {
        acc.memcpy(m);
    }
    for m in trace
        .memsets
        .iter()
        .filter(|m| calls.contains(&m.correlation))
    {
        acc.memset(m);
    }
    for g in &trace.graph_launches {
        acc.graph_launch(g);
    }
    graphs::figures(graphs::launches(acc.work(), &acc.graph_calls), &trace.names)
}

/// Everything `trace` holds, fed to an accumulator.
pub fn measure(trace: &Trace) -> Measured {
    let mut acc = TraceAccumulator::over(trace);
    for k in &trace.kernels {
        acc.kernel(k, &trace.names);
    }
    for m in &trace.memcpys {
        acc.memcpy(m);
    }
    for m in &trace.memsets {
        acc.memset(m);
    }
    for g in &trace.graph_launches {
        acc.graph_launch(g);
    }
    for s in &trace.syncs {
        acc.sync(s);
    }
    for c in &trace.api_calls {
        acc.api_call(c, &trace.names);
    }
    for r in &trace.ranges {
        acc.host(r.start, r.end);
    }
    for o in &trace.overheads {
        acc.host(o.start, o.end);
    }
    for i in &trace.iterations {
        acc.iteration(i);
    }
    acc.finish(&trace.names)
}

/// The rank of `trace`, the `index`-th of several: its own when it names one, else
/// its place in the list.
pub fn rank_of(trace: &Trace, index: usize) -> (u32, RankSource) {
    if trace.info.rank_known {
        (trace.info.rank, RankSource::DistributedInfo)
    } else {
        (
            u32::try_from(index).unwrap_or(u32::MAX),
            RankSource::FileOrder,
        )
    }
}

impl TraceFigures {
    /// The figures of `trace`, read from `file`, the `index`-th of the traces
    /// reported on together (its rank when the trace names none).
    pub fn from_trace(file: String, index: usize, trace: &Trace) -> TraceFigures {
        let measured = measure(trace);
        let (rank, rank_source) = rank_of(trace, index);
        let gpus = measured
            .devices
            .iter()
            .map(|&device| Gpu {
                device,
                name: trace
                    .devices
                    .iter()
                    .find(|d| d.id == device)
                    .map(|d| d.name.clone())
                    .unwrap_or_default(),
            })
            .collect();
        TraceFigures {
            file,
            rank,
            rank_source,
            worker: trace.info.worker_name.clone(),
            host: trace.info.host_name.clone(),
            window: trace.info.window,
            start_ns: measured.start_ns,
            gpus,
            recording: Recording {
                cupti_version: trace.info.cupti_version,
                cuda_driver_version: trace.info.cuda_driver_version,
                cuda_runtime_version: trace.info.cuda_runtime_version,
                events: trace.event_count() as u64,
                dropped_records: trace.info.dropped_records,
                refused_buffers: trace.info.refused_buffers,
            },
            gpu_time: measured.gpu_time,
            kinds: measured.kinds,
            timeline: measured.timeline,
            streams: measured.streams,
            temporal_breakdown: measured.temporal_breakdown,
            comm_comp_overlap: measured.comm_comp_overlap,
            iterations: measured.iterations,
            kernels: measured.kernels,
            graphs: measured.graphs,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use cutrace_tracer::model::{ApiCall, Device, Iteration, SyncKind};

    use super::*;

    /// Builds traces event by event.
    #[derive(Default)]
    pub(crate) struct Build {
        pub(crate) trace: Trace,
    }

    impl Build {
        pub(crate) fn kernel(
            &mut self,
            name: &str,
            stream: u32,
            start: i64,
            end: i64,
        ) -> &mut Self {
            self.kernel_of(name, stream, start, end, 0, 0)
        }

        pub(crate) fn kernel_of(
            &mut self,
            name: &str,
            stream: u32,
            start: i64,
            end: i64,
            correlation: u64,
            graph_id: u32,
        ) -> &mut Self {
            let name = self.trace.names.intern(name);
            self.trace.kernels.push(Kernel {
                start,
                end,
                name,
                stream,
                correlation,
                graph_id,
                graph_node_id: u64::from(graph_id != 0),
                ..Default::default()
            });
            self
        }

        pub(crate) fn memcpy(&mut self, start: i64, end: i64) -> &mut Self {
            self.trace.memcpys.push(Memcpy {
                start,
                end,
                ..Default::default()
            });
            self
        }

        pub(crate) fn memset(&mut self, stream: u32, start: i64, end: i64) -> &mut Self {
            self.trace.memsets.push(Memset {
                start,
                end,
                stream,
                ..Default::default()
            });
            self
        }

        pub(crate) fn graph_launch(
            &mut self,
            graph_id: u32,
            stream: u32,
            start: i64,
            end: i64,
        ) -> &mut Self {
            self.trace.graph_launches.push(GraphLaunch {
                start,
                end,
                stream,
                graph_id,
                ..Default::default()
            });
            self
        }

        pub(crate) fn api(&mut self, name: &str, start: i64, correlation: u64) -> &mut Self {
            let name = self.trace.names.intern(name);
            self.trace.api_calls.push(ApiCall {
                start,
                end: start + 5,
                correlation,
                name,
                ..Default::default()
            });
            self
        }
    }

    #[test]
    fn gpu_time_is_covered_time_by_kind() {
        let mut b = Build::default();
        b.kernel("gemm", 7, 100, 200)
            .kernel("relu", 8, 150, 250)
            .kernel("ncclKernel_AllReduce", 9, 180, 400)
            .memcpy(500, 600)
            .api("cudaLaunchKernel", 0, 1);
        b.trace.memsets.push(Memset {
            start: 550,
            end: 650,
            ..Default::default()
        });
        let m = measure(&b.trace);
        assert_eq!(
            m.gpu_time,
            GpuTime {
                span_ns: 650,
                busy_ns: 300 + 150,
                computation_ns: 150,
                communication_ns: 220,
                memory_ns: 150,
                other_ns: 0,
                idle_ns: 650 - 450,
            }
        );
        assert_eq!(m.start_ns, 0);
        assert_eq!(m.devices, [0]);
    }

    #[test]
    fn the_temporal_breakdown_and_overlap_follow_hta() {
        let mut b = Build::default();
        b.kernel("gemm", 7, 100, 200)
            .kernel("ncclKernel_AllReduce", 9, 150, 300)
            .kernel("ncclKernel_AllReduce", 9, 400, 450)
            .memcpy(500, 520);
        // A stream sync is one of HTA's GPU events, a context sync (no stream) not.
        b.trace.syncs.push(Synchronization {
            start: 600,
            end: 700,
            kind: SyncKind::StreamSync,
            stream: 7,
            ..Default::default()
        });
        b.trace.syncs.push(Synchronization {
            start: 50,
            end: 800,
            kind: SyncKind::ContextSync,
            stream: u32::MAX,
            ..Default::default()
        });
        let m = measure(&b.trace);
        assert_eq!(
            m.temporal_breakdown,
            TemporalBreakdown {
                kernel_time_ns: 700 - 100,
                idle_ns: 600 - (200 + 50 + 20 + 100),
                compute_ns: 100,
                non_compute_ns: 100 + 50 + 20 + 100,
            }
        );
        assert_eq!(
            m.comm_comp_overlap,
            CommCompOverlap {
                communication_ns: 200,
                overlapped_ns: 50,
                ratio: Some(0.25),
            }
        );
        // The context sync still counts in the trace's span.
        assert_eq!(m.gpu_time.span_ns, 750);
        assert_eq!(m.gpu_time.busy_ns, 200 + 50 + 20);
    }

    #[test]
    fn kinds_streams_and_timeline_count_the_gpu_work() {
        let mut b = Build::default();
        // Span 0..1200: bins of 10 ns.
        b.kernel("gemm", 7, 0, 100)
            .kernel("relu", 7, 50, 130)
            .kernel("gemm", 8, 1_000, 1_200)
            .memcpy(300, 305)
            .memset(8, 400, 420)
            .graph_launch(0, 8, 500, 600);
        let m = measure(&b.trace);
        assert_eq!(
            m.kinds,
            KindTimes {
                kernel_ns: 100 + 80 + 200,
                kernels: 3,
                memcpy_ns: 5,
                memcpys: 1,
                memset_ns: 20,
                memsets: 1,
                graph_ns: 100,
                graphs: 1,
            }
        );
        let streams: Vec<(u32, u64, i64)> = m
            .streams
            .iter()
            .map(|s| (s.stream, s.events, s.busy_ns))
            .collect();
        // The copy is on stream 0 (the default of the model's copies).
        assert_eq!(streams, [(0, 1, 5), (7, 2, 130), (8, 3, 320)]);
        assert_eq!((m.timeline.start_ns, m.timeline.bin_ns), (0, 10));
        assert_eq!(m.timeline.busy_ns.len(), TIMELINE_BINS);
        assert_eq!(
            m.timeline.busy_ns[..14],
            [10; 13].into_iter().chain([0]).collect::<Vec<_>>()[..]
        );
        assert_eq!(m.timeline.busy_ns[30], 5);
        assert_eq!(m.timeline.busy_ns.iter().sum::<i64>(), m.gpu_time.busy_ns);
        for s in &m.streams {
            assert_eq!(s.timeline.iter().sum::<i64>(), s.busy_ns);
        }
    }

    #[test]
    fn a_trace_measured_in_place_measures_as_its_events_fed_one_by_one() {
        let mut b = Build::default();
        b.kernel_of("gemm", 7, 0, 100, 1, 0)
            .kernel_of("ncclDevKernel_AllReduce", 8, 50, 300, 2, 0)
            .kernel_of("relu", 7, 120, 130, 3, 4)
            .kernel_of("gemm", 7, 140, 150, 3, 4)
            .memcpy(310, 320)
            .api("cudaLaunchKernel", 0, 1)
            .api("cudaLaunchKernel", 40, 2)
            .api("cudaGraphLaunch", 110, 3)
            .memset(8, 400, 420)
            .graph_launch(5, 9, 500, 600);
        b.trace.iterations.push(Iteration {
            number: 1,
            start: 0,
            end: 100,
        });
        let t = &b.trace;
        let mut fed = TraceAccumulator::new();
        t.kernels.iter().for_each(|k| fed.kernel(k, &t.names));
        t.memcpys.iter().for_each(|m| fed.memcpy(m));
        t.memsets.iter().for_each(|m| fed.memset(m));
        t.graph_launches.iter().for_each(|g| fed.graph_launch(g));
        t.api_calls.iter().for_each(|c| fed.api_call(c, &t.names));
        t.iterations.iter().for_each(|i| fed.iteration(i));
        let (fed, in_place) = (fed.finish(&t.names), measure(t));
        assert_eq!(fed, in_place);
        assert!(fed.gpu_time.communication_ns > 0 && !fed.graphs.is_empty());
        assert!(fed.iterations[0].gpu_ns > 0);
    }

    #[test]
    fn an_empty_trace_measures_nothing() {
        let m = measure(&Trace::default());
        assert_eq!(m.gpu_time, GpuTime::default());
        assert_eq!(m.temporal_breakdown, TemporalBreakdown::default());
        assert_eq!(m.comm_comp_overlap.ratio, None);
        assert!(m.graphs.is_empty());
        assert_eq!(m.timeline, Timeline::default());
        assert!(m.streams.is_empty());
    }

    #[test]
    fn figures_take_the_rank_from_the_trace_else_its_place() {
        let mut b = Build::default();
        b.kernel("gemm", 7, 1_000, 2_000);
        b.trace.info.rank = 5;
        b.trace.info.worker_name = "w".into();
        b.trace.devices.push(Device {
            id: 0,
            name: "NVIDIA H100".into(),
            ..Default::default()
        });
        b.trace.iterations.push(Iteration {
            number: 3,
            start: 500,
            end: 2_500,
        });
        let unknown = TraceFigures::from_trace("a.json".into(), 2, &b.trace);
        assert_eq!(
            (unknown.rank, unknown.rank_source),
            (2, RankSource::FileOrder)
        );
        b.trace.info.rank_known = true;
        let known = TraceFigures::from_trace("a.json".into(), 2, &b.trace);
        assert_eq!(
            (known.rank, known.rank_source),
            (5, RankSource::DistributedInfo)
        );
        assert_eq!(
            known.gpus,
            [Gpu {
                device: 0,
                name: "NVIDIA H100".into()
            }]
        );
        assert_eq!(
            known.kernels,
            [KernelTotal {
                name: "gemm".into(),
                calls: 1,
                total_ns: 1_000
            }]
        );
        // Without a known launch, work is counted apart, in the iteration it ran in.
        assert_eq!(
            known.iterations,
            [IterationGpu {
                number: 3,
                duration_ns: 2_000,
                gpu_ns: 0,
                gpu_events: 0,
                unlaunched_gpu_ns: 1_000,
            }]
        );
    }
}
