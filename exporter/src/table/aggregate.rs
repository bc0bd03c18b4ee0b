//! Key averages as torch computes them: every event grouped by kind and name, with
//! CPU times from the nesting of host events on each thread and CUDA times from the
//! GPU work each host range launched.
//!
//! Host events (ranges, API calls, syncs) form one forest per thread, built the way
//! torch's `_populate_cpu_children` does: sorted by start (longest first), a child
//! lies inside `[start, end)` of its parent, partial overlaps make no link. An event
//! whose only child has its name absorbs that child (`_remove_dup_nodes`). GPU work
//! is attributed through its correlation id to the API call that launched it and from
//! there to the enclosing ranges. The forest is built, and the rows summed, by
//! [`super::fold`].

use rustc_hash::FxHashMap;

use cutrace_tracer::model::{
    CopyKind, Memcpy, MemoryKind, Memset, NameId, Names, RangeKind, SyncKind, Synchronization,
    Trace,
};

use super::fold::{Fold, Place};
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
pub(crate) enum Key {
    Named(RowKind, NameId),
    Memcpy(CopyKind, MemoryKind, MemoryKind),
    Memset(MemoryKind),
    Sync(SyncKind),
    Graph(u32),
}

impl Key {
    pub(crate) fn memcpy(m: &Memcpy) -> Self {
        m.name
            .map_or(Key::Memcpy(m.kind, m.src_kind, m.dst_kind), |id| {
                Key::Named(RowKind::Memcpy, id)
            })
    }

    pub(crate) fn memset(m: &Memset) -> Self {
        m.name.map_or(Key::Memset(m.memory_kind), |id| {
            Key::Named(RowKind::Memset, id)
        })
    }

    pub(crate) fn sync(s: &Synchronization) -> Self {
        s.name
            .map_or(Key::Sync(s.kind), |id| Key::Named(RowKind::Sync, id))
    }

    /// The row's kind and name.
    fn name(self, trace: &Trace) -> (RowKind, String) {
        match self {
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
        }
    }
}

/// The sums of one row.
#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    calls: u64,
    self_cpu_ns: i64,
    cpu_total_ns: i64,
    self_cuda_ns: i64,
    cuda_total_ns: i64,
}

/// Rows in the making, in order of creation; named when done.
#[derive(Debug, Default)]
pub(crate) struct Rows {
    keys: Vec<Key>,
    sums: Vec<Sums>,
    /// The interned name of each row's name, for telling names apart: `None` for a
    /// name made from kinds that no event was read with.
    name_ids: Vec<Option<NameId>>,
    /// Each row's first start and the place of its first event, by which rows
    /// are ordered.
    first: Vec<(i64, Place)>,
    index: FxHashMap<Key, u32>,
}

impl Rows {
    /// The row of `key`, for an event at `start` and `place`.
    pub(crate) fn get(&mut self, key: Key, start: i64, place: Place, names: &Names) -> u32 {
        if let Some(&i) = self.index.get(&key) {
            let first = &mut self.first[i as usize];
            *first = (*first).min((start, place));
            return i;
        }
        let name_id = match key {
            Key::Named(_, id) => Some(id),
            Key::Sync(kind) => names.find(kind.as_str()),
            Key::Memcpy(..) | Key::Memset(_) | Key::Graph(_) => None,
        };
        let i = self.keys.len() as u32;
        self.keys.push(key);
        self.sums.push(Sums::default());
        self.name_ids.push(name_id);
        self.first.push((start, place));
        self.index.insert(key, i);
        i
    }

    /// Whether rows `a` and `b` have one name (of one kind or of two).
    pub(crate) fn same_name(&self, a: u32, b: u32) -> bool {
        a == b
            || matches!(
                (self.name_ids[a as usize], self.name_ids[b as usize]),
                (Some(x), Some(y)) if x == y
            )
    }

    /// Counts GPU work of `dur` in `row`.
    pub(crate) fn add_gpu(&mut self, row: u32, dur: i64) {
        let s = &mut self.sums[row as usize];
        s.calls += 1;
        s.self_cuda_ns += dur;
        s.cuda_total_ns += dur;
    }

    /// Counts a host event of `dur` in `row`.
    pub(crate) fn add_host(&mut self, row: u32, dur: i64) {
        let s = &mut self.sums[row as usize];
        s.calls += 1;
        s.cpu_total_ns += dur;
        s.self_cpu_ns += dur;
    }

    /// Takes `ns` of host time spent in children off `row`'s self time.
    pub(crate) fn take_self(&mut self, row: u32, ns: i64) {
        self.sums[row as usize].self_cpu_ns -= ns;
    }

    /// Gives a range's row the GPU time launched inside it.
    pub(crate) fn add_cuda_of_range(&mut self, row: u32, self_ns: i64, total_ns: i64) {
        let s = &mut self.sums[row as usize];
        s.self_cuda_ns += self_ns;
        s.cuda_total_ns += total_ns;
    }

    /// The rows, named from `trace`, in order of their first event (ties in order
    /// of their first event's list and index).
    pub(crate) fn into_sorted(self, trace: &Trace) -> Vec<Row> {
        let mut order: Vec<u32> = (0..self.keys.len() as u32).collect();
        order.sort_unstable_by_key(|&i| self.first[i as usize]);
        order
            .into_iter()
            .map(|i| {
                let (kind, name) = self.keys[i as usize].name(trace);
                let s = self.sums[i as usize];
                Row {
                    name,
                    kind,
                    calls: s.calls,
                    self_cpu_ns: s.self_cpu_ns,
                    cpu_total_ns: s.cpu_total_ns,
                    self_cuda_ns: s.self_cuda_ns,
                    cuda_total_ns: s.cuda_total_ns,
                }
            })
            .collect()
    }
}

/// The rows of `trace`, in order of their first event.
pub(crate) fn aggregate(trace: &Trace) -> Vec<Row> {
    Fold::table_of(trace)
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
