//! Measures what reading a trace keeps: the bytes the [`Trace`] holds once read
//! (counted by the memory ceiling's allocator), the peak while reading, and the
//! process's peak RSS, for comparing `cutrace report`'s peak RSS with the size of
//! the trace it keeps. Prints one JSON line.
//!
//! ```text
//! cargo run --release -p cutrace-exporter --example read_bench -- FILE
//! ```

use std::path::PathBuf;
use std::time::Instant;

use cutrace_exporter::memory::{self, Ceiling};
use cutrace_exporter::read_trace;

#[global_allocator]
static ALLOCATOR: Ceiling = Ceiling;

/// A `Vm*` figure of /proc/self/status, in bytes (0 where unavailable).
fn proc_status_bytes(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn main() -> anyhow::Result<()> {
    let path: PathBuf = std::env::args_os()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: read_bench FILE"))?
        .into();
    let before = memory::in_use();
    let started = Instant::now();
    let trace = read_trace(&path)?;
    let seconds = started.elapsed().as_secs_f64();
    let kept = memory::in_use() - before;
    println!(
        "{{\"events\":{},\"seconds\":{seconds:.3},\"kept_trace_bytes\":{kept},\"peak_counted_bytes\":{},\"peak_rss_bytes\":{}}}",
        trace.event_count(),
        memory::peak(),
        proc_status_bytes("VmHWM:")
    );
    Ok(())
}
