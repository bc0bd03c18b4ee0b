//! The `cutrace` command: `run`, `report`, `convert`, `doctor`. [`main`] parses the
//! arguments and runs one subcommand; each lives in its own module, the list of
//! them in `cli`.
//!
//! The command is part of the library, not only of its executable, because a
//! Python wheel ships one kind of artifact: the pip-installed `cutrace` is a
//! console script that calls `cutrace_main` in the package's `libcutrace.so`, and
//! lands here, in the code that `target/release/cutrace` runs too. Run that way,
//! the library it runs in is the injection library `cutrace run` hands out.

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::PathBuf;

use clap::Parser;

mod cli;
mod convert;
mod doctor;
mod driver;
mod figures_text;
mod html;
mod input;
mod locate;
mod outputs;
mod parquet;
mod process;
mod ranks;
#[cfg(test)]
mod reference;
mod report;
mod run;

/// Runs the command with `args` (the program name first) and returns its exit
/// code. `library` is the `libcutrace.so` this code was loaded from, when it runs
/// inside one rather than in the `cutrace` executable.
pub fn main(args: impl IntoIterator<Item = OsString>, library: Option<PathBuf>) -> u8 {
    if let Some(library) = library {
        locate::running_in(library);
    }
    let code = match cli::Cli::try_parse_from(args) {
        Ok(cli) => run(cli),
        Err(error) => {
            // What clap's own exit does: help and version on stdout, a usage error
            // on stderr with code 2, but returned rather than ending the process.
            let _ = error.print();
            u8::try_from(error.exit_code()).unwrap_or(2)
        }
    };
    // Inside a host process nothing flushes Rust's stdout at exit.
    let _ = io::stdout().flush();
    code
}

fn run(cli: cli::Cli) -> u8 {
    let failure = cli.command.failure_code();
    match try_main(cli) {
        Ok(code) => code,
        // A reader that went away (`cutrace report t.json.gz | head`) is no failure.
        Err(error) if is_broken_pipe(&error) => 0,
        Err(error) => {
            // Nothing is left to do if stderr itself is gone.
            let _ = writeln!(io::stderr(), "cutrace: error: {error:#}");
            failure
        }
    }
}

fn try_main(cli: cli::Cli) -> anyhow::Result<u8> {
    if matches!(
        cli.command,
        cli::Command::Report(_) | cli::Command::Convert(_)
    ) {
        input::tune_allocator();
    }
    match cli.command {
        cli::Command::Run(args) => run::run(args),
        cli::Command::Report(args) => report::run(&args),
        cli::Command::Convert(args) => convert::run(&args),
        cli::Command::Doctor => doctor::run(),
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}
