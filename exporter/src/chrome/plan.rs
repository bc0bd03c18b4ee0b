//! Planning a trace file before any byte is written: which slice goes on which track
//! and lane, in which order, which slices carry a flow endpoint, and which host
//! ranges are projected onto the GPU.
//!
//! Every `X` event becomes a compact [`Slice`] that points back into the [`Trace`],
//! filed under its track; each track is sorted by start so it can be laned in one
//! pass, and the tracks in (pid, tid) order are the file's event order, ready to be
//! cut into chunks and serialized in parallel.

use std::collections::{BTreeMap, BTreeSet};

use cutrace_tracer::Trace;
use cutrace_tracer::model::{HostRange, NameId, RangeKind};
use rayon::prelude::*;
use rustc_hash::FxHashMap;

use super::lanes::{Lanes, Span};

/// Flow ids must stay exactly representable as doubles in JSON readers.
const MAX_FLOW_ID: u64 = 1 << 53;

/// Kineto's sort index of GPU processes: after every host process.
const GPU_SORT_BASE: u64 = 0x100_0000;

/// What a slice is; the order breaks ties between slices with equal spans, so a
/// range encloses the API call it equals and a projection the kernel it equals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Kind {
    /// [`Trace::ranges`].
    Range,
    /// [`Trace::api_calls`].
    Api,
    /// [`Trace::syncs`].
    Sync,
    /// [`Trace::overheads`].
    Overhead,
    /// [`Plan::projections`].
    Projection,
    /// [`Trace::graph_launches`].
    GraphLaunch,
    /// [`Trace::kernels`].
    Kernel,
    /// [`Trace::memcpys`].
    Memcpy,
    /// [`Trace::memsets`].
    Memset,
}

impl Kind {
    /// Whether the slice lives on a GPU track (pid = device, tid = stream).
    fn on_gpu(self) -> bool {
        self >= Kind::Projection
    }
}

/// One `X` event of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slice {
    /// Start, ns, absolute.
    pub start: i64,
    /// End, ns, absolute, never before `start`.
    pub end: i64,
    /// Index into the vector [`Slice::kind`] names.
    pub idx: u32,
    /// Process the slice is written on.
    pub pid: u32,
    /// Thread (or lane) the slice is written on.
    pub tid: u32,
    /// What the slice is.
    pub kind: Kind,
    /// Whether a flow endpoint follows it (`s` on a launch, `f` on GPU work).
    pub flow: bool,
}

/// A host range projected onto one GPU stream: the span of the work launched inside
/// it (`gpu_user_annotation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Projection {
    /// Start of the first GPU event, ns.
    pub start: i64,
    /// End of the last GPU event, ns.
    pub end: i64,
    /// Range name.
    pub name: NameId,
    /// External id of the range.
    pub external_id: u64,
    /// Device.
    pub device: u32,
    /// Stream.
    pub stream: u32,
}

/// A process of the file, for its metadata events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Process {
    /// pid.
    pub pid: u32,
    /// `CPU` or `GPU <n>`.
    pub label: String,
    /// `process_sort_index`.
    pub sort_index: u64,
}

/// A thread or lane of the file, for its metadata events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Thread {
    /// pid.
    pub pid: u32,
    /// tid (synthetic for lanes after the first).
    pub tid: u32,
    /// `thread_name`.
    pub name: String,
    /// `thread_sort_index`.
    pub sort_index: u64,
}

/// Everything the serializer needs besides the trace itself.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// The `X` events in file order: one vector per track, by (pid, tid), each by
    /// start (lanes of a track stay in their track's vector).
    pub tracks: Vec<Vec<Slice>>,
    /// GPU projections of host ranges.
    pub projections: Vec<Projection>,
    /// External id of the launch of each GPU event, per kind; empty when no API call
    /// has one.
    pub external_ids: ExternalIds,
    /// Processes, by pid.
    pub processes: Vec<Process>,
    /// Threads and lanes, by pid then tid.
    pub threads: Vec<Thread>,
    /// Lanes added beyond the first of each track.
    pub extra_lanes: usize,
    /// Slices dropped because they fit no lane.
    pub dropped_slices: usize,
}

/// External ids of the calls that launched each GPU event.
#[derive(Debug, Default)]
pub(crate) struct ExternalIds {
    /// Per kernel.
    pub kernels: Vec<u64>,
    /// Per memcpy.
    pub memcpys: Vec<u64>,
    /// Per memset.
    pub memsets: Vec<u64>,
    /// Per graph launch.
    pub graph_launches: Vec<u64>,
}

impl ExternalIds {
    /// The external id of GPU event `idx` of `kind` (0 when none).
    pub(crate) fn get(&self, kind: Kind, idx: u32) -> u64 {
        let ids = match kind {
            Kind::Kernel => &self.kernels,
            Kind::Memcpy => &self.memcpys,
            Kind::Memset => &self.memsets,
            Kind::GraphLaunch => &self.graph_launches,
            _ => return 0,
        };
        ids.get(idx as usize).copied().unwrap_or(0)
    }

    fn slot(&mut self, kind: Kind, idx: u32) -> Option<&mut u64> {
        let ids = match kind {
            Kind::Kernel => &mut self.kernels,
            Kind::Memcpy => &mut self.memcpys,
            Kind::Memset => &mut self.memsets,
            Kind::GraphLaunch => &mut self.graph_launches,
            _ => return None,
        };
        ids.get_mut(idx as usize)
    }
}

/// A GPU event as the correlation join sees it.
#[derive(Debug, Clone, Copy)]
struct GpuRef {
    correlation: u64,
    start: i64,
    kind: Kind,
    idx: u32,
}

/// Which slices carry a flow endpoint, per kind.
#[derive(Debug, Default)]
struct Flows {
    api: Vec<bool>,
    kernels: Vec<bool>,
    memcpys: Vec<bool>,
    memsets: Vec<bool>,
    graph_launches: Vec<bool>,
}

impl Flows {
    fn new(trace: &Trace) -> Self {
        Flows {
            api: vec![false; trace.api_calls.len()],
            kernels: vec![false; trace.kernels.len()],
            memcpys: vec![false; trace.memcpys.len()],
            memsets: vec![false; trace.memsets.len()],
            graph_launches: vec![false; trace.graph_launches.len()],
        }
    }

    fn slot(&mut self, kind: Kind, idx: u32) -> Option<&mut bool> {
        let flags = match kind {
            Kind::Api => &mut self.api,
            Kind::Kernel => &mut self.kernels,
            Kind::Memcpy => &mut self.memcpys,
            Kind::Memset => &mut self.memsets,
            Kind::GraphLaunch => &mut self.graph_launches,
            _ => return None,
        };
        flags.get_mut(idx as usize)
    }

    fn get(&self, kind: Kind, idx: u32) -> bool {
        let flags = match kind {
            Kind::Api => &self.api,
            Kind::Kernel => &self.kernels,
            Kind::Memcpy => &self.memcpys,
            Kind::Memset => &self.memsets,
            Kind::GraphLaunch => &self.graph_launches,
            _ => return false,
        };
        flags.get(idx as usize).copied().unwrap_or(false)
    }
}

/// The correlation id of the event behind a slice (0 for kinds without one).
pub(crate) fn correlation_of(trace: &Trace, kind: Kind, idx: u32) -> u64 {
    let i = idx as usize;
    match kind {
        Kind::Api => trace.api_calls.get(i).map_or(0, |a| a.correlation),
        Kind::Kernel => trace.kernels.get(i).map_or(0, |k| k.correlation),
        Kind::Memcpy => trace.memcpys.get(i).map_or(0, |m| m.correlation),
        Kind::Memset => trace.memsets.get(i).map_or(0, |m| m.correlation),
        Kind::GraphLaunch => trace.graph_launches.get(i).map_or(0, |g| g.correlation),
        Kind::Sync => trace.syncs.get(i).map_or(0, |s| s.correlation),
        Kind::Range | Kind::Overhead | Kind::Projection => 0,
    }
}

impl Plan {
    /// Plans the file for `trace`.
    pub(crate) fn build(trace: &Trace) -> Plan {
        let gpu = gpu_refs_by_correlation(trace);
        let (flows, external_ids) = join_launches(trace, &gpu);
        let projections = project_ranges(trace, &gpu);
        let mut tracks = collect_tracks(trace, &projections, &flows);
        tracks.par_iter_mut().for_each(|track| {
            let order = |a: &Slice, b: &Slice| {
                (a.start, b.end, a.kind, a.idx).cmp(&(b.start, a.end, b.kind, b.idx))
            };
            // Events mostly arrive in time order already; checking is cheaper than
            // sorting.
            if !track.is_sorted_by(|a, b| order(a, b).is_le()) {
                track.sort_unstable_by(order);
            }
        });
        let mut plan = Plan {
            projections,
            external_ids,
            ..Plan::default()
        };
        plan.assign_lanes(trace, tracks);
        plan
    }

    /// Puts each track's slices on lanes, names the tracks and lanes, and drops the
    /// flows of any slice that fit no lane.
    fn assign_lanes(&mut self, trace: &Trace, mut tracks: Vec<Vec<Slice>>) {
        let host_pids = separate_host_from_devices(&mut tracks);
        let mut used_tids: BTreeMap<u32, BTreeSet<u32>> = BTreeMap::new();
        for track in &tracks {
            used_tids
                .entry(track[0].pid)
                .or_default()
                .insert(track[0].tid);
        }
        let mut next_lane_tid: BTreeMap<u32, u32> = BTreeMap::new();
        let mut processes: BTreeMap<u32, Process> = BTreeMap::new();
        let mut dropped_correlations = BTreeSet::new();

        for track in &mut tracks {
            let (pid, tid) = (track[0].pid, track[0].tid);
            let on_gpu = track[0].kind.on_gpu();
            let mut lanes = Lanes::new();
            let mut lane_tids = vec![tid];
            let before = track.len();
            track.retain_mut(|slice| {
                let span = Span::new(slice.start, slice.end, trace.base_time_ns);
                let Some(lane) = lanes.place(span) else {
                    if slice.flow {
                        dropped_correlations.insert(correlation_of(trace, slice.kind, slice.idx));
                    }
                    return false;
                };
                let lane = lane as usize;
                while lane_tids.len() <= lane {
                    // Synthetic tids count down from the largest tid that is also a
                    // signed 32-bit integer (for readers that take tids as such),
                    // skipping the process's real tids so they never collide.
                    let used = used_tids.get(&pid);
                    let next = next_lane_tid.entry(pid).or_insert(i32::MAX as u32);
                    while used.is_some_and(|u| u.contains(next)) {
                        *next = next.wrapping_sub(1);
                    }
                    lane_tids.push(*next);
                    *next = next.wrapping_sub(1);
                }
                slice.tid = lane_tids[lane];
                true
            });
            self.dropped_slices += before - track.len();
            self.extra_lanes += lane_tids.len() - 1;

            processes.entry(pid).or_insert_with(|| process(pid, on_gpu));
            let host_pid = host_pids.get(&pid).copied().unwrap_or(pid);
            let base_name = track_name(trace, host_pid, tid, on_gpu);
            for (lane, &lane_tid) in lane_tids.iter().enumerate() {
                let name = if lane == 0 {
                    base_name.clone()
                } else {
                    format!("{} lane {}", base_name.trim_end(), lane + 1)
                };
                self.threads.push(Thread {
                    pid,
                    tid: lane_tid,
                    name,
                    sort_index: u64::from(tid),
                });
            }
        }

        if !dropped_correlations.is_empty() {
            for s in tracks.iter_mut().flatten().filter(|s| s.flow) {
                if dropped_correlations.contains(&correlation_of(trace, s.kind, s.idx)) {
                    s.flow = false;
                }
            }
        }
        tracks.retain(|t| !t.is_empty());
        self.tracks = tracks;
        self.processes = processes.into_values().collect();
        self.threads.sort_by_key(|t| (t.pid, t.tid));
    }
}

/// Moves the host tracks whose pid is also a device index (a GPU's pid in the
/// file) to a pid of their own, counting down from `i32::MAX` past every pid in
/// use: one pid cannot be labelled both `CPU` and `GPU <n>`, and a reader drops
/// host slices on a GPU's pid. Only inputs whose host pids look like device
/// indices get here. Tracks stay in (pid, tid) order. Returns the moved pids'
/// originals, by new pid.
fn separate_host_from_devices(tracks: &mut [Vec<Slice>]) -> BTreeMap<u32, u32> {
    let device_pids: BTreeSet<u32> = tracks
        .iter()
        .filter(|t| t[0].kind.on_gpu())
        .map(|t| t[0].pid)
        .collect();
    let clashing: BTreeSet<u32> = tracks
        .iter()
        .filter(|t| !t[0].kind.on_gpu() && device_pids.contains(&t[0].pid))
        .map(|t| t[0].pid)
        .collect();
    if clashing.is_empty() {
        return BTreeMap::new();
    }
    let used: BTreeSet<u32> = tracks.iter().map(|t| t[0].pid).collect();
    let mut next = i32::MAX as u32;
    let mut moved = BTreeMap::new();
    let mut new_pid_of = BTreeMap::new();
    for &pid in &clashing {
        while used.contains(&next) {
            next -= 1;
        }
        new_pid_of.insert(pid, next);
        moved.insert(next, pid);
        next -= 1;
    }
    for track in tracks.iter_mut().filter(|t| !t[0].kind.on_gpu()) {
        if let Some(&new_pid) = new_pid_of.get(&track[0].pid) {
            for slice in track.iter_mut() {
                slice.pid = new_pid;
            }
        }
    }
    tracks.sort_by_key(|t| (t[0].pid, t[0].tid));
    moved
}

/// Metadata of process `pid`: a GPU (pid = device index) or a host process.
fn process(pid: u32, on_gpu: bool) -> Process {
    if on_gpu {
        Process {
            pid,
            label: format!("GPU {pid}"),
            sort_index: GPU_SORT_BASE + u64::from(pid),
        }
    } else {
        Process {
            pid,
            label: "CPU".to_owned(),
            sort_index: u64::from(pid),
        }
    }
}

/// Kineto's name of a track: `stream <n> ` on a GPU, `thread <tid> (<name>)` on
/// the host.
fn track_name(trace: &Trace, pid: u32, tid: u32, on_gpu: bool) -> String {
    if on_gpu {
        return format!("stream {tid} ");
    }
    let name = trace
        .threads
        .iter()
        .find(|t| t.pid == pid && t.tid == tid)
        .map_or("unknown", |t| t.name.as_str());
    format!("thread {tid} ({name})")
}

/// Every GPU event with a correlation id, sorted by correlation then start.
fn gpu_refs_by_correlation(trace: &Trace) -> Vec<GpuRef> {
    let mut gpu = Vec::with_capacity(
        trace.kernels.len()
            + trace.memcpys.len()
            + trace.memsets.len()
            + trace.graph_launches.len(),
    );
    let mut add = |correlation: u64, start: i64, kind: Kind, idx: usize| {
        if correlation != 0 {
            gpu.push(GpuRef {
                correlation,
                start,
                kind,
                idx: idx as u32,
            });
        }
    };
    for (i, k) in trace.kernels.iter().enumerate() {
        add(k.correlation, k.start, Kind::Kernel, i);
    }
    for (i, m) in trace.memcpys.iter().enumerate() {
        add(m.correlation, m.start, Kind::Memcpy, i);
    }
    for (i, m) in trace.memsets.iter().enumerate() {
        add(m.correlation, m.start, Kind::Memset, i);
    }
    for (i, g) in trace.graph_launches.iter().enumerate() {
        add(g.correlation, g.start, Kind::GraphLaunch, i);
    }
    gpu.par_sort_unstable_by_key(|g| (g.correlation, g.start, g.kind, g.idx));
    gpu
}

/// The GPU events of `correlation` in `gpu` (sorted by correlation).
fn gpu_group(gpu: &[GpuRef], correlation: u64) -> &[GpuRef] {
    let from = gpu.partition_point(|g| g.correlation < correlation);
    let to = from + gpu[from..].partition_point(|g| g.correlation == correlation);
    &gpu[from..to]
}

/// Joins API calls to the GPU work they launched by correlation id: one flow per
/// correlation, from its first call to its earliest GPU event, and each GPU event
/// inherits the external id of its launch.
fn join_launches(trace: &Trace, gpu: &[GpuRef]) -> (Flows, ExternalIds) {
    let mut flows = Flows::new(trace);
    let any_external = trace.api_calls.iter().any(|a| a.external_id != 0);
    let mut external_ids = ExternalIds::default();
    if any_external {
        external_ids = ExternalIds {
            kernels: vec![0; trace.kernels.len()],
            memcpys: vec![0; trace.memcpys.len()],
            memsets: vec![0; trace.memsets.len()],
            graph_launches: vec![0; trace.graph_launches.len()],
        };
    }

    let mut api: Vec<(u64, u32)> = trace
        .api_calls
        .iter()
        .enumerate()
        .filter(|(_, a)| a.correlation != 0)
        .map(|(i, a)| (a.correlation, i as u32))
        .collect();
    api.par_sort_unstable();

    let (mut a, mut g) = (0, 0);
    while a < api.len() && g < gpu.len() {
        let (ca, cg) = (api[a].0, gpu[g].correlation);
        if ca < cg {
            a += 1;
            continue;
        }
        if cg < ca {
            g += 1;
            continue;
        }
        let launch = api[a].1;
        let group_end = g + gpu[g..].iter().take_while(|r| r.correlation == cg).count();
        if cg < MAX_FLOW_ID {
            if let Some(flag) = flows.slot(Kind::Api, launch) {
                *flag = true;
            }
            if let Some(flag) = flows.slot(gpu[g].kind, gpu[g].idx) {
                *flag = true;
            }
        }
        if any_external {
            let external = trace.api_calls[launch as usize].external_id;
            for r in &gpu[g..group_end] {
                if let Some(slot) = external_ids.slot(r.kind, r.idx) {
                    *slot = external;
                }
            }
        }
        while a < api.len() && api[a].0 == ca {
            a += 1;
        }
        g = group_end;
    }
    (flows, external_ids)
}

/// Start, end, device and stream of GPU event `r`.
fn gpu_span(trace: &Trace, r: &GpuRef) -> Option<(i64, i64, u32, u32)> {
    let i = r.idx as usize;
    match r.kind {
        Kind::Kernel => trace
            .kernels
            .get(i)
            .map(|k| (k.start, k.end, k.device, k.stream)),
        Kind::Memcpy => trace
            .memcpys
            .get(i)
            .map(|m| (m.start, m.end, m.device, m.stream)),
        Kind::Memset => trace
            .memsets
            .get(i)
            .map(|m| (m.start, m.end, m.device, m.stream)),
        Kind::GraphLaunch => trace
            .graph_launches
            .get(i)
            .map(|g| (g.start, g.end, g.device, g.stream)),
        _ => None,
    }
}

/// Projects annotation and NVTX ranges onto the GPU: for each range, the span of
/// the GPU work launched by calls that start inside it on its thread, one slice per
/// (device, stream) touched. `ProfilerStep#<n>` ranges are not projected.
fn project_ranges(trace: &Trace, gpu: &[GpuRef]) -> Vec<Projection> {
    // Iteration markers stay on the host, as in Kineto's CUDA traces: HTA takes
    // every event whose name contains "ProfilerStep" for a host iteration marker, so
    // a projection of one would shift its iterations to GPU times.
    let projectable = |r: &HostRange| {
        matches!(
            r.kind,
            RangeKind::Annotation | RangeKind::Nvtx | RangeKind::UserAnnotation
        ) && !trace.names.get(r.name).contains("ProfilerStep")
    };
    if !trace.ranges.iter().any(projectable) || gpu.is_empty() {
        return Vec::new();
    }
    // Calls by thread and start.
    let mut calls: Vec<(u32, u32, i64, u64)> = trace
        .api_calls
        .iter()
        .filter(|a| a.correlation != 0)
        .map(|a| (a.pid, a.tid, a.start, a.correlation))
        .collect();
    calls.par_sort_unstable();

    let mut projections = Vec::new();
    let mut spans: Vec<((u32, u32), i64, i64)> = Vec::new();
    for range in trace.ranges.iter().filter(|r| projectable(r)) {
        let key = (range.pid, range.tid);
        let from = calls.partition_point(|c| (c.0, c.1, c.2) < (key.0, key.1, range.start));
        let to = calls.partition_point(|c| (c.0, c.1, c.2) < (key.0, key.1, range.end));
        spans.clear();
        for call in &calls[from..to] {
            for r in gpu_group(gpu, call.3) {
                let Some((start, end, device, stream)) = gpu_span(trace, r) else {
                    continue;
                };
                let end = end.max(start);
                match spans.iter_mut().find(|s| s.0 == (device, stream)) {
                    Some(span) => {
                        span.1 = span.1.min(start);
                        span.2 = span.2.max(end);
                    }
                    None => spans.push(((device, stream), start, end)),
                }
            }
        }
        projections.extend(
            spans
                .iter()
                .map(|&((device, stream), start, end)| Projection {
                    start,
                    end,
                    name: range.name,
                    external_id: range.external_id,
                    device,
                    stream,
                }),
        );
    }
    projections
}

/// One slice per event of the trace and per projection, filed by track; tracks
/// come out in (pid, tid) order, never empty.
fn collect_tracks(trace: &Trace, projections: &[Projection], flows: &Flows) -> Vec<Vec<Slice>> {
    // Host and GPU events never share a track, even where a host (pid, tid) equals
    // a (device, stream): a track is labelled one or the other.
    let mut index: FxHashMap<(u32, u32, bool), usize> = FxHashMap::default();
    let mut tracks: Vec<Vec<Slice>> = Vec::new();
    let mut add = |start: i64, end: i64, pid: u32, tid: u32, kind: Kind, idx: usize| {
        let idx = idx as u32;
        let t = *index.entry((pid, tid, kind.on_gpu())).or_insert_with(|| {
            tracks.push(Vec::new());
            tracks.len() - 1
        });
        tracks[t].push(Slice {
            start,
            end: end.max(start),
            idx,
            pid,
            tid,
            kind,
            flow: flows.get(kind, idx),
        });
    };
    for (i, r) in trace.ranges.iter().enumerate() {
        add(r.start, r.end, r.pid, r.tid, Kind::Range, i);
    }
    for (i, a) in trace.api_calls.iter().enumerate() {
        add(a.start, a.end, a.pid, a.tid, Kind::Api, i);
    }
    for (i, s) in trace.syncs.iter().enumerate() {
        add(s.start, s.end, s.pid, s.tid, Kind::Sync, i);
    }
    for (i, o) in trace.overheads.iter().enumerate() {
        add(o.start, o.end, o.pid, o.tid, Kind::Overhead, i);
    }
    for (i, p) in projections.iter().enumerate() {
        add(p.start, p.end, p.device, p.stream, Kind::Projection, i);
    }
    for (i, g) in trace.graph_launches.iter().enumerate() {
        add(g.start, g.end, g.device, g.stream, Kind::GraphLaunch, i);
    }
    for (i, k) in trace.kernels.iter().enumerate() {
        add(k.start, k.end, k.device, k.stream, Kind::Kernel, i);
    }
    for (i, m) in trace.memcpys.iter().enumerate() {
        add(m.start, m.end, m.device, m.stream, Kind::Memcpy, i);
    }
    for (i, m) in trace.memsets.iter().enumerate() {
        add(m.start, m.end, m.device, m.stream, Kind::Memset, i);
    }
    tracks.sort_unstable_by_key(|t| (t[0].pid, t[0].tid));
    tracks
}
