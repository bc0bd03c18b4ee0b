//! The exporter of cutrace: turns a [`cutrace_tracer::Trace`] into files users read
//! (Kineto traces, key-averages tables and, with the `parquet` feature, Parquet), and
//! reads traces back.

#![deny(missing_docs)]

mod chrome;
#[cfg(feature = "parquet")]
mod columnar;
mod error;
mod reader;
mod sink;
mod table;
mod table_file;
pub mod validate;

pub use chrome::{
    Encoding, WriteOptions, WriteStats, trace_file_name, write_trace, write_trace_with,
};
#[cfg(feature = "parquet")]
pub use columnar::{ParquetError, ParquetStats, ROW_GROUP_ROWS, SCHEMA, write_parquet};
pub use error::ExportError;
pub use reader::{ReadError, ReadErrorKind, read_trace, read_trace_from};
pub use sink::ExportSink;
pub use table::{
    Columns, IterationOf, IterationTime, KernelStats, KeyAverages, Row, RowKind, SortKey,
    StreamBusy, TraceStats, UnknownSortKey, format_share, format_time, memcpy_name, memset_name,
    section, truncate_name, us,
};
pub use table_file::{TableFiles, WrittenTable};
