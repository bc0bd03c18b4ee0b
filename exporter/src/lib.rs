//! The exporter of cutrace: turns a [`cutrace_tracer::Trace`] into files users read
//! (Kineto traces, key-averages tables and, with the `parquet` feature, Parquet), and
//! reads traces back.

#![deny(missing_docs)]

mod chrome;
#[cfg(feature = "parquet")]
mod columnar;
mod error;
mod member_length;
pub mod memory;
mod names;
mod output;
mod reader;
mod run_log;
mod sink;
mod table;
mod table_file;
#[cfg(test)]
mod test_support;
mod unfinished;
pub mod validate;

pub use chrome::{
    Encoding, WriteOptions, WriteStats, trace_file_name, write_trace, write_trace_to,
    write_trace_with,
};
#[cfg(feature = "parquet")]
pub use columnar::{ParquetError, ParquetStats, ROW_GROUP_ROWS, SCHEMA, write_parquet};
pub use error::ExportError;
pub use output::write_output;
pub use reader::{
    FoldFiles, FoldedTrace, ReadError, ReadErrorKind, ReadNotes, TimeOrigin, fold_trace_noted,
    read_trace, read_trace_from, read_trace_from_noted, read_trace_noted,
};
pub use run_log::{RUN_LOG_VAR, RunLog, RunRecord};
pub use sink::{ExportSink, WindowError, WindowFiles};
pub use table::{
    Columns, InIteration, IterationOf, IterationTime, KernelStats, KeyAverages, Row, RowKind,
    SortKey, StreamBusy, TraceStats, UnknownSortKey, format_share, format_time, section,
    truncate_name, us,
};
pub use table_file::{TableFiles, WrittenTable};
pub use unfinished::abandon_unfinished_files;
