//! The key-averages table: torch's `prof.key_averages().table(...)` for a
//! [`Trace`], written as `profiler_out_<rank>.txt` (`docs/formats.md` §2).
//!
//! [`KeyAverages`] groups a trace's events into [`Row`]s (pure data, in
//! `aggregate`); `format` prints them exactly as torch does; [`TraceStats`] adds
//! what torch's table lacks (kernel duration spread, stream occupancy, GPU time per
//! iteration) for `cutrace report`.

mod aggregate;
mod fold;
mod format;
mod json;
mod stats;

use cutrace_tracer::Trace;

pub use cutrace_tracer::{SortKey, UnknownSortKey};

pub use aggregate::{Row, RowKind};
pub(crate) use fold::{Fold, GpuEvent, HostEvent, List, OutOfOrder};
pub use format::{Columns, format_share, format_time, section, truncate_name, us};
pub use stats::{InIteration, IterationOf, IterationTime, KernelStats, StreamBusy, TraceStats};

/// The value a row is sorted by, descending.
fn sort_value(key: SortKey, row: &Row) -> i64 {
    match key {
        SortKey::SelfCudaTimeTotal => row.self_cuda_ns,
        SortKey::CudaTimeTotal => row.cuda_total_ns,
        SortKey::SelfCpuTimeTotal => row.self_cpu_ns,
        SortKey::CpuTimeTotal => row.cpu_total_ns,
        SortKey::Count => i64::try_from(row.calls).unwrap_or(i64::MAX),
    }
}

/// A trace's events grouped by kind and name, with torch's times.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyAverages {
    rows: Vec<Row>,
    dropped_records: u64,
    refused_buffers: u64,
}

impl KeyAverages {
    /// Groups the events of `trace`.
    pub fn from_trace(trace: &Trace) -> Self {
        KeyAverages::from_rows(aggregate::aggregate(trace), trace)
    }

    /// The key averages of `rows`, in order of their first event, from `trace`.
    pub(crate) fn from_rows(rows: Vec<Row>, trace: &Trace) -> Self {
        KeyAverages {
            rows,
            dropped_records: trace.info.dropped_records,
            refused_buffers: trace.info.refused_buffers,
        }
    }

    /// The rows, in order of their first event.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// The rows sorted descending by `sort` (ties keep their order), cut to
    /// `row_limit` (`None`: all).
    pub fn sorted(&self, sort: SortKey, row_limit: Option<usize>) -> Vec<&Row> {
        let mut rows = self.sorted_all(sort);
        rows.truncate(row_limit.unwrap_or(usize::MAX));
        rows
    }

    fn sorted_all(&self, sort: SortKey) -> Vec<&Row> {
        let mut rows: Vec<&Row> = self.rows.iter().collect();
        rows.sort_by_key(|r| std::cmp::Reverse(sort_value(sort, r)));
        rows
    }

    /// Host time outside nested host events, summed over all rows, ns.
    pub fn self_cpu_time_total_ns(&self) -> i64 {
        self.rows.iter().map(|r| r.self_cpu_ns).sum()
    }

    /// GPU time of kernels, copies, memsets (and graph launches), ns.
    pub fn self_cuda_time_total_ns(&self) -> i64 {
        self.rows
            .iter()
            .filter(|r| r.kind.is_device())
            .map(|r| r.self_cuda_ns)
            .sum()
    }

    /// The table exactly as torch's `table(sort_by=sort, row_limit=row_limit)` prints
    /// it (`None`: all rows), then `Dropped records: N` when CUPTI dropped records
    /// and `Refused buffer requests: N` when the buffer pool refused CUPTI.
    pub fn table(&self, sort: SortKey, row_limit: Option<usize>) -> String {
        let mut text = format::torch_table(&self.sorted_all(sort), row_limit);
        if self.dropped_records > 0 {
            text.push_str(&format!("Dropped records: {}\n", self.dropped_records));
        }
        if self.refused_buffers > 0 {
            text.push_str(&format!(
                "Refused buffer requests: {}\n",
                self.refused_buffers
            ));
        }
        text
    }

    /// The sorted, limited rows as a JSON array (`cutrace report --format json`).
    pub fn json(&self, sort: SortKey, row_limit: Option<usize>) -> String {
        json::rows_json(&self.sorted(sort, row_limit))
    }
}

#[cfg(test)]
mod torch_samples;

#[cfg(test)]
mod tests {
    use cutrace_tracer::model::RangeKind;

    use super::aggregate::tests::TraceBuilder;
    use super::*;

    fn example() -> Trace {
        let mut b = TraceBuilder::default();
        b.op("aten::mm", 0, 100)
            .api("cudaLaunchKernel", 1, 10, 20, 1)
            .kernel("gemm", 7, 200, 1200, 1)
            .range(RangeKind::Annotation, "mine", 1, 300, 350);
        b.trace.info.rank = 3;
        b.trace
    }

    #[test]
    fn sort_keys_parse_by_torch_name() {
        for key in SortKey::ALL {
            assert_eq!(key.as_str().parse::<SortKey>(), Ok(key));
        }
        let error = "cpu_time".parse::<SortKey>().unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("unknown sort key 'cpu_time' (expected one of: self_cuda_time_total,"),
            "{error}"
        );
    }

    #[test]
    fn sorting_is_descending_and_stable() {
        let averages = KeyAverages::from_trace(&example());
        let names = |sort, limit| -> Vec<String> {
            averages
                .sorted(sort, limit)
                .iter()
                .map(|r| r.name.clone())
                .collect()
        };
        // aten::mm launched gemm: equal self CUDA time, first seen first.
        assert_eq!(
            names(SortKey::SelfCudaTimeTotal, None),
            ["aten::mm", "gemm", "cudaLaunchKernel", "mine"]
        );
        assert_eq!(names(SortKey::CudaTimeTotal, Some(2)), ["aten::mm", "gemm"]);
        assert_eq!(
            names(SortKey::SelfCpuTimeTotal, None),
            ["aten::mm", "mine", "cudaLaunchKernel", "gemm"]
        );
        assert_eq!(names(SortKey::CpuTimeTotal, Some(1)), ["aten::mm"]);
        assert_eq!(names(SortKey::Count, Some(0)), Vec::<String>::new());
        assert_eq!(averages.self_cpu_time_total_ns(), 90 + 10 + 50);
        assert_eq!(averages.self_cuda_time_total_ns(), 1000);
    }

    #[test]
    fn dropped_records_follow_the_footer() {
        let mut trace = example();
        let plain = KeyAverages::from_trace(&trace).table(SortKey::default(), None);
        assert!(
            plain.ends_with("Self CUDA time total: 1.000us\n"),
            "{plain}"
        );
        trace.info.dropped_records = 12;
        let table = KeyAverages::from_trace(&trace).table(SortKey::default(), None);
        assert_eq!(table, format!("{plain}Dropped records: 12\n"));
        trace.info.refused_buffers = 3;
        let table = KeyAverages::from_trace(&trace).table(SortKey::default(), None);
        assert_eq!(
            table,
            format!("{plain}Dropped records: 12\nRefused buffer requests: 3\n")
        );
        trace.info.dropped_records = 0;
        let table = KeyAverages::from_trace(&trace).table(SortKey::default(), None);
        assert_eq!(table, format!("{plain}Refused buffer requests: 3\n"));
    }

    #[test]
    fn json_rows_carry_microseconds() {
        let json = KeyAverages::from_trace(&example()).json(SortKey::SelfCpuTimeTotal, Some(2));
        let rows: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            rows,
            serde_json::json!([
                {"name": "aten::mm", "kind": "cpu_op", "calls": 1, "self_cuda_us": 1.0,
                 "cuda_total_us": 1.0, "self_cpu_us": 0.09, "cpu_total_us": 0.1},
                {"name": "mine", "kind": "annotation", "calls": 1, "self_cuda_us": 0.0,
                 "cuda_total_us": 0.0, "self_cpu_us": 0.05, "cpu_total_us": 0.05},
            ])
        );
    }
}
