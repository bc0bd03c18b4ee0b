//! End-to-end tests: the `cutrace` binary, and the reader on real PyTorch traces
//! (`../shared/traces/kineto`, written by torch.profiler on real GPUs).

mod convert;
mod errors;
mod reader;
mod report;
mod util;
