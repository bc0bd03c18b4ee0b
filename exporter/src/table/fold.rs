//! The report of a trace folded as its events come: torch's key averages and the
//! figures after them, from events fed one at a time.
//!
//! Each host thread's events must come in order of start (longest first, then
//! ranges, calls and syncs, each in the trace's order), and each stream's GPU work
//! in order of start; anything else is [`OutOfOrder`]. Work may come before or
//! after the call that launched it. What the fold keeps grows with the rows, the
//! open host events, the ranges that have calls inside and the correlations (sixteen
//! bytes each, sixteen more for the figures, and one duration a kernel for the
//! medians), not with every event: a host event is settled once its parent
//! decides whether it absorbs it.
//!
//! [`Fold::table_of`] and [`Fold::figures_of`] feed it a whole [`Trace`], sorted;
//! the reader feeds it a file cutrace wrote as its events are read, keeping none
//! of them (`reader::folding`): cutrace writes each track in the order it needs.

use std::cmp::Reverse;
use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use cutrace_tracer::model::{
    ApiCall, ApiKind, GraphLaunch, HostRange, Iteration, Kernel, Memcpy, Memset, NameId, Names,
    Synchronization, Trace,
};

use super::aggregate::{Key, Row, RowKind, Rows};
use super::stats::{IterationTime, StreamBusy, TraceStats, containing, kernel_stats};

/// The lists of a trace, in the order rows created at the same first start keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum List {
    /// Host ranges.
    Ranges,
    /// API calls.
    Calls,
    /// Synchronizations.
    Syncs,
    /// Kernels.
    Kernels,
    /// Memory copies.
    Memcpys,
    /// Memsets.
    Memsets,
    /// Whole-graph launches.
    GraphLaunches,
}

impl List {
    /// Every list, in order.
    pub(crate) const ALL: [List; 7] = [
        List::Ranges,
        List::Calls,
        List::Syncs,
        List::Kernels,
        List::Memcpys,
        List::Memsets,
        List::GraphLaunches,
    ];
}

/// An event's place in its trace: its list and its index there.
pub(crate) type Place = (List, u64);

/// A host event: a range, an API call or a synchronization.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HostEvent {
    pub(crate) pid: u32,
    pub(crate) tid: u32,
    pub(crate) start: i64,
    pub(crate) end: i64,
    pub(crate) key: Key,
    pub(crate) place: Place,
    /// The correlation of a call, 0 for none or for a call a later one supersedes.
    pub(crate) correlation: u64,
}

/// GPU work: a kernel, copy, memset or graph launch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GpuEvent {
    pub(crate) start: i64,
    pub(crate) end: i64,
    pub(crate) key: Key,
    pub(crate) place: Place,
    pub(crate) correlation: u64,
    pub(crate) device: u32,
    pub(crate) stream: u32,
    /// The name of a kernel, whose duration goes into the medians.
    pub(crate) kernel: Option<NameId>,
}

impl HostEvent {
    /// Host range `index` of its trace.
    pub(crate) fn range(r: &HostRange, index: u64) -> Self {
        HostEvent {
            pid: r.pid,
            tid: r.tid,
            start: r.start,
            end: r.end,
            key: Key::Named(RowKind::of_range(r.kind), r.name),
            place: (List::Ranges, index),
            correlation: 0,
        }
    }

    /// API call `index` of its trace, with its correlation.
    pub(crate) fn call(c: &ApiCall, index: u64) -> Self {
        let kind = match c.kind {
            ApiKind::Runtime => RowKind::Runtime,
            ApiKind::Driver => RowKind::Driver,
        };
        HostEvent {
            pid: c.pid,
            tid: c.tid,
            start: c.start,
            end: c.end,
            key: Key::Named(kind, c.name),
            place: (List::Calls, index),
            correlation: c.correlation,
        }
    }

    /// Synchronization `index` of its trace.
    pub(crate) fn sync(s: &Synchronization, index: u64) -> Self {
        HostEvent {
            pid: s.pid,
            tid: s.tid,
            start: s.start,
            end: s.end,
            key: Key::sync(s),
            place: (List::Syncs, index),
            correlation: s.correlation,
        }
    }
}

impl GpuEvent {
    fn work(start: i64, end: i64, key: Key, place: Place, correlation: u64) -> Self {
        GpuEvent {
            start,
            end,
            key,
            place,
            correlation,
            device: 0,
            stream: 0,
            kernel: None,
        }
    }

    /// Kernel `index` of its trace.
    pub(crate) fn kernel(k: &Kernel, index: u64) -> Self {
        let key = Key::Named(RowKind::Kernel, k.name);
        GpuEvent {
            device: k.device,
            stream: k.stream,
            kernel: Some(k.name),
            ..GpuEvent::work(k.start, k.end, key, (List::Kernels, index), k.correlation)
        }
    }

    /// Memory copy `index` of its trace.
    pub(crate) fn memcpy(m: &Memcpy, index: u64) -> Self {
        let place = (List::Memcpys, index);
        GpuEvent {
            device: m.device,
            stream: m.stream,
            ..GpuEvent::work(m.start, m.end, Key::memcpy(m), place, m.correlation)
        }
    }

    /// Memset `index` of its trace.
    pub(crate) fn memset(m: &Memset, index: u64) -> Self {
        let place = (List::Memsets, index);
        GpuEvent {
            device: m.device,
            stream: m.stream,
            ..GpuEvent::work(m.start, m.end, Key::memset(m), place, m.correlation)
        }
    }

    /// Graph launch `index` of its trace.
    pub(crate) fn graph_launch(g: &GraphLaunch, index: u64) -> Self {
        let (key, place) = (Key::Graph(g.graph_id), (List::GraphLaunches, index));
        GpuEvent {
            device: g.device,
            stream: g.stream,
            ..GpuEvent::work(g.start, g.end, key, place, g.correlation)
        }
    }
}

/// An event that came out of the order the fold needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OutOfOrder;

/// A slot's record before any call of its correlation came.
const NO_CALL: u32 = u32::MAX;
/// The record of a call no host event encloses.
const NO_RECORD: u32 = u32::MAX - 1;

/// A host event not yet settled: open, or closed and waiting for its parent to
/// decide whether it absorbs it.
#[derive(Debug, Clone, Copy)]
struct Node {
    end: i64,
    dur: i64,
    row: u32,
    /// Its record, `NO_RECORD` until a call inside it needs one.
    record: u32,
    /// Host time of its settled children, charged to its row's self time.
    children_ns: i64,
}

/// An open host event.
#[derive(Debug)]
struct Frame {
    node: Node,
    place: Place,
    /// The correlation of a call, else 0.
    correlation: u64,
    children: u32,
    /// The first child, closed, while it may still be absorbed.
    pending: Option<Node>,
}

/// One host thread's open events and the order of the last one.
#[derive(Debug, Default)]
struct Thread {
    stack: Vec<Frame>,
    last: Option<(i64, Reverse<i64>, Place)>,
}

/// A host event with calls inside: where their GPU time goes.
#[derive(Debug, Clone, Copy)]
struct Record {
    parent: u32,
    row: u32,
    range: bool,
    absorbed: bool,
    /// GPU time launched by the calls directly inside.
    direct_ns: i64,
}

/// What is known of one correlation: its last call and its GPU work.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// The record of the host event around its last call, `NO_CALL` before one.
    record: u32,
    works: u32,
    work_ns: i64,
}

const EMPTY_SLOT: Slot = Slot {
    record: NO_CALL,
    works: 0,
    work_ns: 0,
};

/// When a correlation's last call started, and its first work, while it has only
/// one: what GPU time per iteration needs beyond the table.
#[derive(Debug, Clone, Copy, Default)]
struct Starts {
    call: i64,
    first_work: i64,
}

/// Correlations per page: ids are a dense counter, so a page is mostly used.
const PAGE: usize = 1024;

/// The correlations, in pages allocated as ids are met.
#[derive(Debug, Default)]
struct Correlations {
    pages: Vec<Box<[Slot; PAGE]>>,
    /// The pages' starts, kept only for the figures.
    starts: Option<Vec<Box<[Starts; PAGE]>>>,
    /// Each page's place in `pages`, by page number.
    index: FxHashMap<u64, u32>,
    /// The last page met: work and calls come mostly in correlation order.
    last: Option<(u64, u32)>,
    /// (correlation, start, duration) of each work of a correlation with more than
    /// one, for the iterations of work whose launch the trace lacks.
    several: Vec<(u64, i64, i64)>,
}

impl Correlations {
    /// The page and place in it of `correlation`, its page made if new.
    fn place(&mut self, correlation: u64) -> (usize, usize) {
        let number = correlation / PAGE as u64;
        let page = match self.last {
            Some((last, page)) if last == number => page,
            _ => {
                let (pages, starts) = (&mut self.pages, &mut self.starts);
                let page = *self.index.entry(number).or_insert_with(|| {
                    pages.push(Box::new([EMPTY_SLOT; PAGE]));
                    if let Some(starts) = starts {
                        starts.push(Box::new([Starts::default(); PAGE]));
                    }
                    (pages.len() - 1) as u32
                });
                self.last = Some((number, page));
                page
            }
        };
        (page as usize, (correlation % PAGE as u64) as usize)
    }

    fn slot(&mut self, (page, i): (usize, usize)) -> &mut Slot {
        &mut self.pages[page][i]
    }

    fn starts(&mut self, (page, i): (usize, usize)) -> Option<&mut Starts> {
        Some(&mut self.starts.as_mut()?[page][i])
    }

    fn get(&self, correlation: u64) -> Slot {
        self.index
            .get(&(correlation / PAGE as u64))
            .map_or(EMPTY_SLOT, |&page| {
                self.pages[page as usize][(correlation % PAGE as u64) as usize]
            })
    }
}

/// Stream busy time in the making: a union of intervals that come in order of
/// start.
#[derive(Debug, Clone, Copy)]
struct Union {
    events: u64,
    busy_ns: i64,
    covered_to: i64,
    last_start: i64,
}

/// The figures of `TraceStats` in the making.
#[derive(Debug, Default)]
struct Figures {
    kernels: Vec<(NameId, i64)>,
    streams: FxHashMap<(u32, u32), Union>,
    span: Option<(i64, i64)>,
}

/// A trace's key averages, and optionally its figures, in the making.
#[derive(Debug)]
pub(crate) struct Fold {
    rows: Rows,
    threads: FxHashMap<(u32, u32), Thread>,
    records: Vec<Record>,
    correlations: Correlations,
    figures: Option<Figures>,
    /// Whether work is joined to its calls: what the figures alone need only for
    /// iterations.
    correlate: bool,
}

/// What a fold gives: the rows in order of first event, and the figures when asked.
pub(crate) struct Folded {
    pub(crate) rows: Vec<Row>,
    pub(crate) stats: Option<TraceStats>,
}

impl Fold {
    /// An empty fold; `figures` says whether to gather `TraceStats` too.
    pub(crate) fn new(figures: bool) -> Self {
        Fold {
            rows: Rows::default(),
            threads: FxHashMap::default(),
            records: Vec::new(),
            correlations: Correlations {
                starts: figures.then(Vec::new),
                ..Correlations::default()
            },
            figures: figures.then(Figures::default),
            correlate: true,
        }
    }

    /// Takes one host event; `names` tells rows of one name apart from rows of
    /// another.
    pub(crate) fn host(&mut self, e: &HostEvent, names: &Names) -> Result<(), OutOfOrder> {
        let order = (e.start, Reverse(e.end), e.place);
        let thread = self.threads.entry((e.pid, e.tid)).or_default();
        if thread.last.is_some_and(|last| order <= last) {
            return Err(OutOfOrder);
        }
        thread.last = Some(order);
        let row = self.rows.get(e.key, e.start, e.place, names);
        let settle = &mut Settle {
            rows: &mut self.rows,
            records: &mut self.records,
        };
        while let Some(top) = thread.stack.last() {
            if e.start < top.node.end && e.end <= top.node.end {
                break;
            }
            let Some(closed) = thread.stack.pop() else {
                break;
            };
            settle.close(closed, thread.stack.last_mut());
        }
        if let Some(parent) = thread.stack.last_mut() {
            parent.children += 1;
            if let Some(first) = parent.pending.take() {
                settle.child(first, false, &mut parent.node);
            }
        }
        thread.stack.push(Frame {
            node: Node {
                end: e.end,
                dur: e.end - e.start,
                row,
                record: NO_RECORD,
                children_ns: 0,
            },
            place: e.place,
            correlation: if e.place.0 == List::Calls {
                e.correlation
            } else {
                0
            },
            children: 0,
            pending: None,
        });
        if e.place.0 == List::Calls && e.correlation != 0 {
            let depth = thread.stack.len() - 1;
            let record = settle.record_around(&mut thread.stack[..depth]);
            let place = self.correlations.place(e.correlation);
            if let Some(starts) = self.correlations.starts(place) {
                starts.call = e.start;
            }
            let slot = self.correlations.slot(place);
            if slot.record < NO_RECORD {
                self.records[slot.record as usize].direct_ns -= slot.work_ns;
            }
            if record < NO_RECORD {
                self.records[record as usize].direct_ns += slot.work_ns;
            }
            slot.record = record;
        }
        Ok(())
    }

    /// Takes one GPU event.
    pub(crate) fn gpu(&mut self, e: &GpuEvent, names: &Names) -> Result<(), OutOfOrder> {
        let dur = e.end - e.start;
        if let Some(figures) = &mut self.figures {
            let union = figures
                .streams
                .entry((e.device, e.stream))
                .or_insert(Union {
                    events: 0,
                    busy_ns: 0,
                    covered_to: i64::MIN,
                    last_start: i64::MIN,
                });
            if e.start < union.last_start {
                return Err(OutOfOrder);
            }
            union.last_start = e.start;
            union.events += 1;
            let from = e.start.max(union.covered_to);
            if e.end > from {
                union.busy_ns += e.end - from;
                union.covered_to = e.end;
            }
            figures.span = Some(figures.span.map_or((e.start, e.end), |(first, last)| {
                (first.min(e.start), last.max(e.end))
            }));
            if let Some(name) = e.kernel {
                figures.kernels.push((name, dur));
            }
        }
        let row = self.rows.get(e.key, e.start, e.place, names);
        self.rows.add_gpu(row, dur);
        if !self.correlate {
            return Ok(());
        }
        let correlations = &mut self.correlations;
        let place = correlations.place(e.correlation);
        let works = correlations.slot(place).works;
        let work_ns = correlations.slot(place).work_ns;
        if let Some(starts) = correlations.starts(place) {
            match works {
                0 => starts.first_work = e.start,
                1 => {
                    let first = (e.correlation, starts.first_work, work_ns);
                    let this = (e.correlation, e.start, dur);
                    correlations.several.extend([first, this]);
                }
                _ => correlations.several.push((e.correlation, e.start, dur)),
            }
        }
        let slot = correlations.slot(place);
        slot.works += 1;
        slot.work_ns += dur;
        if slot.record < NO_RECORD {
            self.records[slot.record as usize].direct_ns += dur;
        }
        Ok(())
    }

    /// Whether a call of `correlation` is open around `start..end` on thread
    /// `pid`, `tid`, as the events fed so far leave it.
    pub(crate) fn call_open(
        &self,
        (pid, tid): (u32, u32),
        start: i64,
        end: i64,
        correlation: u64,
    ) -> bool {
        self.threads.get(&(pid, tid)).is_some_and(|thread| {
            // Frames that end before `start` are still on the stack until the
            // next event pops them.
            let open = thread.stack.iter().rev();
            open.skip_while(|f| !(start < f.node.end && end <= f.node.end))
                .any(|f| f.correlation == correlation)
        })
    }

    /// Whether a call of `correlation` was fed.
    pub(crate) fn has_call(&self, correlation: u64) -> bool {
        self.correlations.get(correlation).record != NO_CALL
    }

    /// The number of GPU events of `correlation` fed.
    pub(crate) fn works_of(&self, correlation: u64) -> u32 {
        self.correlations.get(correlation).works
    }

    /// The rows, named from `trace`, and the figures over `trace`'s iterations;
    /// `offset` is what makes the fed times absolute.
    pub(crate) fn finish(mut self, trace: &Trace, offset: i64) -> Folded {
        let mut settle = Settle {
            rows: &mut self.rows,
            records: &mut self.records,
        };
        for thread in std::mem::take(&mut self.threads).into_values() {
            let mut stack = thread.stack;
            while let Some(closed) = stack.pop() {
                settle.close(closed, stack.last_mut());
            }
        }
        // Records come after the records around them: one pass from the last
        // carries each one's GPU time out to the ranges around it.
        let mut below = vec![(0i64, 0i64); self.records.len()];
        for (i, r) in self.records.iter().enumerate().rev() {
            let (inner, all) = below[i];
            let (inner, all) = (inner + r.direct_ns, all + r.direct_ns);
            let passed = if r.range && !r.absorbed {
                self.rows.add_cuda_of_range(r.row, inner, all);
                0
            } else {
                inner
            };
            if r.parent < NO_RECORD {
                let up = &mut below[r.parent as usize];
                *up = (up.0 + passed, up.1 + all);
            }
        }
        let stats = self.figures.take().map(|figures| TraceStats {
            kernels: kernel_stats(figures.kernels, &trace.names),
            streams: figures
                .streams
                .into_iter()
                .collect::<BTreeMap<_, _>>()
                .into_iter()
                .map(|((device, stream), u)| StreamBusy {
                    device,
                    stream,
                    events: u.events,
                    busy_ns: u.busy_ns,
                })
                .collect(),
            gpu_span_ns: figures.span.map_or(0, |(first, last)| last - first),
            iterations: self.iteration_times(&trace.iterations, offset),
            base_time_ns: trace.base_time_ns,
        });
        Folded {
            rows: self.rows.into_sorted(trace),
            stats,
        }
    }

    /// GPU time per iteration: work goes to the iteration its last call starts
    /// in, work without a call to the one it starts in.
    fn iteration_times(&self, iterations: &[Iteration], offset: i64) -> Vec<IterationTime> {
        let mut times: Vec<IterationTime> = iterations
            .iter()
            .map(|i| IterationTime {
                number: i.number,
                start_ns: i.start,
                end_ns: i.end,
                duration_ns: i.end - i.start,
                gpu_ns: 0,
                gpu_events: 0,
                unlaunched_gpu_ns: 0,
            })
            .collect();
        if times.is_empty() {
            return times;
        }
        let at = |t: i64| containing(iterations, t.saturating_add(offset));
        let c = &self.correlations;
        let starts = c.starts.iter().flatten().flat_map(|page| page.iter());
        let slots = c.pages.iter().flat_map(|page| page.iter()).zip(starts);
        for (slot, starts) in slots.filter(|(s, _)| s.works > 0) {
            if slot.record != NO_CALL {
                if let Some(k) = at(starts.call) {
                    times[k].gpu_ns += slot.work_ns;
                    times[k].gpu_events += u64::from(slot.works);
                }
            } else if slot.works == 1 {
                if let Some(k) = at(starts.first_work) {
                    times[k].unlaunched_gpu_ns += slot.work_ns;
                }
            }
        }
        for &(correlation, start, dur) in &self.correlations.several {
            if self.correlations.get(correlation).record == NO_CALL {
                if let Some(k) = at(start) {
                    times[k].unlaunched_gpu_ns += dur;
                }
            }
        }
        times
    }

    /// The rows of the key averages of a whole trace.
    pub(crate) fn table_of(trace: &Trace) -> Vec<Row> {
        Fold::of_trace(trace, false).rows
    }

    /// The figures of a whole trace.
    pub(crate) fn figures_of(trace: &Trace) -> TraceStats {
        Fold::of_trace(trace, true).stats.unwrap_or_default()
    }

    /// The key averages, and with `figures` the figures, of a whole trace; the
    /// figures alone join work to calls only for iterations, and then the rows
    /// lack the host events.
    fn of_trace(trace: &Trace, figures: bool) -> Folded {
        let mut fold = Fold::new(figures);
        fold.correlate = !figures || !trace.iterations.is_empty();
        let names = &trace.names;
        let work = (0..work_len(trace)).filter_map(|i| work_at(trace, i));
        if figures {
            // The figures need each stream's work in order of start: indices
            // sorted, four bytes a GPU event.
            let mut order: Vec<u32> = (0..work_len(trace) as u32).collect();
            order.sort_unstable_by_key(|&i| (work_start(trace, i as usize), i));
            for e in order.into_iter().filter_map(|i| work_at(trace, i as usize)) {
                let sorted = fold.gpu(&e, names);
                debug_assert_eq!(sorted, Ok(()));
            }
        } else {
            for e in work {
                // The table alone takes work in any order.
                let _ = fold.gpu(&e, names);
            }
        }

        if !fold.correlate {
            return fold.finish(trace, 0);
        }
        let host = host_events(trace);
        let mut order: Vec<u32> = (0..host.len() as u32).collect();
        order.sort_unstable_by_key(|&i| host.order(i as usize));
        for &i in &order {
            let sorted = fold.host(&host.get(i as usize), names);
            debug_assert_eq!(sorted, Ok(()));
        }
        fold.finish(trace, 0)
    }
}

/// The number of GPU events of `trace`: kernels, copies, memsets, graph launches.
fn work_len(trace: &Trace) -> usize {
    trace.kernels.len() + trace.memcpys.len() + trace.memsets.len() + trace.graph_launches.len()
}

/// The list and index of GPU event `i` of `trace`, numbered kernels first, then
/// copies, memsets and graph launches.
fn work_place(trace: &Trace, mut i: usize) -> Option<(List, usize)> {
    let lists = [
        (List::Kernels, trace.kernels.len()),
        (List::Memcpys, trace.memcpys.len()),
        (List::Memsets, trace.memsets.len()),
        (List::GraphLaunches, trace.graph_launches.len()),
    ];
    for (list, len) in lists {
        if i < len {
            return Some((list, i));
        }
        i -= len;
    }
    None
}

/// GPU event `i` of `trace`, numbered as [`work_place`] does.
fn work_at(trace: &Trace, i: usize) -> Option<GpuEvent> {
    let (list, i) = work_place(trace, i)?;
    gpu_event(trace, list, i)
}

/// The start of GPU event `i` of `trace`: the sort key, read without making the
/// event.
fn work_start(trace: &Trace, i: usize) -> Option<i64> {
    let (list, i) = work_place(trace, i)?;
    match list {
        List::Kernels => trace.kernels.get(i).map(|k| k.start),
        List::Memcpys => trace.memcpys.get(i).map(|m| m.start),
        List::Memsets => trace.memsets.get(i).map(|m| m.start),
        List::GraphLaunches => trace.graph_launches.get(i).map(|g| g.start),
        List::Ranges | List::Calls | List::Syncs => None,
    }
}

/// GPU event `i` of `list` in `trace`; `None` for the host lists.
fn gpu_event(trace: &Trace, list: List, i: usize) -> Option<GpuEvent> {
    let index = i as u64;
    Some(match list {
        List::Kernels => GpuEvent::kernel(trace.kernels.get(i)?, index),
        List::Memcpys => GpuEvent::memcpy(trace.memcpys.get(i)?, index),
        List::Memsets => GpuEvent::memset(trace.memsets.get(i)?, index),
        List::GraphLaunches => GpuEvent::graph_launch(trace.graph_launches.get(i)?, index),
        List::Ranges | List::Calls | List::Syncs => return None,
    })
}

/// The host events of a trace, numbered ranges first, then calls, then syncs;
/// read where they lie: with millions of calls a copy would take more memory
/// than the table. A call that a later call of its correlation supersedes comes
/// without its correlation.
struct HostEvents<'a> {
    trace: &'a Trace,
    /// Indices of superseded calls, sorted.
    superseded: Vec<u32>,
}

fn host_events(trace: &Trace) -> HostEvents<'_> {
    let correlation = |i: &u32| trace.api_calls[*i as usize].correlation;
    let mut calls: Vec<u32> = (0..trace.api_calls.len() as u32)
        .filter(|i| correlation(i) != 0)
        .collect();
    // Calls mostly come in correlation order already; a stable sort keeps their
    // index order among equals, the last of which launched the work.
    if !calls.is_sorted_by_key(correlation) {
        calls.sort_by_key(correlation);
    }
    let mut superseded: Vec<u32> = calls
        .windows(2)
        .filter(|w| correlation(&w[0]) == correlation(&w[1]))
        .map(|w| w[0])
        .collect();
    superseded.sort_unstable();
    HostEvents { trace, superseded }
}

impl HostEvents<'_> {
    fn len(&self) -> usize {
        self.trace.ranges.len() + self.trace.api_calls.len() + self.trace.syncs.len()
    }

    /// The order event `i` is fed in: by thread, then as [`Fold::host`] needs.
    fn order(&self, i: usize) -> (u32, u32, i64, Reverse<i64>, usize) {
        let t = self.trace;
        let calls = t.ranges.len();
        let syncs = calls + t.api_calls.len();
        let (pid, tid, start, end) = if i < calls {
            let r = &t.ranges[i];
            (r.pid, r.tid, r.start, r.end)
        } else if i < syncs {
            let c = &t.api_calls[i - calls];
            (c.pid, c.tid, c.start, c.end)
        } else {
            let s = &t.syncs[i - syncs];
            (s.pid, s.tid, s.start, s.end)
        };
        (pid, tid, start, Reverse(end), i)
    }

    fn get(&self, i: usize) -> HostEvent {
        let t = self.trace;
        let calls = t.ranges.len();
        let syncs = calls + t.api_calls.len();
        if i < calls {
            HostEvent::range(&t.ranges[i], i as u64)
        } else if i < syncs {
            let index = i - calls;
            let call = HostEvent::call(&t.api_calls[index], index as u64);
            if self.superseded.binary_search(&(index as u32)).is_ok() {
                HostEvent {
                    correlation: 0,
                    ..call
                }
            } else {
                call
            }
        } else {
            HostEvent::sync(&t.syncs[i - syncs], (i - syncs) as u64)
        }
    }
}

/// Settles host events into rows and records.
struct Settle<'a> {
    rows: &'a mut Rows,
    records: &'a mut Vec<Record>,
}

impl Settle<'_> {
    /// Settles `closed`, just popped, and its pending first child; `parent` is
    /// the event now open around it.
    fn close(&mut self, mut closed: Frame, parent: Option<&mut Frame>) {
        if let Some(first) = closed.pending.take() {
            // An event absorbs its only child of the same name.
            let absorbed = closed.children == 1 && self.rows.same_name(first.row, closed.node.row);
            self.child(first, absorbed, &mut closed.node);
        }
        match parent {
            Some(parent) if parent.children == 1 => parent.pending = Some(closed.node),
            Some(parent) => self.child(closed.node, false, &mut parent.node),
            None => self.rows.add_host(closed.node.row, closed.node.dur),
        }
    }

    /// Settles `child` of `parent`, absorbed or not.
    fn child(&mut self, child: Node, absorbed: bool, parent: &mut Node) {
        // An absorbed event's children are its parent's: their time moves from its
        // row's self time to the parent's.
        let moved = if absorbed {
            self.rows.take_self(child.row, -child.children_ns);
            if child.record < NO_RECORD {
                self.records[child.record as usize].absorbed = true;
            }
            child.children_ns
        } else {
            self.rows.add_host(child.row, child.dur);
            child.dur
        };
        self.rows.take_self(parent.row, moved);
        parent.children_ns += moved;
    }

    /// The record of the innermost of `open`, made for it and the events around
    /// it as needed; `NO_RECORD` when nothing is open.
    fn record_around(&mut self, open: &mut [Frame]) -> u32 {
        let have = open
            .iter()
            .rposition(|f| f.node.record != NO_RECORD)
            .map_or(0, |i| i + 1);
        for i in have..open.len() {
            let parent = if i == 0 {
                NO_RECORD
            } else {
                open[i - 1].node.record
            };
            self.records.push(Record {
                parent,
                row: open[i].node.row,
                range: open[i].place.0 == List::Ranges,
                absorbed: false,
                direct_ns: 0,
            });
            open[i].node.record = (self.records.len() - 1) as u32;
        }
        open.last().map_or(NO_RECORD, |f| f.node.record)
    }
}

#[cfg(test)]
mod tests {
    use cutrace_tracer::model::{ApiCall, HostRange, Kernel, RangeKind};

    use super::*;

    /// A trace whose host events nest in every way the table knows: an event
    /// absorbing its only child of the same name (also of another kind, and
    /// with calls inside), twins that are not absorbed, a call superseded by a
    /// later call of its correlation, work without a call, and iterations.
    fn nested() -> Trace {
        let mut t = Trace::default();
        let op = t.names.intern("op");
        let twin = t.names.intern("twin");
        let launch = t.names.intern("cudaLaunchKernel");
        let k = t.names.intern("k");
        let range = |name, kind, start, end| HostRange {
            start,
            end,
            name,
            kind,
            pid: 1,
            tid: 1,
            ..Default::default()
        };
        t.ranges = vec![
            range(op, RangeKind::UserAnnotation, 0, 100),
            range(op, RangeKind::CpuOp, 10, 90),
            range(op, RangeKind::CpuOp, 20, 80),
            range(twin, RangeKind::CpuOp, 200, 300),
            range(twin, RangeKind::CpuOp, 210, 220),
            range(twin, RangeKind::CpuOp, 230, 240),
        ];
        let call = |start, correlation, tid| ApiCall {
            start,
            end: start + 5,
            correlation,
            name: launch,
            pid: 1,
            tid,
            ..Default::default()
        };
        t.api_calls = vec![
            call(30, 1, 1),
            call(40, 2, 1),
            call(212, 3, 1),
            call(250, 4, 1),
            // Supersedes the call of correlation 4 above.
            call(400, 4, 2),
        ];
        let kernel = |start, correlation| Kernel {
            start,
            end: start + 7,
            correlation,
            name: k,
            stream: 7,
            ..Default::default()
        };
        t.kernels = vec![
            kernel(500, 1),
            kernel(510, 2),
            kernel(520, 2),
            kernel(530, 3),
            kernel(540, 4),
            kernel(550, 9),
            kernel(560, 9),
        ];
        t.iterations = vec![
            Iteration {
                number: 1,
                start: 0,
                end: 210,
            },
            Iteration {
                number: 2,
                start: 210,
                end: 1000,
            },
        ];
        t
    }

    /// The trace's events fed one by one in the order a file can give them: all
    /// GPU work first, then each thread's host events by start.
    fn fed(t: &Trace, work_first: bool) -> Result<Folded, OutOfOrder> {
        let mut fold = Fold::new(true);
        let host = host_events(t);
        let mut order: Vec<HostEvent> = (0..host.len()).map(|i| host.get(i)).collect();
        order.sort_by_key(|e| (e.pid, e.tid, e.start, Reverse(e.end), e.place));
        let work: Vec<GpuEvent> = (0..t.kernels.len())
            .filter_map(|i| gpu_event(t, List::Kernels, i))
            .collect();
        if work_first {
            work.iter().try_for_each(|e| fold.gpu(e, &t.names))?;
        }
        order.iter().try_for_each(|e| fold.host(e, &t.names))?;
        if !work_first {
            work.iter().try_for_each(|e| fold.gpu(e, &t.names))?;
        }
        Ok(fold.finish(t, 0))
    }

    fn table(rows: &[Row]) -> Vec<(&str, RowKind, u64, i64, i64, i64, i64)> {
        rows.iter()
            .map(|r| {
                let sums = (
                    r.self_cpu_ns,
                    r.cpu_total_ns,
                    r.self_cuda_ns,
                    r.cuda_total_ns,
                );
                (
                    r.name.as_str(),
                    r.kind,
                    r.calls,
                    sums.0,
                    sums.1,
                    sums.2,
                    sums.3,
                )
            })
            .collect()
    }

    #[test]
    fn events_fed_as_they_come_fold_as_the_whole_trace() {
        let t = nested();
        let whole = Fold::of_trace(&t, true);
        assert_eq!(Fold::table_of(&t), whole.rows);
        assert_eq!(Some(Fold::figures_of(&t)), whole.stats);
        use RowKind::*;
        assert_eq!(
            table(&whole.rows),
            [
                // The annotation absorbs its cpu_op namesake, which absorbs the
                // next; the calls inside give the annotation their GPU time.
                ("op", UserAnnotation, 1, 90, 100, 21, 21),
                ("op", CpuOp, 0, 0, 0, 0, 0),
                ("cudaLaunchKernel", Runtime, 5, 25, 25, 0, 0),
                // The call at 250 is superseded: no GPU time for the outer twin's
                // self.
                ("twin", CpuOp, 3, (100 - 20 - 5) + (10 - 5) + 10, 120, 7, 14),
                ("k", Kernel, 7, 0, 0, 49, 49),
            ]
        );
        let stats = whole.stats.clone().unwrap_or_default();
        let gpu: Vec<(i64, u64, i64)> = stats
            .iterations
            .iter()
            .map(|i| (i.gpu_ns, i.gpu_events, i.unlaunched_gpu_ns))
            .collect();
        // Correlation 4's call moved to 400, in iteration 2; correlation 9 has
        // no call and goes by its starts.
        assert_eq!(gpu, [(21, 3, 0), (14, 2, 14)]);
        for work_first in [true, false] {
            let folded = fed(&t, work_first).map_err(|_| "out of order");
            let folded = folded.as_ref().map(|f| (table(&f.rows), f.stats.clone()));
            assert_eq!(folded, Ok((table(&whole.rows), whole.stats.clone())));
        }
    }

    #[test]
    fn events_out_of_order_are_refused() {
        let t = nested();
        let host = host_events(&t);
        let names = &t.names;
        let mut fold = Fold::new(true);
        assert_eq!(fold.host(&host.get(1), names), Ok(()));
        // Starts before the event before it on its thread.
        assert_eq!(fold.host(&host.get(0), names), Err(OutOfOrder));
        // A call of the same span as the range before it comes after it; a range
        // of that span after the call does not: ranges come first.
        let mut call = host.get(6);
        (call.start, call.end) = (10, 90);
        assert_eq!(fold.host(&call, names), Ok(()));
        let mut range = host.get(2);
        (range.start, range.end) = (10, 90);
        assert_eq!(fold.host(&range, names), Err(OutOfOrder));
        // Another thread has an order of its own.
        let other = HostEvent {
            tid: 9,
            ..host.get(0)
        };
        assert_eq!(fold.host(&other, names), Ok(()));

        let kernel = |i| gpu_event(&t, List::Kernels, i).ok_or("no kernel");
        assert_eq!(kernel(1).map(|e| fold.gpu(&e, names)), Ok(Ok(())));
        assert_eq!(kernel(0).map(|e| fold.gpu(&e, names)), Ok(Err(OutOfOrder)));
        // Without the figures, work on a stream may come in any order.
        let mut table_only = Fold::new(false);
        assert_eq!(kernel(1).map(|e| table_only.gpu(&e, names)), Ok(Ok(())));
        assert_eq!(kernel(0).map(|e| table_only.gpu(&e, names)), Ok(Ok(())));
    }
}
