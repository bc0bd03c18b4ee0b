//! `cutrace report`: a trace file's key-averages table and figures, or the report
//! across the ranks of several traces.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use cutrace_exporter::{KeyAverages, SortKey, TraceStats, read_trace};

use crate::{figures_text, ranks};

/// Arguments of `cutrace report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Trace files (Kineto/Chrome JSON, gzip-compressed or plain), or directories
    /// of them (every *.json and *.json.gz inside). One file: its key-averages
    /// table and figures. Several, or a directory: the report across their ranks.
    #[arg(required = true, value_name = "TRACE")]
    pub traces: Vec<PathBuf>,

    /// Column to sort a single trace's table by, descending: self_cuda_time_total,
    /// cuda_time_total, self_cpu_time_total, cpu_time_total or count.
    #[arg(long, value_name = "KEY", default_value = "self_cuda_time_total")]
    pub sort: SortKey,

    /// Number of rows to print; -1 prints them all.
    #[arg(long, value_name = "N", default_value = "100", allow_negative_numbers = true,
          value_parser = parse_row_limit)]
    pub row_limit: RowLimit,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// The report of the trace at `path`: torch's table, cutrace's figures, and the
/// CUDA graphs when it has some.
fn one_trace(args: &ReportArgs, path: &std::path::Path) -> anyhow::Result<String> {
    let trace = read_trace(path)?;
    let averages = KeyAverages::from_trace(&trace);
    let limit = args.row_limit.0;
    Ok(match args.format {
        Format::Table => {
            if averages.rows().is_empty() {
                eprintln!("cutrace: {} holds no events", path.display());
            }
            let mut text = averages.table(args.sort, limit);
            text.push_str(&TraceStats::from_trace(&trace).text(limit));
            let graphs = cutrace_analysis::measure(&trace).graphs;
            text.push_str(&figures_text::graphs(&graphs, "CUDA graphs"));
            text
        }
        Format::Json => averages.json(args.sort, limit) + "\n",
    })
}

/// How many rows to print: `None` for all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowLimit(pub Option<usize>);

fn parse_row_limit(s: &str) -> Result<RowLimit, String> {
    match s.trim().parse::<i64>() {
        Ok(-1) => Ok(RowLimit(None)),
        Ok(n) => usize::try_from(n)
            .map(|n| RowLimit(Some(n)))
            .map_err(|_| format!("row limit {n} is negative (use -1 for all rows)")),
        Err(_) => Err(format!("row limit '{s}' is not a whole number")),
    }
}

/// What `cutrace report` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// torch's table, then cutrace's own figures.
    Table,
    /// For one trace, the table's rows as a JSON array; for several, every figure
    /// of the report across them as one object.
    Json,
}

/// Reads the traces and prints their report on stdout.
pub fn run(args: &ReportArgs) -> anyhow::Result<ExitCode> {
    let text = match &args.traces[..] {
        [trace] if !trace.is_dir() => one_trace(args, trace)?,
        inputs => {
            let figures = ranks::figures(&ranks::trace_files(inputs)?)?;
            match args.format {
                Format::Table => figures_text::report(&figures, args.row_limit.0),
                // Plain data of strings and finite numbers: serializing cannot fail.
                Format::Json => serde_json::to_string_pretty(&figures).unwrap_or_default() + "\n",
            }
        }
    };
    let mut stdout = io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .context("cannot write to standard output")?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_limits() {
        assert_eq!(parse_row_limit("-1"), Ok(RowLimit(None)));
        assert_eq!(parse_row_limit("0"), Ok(RowLimit(Some(0))));
        assert_eq!(parse_row_limit("25"), Ok(RowLimit(Some(25))));
        assert!(parse_row_limit("-2").unwrap_err().contains("negative"));
        assert!(parse_row_limit("ten").unwrap_err().contains("'ten'"));
    }
}
