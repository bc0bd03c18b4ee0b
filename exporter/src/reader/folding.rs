//! A trace's report folded while its file is read: the key averages and the
//! figures after them, from events that are not kept, so that the memory of a
//! report grows with its table, not with the file.
//!
//! The fold needs each host thread's events, and each stream's work, in order of
//! start, which is how cutrace writes its tracks. Whatever a one-pass read cannot
//! settle as the events come (events out of that order, a pid that turns out to be
//! a device's after ranges on it were folded, a synchronization that a later call
//! moves to another thread, graph work that the kept events lack) makes the fold
//! [`Unfoldable`], and the caller reads the whole trace instead: a report is never
//! different for having been folded.

use rustc_hash::{FxHashMap, FxHashSet};

use cutrace_tracer::Trace;
use cutrace_tracer::model::{
    ApiCall, GraphLaunch, HostRange, Kernel, Memcpy, Memset, Names, Synchronization,
    launches_a_graph,
};

use crate::table::{Fold, GpuEvent, HostEvent, KeyAverages, List, OutOfOrder, TraceStats};

/// The events of a file do not come in the order folding them needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unfoldable;

impl From<OutOfOrder> for Unfoldable {
    fn from(_: OutOfOrder) -> Self {
        Unfoldable
    }
}

/// The report of one trace, folded while its file was read.
#[derive(Debug)]
pub struct FoldedTrace {
    /// Torch's key averages.
    pub averages: KeyAverages,
    /// The figures after the table.
    pub stats: TraceStats,
    /// The trace without the events folded: its metadata, names, iterations and
    /// overheads, and the work of its CUDA graphs with the calls that launched
    /// them, for the graph figures.
    pub kept: Trace,
}

/// Calls remembered with their threads for the syncs after them: a sync that
/// does not nest in its call is written on a lane of the call's thread, next to
/// it in the file, as the slices between them start between the two.
const RECENT_CALLS: usize = 64;

/// The fold of a file being read, and what it must check once the file is done.
#[derive(Debug)]
pub(crate) struct Folding {
    fold: Fold,
    /// The events of each list met so far: the index of the next.
    met: [u64; List::ALL.len()],
    /// The pids ranges were folded on, and those whose ranges were left out for
    /// being devices': each must still be what it was taken for at the end.
    host_pids: FxHashSet<u32>,
    device_pids: FxHashSet<u32>,
    /// Ranges left out for lying on a device's track.
    pub(crate) on_devices: u64,
    /// The correlations of the syncs folded: a later call of one would move its
    /// sync to the call's thread.
    sync_correlations: FxHashSet<u64>,
    /// The last calls met, with their threads: where a sync that is not inside
    /// its call finds it, on the lane next to the sync's.
    recent_calls: [(u64, (u32, u32)); RECENT_CALLS],
    /// Calls met: the next call's place in `recent_calls`, modulo its length.
    calls_met: usize,
    /// The pid of the first call and of the first range folded.
    pub(crate) first_call_pid: Option<u32>,
    pub(crate) first_range_pid: Option<u32>,
}

impl Folding {
    /// A fold of nothing yet.
    pub(crate) fn new() -> Self {
        Folding {
            fold: Fold::new(true),
            met: [0; List::ALL.len()],
            host_pids: FxHashSet::default(),
            device_pids: FxHashSet::default(),
            on_devices: 0,
            sync_correlations: FxHashSet::default(),
            recent_calls: [(0, (0, 0)); RECENT_CALLS],
            calls_met: 0,
            first_call_pid: None,
            first_range_pid: None,
        }
    }

    /// The index of the next event of `list`.
    fn next(&mut self, list: List) -> u64 {
        let index = &mut self.met[list as usize];
        *index += 1;
        *index - 1
    }

    fn host(&mut self, event: &HostEvent, names: &Names) -> Result<(), Unfoldable> {
        Ok(self.fold.host(event, names)?)
    }

    fn gpu(&mut self, event: &GpuEvent, names: &Names) -> Result<(), Unfoldable> {
        Ok(self.fold.gpu(event, names)?)
    }

    // Each event below is folded; the `bool` says whether the trace keeps it too.

    /// Folds a range, unless it lies on what is taken for a device's track.
    pub(crate) fn range(
        &mut self,
        r: &HostRange,
        on_device: bool,
        names: &Names,
    ) -> Result<bool, Unfoldable> {
        if on_device {
            self.device_pids.insert(r.pid);
            self.on_devices += 1;
            return Ok(false);
        }
        self.host_pids.insert(r.pid);
        self.first_range_pid.get_or_insert(r.pid);
        let event = HostEvent::range(r, self.next(List::Ranges));
        self.host(&event, names).map(|()| false)
    }

    /// Folds a call; a graph launch call is kept.
    pub(crate) fn call(&mut self, c: &ApiCall, names: &Names) -> Result<bool, Unfoldable> {
        if c.correlation != 0 && self.sync_correlations.contains(&c.correlation) {
            return Err(Unfoldable);
        }
        self.first_call_pid.get_or_insert(c.pid);
        self.recent_calls[self.calls_met % RECENT_CALLS] = (c.correlation, (c.pid, c.tid));
        self.calls_met += 1;
        let event = HostEvent::call(c, self.next(List::Calls));
        self.host(&event, names)?;
        Ok(launches_a_graph(names.get(c.name)))
    }

    /// Folds a sync on the thread of the last call of its correlation, as the
    /// whole trace has it: the call open around it, or one of the last calls met;
    /// on its own thread while no call of its correlation came.
    pub(crate) fn sync(&mut self, s: &Synchronization, names: &Names) -> Result<bool, Unfoldable> {
        let mut event = HostEvent::sync(s, self.next(List::Syncs));
        if s.correlation != 0 {
            let own = (s.pid, s.tid);
            let thread = if self.fold.call_open(own, s.start, s.end, s.correlation) {
                own
            } else if let Some(thread) = self.recent_call(s.correlation) {
                thread
            } else if self.fold.has_call(s.correlation) {
                return Err(Unfoldable);
            } else {
                own
            };
            (event.pid, event.tid) = thread;
            self.sync_correlations.insert(s.correlation);
        }
        self.host(&event, names).map(|()| false)
    }

    /// The thread of the last call of `correlation` among the recent ones.
    fn recent_call(&self, correlation: u64) -> Option<(u32, u32)> {
        let (latest, earlier) = self.recent_calls.split_at(self.calls_met % RECENT_CALLS);
        let newest_first = latest.iter().rev().chain(earlier.iter().rev());
        newest_first
            .take(self.calls_met)
            .find(|&&(c, _)| c == correlation)
            .map(|&(_, thread)| thread)
    }

    /// Folds a kernel; a graph's node is kept.
    pub(crate) fn kernel(&mut self, k: &Kernel, names: &Names) -> Result<bool, Unfoldable> {
        let event = GpuEvent::kernel(k, self.next(List::Kernels));
        self.gpu(&event, names).map(|()| k.graph_id != 0)
    }

    /// Folds a copy; a graph's node is kept.
    pub(crate) fn memcpy(&mut self, m: &Memcpy, names: &Names) -> Result<bool, Unfoldable> {
        let event = GpuEvent::memcpy(m, self.next(List::Memcpys));
        self.gpu(&event, names).map(|()| m.graph_node_id != 0)
    }

    /// Folds a memset; a graph's node is kept.
    pub(crate) fn memset(&mut self, m: &Memset, names: &Names) -> Result<bool, Unfoldable> {
        let event = GpuEvent::memset(m, self.next(List::Memsets));
        self.gpu(&event, names).map(|()| m.graph_node_id != 0)
    }

    /// Folds a whole-graph launch, which is kept.
    pub(crate) fn graph_launch(
        &mut self,
        g: &GraphLaunch,
        names: &Names,
    ) -> Result<bool, Unfoldable> {
        let event = GpuEvent::graph_launch(g, self.next(List::GraphLaunches));
        self.gpu(&event, names).map(|()| true)
    }

    /// The report, once the file is done and `kept` holds what it kept with
    /// absolute times; `offset` made them absolute, and `is_device` tells the
    /// device pids as the whole file shows them.
    pub(crate) fn finish(
        self,
        kept: Trace,
        offset: i64,
        is_device: impl Fn(u32) -> bool,
    ) -> Result<FoldedTrace, Unfoldable> {
        let taken_right = self.host_pids.iter().all(|&pid| !is_device(pid))
            && self.device_pids.iter().all(|&pid| is_device(pid));
        if !taken_right || !self.kept_every_graph_work(&kept) {
            return Err(Unfoldable);
        }
        let folded = self.fold.finish(&kept, offset);
        Ok(FoldedTrace {
            averages: KeyAverages::from_rows(folded.rows, &kept),
            stats: folded.stats.unwrap_or_default(),
            kept,
        })
    }

    /// Whether `kept` holds all the work of each graph launch: the work of the
    /// correlations of its launch calls and of its node kernels, which the graph
    /// figures gather, all of which the fold counted.
    fn kept_every_graph_work(&self, kept: &Trace) -> bool {
        let mut kept_works: FxHashMap<u64, u32> = FxHashMap::default();
        let correlations = kept.kernels.iter().map(|k| k.correlation);
        let correlations = correlations
            .chain(kept.memcpys.iter().map(|m| m.correlation))
            .chain(kept.memsets.iter().map(|m| m.correlation))
            .chain(kept.graph_launches.iter().map(|g| g.correlation));
        for correlation in correlations {
            *kept_works.entry(correlation).or_default() += 1;
        }
        let launches = kept.api_calls.iter().map(|c| c.correlation);
        let nodes = kept.kernels.iter().map(|k| k.correlation);
        launches
            .chain(nodes)
            .filter(|&c| c != 0)
            .all(|c| kept_works.get(&c).copied().unwrap_or(0) == self.fold.works_of(c))
    }
}
