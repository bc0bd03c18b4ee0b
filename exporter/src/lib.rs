//! The exporter of cutrace: turns a [`cutrace_tracer::Trace`] into files users read.

#![deny(missing_docs)]

mod reader;
mod table;

pub use reader::{ReadError, ReadErrorKind, read_trace, read_trace_from};
pub use table::{
    IterationTime, KernelStats, KeyAverages, Row, RowKind, SortKey, StreamBusy, TableFileError,
    TraceStats, UnknownSortKey, write_table_file,
};
