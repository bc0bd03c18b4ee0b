//! Key averages as torch computes them: every event grouped by kind and name, with
//! CPU times from the nesting of host events on each thread and CUDA times from the
//! GPU work each host range launched.
//!
//! Host events (ranges, API calls, syncs) form one forest per thread, built the way
//! torch's `_populate_cpu_children` does: sorted by start (longest first), a child
//! lies inside `[start, end)` of its parent, partial overlaps make no link. A range
//! whose only child has its name absorbs that child (`_remove_dup_nodes`). GPU work
//! is attributed through its correlation id to the API call that launched it and from
//! there to the enclosing ranges.

use rustc_hash::FxHashMap;

use cutrace_tracer::model::{
    ApiKind, CopyKind, Memcpy, MemoryKind, Memset, NameId, RangeKind, SyncKind, Synchronization,
    Trace,
};

use crate::names::{memcpy_name, memset_name};

/// What a row of the table counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RowKind {
    /// GPU kernels.
    Kernel,
    /// GPU memory copies.
    Memcpy,
    /// GPU memsets.
    Memset,
    /// Whole CUDA graph launches (graph-level tracing).
    Graph,
    /// CUDA runtime API calls.
    Runtime,
    /// CUDA driver API calls.
    Driver,
    /// Host waits on the GPU.
    Sync,
    /// cutrace annotations.
    Annotation,
    /// NVTX ranges.
    Nvtx,
    /// Framework operators (torch's `cpu_op`).
    CpuOp,
    /// Framework user annotations (torch's `user_annotation`).
    UserAnnotation,
    /// Other host slices read from a file (`python_function`, ...).
    Other,
}

impl RowKind {
    /// The kind's name in `cutrace report --format json`.
    pub fn as_str(self) -> &'static str {
        match self {
            RowKind::Kernel => "kernel",
            RowKind::Memcpy => "memcpy",
            RowKind::Memset => "memset",
            RowKind::Graph => "graph",
            RowKind::Runtime => "runtime",
            RowKind::Driver => "driver",
            RowKind::Sync => "sync",
            RowKind::Annotation => "annotation",
            RowKind::Nvtx => "nvtx",
            RowKind::CpuOp => "cpu_op",
            RowKind::UserAnnotation => "user_annotation",
            RowKind::Other => "other",
        }
    }

    /// Whether the row is GPU work, whose time makes up `Self CUDA time total`.
    pub fn is_device(self) -> bool {
        matches!(
            self,
            RowKind::Kernel | RowKind::Memcpy | RowKind::Memset | RowKind::Graph
        )
    }

    /// The row kind of a host range of `kind`.
    pub fn of_range(kind: RangeKind) -> Self {
        match kind {
            RangeKind::Annotation => RowKind::Annotation,
            RangeKind::Nvtx => RowKind::Nvtx,
            RangeKind::CpuOp => RowKind::CpuOp,
            RangeKind::UserAnnotation => RowKind::UserAnnotation,
            RangeKind::Other => RowKind::Other,
        }
    }
}

/// One row: the events of one kind and name, summed. Times in nanoseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Event name.
    pub name: String,
    /// Event kind.
    pub kind: RowKind,
    /// Number of events.
    pub calls: u64,
    /// Host time not spent in nested host events.
    pub self_cpu_ns: i64,
    /// Host time.
    pub cpu_total_ns: i64,
    /// GPU time of the row's own work: its duration for GPU rows, the work launched
    /// directly inside a range for ranges.
    pub self_cuda_ns: i64,
    /// GPU time including the work of nested ranges.
    pub cuda_total_ns: i64,
}

/// What makes two events land in the same row: a name as read or interned, or,
/// for CUPTI's records, the kinds their name is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Named(RowKind, NameId),
    Memcpy(CopyKind, MemoryKind, MemoryKind),
    Memset(MemoryKind),
    Sync(SyncKind),
    Graph(u32),
}

impl Key {
    fn memcpy(m: &Memcpy) -> Self {
        m.name
            .map_or(Key::Memcpy(m.kind, m.src_kind, m.dst_kind), |id| {
                Key::Named(RowKind::Memcpy, id)
            })
    }

    fn memset(m: &Memset) -> Self {
        m.name.map_or(Key::Memset(m.memory_kind), |id| {
            Key::Named(RowKind::Memset, id)
        })
    }

    fn sync(s: &Synchronization) -> Self {
        s.name
            .map_or(Key::Sync(s.kind), |id| Key::Named(RowKind::Sync, id))
    }
}

/// Rows in the making, in order of creation.
#[derive(Default)]
struct Rows {
    rows: Vec<Row>,
    first_start: Vec<i64>,
    index: FxHashMap<Key, usize>,
}

impl Rows {
    fn get(&mut self, trace: &Trace, key: Key, start: i64) -> usize {
        if let Some(&i) = self.index.get(&key) {
            self.first_start[i] = self.first_start[i].min(start);
            return i;
        }
        let (kind, name) = match key {
            Key::Named(kind, id) => (kind, trace.names.get(id).to_owned()),
            Key::Memcpy(kind, src_kind, dst_kind) => {
                let m = Memcpy {
                    kind,
                    src_kind,
                    dst_kind,
                    ..Memcpy::default()
                };
                (RowKind::Memcpy, memcpy_name(trace, &m).into_owned())
            }
            Key::Memset(memory_kind) => {
                let m = Memset {
                    memory_kind,
                    ..Memset::default()
                };
                (RowKind::Memset, memset_name(trace, &m).into_owned())
            }
            Key::Sync(kind) => (RowKind::Sync, kind.as_str().to_owned()),
            Key::Graph(id) => (RowKind::Graph, format!("Graph {id}")),
        };
        self.rows.push(Row {
            name,
            kind,
            calls: 0,
            self_cpu_ns: 0,
            cpu_total_ns: 0,
            self_cuda_ns: 0,
            cuda_total_ns: 0,
        });
        self.first_start.push(start);
        self.index.insert(key, self.rows.len() - 1);
        self.rows.len() - 1
    }

    /// The rows in order of their first event (ties in order of creation), sorted
    /// in place: with millions of distinct names a copy of the rows would double
    /// the table's memory.
    fn into_sorted(self) -> Vec<Row> {
        let mut keyed: Vec<((i64, usize), Row)> = self
            .first_start
            .into_iter()
            .zip(0..)
            .zip(self.rows)
            .collect();
        keyed.sort_unstable_by_key(|(key, _)| *key);
        keyed.into_iter().map(|(_, row)| row).collect()
    }
}

const NONE: u32 = u32::MAX;

/// The host events of a trace as the nodes of its threads' forests, numbered
/// ranges first, then API calls, then syncs. They are read from the trace where
/// they lie rather than copied: with millions of calls a copy would take more
/// memory than the table.
#[derive(Clone, Copy)]
struct HostEvents<'a> {
    trace: &'a Trace,
}

impl HostEvents<'_> {
    fn len(&self) -> usize {
        self.trace.ranges.len() + self.trace.api_calls.len() + self.trace.syncs.len()
    }

    /// Whether node `i` is a host range.
    fn is_range(&self, i: usize) -> bool {
        i < self.trace.ranges.len()
    }

    /// The node of API call `call`.
    fn call_node(&self, call: usize) -> usize {
        self.trace.ranges.len() + call
    }

    /// The (pid, tid, start, end) of node `i`.
    fn span(&self, i: usize) -> (u32, u32, i64, i64) {
        let t = self.trace;
        let calls = t.ranges.len();
        let syncs = calls + t.api_calls.len();
        if i < calls {
            let r = &t.ranges[i];
            (r.pid, r.tid, r.start, r.end)
        } else if i < syncs {
            let c = &t.api_calls[i - calls];
            (c.pid, c.tid, c.start, c.end)
        } else {
            let s = &t.syncs[i - syncs];
            (s.pid, s.tid, s.start, s.end)
        }
    }
}

/// The rows of `trace`, in order of their first event.
pub(crate) fn aggregate(trace: &Trace) -> Vec<Row> {
    let host = HostEvents { trace };
    let mut rows = Rows::default();
    let mut node_rows: Vec<u32> = Vec::with_capacity(host.len());
    for r in &trace.ranges {
        let key = Key::Named(RowKind::of_range(r.kind), r.name);
        node_rows.push(rows.get(trace, key, r.start) as u32);
    }
    for c in &trace.api_calls {
        let kind = match c.kind {
            ApiKind::Runtime => RowKind::Runtime,
            ApiKind::Driver => RowKind::Driver,
        };
        node_rows.push(rows.get(trace, Key::Named(kind, c.name), c.start) as u32);
    }
    for s in &trace.syncs {
        node_rows.push(rows.get(trace, Key::sync(s), s.start) as u32);
    }
    let forest = Forest::new(host, &node_rows, &rows.rows);
    let launches = Launches::new(trace);

    // GPU time goes to the innermost range around its launch as self time and to
    // every range around it as total time; ranges on the parent chain are never
    // absorbed ones.
    let add_gpu = |rows: &mut Rows, key: Key, start: i64, end: i64, correlation: u64| {
        let dur = end - start;
        let row = rows.get(trace, key, start);
        let row = &mut rows.rows[row];
        row.calls += 1;
        row.self_cuda_ns += dur;
        row.cuda_total_ns += dur;
        let Some(call) = launches.find(trace, correlation) else {
            return;
        };
        let mut innermost = true;
        let mut node = forest.parent[host.call_node(call)];
        while node != NONE {
            let n = node as usize;
            if host.is_range(n) {
                let row = &mut rows.rows[node_rows[n] as usize];
                if innermost {
                    row.self_cuda_ns += dur;
                    innermost = false;
                }
                row.cuda_total_ns += dur;
            }
            node = forest.parent[n];
        }
    };
    for k in &trace.kernels {
        add_gpu(
            &mut rows,
            Key::Named(RowKind::Kernel, k.name),
            k.start,
            k.end,
            k.correlation,
        );
    }
    for m in &trace.memcpys {
        add_gpu(&mut rows, Key::memcpy(m), m.start, m.end, m.correlation);
    }
    for m in &trace.memsets {
        add_gpu(&mut rows, Key::memset(m), m.start, m.end, m.correlation);
    }
    for g in &trace.graph_launches {
        add_gpu(
            &mut rows,
            Key::Graph(g.graph_id),
            g.start,
            g.end,
            g.correlation,
        );
    }

    // A node's self time is its time less that of its direct children.
    for (i, &row) in node_rows.iter().enumerate() {
        if forest.absorbed[i] {
            continue;
        }
        let (_, _, start, end) = host.span(i);
        let dur = end - start;
        let row = &mut rows.rows[row as usize];
        row.calls += 1;
        row.cpu_total_ns += dur;
        row.self_cpu_ns += dur;
        if let Some(&parent) = forest.parent.get(i).filter(|&&p| p != NONE) {
            rows.rows[node_rows[parent as usize] as usize].self_cpu_ns -= dur;
        }
    }
    rows.into_sorted()
}

/// The API calls with a correlation id, by correlation then index: where the GPU
/// work of a correlation finds its launch (the last call that has it).
struct Launches(Vec<u32>);

impl Launches {
    fn new(trace: &Trace) -> Self {
        let correlation = |i: &u32| trace.api_calls[*i as usize].correlation;
        let mut calls: Vec<u32> = (0..trace.api_calls.len() as u32)
            .filter(|i| correlation(i) != 0)
            .collect();
        // Calls mostly come in correlation order already; a stable sort keeps
        // their index order among equals.
        if !calls.is_sorted_by_key(correlation) {
            calls.sort_by_key(correlation);
        }
        Launches(calls)
    }

    /// The index of the call that launched the work of `correlation`.
    fn find(&self, trace: &Trace, correlation: u64) -> Option<usize> {
        let after = self
            .0
            .partition_point(|&i| trace.api_calls[i as usize].correlation <= correlation);
        let call = *self.0.get(after.checked_sub(1)?)? as usize;
        (trace.api_calls[call].correlation == correlation).then_some(call)
    }
}

/// Parent links between the host events of each thread.
struct Forest {
    /// Parent of each node, `NONE` for a root; absorbed nodes are skipped.
    parent: Vec<u32>,
    /// Whether the node was folded into a parent of the same name.
    absorbed: Vec<bool>,
}

impl Forest {
    fn new(host: HostEvents, node_rows: &[u32], rows: &[Row]) -> Self {
        let n = host.len();
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.sort_unstable_by_key(|&i| {
            let (pid, tid, start, end) = host.span(i as usize);
            (pid, tid, start, std::cmp::Reverse(end), i)
        });

        let mut parent = vec![NONE; n];
        let mut child_count = vec![0u32; n];
        let mut stack: Vec<(u32, i64)> = Vec::new();
        let mut thread = None;
        for &i in &order {
            let (pid, tid, start, end) = host.span(i as usize);
            if thread != Some((pid, tid)) {
                thread = Some((pid, tid));
                stack.clear();
            }
            while let Some(&(top, top_end)) = stack.last() {
                if start >= top_end || end > top_end {
                    stack.pop();
                } else {
                    parent[i as usize] = top;
                    child_count[top as usize] += 1;
                    break;
                }
            }
            stack.push((i, end));
        }

        // Parents come before their children in `order`, so a parent's fate is
        // settled when its children are visited, and one step resolves an absorbed
        // parent to the node that absorbed it.
        let mut absorbed = vec![false; n];
        let name = |i: usize| rows[node_rows[i] as usize].name.as_str();
        for &i in &order {
            let i = i as usize;
            let mut p = parent[i];
            if p != NONE && absorbed[p as usize] {
                p = parent[p as usize];
                parent[i] = p;
            }
            if p == NONE {
                continue;
            }
            let p = p as usize;
            if child_count[p] == 1 && name(p) == name(i) {
                absorbed[i] = true;
                child_count[p] = child_count[i];
            }
        }
        Forest { parent, absorbed }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use cutrace_tracer::model::{ApiCall, HostRange, Kernel, Memcpy, Synchronization};

    use super::*;

    /// Builds traces event by event; times in nanoseconds.
    #[derive(Default)]
    pub(crate) struct TraceBuilder {
        pub(crate) trace: Trace,
    }

    impl TraceBuilder {
        pub(crate) fn range(
            &mut self,
            kind: RangeKind,
            name: &str,
            tid: u32,
            start: i64,
            end: i64,
        ) -> &mut Self {
            let name = self.trace.names.intern(name);
            self.trace.ranges.push(HostRange {
                start,
                end,
                name,
                kind,
                pid: 1,
                tid,
                ..Default::default()
            });
            self
        }

        pub(crate) fn op(&mut self, name: &str, start: i64, end: i64) -> &mut Self {
            self.range(RangeKind::CpuOp, name, 1, start, end)
        }

        pub(crate) fn api(
            &mut self,
            name: &str,
            tid: u32,
            start: i64,
            end: i64,
            correlation: u64,
        ) -> &mut Self {
            let name = self.trace.names.intern(name);
            self.trace.api_calls.push(ApiCall {
                start,
                end,
                correlation,
                name,
                pid: 1,
                tid,
                ..Default::default()
            });
            self
        }

        pub(crate) fn kernel(
            &mut self,
            name: &str,
            stream: u32,
            start: i64,
            end: i64,
            correlation: u64,
        ) -> &mut Self {
            let name = self.trace.names.intern(name);
            self.trace.kernels.push(Kernel {
                start,
                end,
                correlation,
                name,
                stream,
                ..Default::default()
            });
            self
        }
    }

    /// The rows of `trace` as (name, calls, self CPU, CPU total, self CUDA, CUDA total).
    fn table(trace: &Trace) -> Vec<(String, u64, i64, i64, i64, i64)> {
        aggregate(trace)
            .into_iter()
            .map(|r| {
                (
                    r.name,
                    r.calls,
                    r.self_cpu_ns,
                    r.cpu_total_ns,
                    r.self_cuda_ns,
                    r.cuda_total_ns,
                )
            })
            .collect()
    }

    fn row(
        name: &str,
        calls: u64,
        self_cpu: i64,
        cpu: i64,
        self_cuda: i64,
        cuda: i64,
    ) -> (String, u64, i64, i64, i64, i64) {
        (name.to_owned(), calls, self_cpu, cpu, self_cuda, cuda)
    }

    #[test]
    fn times_follow_nesting_and_launches() {
        let mut b = TraceBuilder::default();
        b.range(RangeKind::UserAnnotation, "step", 1, 0, 1000)
            .op("op", 100, 500)
            .api("cudaLaunchKernel", 1, 150, 200, 1)
            .api("cudaLaunchKernel", 1, 300, 350, 2)
            .op("op", 600, 900)
            .op("inner", 610, 800)
            .api("cudaMemcpyAsync", 1, 620, 700, 3)
            .api("cudaDeviceSynchronize", 1, 950, 990, 4)
            .kernel("k", 7, 1000, 1100, 1)
            .kernel("k", 7, 1100, 1300, 2)
            .kernel("orphan", 7, 1400, 1410, 99);
        b.trace.memcpys.push(Memcpy {
            start: 1300,
            end: 1350,
            correlation: 3,
            kind: CopyKind::HtoD,
            src_kind: MemoryKind::Pageable,
            dst_kind: MemoryKind::Device,
            ..Default::default()
        });
        b.trace.syncs.push(Synchronization {
            start: 955,
            end: 985,
            correlation: 4,
            kind: SyncKind::ContextSync,
            pid: 1,
            tid: 1,
            ..Default::default()
        });
        let rows = aggregate(&b.trace);
        assert_eq!(
            table(&b.trace),
            [
                row("step", 1, 1000 - 400 - 300 - 40, 1000, 0, 350),
                row("op", 2, (400 - 100) + (300 - 190), 700, 300, 350),
                row("cudaLaunchKernel", 2, 100, 100, 0, 0),
                row("inner", 1, 190 - 80, 190, 50, 50),
                row("cudaMemcpyAsync", 1, 80, 80, 0, 0),
                row("cudaDeviceSynchronize", 1, 10, 40, 0, 0),
                row("Context Sync", 1, 30, 30, 0, 0),
                row("k", 2, 0, 0, 300, 300),
                row("Memcpy HtoD (Pageable -> Device)", 1, 0, 0, 50, 50),
                row("orphan", 1, 0, 0, 10, 10),
            ]
        );
        let kinds: Vec<RowKind> = rows.iter().map(|r| r.kind).collect();
        assert_eq!(
            kinds,
            [
                RowKind::UserAnnotation,
                RowKind::CpuOp,
                RowKind::Runtime,
                RowKind::CpuOp,
                RowKind::Runtime,
                RowKind::Runtime,
                RowKind::Sync,
                RowKind::Kernel,
                RowKind::Memcpy,
                RowKind::Kernel,
            ]
        );
        // Every host nanosecond of the thread is someone's self time.
        assert_eq!(rows.iter().map(|r| r.self_cpu_ns).sum::<i64>(), 1000);
    }

    #[test]
    fn a_range_absorbs_its_only_child_of_the_same_name() {
        let mut b = TraceBuilder::default();
        b.op("dup", 0, 100)
            .op("dup", 10, 90)
            .op("dup", 20, 80)
            .api("cudaLaunchKernel", 1, 30, 40, 10)
            .kernel("k", 7, 100, 105, 10)
            .op("twin", 200, 300)
            .op("twin", 210, 220)
            .op("twin", 230, 240);
        assert_eq!(
            table(&b.trace),
            [
                row("dup", 1, 90, 100, 5, 5),
                row("cudaLaunchKernel", 1, 10, 10, 0, 0),
                row("k", 1, 0, 0, 5, 5),
                row("twin", 3, 80 + 10 + 10, 120, 0, 0),
            ]
        );
    }

    #[test]
    fn only_whole_containment_on_one_thread_nests() {
        let mut b = TraceBuilder::default();
        b.op("a", 0, 100)
            // Partial overlap: no parent.
            .op("b", 50, 150)
            // Starts where `a` ends: not inside it.
            .op("c", 100, 100)
            // Another thread: not inside `a`.
            .range(RangeKind::CpuOp, "d", 2, 10, 20)
            .api("cudaLaunchKernel", 2, 11, 12, 5)
            .kernel("k", 7, 30, 40, 5);
        assert_eq!(
            table(&b.trace),
            [
                row("a", 1, 100, 100, 0, 0),
                row("d", 1, 9, 10, 10, 10),
                row("cudaLaunchKernel", 1, 1, 1, 0, 0),
                row("k", 1, 0, 0, 10, 10),
                row("b", 1, 100, 100, 0, 0),
                row("c", 1, 0, 0, 0, 0),
            ]
        );
    }

    #[test]
    fn same_name_different_kind_are_different_rows() {
        let mut b = TraceBuilder::default();
        b.op("x", 0, 10).kernel("x", 7, 20, 30, 0);
        let rows = aggregate(&b.trace);
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].kind, rows[1].kind),
            (RowKind::CpuOp, RowKind::Kernel)
        );
        assert!(RowKind::Kernel.is_device() && !RowKind::CpuOp.is_device());
        assert_eq!(RowKind::UserAnnotation.as_str(), "user_annotation");
    }
}
