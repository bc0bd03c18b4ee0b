//! The command line: subcommands and their arguments.

use clap::{Parser, Subcommand};

use crate::run::RunArgs;

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
    /// Check the CUDA driver, GPUs, CUPTI and injection; exit 0 when tracing will work.
    Doctor,
}
