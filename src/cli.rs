//! The command line: subcommands and their arguments.

use clap::{Parser, Subcommand};

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
    /// Check the CUDA driver, GPUs, CUPTI and injection; exit 0 when tracing will work.
    Doctor,
}
