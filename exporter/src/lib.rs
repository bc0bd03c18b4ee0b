//! The exporter of cutrace: turns a [`cutrace_tracer::Trace`] into files users read.

#![deny(missing_docs)]
