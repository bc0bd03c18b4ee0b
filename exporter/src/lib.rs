//! The exporter of cutrace: turns a [`cutrace_tracer::Trace`] into files users read.

#![deny(missing_docs)]

mod chrome;
mod error;
pub mod memory;
mod names;
mod reader;
mod run_log;
mod sink;
mod table;
mod unfinished;
pub mod validate;

pub use chrome::{
    Encoding, WriteOptions, WriteStats, trace_file_name, write_trace, write_trace_to,
    write_trace_with,
};
pub use error::ExportError;
pub use reader::{
    ReadError, ReadErrorKind, ReadNotes, TimeOrigin, read_trace, read_trace_from,
    read_trace_from_noted, read_trace_noted,
};
pub use run_log::{RUN_LOG_VAR, RunLog, RunRecord};
pub use sink::{ExportSink, WindowError, WindowFiles};
pub use table::{
    IterationTime, KernelStats, KeyAverages, Row, RowKind, SortKey, StreamBusy, TraceStats,
    UnknownSortKey, write_table_file,
};
pub use unfinished::abandon_unfinished_files;
