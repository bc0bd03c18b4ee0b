//! `cutrace report`: a trace file's key-averages table and figures.

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::Context;
use cutrace_exporter::{KeyAverages, TraceStats, read_trace};

use crate::cli::{Format, ReportArgs};

/// Reads the trace and prints its report on stdout.
pub fn run(args: &ReportArgs) -> anyhow::Result<ExitCode> {
    let trace = read_trace(&args.trace)?;
    let averages = KeyAverages::from_trace(&trace);
    let limit = args.row_limit.0;
    let text = match args.format {
        Format::Table => {
            if averages.rows().is_empty() {
                eprintln!("cutrace: {} holds no events", args.trace.display());
            }
            let mut text = averages.table(args.sort, limit);
            text.push_str(&TraceStats::from_trace(&trace).text(limit));
            text
        }
        Format::Json => averages.json(args.sort, limit) + "\n",
    };
    let mut stdout = io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .context("cannot write to standard output")?;
    Ok(ExitCode::SUCCESS)
}
