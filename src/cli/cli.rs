//! The command line: subcommands and their arguments.

use clap::{Parser, Subcommand};

use super::convert::ConvertArgs;
use super::report::ReportArgs;
use super::run::RunArgs;

/// A CUDA GPU tracer: Kineto-compatible traces and torch's key-averages table.
#[derive(Debug, Parser)]
#[command(name = "cutrace", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a command with every process that uses CUDA traced, no code changes.
    Run(RunArgs),
    /// Print a trace file's key-averages table, or a report across many ranks.
    ///
    /// For one trace the table is torch.profiler's, character for character; kernel
    /// duration spread, stream busy time, GPU time per iteration and the CUDA graphs
    /// follow it. For several traces (or a directory of them): each rank's GPU
    /// time by kind of work, HolisticTraceAnalysis's temporal breakdown and
    /// communication-computation overlap, the straggler of each iteration, the
    /// kernels whose time differs most between ranks, and each rank's CUDA graphs.
    /// `--html PAGE` writes the same report as one page that opens offline.
    Report(ReportArgs),
    /// Rewrite a trace file as cutrace writes traces, optionally cut to a time range;
    /// or write traces as Parquet, one row per event, in a folder partitioned by rank.
    Convert(ConvertArgs),
    /// Check the CUDA driver, GPUs, CUPTI and injection; exit 0 when tracing will work.
    Doctor,
}

impl Command {
    /// Exit code when cutrace itself fails. `run` exits with the traced command's
    /// own code, so its failures (and doctor's) take 2 to stand apart from the
    /// command's usual 1.
    pub fn failure_code(&self) -> u8 {
        match self {
            Command::Run(_) | Command::Doctor => 2,
            Command::Report(_) | Command::Convert(_) => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
