//! The exporter of cutrace: turns a [`cutrace_tracer::Trace`] into files users read.

#![deny(missing_docs)]

mod chrome;
mod error;
mod reader;
mod sink;
mod table;
mod table_file;
pub mod validate;

pub use chrome::{
    Encoding, WriteOptions, WriteStats, trace_file_name, write_trace, write_trace_with,
};
pub use error::ExportError;
pub use reader::{ReadError, ReadErrorKind, read_trace, read_trace_from};
pub use sink::ExportSink;
pub use table::{
    Columns, IterationTime, KernelStats, KeyAverages, Row, RowKind, SortKey, StreamBusy,
    TraceStats, UnknownSortKey, format_share, format_time, section, truncate_name, us,
};
pub use table_file::{TableFiles, WrittenTable};
