//! End-to-end tests of the `cutrace` package, on machines without a GPU: the binary
//! (`run`, `report`, `convert`, `doctor`), zero-code tracing over a stand-in CUDA
//! program whose fake driver injects `libcutrace.so` and whose CUPTI is the test
//! double, the C ABI from C, the reader on real PyTorch traces written by
//! torch.profiler on real GPUs (those in `tests/data/kineto`, and three large ones
//! the repository does not carry, which the tests that need them skip without:
//! `util::optional_trace`; set `CUTRACE_TEST_TRACES` to their directory), and the
//! report across the ranks of several traces.

mod capi;
mod convert;
mod doctor;
mod embed;
mod errors;
mod fold;
mod html;
mod install;
mod options;
mod parquet;
mod ranks;
mod reader;
mod report;
mod run;
mod util;
