//! `cutrace report`: a trace file's key-averages table and figures, or the report
//! across the ranks of several traces.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, ValueEnum};
use cutrace_exporter::{KeyAverages, SortKey, TraceStats};

use super::input::{self, MemoryArgs};
use super::{figures_text, html, ranks};

/// Arguments of `cutrace report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Trace files (Kineto/Chrome JSON, gzip-compressed or plain; `-` reads
    /// standard input), or directories of them (every *.json and *.json.gz
    /// inside). One file: its key-averages table and figures. Several, or a
    /// directory: the report across their ranks.
    #[arg(required = true, value_name = "TRACE")]
    pub traces: Vec<PathBuf>,

    /// Column to sort a single trace's table by, descending: self_cuda_time_total,
    /// cuda_time_total, self_cpu_time_total, cpu_time_total or count.
    #[arg(long, value_name = "KEY", default_value = "self_cuda_time_total")]
    pub sort: SortKey,

    /// Number of rows to print; -1 prints them all. The table prints 100 unless
    /// told, as torch's; JSON gives every row unless told.
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = parse_row_limit)]
    pub row_limit: Option<RowLimit>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// Write the report as one HTML page to this file instead (`-`: standard
    /// output): charts, the figures of --format json, each trace's table,
    /// sortable; it opens offline. Each table keeps 1000 rows unless --row-limit
    /// says otherwise.
    #[arg(long, value_name = "PAGE", conflicts_with = "format")]
    pub html: Option<PathBuf>,

    /// The memory ceiling.
    #[command(flatten)]
    pub memory: MemoryArgs,
}

/// The table's row limit when none is asked for: torch's and vLLM's.
const TABLE_ROWS: RowLimit = RowLimit(Some(100));

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
pub fn run(args: &ReportArgs) -> anyhow::Result<u8> {
    if let Some(page) = &args.html {
        let limit = args.row_limit.map_or(Some(html::PAGE_ROWS), |l| l.0);
        html::run(&args.traces, page, args.sort, limit, &args.memory)?;
        return Ok(0);
    }
    let text = match &args.traces[..] {
        [trace] if !trace.is_dir() => one_trace(args, trace)?,
        inputs => {
            let figures = ranks::figures(&ranks::trace_files(inputs)?, &args.memory)?;
            match args.format {
                Format::Table => {
                    figures_text::report(&figures, args.row_limit.unwrap_or(TABLE_ROWS).0)
                }
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
    Ok(0)
}

/// The report of the one trace at `path`: torch's table, cutrace's figures, the
/// CUDA graphs when it has some, and the time origin.
fn one_trace(args: &ReportArgs, path: &Path) -> anyhow::Result<String> {
    // A file cutrace wrote is folded as it is read, in memory that grows with
    // its table; any other is read whole, then aggregated.
    let (trace, notes, averages, stats) = match input::fold(path, &args.memory)? {
        Some((folded, notes)) => (folded.kept, notes, folded.averages, Some(folded.stats)),
        None => {
            let (trace, notes) = input::read(path, &args.memory)?;
            let averages = KeyAverages::from_trace(&trace);
            (trace, notes, averages, None)
        }
    };
    input::within_ceiling(path, "aggregating")?;
    let text = match args.format {
        Format::Table => {
            let limit = args.row_limit.unwrap_or(TABLE_ROWS).0;
            if averages.rows().is_empty() {
                input::note(&format!("{} holds no events", input::shown(path).display()));
            }
            let mut text = averages.table(args.sort, limit);
            let stats = stats.unwrap_or_else(|| TraceStats::from_trace(&trace));
            text.push_str(&stats.text(limit));
            let graphs = cutrace_analysis::graph_figures(&trace);
            text.push_str(&figures_text::graphs(&graphs, "CUDA graphs"));
            text.push_str(&format!(
                "\nTime origin: {}. Iteration starts and ends, and the --from-us/--to-us of \
                 cutrace convert, count microseconds from it.\n",
                input::origin(&trace, notes.origin)
            ));
            text
        }
        Format::Json => averages.json(args.sort, args.row_limit.and_then(|l| l.0)) + "\n",
    };
    input::within_ceiling(path, "formatting the report")?;
    Ok(text)
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
