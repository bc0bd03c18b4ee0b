//! End-to-end tests of zero-code tracing on machines without a GPU: `cutrace doctor`,
//! `cutrace run` over a stand-in CUDA program whose fake driver injects
//! `libcutrace.so` and whose CUPTI is the test double, and the C ABI from C.

mod capi;
mod doctor;
mod run;
mod util;
