//! Planning a trace file before any byte is written: which slice goes on which track
//! and lane, in which order, which slices carry a flow endpoint, and which host
//! ranges are projected onto the GPU.
//!
//! Every `X` event is filed under its track as an id that points back into the
//! [`Trace`], packed to about a byte ([`PackedIds`]); each track is put in order of
//! start so it can be laned in one pass, and the tracks in (pid, tid) order are the
//! file's event order, ready to be cut into chunks and serialized in parallel. A
//! chunk's [`Slice`]s are looked up only when it is serialized: beside the trace the
//! plan holds about a byte per event and a bit per flow endpoint, so writing a trace
//! takes little more memory than the trace itself.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use cutrace_tracer::Trace;
use cutrace_tracer::model::{HostRange, NameId, RangeKind};
use either::Either;
use fixedbitset::FixedBitSet;
use rayon::prelude::*;
use rustc_hash::FxHashMap;

use super::lanes::{Lanes, Span};
use super::packed::{PackedIds, SLOTS};

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
    /// The kinds in the order of their [`EventId`]s: the trace's own, then the
    /// projections the plan adds.
    const NUMBERED: [Kind; SLOTS] = [
        Kind::Range,
        Kind::Api,
        Kind::Sync,
        Kind::Overhead,
        Kind::GraphLaunch,
        Kind::Kernel,
        Kind::Memcpy,
        Kind::Memset,
        Kind::Projection,
    ];

    /// Whether the slice lives on a GPU track (pid = device, tid = stream).
    fn on_gpu(self) -> bool {
        self >= Kind::Projection
    }
}

/// One `X` event of the file, as its chunk is serialized.
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

impl Slice {
    /// Where the slice goes on its track: by start, the longer first among equal
    /// starts, then by kind and index.
    fn order_key(&self) -> OrderKey {
        (self.start, Reverse(self.end), self.kind, self.idx)
    }
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

/// An event of the trace, or a projection, as one number: events are numbered
/// kind by kind in [`Kind::NUMBERED`] order. A trace holds fewer than 2^32 events
/// (each takes tens of bytes of memory), as the `u32` indices of [`Slice::idx`]
/// already assume.
pub(crate) type EventId = u32;

/// The first [`EventId`] of each kind, in [`Kind::NUMBERED`] order.
#[derive(Debug, Clone, Copy, Default)]
struct Ids {
    first: [u32; SLOTS],
}

impl Ids {
    /// Numbers the events of `trace`; projections come after them.
    fn of(trace: &Trace) -> Self {
        let events = Events {
            trace,
            projections: &[],
            ids: Ids::default(),
        };
        let mut first = [0u32; SLOTS];
        let mut next = 0u32;
        for (slot, &kind) in Kind::NUMBERED.iter().enumerate() {
            first[slot] = next;
            next = next.saturating_add(events.count(kind) as u32);
        }
        Ids { first }
    }

    fn slot(kind: Kind) -> usize {
        Kind::NUMBERED.iter().position(|&k| k == kind).unwrap_or(0)
    }

    /// The id of event `idx` of `kind`.
    fn id(&self, kind: Kind, idx: usize) -> EventId {
        self.first[Self::slot(kind)].saturating_add(idx as u32)
    }

    /// The kind and index of `id`.
    fn split(&self, id: EventId) -> (Kind, u32) {
        // Kinds without events share their first id with the kind after them; the
        // last kind whose first id is at most `id` is the one that holds it.
        let slot = self.first.partition_point(|&first| first <= id).max(1) - 1;
        (Kind::NUMBERED[slot], id - self.first[slot])
    }
}

/// What the plan reads an event's slice from: the trace and the projections.
#[derive(Clone, Copy)]
struct Events<'a> {
    trace: &'a Trace,
    projections: &'a [Projection],
    ids: Ids,
}

impl Events<'_> {
    /// The slice of event `id` on its own track (no lane, no flow yet).
    fn slice(&self, id: EventId) -> Option<Slice> {
        let (kind, idx) = self.ids.split(id);
        self.slice_of(kind, idx)
    }

    /// The number of events of `kind`.
    fn count(&self, kind: Kind) -> usize {
        let t = self.trace;
        match kind {
            Kind::Range => t.ranges.len(),
            Kind::Api => t.api_calls.len(),
            Kind::Sync => t.syncs.len(),
            Kind::Overhead => t.overheads.len(),
            Kind::Projection => self.projections.len(),
            Kind::GraphLaunch => t.graph_launches.len(),
            Kind::Kernel => t.kernels.len(),
            Kind::Memcpy => t.memcpys.len(),
            Kind::Memset => t.memsets.len(),
        }
    }

    /// The slice of the event a packed id names ([`PackedIds`]).
    fn slice_at(&self, (slot, idx): (usize, u32)) -> Option<Slice> {
        self.slice_of(*Kind::NUMBERED.get(slot)?, idx)
    }

    /// The slice of event `idx` of `kind`.
    fn slice_of(&self, kind: Kind, idx: u32) -> Option<Slice> {
        let i = idx as usize;
        let t = self.trace;
        let (start, end, pid, tid) = match kind {
            Kind::Range => t.ranges.get(i).map(|r| (r.start, r.end, r.pid, r.tid)),
            Kind::Api => t.api_calls.get(i).map(|a| (a.start, a.end, a.pid, a.tid)),
            Kind::Sync => t.syncs.get(i).map(|s| (s.start, s.end, s.pid, s.tid)),
            Kind::Overhead => t.overheads.get(i).map(|o| (o.start, o.end, o.pid, o.tid)),
            Kind::Projection => self
                .projections
                .get(i)
                .map(|p| (p.start, p.end, p.device, p.stream)),
            Kind::GraphLaunch => t
                .graph_launches
                .get(i)
                .map(|g| (g.start, g.end, g.device, g.stream)),
            Kind::Kernel => t
                .kernels
                .get(i)
                .map(|k| (k.start, k.end, k.device, k.stream)),
            Kind::Memcpy => t
                .memcpys
                .get(i)
                .map(|m| (m.start, m.end, m.device, m.stream)),
            Kind::Memset => t
                .memsets
                .get(i)
                .map(|m| (m.start, m.end, m.device, m.stream)),
        }?;
        Some(Slice {
            start,
            end: end.max(start),
            idx,
            pid,
            tid,
            kind,
            flow: false,
        })
    }

    /// The correlation id of event `id` (0 for kinds without one).
    fn correlation(&self, id: EventId) -> u64 {
        let (kind, idx) = self.ids.split(id);
        correlation_of(self.trace, kind, idx)
    }

    /// Where the event a packed id names goes on its track ([`Slice::order_key`]);
    /// ids without an event (none are made) last.
    fn order_key(&self, id: (usize, u32)) -> OrderKey {
        self.slice_at(id)
            .map_or((i64::MAX, Reverse(i64::MIN), Kind::Memset, u32::MAX), |s| {
                s.order_key()
            })
    }
}

/// The order of slices on a track ([`Slice::order_key`]).
type OrderKey = (i64, Reverse<i64>, Kind, u32);

/// One track of the file, a host thread or a GPU stream, with its lanes.
#[derive(Debug)]
pub(crate) struct Track {
    /// pid the track is written on.
    pid: u32,
    /// The track's tid, then the tids of the lanes added to it.
    lane_tids: Vec<u32>,
    /// Whether it is a GPU stream.
    on_gpu: bool,
    /// Its events, in file order.
    events: PackedIds,
    /// The lane of each event; empty while every event is on the first.
    lanes: Vec<u16>,
}

impl Track {
    fn new(pid: u32, tid: u32, on_gpu: bool) -> Self {
        Track {
            pid,
            lane_tids: vec![tid],
            on_gpu,
            events: PackedIds::default(),
            lanes: Vec::new(),
        }
    }

    /// The track's own tid.
    fn tid(&self) -> u32 {
        self.lane_tids[0]
    }

    /// Number of slices on the track.
    pub(crate) fn len(&self) -> usize {
        self.events.len()
    }
}

/// Everything the serializer needs besides the trace itself.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// The tracks in file order, by (pid, tid); each holds its `X` events by start
    /// (lanes of a track stay in their track).
    pub tracks: Vec<Track>,
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
    /// How events are numbered.
    ids: Ids,
    /// Which slices carry a flow endpoint.
    flows: Flows,
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

/// Which slices carry a flow endpoint, per kind: a bit per event.
#[derive(Debug, Default)]
struct Flows {
    api: FixedBitSet,
    kernels: FixedBitSet,
    memcpys: FixedBitSet,
    memsets: FixedBitSet,
    graph_launches: FixedBitSet,
}

impl Flows {
    fn new(trace: &Trace) -> Self {
        Flows {
            api: FixedBitSet::with_capacity(trace.api_calls.len()),
            kernels: FixedBitSet::with_capacity(trace.kernels.len()),
            memcpys: FixedBitSet::with_capacity(trace.memcpys.len()),
            memsets: FixedBitSet::with_capacity(trace.memsets.len()),
            graph_launches: FixedBitSet::with_capacity(trace.graph_launches.len()),
        }
    }

    fn bits(&self, kind: Kind) -> Option<&FixedBitSet> {
        match kind {
            Kind::Api => Some(&self.api),
            Kind::Kernel => Some(&self.kernels),
            Kind::Memcpy => Some(&self.memcpys),
            Kind::Memset => Some(&self.memsets),
            Kind::GraphLaunch => Some(&self.graph_launches),
            _ => None,
        }
    }

    /// Marks or unmarks event `idx` of `kind`; kinds without flows have no marks.
    fn set(&mut self, kind: Kind, idx: u32, flow: bool) {
        let bits = match kind {
            Kind::Api => &mut self.api,
            Kind::Kernel => &mut self.kernels,
            Kind::Memcpy => &mut self.memcpys,
            Kind::Memset => &mut self.memsets,
            Kind::GraphLaunch => &mut self.graph_launches,
            _ => return,
        };
        let i = idx as usize;
        if i < bits.len() {
            bits.set(i, flow);
        }
    }

    fn get(&self, kind: Kind, idx: u32) -> bool {
        self.bits(kind)
            .is_some_and(|bits| bits.contains(idx as usize))
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
        let ids = Ids::of(trace);
        let bare = Events {
            trace,
            projections: &[],
            ids,
        };
        // The join and the filing of the trace's events by track read the trace
        // apart from each other, so they run side by side; the projections the
        // join finds are filed after, last on their tracks as their ids are.
        let ((mut flows, external_ids, projections), mut filing) = rayon::join(
            || {
                let gpu = GpuOrder::of(&bare);
                let (flows, external_ids) = join_launches(&bare, &gpu);
                (flows, external_ids, project_ranges(&bare, gpu))
            },
            || {
                let mut filing = Filing::default();
                filing.file(&bare);
                filing
            },
        );
        let events = Events {
            trace,
            projections: &projections,
            ids,
        };
        filing.file_projections(&events);
        let tracks = filing.into_tracks();
        let layout = lay_out(&events, &mut flows, tracks);
        Plan {
            tracks: layout.tracks,
            projections,
            external_ids,
            processes: layout.processes,
            threads: layout.threads,
            extra_lanes: layout.extra_lanes,
            dropped_slices: layout.dropped_slices,
            ids,
            flows,
        }
    }

    /// The slices at `positions` of `track`, on their lanes and with their flows.
    pub(crate) fn slices<'a>(
        &'a self,
        trace: &'a Trace,
        track: &'a Track,
        positions: Range<usize>,
    ) -> impl Iterator<Item = Slice> + 'a {
        let events = Events {
            trace,
            projections: &self.projections,
            ids: self.ids,
        };
        track
            .events
            .iter_from(positions.start)
            .zip(positions)
            .filter_map(move |(id, pos)| {
                let mut slice = events.slice_at(id)?;
                let lane = track.lanes.get(pos).map_or(0, |&lane| usize::from(lane));
                slice.pid = track.pid;
                slice.tid = *track.lane_tids.get(lane)?;
                slice.flow = self.flows.get(slice.kind, slice.idx);
                Some(slice)
            })
    }
}

/// The events of a track, found out of order, in file order ([`Events::order_key`]).
/// They come kind by kind, each kind mostly in order: runs of one kind that are in
/// order are merged, which takes no more memory than the packed track; otherwise
/// the ids are unpacked and sorted.
fn sort_track(events: &Events, ids: &PackedIds) -> PackedIds {
    let mut runs: Vec<Range<usize>> = Vec::new();
    let mut runs_in_order = true;
    let mut last: Option<((usize, u32), OrderKey)> = None;
    for (pos, id) in ids.iter().enumerate() {
        let key = events.order_key(id);
        if let Some((last_id, last_key)) = last
            && last_id.0 == id.0
        {
            runs_in_order &= last_key <= key;
        }
        match runs.last_mut() {
            Some(run) if last.is_some_and(|(last_id, _)| last_id.0 == id.0) => run.end = pos + 1,
            _ => runs.push(pos..pos + 1),
        }
        last = Some((id, key));
    }
    if !runs_in_order {
        let mut unpacked: Vec<(usize, u32)> = ids.iter().collect();
        unpacked.sort_unstable_by_key(|&id| events.order_key(id));
        return unpacked.into_iter().collect();
    }
    let mut heads: Vec<_> = runs
        .into_iter()
        .map(|run| {
            let mut run_ids = ids.iter_from(run.start).take(run.len());
            let head = run_ids.next().map(|id| (events.order_key(id), id));
            (head, run_ids)
        })
        .collect();
    let mut merged = PackedIds::default();
    loop {
        let next = heads
            .iter_mut()
            .filter(|(head, _)| head.is_some())
            .min_by_key(|(head, _)| head.map(|(key, _)| key));
        let Some((head, run_ids)) = next else {
            break;
        };
        let Some((_, id)) = head.take() else {
            break;
        };
        merged.push(id.0, id.1);
        *head = run_ids.next().map(|id| (events.order_key(id), id));
    }
    merged.shrink_to_fit();
    merged
}

/// The tracks on their lanes, and the metadata of the processes and threads.
struct Layout {
    tracks: Vec<Track>,
    processes: Vec<Process>,
    threads: Vec<Thread>,
    extra_lanes: usize,
    dropped_slices: usize,
}

/// Puts each track's slices in file order and on lanes, names the tracks and
/// lanes, and drops the flows of any slice that fit no lane.
fn lay_out(events: &Events, flows: &mut Flows, mut tracks: Vec<Track>) -> Layout {
    let trace = events.trace;
    let host_pids = separate_host_from_devices(&mut tracks);
    let mut used_tids: BTreeMap<u32, BTreeSet<u32>> = BTreeMap::new();
    for track in &tracks {
        used_tids.entry(track.pid).or_default().insert(track.tid());
    }
    let mut next_lane_tid: BTreeMap<u32, u32> = BTreeMap::new();
    let mut processes: BTreeMap<u32, Process> = BTreeMap::new();
    let mut threads = Vec::new();
    let (mut extra_lanes, mut dropped_slices) = (0, 0);
    let mut dropped_correlations = BTreeSet::new();

    // Each track is laned on its own, in parallel; the lanes' tids are then handed
    // out in track order, as a process's tracks share its synthetic tids.
    let placed: Vec<Placed> = tracks
        .par_iter_mut()
        .map(|track| place(events, flows, track))
        .collect();
    for (track, placed) in tracks.iter_mut().zip(placed) {
        let (pid, tid) = (track.pid, track.tid());
        dropped_slices += placed.dropped;
        dropped_correlations.extend(placed.dropped_correlations);
        let mut lane_tids = vec![tid];
        while lane_tids.len() < placed.lanes {
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
        extra_lanes += lane_tids.len() - 1;

        processes
            .entry(pid)
            .or_insert_with(|| process(pid, track.on_gpu));
        let host_pid = host_pids.get(&pid).copied().unwrap_or(pid);
        let base_name = track_name(trace, host_pid, tid, track.on_gpu);
        for (lane, &lane_tid) in lane_tids.iter().enumerate() {
            let name = if lane == 0 {
                base_name.clone()
            } else {
                format!("{} lane {}", base_name.trim_end(), lane + 1)
            };
            threads.push(Thread {
                pid,
                tid: lane_tid,
                name,
                sort_index: u64::from(tid),
            });
        }
        track.lane_tids = lane_tids;
    }

    if !dropped_correlations.is_empty() {
        for track in &tracks {
            for (slot, idx) in track.events.iter() {
                let kind = Kind::NUMBERED[slot];
                if flows.get(kind, idx)
                    && dropped_correlations.contains(&correlation_of(trace, kind, idx))
                {
                    flows.set(kind, idx, false);
                }
            }
        }
    }
    tracks.retain(|t| !t.events.is_empty());
    threads.sort_by_key(|t| (t.pid, t.tid));
    Layout {
        tracks,
        processes: processes.into_values().collect(),
        threads,
        extra_lanes,
        dropped_slices,
    }
}

/// What placing one track's slices on lanes left.
#[derive(Default)]
struct Placed {
    /// Lanes the track uses, the first included.
    lanes: usize,
    /// Slices that fit no lane.
    dropped: usize,
    /// Correlations of the dropped slices that carried a flow endpoint.
    dropped_correlations: Vec<u64>,
}

/// Puts the slices of `track` in file order ([`Events::order_key`]) and on lanes,
/// keeping those that fit one. Most tracks are in order already, which placing
/// them finds out on its way; the others are sorted and placed again.
fn place(events: &Events, flows: &Flows, track: &mut Track) -> Placed {
    let laid = match place_in_order(events, flows, &track.events) {
        Some(laid) => laid,
        None => {
            track.events = sort_track(events, &track.events);
            // Sorted, the slices are in order: placing them cannot fail again.
            place_in_order(events, flows, &track.events).unwrap_or_default()
        }
    };
    if let Some(kept) = laid.kept {
        track.events = kept;
    }
    track.lanes = laid.lanes;
    laid.placed
}

/// A track's slices on lanes.
#[derive(Default)]
struct Laid {
    /// The slices that fit a lane, once one did not (`None`: all did, so far).
    kept: Option<PackedIds>,
    /// The lane of each slice kept (empty while all are on the first).
    lanes: Vec<u16>,
    placed: Placed,
}

impl Laid {
    /// Keeps `id`, slice `pos` of a track of `len`, on `lane`.
    fn keep(&mut self, id: (usize, u32), pos: usize, len: usize, lane: u16) {
        if let Some(kept) = &mut self.kept {
            kept.push(id.0, id.1);
        }
        if lane > 0 && self.lanes.is_empty() {
            self.lanes.reserve_exact(len);
            self.lanes.resize(pos - self.placed.dropped, 0);
        }
        if !self.lanes.is_empty() {
            self.lanes.push(lane);
        }
        self.placed.lanes = self.placed.lanes.max(usize::from(lane) + 1);
    }

    /// Leaves out slice `pos` of `ids`.
    fn leave_out(&mut self, ids: &PackedIds, pos: usize) {
        self.placed.dropped += 1;
        // At the first slice left out, every one before it was kept.
        self.kept
            .get_or_insert_with(|| ids.iter().take(pos).collect());
    }
}

/// The slices of `ids` on lanes; `None` when the slices are not in file order.
fn place_in_order(events: &Events, flows: &Flows, ids: &PackedIds) -> Option<Laid> {
    let trace = events.trace;
    let mut lanes = Lanes::new();
    let mut laid = Laid {
        placed: Placed {
            lanes: 1,
            ..Placed::default()
        },
        ..Laid::default()
    };
    let mut last: Option<OrderKey> = None;
    for (pos, id) in ids.iter().enumerate() {
        let Some(slice) = events.slice_at(id) else {
            laid.leave_out(ids, pos);
            continue;
        };
        let key = slice.order_key();
        if last.is_some_and(|last| last > key) {
            return None;
        }
        last = Some(key);
        let span = Span::new(slice.start, slice.end, trace.base_time_ns);
        let Some(lane) = lanes.place(span) else {
            if flows.get(slice.kind, slice.idx) {
                let correlation = correlation_of(trace, slice.kind, slice.idx);
                laid.placed.dropped_correlations.push(correlation);
            }
            laid.leave_out(ids, pos);
            continue;
        };
        // Lanes stay under MAX_LANES, so a lane index fits 16 bits.
        laid.keep(id, pos, ids.len(), lane as u16);
    }
    if let Some(kept) = &mut laid.kept {
        kept.shrink_to_fit();
    }
    Some(laid)
}

/// Moves the host tracks whose pid is also a device index (a GPU's pid in the
/// file) to a pid of their own, counting down from `i32::MAX` past every pid in
/// use: one pid cannot be labelled both `CPU` and `GPU <n>`, and a reader drops
/// host slices on a GPU's pid. Only inputs whose host pids look like device
/// indices get here. Tracks stay in (pid, tid) order. Returns the moved pids'
/// originals, by new pid.
fn separate_host_from_devices(tracks: &mut [Track]) -> BTreeMap<u32, u32> {
    let device_pids: BTreeSet<u32> = tracks.iter().filter(|t| t.on_gpu).map(|t| t.pid).collect();
    let clashing: BTreeSet<u32> = tracks
        .iter()
        .filter(|t| !t.on_gpu && device_pids.contains(&t.pid))
        .map(|t| t.pid)
        .collect();
    if clashing.is_empty() {
        return BTreeMap::new();
    }
    let used: BTreeSet<u32> = tracks.iter().map(|t| t.pid).collect();
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
    for track in tracks.iter_mut().filter(|t| !t.on_gpu) {
        if let Some(&new_pid) = new_pid_of.get(&track.pid) {
            track.pid = new_pid;
        }
    }
    tracks.sort_by_key(|t| (t.pid, t.tid()));
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

/// The GPU events with a correlation id, in id order, with their (correlation,
/// start).
fn gpu_with_correlation<'a>(
    events: &Events<'a>,
) -> impl Iterator<Item = (EventId, (u64, i64))> + 'a {
    /// The events of one kind, whose first id is `first`.
    fn of<'a, T>(
        first: EventId,
        events: &'a [T],
        key: impl Fn(&T) -> (u64, i64) + 'a,
    ) -> impl Iterator<Item = (EventId, (u64, i64))> + 'a {
        events
            .iter()
            .enumerate()
            .map(move |(i, e)| (first.saturating_add(i as u32), key(e)))
            .filter(|(_, key)| key.0 != 0)
    }
    let trace = events.trace;
    let first = |kind| events.ids.id(kind, 0);
    of(first(Kind::GraphLaunch), &trace.graph_launches, |g| {
        (g.correlation, g.start)
    })
    .chain(of(first(Kind::Kernel), &trace.kernels, |k| {
        (k.correlation, k.start)
    }))
    .chain(of(first(Kind::Memcpy), &trace.memcpys, |m| {
        (m.correlation, m.start)
    }))
    .chain(of(first(Kind::Memset), &trace.memsets, |m| {
        (m.correlation, m.start)
    }))
}

/// The GPU events with a correlation id by correlation, then start, then kind and
/// index: as the trace holds them, or listed in that order when it does not (a
/// list of millions of ids is what planning holds most of while it joins).
enum GpuOrder {
    /// Id order is that order.
    InIdOrder,
    /// The ids, sorted.
    Listed(Vec<EventId>),
}

impl GpuOrder {
    fn of(events: &Events) -> Self {
        let keys = gpu_with_correlation(events).map(|(_, key)| key);
        if keys.is_sorted() {
            return GpuOrder::InIdOrder;
        }
        let mut gpu: Vec<EventId> = gpu_with_correlation(events).map(|(id, _)| id).collect();
        // Stable: id order stays among events of equal correlation and start.
        gpu.par_sort_by_key(|id: &EventId| {
            let start = events.slice(*id).map_or(0, |s| s.start);
            (events.correlation(*id), start)
        });
        GpuOrder::Listed(gpu)
    }

    /// The events, in order, with their correlations.
    fn iter<'a>(&'a self, events: &Events<'a>) -> impl Iterator<Item = (u64, EventId)> + 'a {
        match self {
            GpuOrder::InIdOrder => {
                Either::Left(gpu_with_correlation(events).map(|(id, key)| (key.0, id)))
            }
            GpuOrder::Listed(gpu) => {
                let events = *events;
                Either::Right(gpu.iter().map(move |&id| (events.correlation(id), id)))
            }
        }
    }

    /// The events as a list, for looking correlations up.
    fn into_list(self, events: &Events) -> Vec<EventId> {
        match self {
            GpuOrder::InIdOrder => gpu_with_correlation(events).map(|(id, _)| id).collect(),
            GpuOrder::Listed(gpu) => gpu,
        }
    }
}

/// The GPU events of `correlation` in `gpu` (sorted by correlation).
fn gpu_group<'g>(events: &Events, gpu: &'g [EventId], correlation: u64) -> &'g [EventId] {
    let from = gpu.partition_point(|&id| events.correlation(id) < correlation);
    let to = from + gpu[from..].partition_point(|&id| events.correlation(id) == correlation);
    &gpu[from..to]
}

/// Joins API calls to the GPU work they launched by correlation id: one flow per
/// correlation, from its first call to its earliest GPU event, and each GPU event
/// inherits the external id of its launch.
fn join_launches(events: &Events, gpu: &GpuOrder) -> (Flows, ExternalIds) {
    let trace = events.trace;
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

    // The calls with a correlation id, by correlation, then index: listed (and
    // sorted stably) only when the trace does not hold them in that order.
    let correlation = |i: u32| trace.api_calls[i as usize].correlation;
    let with_correlation = || (0..trace.api_calls.len() as u32).filter(|&i| correlation(i) != 0);
    let listed = (!with_correlation().map(correlation).is_sorted()).then(|| {
        let mut api: Vec<u32> = with_correlation().collect();
        api.par_sort_by_key(|&i| correlation(i));
        api
    });
    let api = match &listed {
        Some(api) => Either::Left(api.iter().copied()),
        None => Either::Right(with_correlation()),
    };

    // Each side's correlations are looked up once, as the two are walked together.
    let mut calls = api.map(|i| (correlation(i), i)).peekable();
    let mut work = gpu.iter(events).peekable();
    while let (Some(&(ca, launch)), Some(&(cg, earliest))) = (calls.peek(), work.peek()) {
        if ca < cg {
            calls.next();
            continue;
        }
        if cg < ca {
            work.next();
            continue;
        }
        if cg < MAX_FLOW_ID {
            flows.set(Kind::Api, launch, true);
            let (kind, idx) = events.ids.split(earliest);
            flows.set(kind, idx, true);
        }
        let external = trace.api_calls[launch as usize].external_id;
        while let Some((_, id)) = work.next_if(|&(c, _)| c == cg) {
            if any_external {
                let (kind, idx) = events.ids.split(id);
                if let Some(slot) = external_ids.slot(kind, idx) {
                    *slot = external;
                }
            }
        }
        while calls.next_if(|&(c, _)| c == ca).is_some() {}
    }
    (flows, external_ids)
}

/// Projects annotation and NVTX ranges onto the GPU: for each range, the span of
/// the GPU work launched by calls that start inside it on its thread, one slice per
/// (device, stream) touched. `ProfilerStep#<n>` ranges are not projected.
fn project_ranges(events: &Events, gpu: GpuOrder) -> Vec<Projection> {
    let trace = events.trace;
    // Iteration markers stay on the host, as in Kineto's CUDA traces: HTA takes
    // every event whose name contains "ProfilerStep" for a host iteration marker, so
    // a projection of one would shift its iterations to GPU times.
    let projectable = |r: &HostRange| {
        matches!(
            r.kind,
            RangeKind::Annotation | RangeKind::Nvtx | RangeKind::UserAnnotation
        ) && !trace.names.get(r.name).contains("ProfilerStep")
    };
    if !trace.ranges.iter().any(projectable) {
        return Vec::new();
    }
    let gpu = gpu.into_list(events);
    if gpu.is_empty() {
        return Vec::new();
    }
    // Calls by thread and start.
    let call = |i: u32| {
        trace
            .api_calls
            .get(i as usize)
            .map_or((0, 0, 0, 0), |a| (a.pid, a.tid, a.start, a.correlation))
    };
    let mut calls: Vec<u32> = (0..trace.api_calls.len() as u32)
        .filter(|&i| call(i).3 != 0)
        .collect();
    calls.par_sort_unstable_by_key(|&i| call(i));

    let mut projections = Vec::new();
    let mut spans: Vec<((u32, u32), i64, i64)> = Vec::new();
    for range in trace.ranges.iter().filter(|r| projectable(r)) {
        let key = (range.pid, range.tid);
        let thread_start = |i: u32| {
            let (pid, tid, start, _) = call(i);
            (pid, tid, start)
        };
        let from = calls.partition_point(|&i| thread_start(i) < (key.0, key.1, range.start));
        let to = calls.partition_point(|&i| thread_start(i) < (key.0, key.1, range.end));
        spans.clear();
        for &c in &calls[from..to] {
            for &id in gpu_group(events, &gpu, call(c).3) {
                let Some(work) = events.slice(id) else {
                    continue;
                };
                match spans.iter_mut().find(|s| s.0 == (work.pid, work.tid)) {
                    Some(span) => {
                        span.1 = span.1.min(work.start);
                        span.2 = span.2.max(work.end);
                    }
                    None => spans.push(((work.pid, work.tid), work.start, work.end)),
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

/// Tracks looked for along the list before the hash map.
const FEW_TRACKS: usize = 8;

/// What a track is known by: (pid, tid, on the GPU).
type TrackKey = (u32, u32, bool);

/// The tracks met so far, by key, in order of meeting.
#[derive(Default)]
struct TrackIndex {
    index: FxHashMap<TrackKey, usize>,
    keys: Vec<TrackKey>,
    /// The last key looked up: events of one track mostly come together.
    last: Option<(TrackKey, usize)>,
}

impl TrackIndex {
    /// The track of `key`.
    fn of(&mut self, key: TrackKey) -> usize {
        if let Some((last, t)) = self.last
            && last == key
        {
            return t;
        }
        // A trace has a few streams and threads, whose events interleave: a look
        // along the keys is cheaper than hashing until there are many.
        let t = match self.keys.iter().take(FEW_TRACKS).position(|&k| k == key) {
            Some(t) => t,
            None => {
                let keys = &mut self.keys;
                *self.index.entry(key).or_insert_with(|| {
                    keys.push(key);
                    keys.len() - 1
                })
            }
        };
        self.last = Some((key, t));
        t
    }
}

/// Events of one kind filed by one task: enough to be worth a task, few enough
/// that every core gets some.
const PIECE: usize = 1 << 16;

/// Events filed by track, each track's in id order. Pieces of each kind are filed
/// in parallel, then joined in id order.
#[derive(Default)]
struct Filing {
    index: FxHashMap<TrackKey, usize>,
    tracks: Vec<Track>,
}

impl Filing {
    /// Files the events of every kind but the projections.
    fn file(&mut self, events: &Events) {
        let kinds = Kind::NUMBERED.iter().filter(|&&k| k != Kind::Projection);
        self.file_kinds(events, kinds.copied());
    }

    /// Files the projections, which are numbered after every other event.
    fn file_projections(&mut self, events: &Events) {
        self.file_kinds(events, [Kind::Projection].into_iter());
    }

    fn file_kinds(&mut self, events: &Events, kinds: impl Iterator<Item = Kind>) {
        let pieces: Vec<(Kind, Range<usize>)> = kinds
            .flat_map(|kind| {
                let len = events.count(kind);
                (0..len)
                    .step_by(PIECE)
                    .map(move |from| (kind, from..len.min(from + PIECE)))
            })
            .collect();
        // In waves of a few pieces per thread, so that only a wave's pieces are held
        // beside the tracks they are appended to.
        let wave = rayon::current_num_threads().max(1) * 4;
        for wave_pieces in pieces.chunks(wave) {
            let filed: Vec<Vec<(TrackKey, PackedIds)>> = wave_pieces
                .par_iter()
                .map(|(kind, range)| file_piece(events, *kind, range.clone()))
                .collect();
            for (key, ids) in filed.into_iter().flatten() {
                let tracks = &mut self.tracks;
                let t = *self.index.entry(key).or_insert_with(|| {
                    tracks.push(Track::new(key.0, key.1, key.2));
                    tracks.len() - 1
                });
                tracks[t].events.append(ids);
            }
        }
    }

    /// The tracks in (pid, tid) order, never empty.
    fn into_tracks(self) -> Vec<Track> {
        let mut tracks = self.tracks;
        for track in &mut tracks {
            track.events.shrink_to_fit();
        }
        tracks.sort_unstable_by_key(|t| (t.pid, t.tid()));
        tracks
    }
}

/// Files events `range` of `kind` by track. Host and GPU events never share a
/// track, even where a host (pid, tid) equals a (device, stream): a track is
/// labelled one or the other.
fn file_piece(events: &Events, kind: Kind, range: Range<usize>) -> Vec<(TrackKey, PackedIds)> {
    let t = events.trace;
    let slot = Ids::slot(kind);
    let from = range.start;
    let file = |keys: &mut dyn Iterator<Item = (u32, u32)>| {
        let mut index = TrackIndex::default();
        let mut lists: Vec<PackedIds> = Vec::new();
        for (i, (pid, tid)) in keys.enumerate() {
            let track = index.of((pid, tid, kind.on_gpu()));
            if track == lists.len() {
                lists.push(PackedIds::default());
            }
            lists[track].push(slot, (from + i) as u32);
        }
        index.keys.into_iter().zip(lists).collect()
    };
    match kind {
        Kind::Range => file(&mut t.ranges[range].iter().map(|r| (r.pid, r.tid))),
        Kind::Api => file(&mut t.api_calls[range].iter().map(|a| (a.pid, a.tid))),
        Kind::Sync => file(&mut t.syncs[range].iter().map(|s| (s.pid, s.tid))),
        Kind::Overhead => file(&mut t.overheads[range].iter().map(|o| (o.pid, o.tid))),
        Kind::GraphLaunch => {
            file(&mut t.graph_launches[range].iter().map(|g| (g.device, g.stream)))
        }
        Kind::Kernel => file(&mut t.kernels[range].iter().map(|k| (k.device, k.stream))),
        Kind::Memcpy => file(&mut t.memcpys[range].iter().map(|m| (m.device, m.stream))),
        Kind::Memset => file(&mut t.memsets[range].iter().map(|m| (m.device, m.stream))),
        Kind::Projection => file(
            &mut events.projections[range]
                .iter()
                .map(|p| (p.device, p.stream)),
        ),
    }
}

#[cfg(test)]
mod tests {
    use cutrace_tracer::model::{ApiCall, HostRange, Kernel, Memcpy};

    use super::*;

    /// The (start, kind, index) of every slice of every track, in plan order.
    fn planned(trace: &Trace) -> Vec<Vec<(i64, Kind, u32)>> {
        let plan = Plan::build(trace);
        plan.tracks
            .iter()
            .map(|track| {
                plan.slices(trace, track, 0..track.len())
                    .map(|s| (s.start, s.kind, s.idx))
                    .collect()
            })
            .collect()
    }

    /// What file order is, spelled out: by start, the longer first, then kind and
    /// index.
    fn sorted(mut slices: Vec<(i64, i64, Kind, u32)>) -> Vec<(i64, Kind, u32)> {
        slices.sort_by_key(|&(start, end, kind, idx)| (start, Reverse(end), kind, idx));
        slices.into_iter().map(|(s, _, k, i)| (s, k, i)).collect()
    }

    fn call(start: i64, end: i64, tid: u32) -> ApiCall {
        ApiCall {
            start,
            end,
            pid: 1,
            tid,
            ..Default::default()
        }
    }

    fn range(start: i64, end: i64, tid: u32) -> HostRange {
        HostRange {
            start,
            end,
            pid: 1,
            tid,
            ..Default::default()
        }
    }

    /// The calls (by correlation) and kernels (by correlation and start) that carry
    /// a flow, and the external id each kernel inherited.
    type Joined = (Vec<u64>, Vec<(u64, i64)>, Vec<(u64, i64, u64)>);

    fn joined(trace: &Trace) -> Joined {
        let plan = Plan::build(trace);
        let mut calls: Vec<u64> = (0..trace.api_calls.len() as u32)
            .filter(|&i| plan.flows.get(Kind::Api, i))
            .map(|i| trace.api_calls[i as usize].correlation)
            .collect();
        calls.sort_unstable();
        let kernel = |i: u32| &trace.kernels[i as usize];
        let mut kernels: Vec<(u64, i64)> = (0..trace.kernels.len() as u32)
            .filter(|&i| plan.flows.get(Kind::Kernel, i))
            .map(|i| (kernel(i).correlation, kernel(i).start))
            .collect();
        kernels.sort_unstable();
        let mut external: Vec<(u64, i64, u64)> = (0..trace.kernels.len() as u32)
            .map(|i| {
                let k = kernel(i);
                (
                    k.correlation,
                    k.start,
                    plan.external_ids.get(Kind::Kernel, i),
                )
            })
            .collect();
        external.sort_unstable();
        (calls, kernels, external)
    }

    #[test]
    fn launches_join_their_work_whether_listed_or_in_order() {
        let mut trace = Trace::default();
        for i in 0..500u64 {
            let at = 1_000 * i as i64;
            if i < 400 {
                trace.api_calls.push(ApiCall {
                    correlation: i + 1,
                    external_id: 10_000 + i,
                    ..call(at, at + 100, 1)
                });
            }
            // Every fifth launch has two kernels, the earlier one taking its flow;
            // the last hundred have no launch. All in correlation order.
            for k in 0..(1 + u64::from(i % 5 == 0)) {
                trace.kernels.push(Kernel {
                    start: at + 200 + k as i64,
                    end: at + 300,
                    correlation: i + 1,
                    stream: 7 + (i % 3) as u32,
                    ..Default::default()
                });
            }
        }
        let in_order = joined(&trace);
        assert_eq!(in_order.0.len(), in_order.1.len());
        assert_eq!(in_order.0.len(), 400);
        assert_eq!(in_order.2.iter().filter(|k| k.2 != 0).count(), 480);
        // The same events out of order: calls and kernels are then listed and sorted.
        let mut shuffled = trace.clone();
        shuffled.api_calls.reverse();
        shuffled.kernels.reverse();
        assert_eq!(joined(&shuffled), in_order);
    }

    #[test]
    fn events_filed_in_pieces_come_out_whole_and_in_order() {
        // Three streams, round robin, over several pieces of kernels.
        let n = 2 * PIECE + 1234;
        let trace = Trace {
            kernels: (0..n as i64)
                .map(|i| Kernel {
                    start: 10 * i,
                    end: 10 * i + 5,
                    stream: 7 + (i % 3) as u32,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let tracks = planned(&trace);
        assert_eq!(tracks.len(), 3);
        for (s, track) in tracks.iter().enumerate() {
            let expected: Vec<(i64, Kind, u32)> = (s..n)
                .step_by(3)
                .map(|i| (10 * i as i64, Kind::Kernel, i as u32))
                .collect();
            assert_eq!(*track, expected, "stream {}", 7 + s);
        }
    }

    #[test]
    fn tracks_come_in_file_order_whether_merged_or_sorted() {
        let mut trace = Trace::default();
        // Thread 1: ranges and calls each in time order, nested (merged); thread 2:
        // calls out of order (sorted); both spread over several packed blocks.
        let mut expected_1 = Vec::new();
        let mut expected_2 = Vec::new();
        for i in 0..3000i64 {
            let at = 100 * i;
            trace.ranges.push(range(at, at + 60, 1));
            expected_1.push((at, at + 60, Kind::Range, i as u32));
            trace.api_calls.push(call(at + 10, at + 50, 1));
            expected_1.push((at + 10, at + 50, Kind::Api, 2 * i as u32));
            let shuffled = (i * 7919) % 3000 * 100;
            trace.api_calls.push(call(shuffled, shuffled + 20, 2));
            expected_2.push((shuffled, shuffled + 20, Kind::Api, 2 * i as u32 + 1));
            // A range equal to a call comes first, as its parent.
            if i % 500 == 0 {
                trace.ranges.push(range(shuffled, shuffled + 20, 2));
                let idx = trace.ranges.len() as u32 - 1;
                expected_2.push((shuffled, shuffled + 20, Kind::Range, idx));
            }
        }
        // Stream 7: kernels and copies interleaved in time.
        let mut expected_gpu = Vec::new();
        for i in 0..1500i64 {
            let at = 1_000 * i;
            trace.kernels.push(Kernel {
                start: at,
                end: at + 400,
                stream: 7,
                ..Default::default()
            });
            expected_gpu.push((at, at + 400, Kind::Kernel, i as u32));
            trace.memcpys.push(Memcpy {
                start: at + 500,
                end: at + 900,
                stream: 7,
                ..Default::default()
            });
            expected_gpu.push((at + 500, at + 900, Kind::Memcpy, i as u32));
        }
        let ranges = trace.ranges.clone();
        let tracks = planned(&trace);
        // By (pid, tid): device 0 before host process 1.
        assert_eq!(tracks.len(), 3);
        // Ranges of thread 1 re-indexed: the ranges of thread 2 sit among them.
        let index_of = |start: i64, tid: u32| {
            ranges
                .iter()
                .position(|r| r.start == start && r.tid == tid)
                .unwrap_or(usize::MAX) as u32
        };
        let expected_1 = expected_1
            .into_iter()
            .map(|(s, e, k, i)| match k {
                Kind::Range => (s, e, k, index_of(s, 1)),
                _ => (s, e, k, i),
            })
            .collect();
        assert_eq!(tracks[0], sorted(expected_gpu));
        assert_eq!(tracks[1], sorted(expected_1));
        assert_eq!(tracks[2], sorted(expected_2));
    }
}
