//! The figures of one trace, accumulated event by event ([`TraceAccumulator`]): the
//! time each kind of GPU work covered, HolisticTraceAnalysis's temporal breakdown and
//! communication-computation overlap, the GPU time of each iteration, the kernels'
//! totals and the CUDA graphs.
//!
//! The accumulator keeps, per GPU event, only what the figures need (times, class,
//! correlation, graph id, name id), and per launch call its correlation and start;
//! the unions and the attribution to iterations are made when it finishes. A reader
//! can feed it while it reads.

use cutrace_exporter::{InIteration, IterationOf};
use cutrace_tracer::Trace;
use cutrace_tracer::model::{
    ApiCall, GraphLaunch, Iteration, Kernel, Memcpy, Memset, NameId, Names, Synchronization,
};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::classify::WorkClass;
use crate::figures::{
    CommCompOverlap, Gpu, GpuTime, IterationGpu, KernelTotal, RankSource, TemporalBreakdown,
    TraceFigures,
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
}

/// Gathers one trace's events; [`TraceAccumulator::finish`] gives its figures.
#[derive(Debug)]
pub struct TraceAccumulator {
    classes: FxHashMap<NameId, WorkClass>,
    work: Vec<Work>,
    /// Synchronizations on a stream, which HTA counts among the GPU's events.
    syncs: Vec<(i64, i64, WorkClass)>,
    graph_calls: FxHashSet<u64>,
    /// Each launch call's correlation and start.
    launches: Vec<(u64, i64)>,
    iterations: Vec<Iteration>,
    /// Calls and summed time per kernel name.
    kernel_totals: FxHashMap<NameId, (u64, i64)>,
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

impl Default for TraceAccumulator {
    fn default() -> Self {
        TraceAccumulator {
            classes: FxHashMap::default(),
            work: Vec::new(),
            syncs: Vec::new(),
            graph_calls: FxHashSet::default(),
            launches: Vec::new(),
            iterations: Vec::new(),
            kernel_totals: FxHashMap::default(),
            devices: Vec::new(),
            // No event yet: the span is empty until one widens it.
            first: i64::MAX,
            last: i64::MIN,
        }
    }
}

impl TraceAccumulator {
    /// An accumulator that has seen nothing.
    pub fn new() -> Self {
        TraceAccumulator::default()
    }

    fn span(&mut self, start: i64, end: i64) {
        self.first = self.first.min(start);
        self.last = self.last.max(end);
    }

    fn gpu(&mut self, work: Work, device: u32) {
        self.span(work.start, work.end);
        if !self.devices.contains(&device) {
            self.devices.push(device);
        }
        self.work.push(work);
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
        let work = Work {
            start: k.start,
            end: k.end,
            correlation: k.correlation,
            graph_id: k.graph_id,
            name: k.name,
            kind: WorkKind::Kernel,
            class,
        };
        self.gpu(work, k.device);
    }

    /// Takes a memory copy.
    pub fn memcpy(&mut self, m: &Memcpy) {
        self.copy(m.start, m.end, m.correlation, m.device);
    }

    /// Takes a memset.
    pub fn memset(&mut self, m: &Memset) {
        self.copy(m.start, m.end, m.correlation, m.device);
    }

    fn copy(&mut self, start: i64, end: i64, correlation: u64, device: u32) {
        // Their names start with `Memcpy` or `Memset`: memory, by HTA's rule too.
        let work = Work {
            start,
            end,
            correlation,
            graph_id: 0,
            name: NameId::default(),
            kind: WorkKind::Copy,
            class: WorkClass::Memory,
        };
        self.gpu(work, device);
    }

    /// Takes a whole graph's launch (graph mode).
    pub fn graph_launch(&mut self, g: &GraphLaunch) {
        // Named `Graph <id>` in the file, which HTA's rule counts as computation.
        let work = Work {
            start: g.start,
            end: g.end,
            correlation: g.correlation,
            graph_id: g.graph_id,
            name: NameId::default(),
            kind: WorkKind::GraphLaunch,
            class: WorkClass::Computation,
        };
        self.gpu(work, g.device);
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
        let name = names.get(c.name);
        if name.starts_with("cudaGraphLaunch") || name.starts_with("cuGraphLaunch") {
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
    pub fn finish(self, names: &Names) -> Measured {
        let (start, span) = if self.first <= self.last {
            (self.first, self.last - self.first)
        } else {
            (0, 0)
        };
        let mut busy = Intervals::default();
        let mut by_class: [Intervals; 4] = Default::default();
        for w in &self.work {
            busy.push(w.start, w.end);
            by_class[class_index(w.class)].push(w.start, w.end);
        }
        let busy = busy.union().length();
        let [communication, memory, computation, other] = by_class.map(|i| i.union());
        let gpu_time = GpuTime {
            span_ns: span,
            busy_ns: busy,
            computation_ns: computation.length(),
            communication_ns: communication.length(),
            memory_ns: memory.length(),
            other_ns: other.length(),
            idle_ns: span - busy,
        };

        // HTA's set of GPU events: the work and the synchronizations on a stream.
        let hta_events = self
            .work
            .iter()
            .map(|w| (w.start, w.end, w.class))
            .chain(self.syncs.iter().copied());
        let (mut all, mut compute, mut comm) = (
            Intervals::default(),
            Intervals::default(),
            Intervals::default(),
        );
        let (mut first, mut last) = (i64::MAX, i64::MIN);
        for (start, end, class) in hta_events {
            first = first.min(start);
            last = last.max(end);
            all.push(start, end);
            match class {
                WorkClass::Computation => compute.push(start, end),
                WorkClass::Communication => comm.push(start, end),
                WorkClass::Memory | WorkClass::Other => {}
            }
        }
        let kernel_time = if first <= last { last - first } else { 0 };
        let covered = all.union().length();
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
        let iteration_of = IterationOf::with_launches(self.launches, &self.iterations);
        for w in &self.work {
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
        let kernels = KernelTotal::ranked(self.kernel_totals, names);

        let launches = graphs::launches(&self.work, &self.graph_calls);
        Measured {
            start_ns: start,
            devices: self.devices,
            gpu_time,
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

/// Everything `trace` holds, fed to an accumulator.
pub fn measure(trace: &Trace) -> Measured {
    let mut acc = TraceAccumulator::new();
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
            gpu_time: measured.gpu_time,
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
    fn an_empty_trace_measures_nothing() {
        let m = measure(&Trace::default());
        assert_eq!(m.gpu_time, GpuTime::default());
        assert_eq!(m.temporal_breakdown, TemporalBreakdown::default());
        assert_eq!(m.comm_comp_overlap.ratio, None);
        assert!(m.graphs.is_empty());
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
