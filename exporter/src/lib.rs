//! The exporter of cutrace: turns a [`cutrace_tracer::Trace`] into files users read.

#![deny(missing_docs)]

mod chrome;
mod error;
mod sink;
pub mod validate;

pub use chrome::{
    Encoding, WriteOptions, WriteStats, trace_file_name, write_trace, write_trace_with,
};
pub use error::ExportError;
pub use sink::ExportSink;
