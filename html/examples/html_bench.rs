//! Times the HTML report of one trace, as `cutrace report --html` makes it: reading
//! the trace, then everything after (its figures and table, the page, writing it),
//! with the page's size. One JSON line per run.
//!
//! ```text
//! cargo run --release -p cutrace-html --example html_bench -- --runs 5 --out PAGE TRACE
//! ```

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use cutrace_analysis::Figures;
use cutrace_exporter::{SortKey, read_trace};

#[derive(Parser)]
struct Args {
    /// Runs.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Where to write the page.
    #[arg(long)]
    out: PathBuf,
    /// The trace.
    trace: PathBuf,
}

/// CPU time of the process so far, user and system, in seconds.
fn cpu_seconds() -> f64 {
    // SAFETY: `usage` is a plain struct getrusage fills in; RUSAGE_SELF is valid.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    for _ in 0..args.runs {
        let started = Instant::now();
        let trace = read_trace(&args.trace)?;
        let read_s = started.elapsed().as_secs_f64();
        let (after, cpu_before) = (Instant::now(), cpu_seconds());
        let file = args.trace.display().to_string();
        let (figures, table) =
            cutrace_html::of_trace(file, 0, &trace, SortKey::SelfCudaTimeTotal, Some(1000));
        drop(trace);
        let page = cutrace_html::render(&Figures::new(vec![figures], Vec::new()), &[table]);
        std::fs::write(&args.out, &page).with_context(|| args.out.display().to_string())?;
        println!(
            "{{\"read_s\":{read_s:.3},\"page_s\":{:.3},\"page_cpu_s\":{:.3},\"page_bytes\":{}}}",
            after.elapsed().as_secs_f64(),
            cpu_seconds() - cpu_before,
            page.len()
        );
    }
    Ok(())
}
