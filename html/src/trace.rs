//! What the page needs of one trace, made in one place for the command and the
//! benchmark: its figures and its table.

use cutrace_analysis::TraceFigures;
use cutrace_exporter::{KeyAverages, SortKey};
use cutrace_tracer::Trace;

use crate::Table;

/// The figures of `trace`, read from `file`, the `index`-th of the traces of a
/// page, and its key-averages table sorted by `sort` and cut to `row_limit` rows
/// (`None`: all).
pub fn of_trace(
    file: String,
    index: usize,
    trace: &Trace,
    sort: SortKey,
    row_limit: Option<usize>,
) -> (TraceFigures, Table) {
    // One after the other, not side by side: each holds a copy of the events'
    // times while it works, and memory is what a report of a large trace runs
    // short of (the report across ranks already reads traces on every core).
    let figures = TraceFigures::from_trace(file, index, trace);
    let averages = KeyAverages::from_trace(trace);
    let table = Table {
        rows: averages
            .sorted(sort, row_limit)
            .into_iter()
            .cloned()
            .collect(),
        all_rows: averages.rows().len(),
        sort: sort.as_str(),
    };
    (figures, table)
}
