//! The key-averages table: torch's `prof.key_averages().table(...)` for a
//! [`Trace`], written as `profiler_out_<rank>.txt` (FORMATS.md §2).
//!
//! [`KeyAverages`] groups a trace's events into [`Row`]s (pure data, in
//! `aggregate`); `format` prints them exactly as torch does; [`TraceStats`] adds
//! what torch's table lacks (kernel duration spread, stream occupancy, GPU time per
//! iteration) for `cutrace report`.

mod aggregate;
mod format;
mod json;
mod stats;

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use cutrace_tracer::Trace;

pub use aggregate::{Row, RowKind};
pub use stats::{IterationTime, KernelStats, StreamBusy, TraceStats};

/// Column the table is sorted by, descending (torch's `sort_by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    /// `self_cuda_time_total`, the default.
    #[default]
    SelfCudaTimeTotal,
    /// `cuda_time_total`.
    CudaTimeTotal,
    /// `self_cpu_time_total`.
    SelfCpuTimeTotal,
    /// `cpu_time_total`.
    CpuTimeTotal,
    /// `count`.
    Count,
}

impl SortKey {
    /// Every key, in the order help texts list them.
    pub const ALL: [SortKey; 5] = [
        SortKey::SelfCudaTimeTotal,
        SortKey::CudaTimeTotal,
        SortKey::SelfCpuTimeTotal,
        SortKey::CpuTimeTotal,
        SortKey::Count,
    ];

    /// The key's name as torch spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::SelfCudaTimeTotal => "self_cuda_time_total",
            SortKey::CudaTimeTotal => "cuda_time_total",
            SortKey::SelfCpuTimeTotal => "self_cpu_time_total",
            SortKey::CpuTimeTotal => "cpu_time_total",
            SortKey::Count => "count",
        }
    }

    fn value(self, row: &Row) -> i64 {
        match self {
            SortKey::SelfCudaTimeTotal => row.self_cuda_ns,
            SortKey::CudaTimeTotal => row.cuda_total_ns,
            SortKey::SelfCpuTimeTotal => row.self_cpu_ns,
            SortKey::CpuTimeTotal => row.cpu_total_ns,
            SortKey::Count => i64::try_from(row.calls).unwrap_or(i64::MAX),
        }
    }
}

impl fmt::Display for SortKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A sort key name that is not one of [`SortKey::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown sort key '{0}' (expected one of: self_cuda_time_total, cuda_time_total, self_cpu_time_total, cpu_time_total, count)"
)]
pub struct UnknownSortKey(pub String);

impl FromStr for SortKey {
    type Err = UnknownSortKey;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SortKey::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownSortKey(s.to_owned()))
    }
}

/// A trace's events grouped by kind and name, with torch's times.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyAverages {
    rows: Vec<Row>,
    dropped_records: u64,
}

impl KeyAverages {
    /// Groups the events of `trace`.
    pub fn from_trace(trace: &Trace) -> Self {
        KeyAverages {
            rows: aggregate::aggregate(trace),
            dropped_records: trace.info.dropped_records,
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
        rows.sort_by_key(|r| std::cmp::Reverse(sort.value(r)));
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
    /// it (`None`: all rows), then `Dropped records: N` when the tracer lost records.
    pub fn table(&self, sort: SortKey, row_limit: Option<usize>) -> String {
        let mut text = format::torch_table(&self.sorted_all(sort), row_limit);
        if self.dropped_records > 0 {
            text.push_str(&format!("Dropped records: {}\n", self.dropped_records));
        }
        text
    }

    /// The sorted, limited rows as a JSON array (`cutrace report --format json`).
    pub fn json(&self, sort: SortKey, row_limit: Option<usize>) -> String {
        json::rows_json(&self.sorted(sort, row_limit))
    }
}

/// A table file that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {}: {source}", path.display())]
pub struct TableFileError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: io::Error,
}

/// Writes the key-averages table of `trace` to `<dir>/profiler_out_<rank>.txt`, as
/// vLLM's `print(table, file=f)` does (so with one more newline), through a
/// temporary file renamed into place. Returns the file's path.
pub fn write_table_file(
    trace: &Trace,
    dir: &Path,
    sort: SortKey,
    row_limit: Option<usize>,
) -> Result<PathBuf, TableFileError> {
    let path = dir.join(format!("profiler_out_{}.txt", trace.info.rank));
    let text = KeyAverages::from_trace(trace).table(sort, row_limit);
    let written = (|| {
        let mut builder = tempfile::Builder::new();
        builder.prefix(".profiler_out_").suffix(".tmp");
        // A temporary file is private by default; the table is not.
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
        let mut file = builder.tempfile_in(dir)?;
        file.write_all(text.as_bytes())?;
        file.write_all(b"\n")?;
        file.as_file().sync_all()?;
        file.persist(&path).map_err(|e| e.error)?;
        Ok(())
    })();
    written
        .map(|()| path.clone())
        .map_err(|source| TableFileError { path, source })
}

#[cfg(test)]
mod torch_samples;
