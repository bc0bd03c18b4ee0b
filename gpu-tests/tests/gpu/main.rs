//! cutrace against a real GPU and NVIDIA's libcupti: work driven through the CUDA
//! driver API (cudarc, hand-written PTX) while a [`Profiler`] records it, and what
//! the trace must then hold.
//!
//! Every test is `#[ignore]`d: machines without a GPU build them and skip them. On
//! a GPU machine `scripts/gpu/run` runs them with `--ignored --test-threads=1`,
//! having pointed `CUTRACE_CUPTI_LIB` and `NVTX_INJECTION64_PATH` at one libcupti
//! and `CUTRACE_TEST_NVTX_LIB` at an NVTX library (see `support::nvtx`). Run with
//! `--ignored` on a machine without a GPU, they fail: a GPU check that passes
//! without a GPU would prove nothing.
//!
//! CUPTI is process-wide, so every test holds [`support::Gpu`], which serializes
//! them whatever the harness's thread count.
//!
//! [`Profiler`]: cutrace_tracer::Profiler

mod support;

mod annotations;
mod copies;
mod graphs;
mod nvtx_ranges;
mod streams;
mod windows;
