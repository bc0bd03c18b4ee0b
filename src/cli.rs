//! What `cutrace` accepts on its command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use cutrace_exporter::SortKey;

/// A CUDA GPU tracer: Kineto-compatible traces and torch's key-averages table.
#[derive(Debug, Parser)]
#[command(name = "cutrace", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a trace file's key-averages table.
    ///
    /// The table is torch.profiler's, character for character; kernel duration
    /// spread, stream busy time and GPU time per iteration follow it.
    Report(ReportArgs),
}

/// Arguments of `cutrace report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Trace file: Kineto/Chrome JSON, gzip-compressed or plain.
    pub trace: PathBuf,

    /// Column to sort by, descending: self_cuda_time_total, cuda_time_total,
    /// self_cpu_time_total, cpu_time_total or count.
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
    /// The table's rows as a JSON array.
    Json,
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

    #[test]
    fn the_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
