//! The `cutrace` command. `main` only reports errors; each subcommand lives in its
//! own module, the list of them in `cli`.

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser;

mod cli;
mod convert;
mod doctor;
mod driver;
mod figures_text;
mod locate;
mod outputs;
mod parquet;
mod process;
mod ranks;
mod report;
mod run;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let failure = ExitCode::from(cli.command.failure_code());
    match try_main(cli) {
        Ok(code) => code,
        // A reader that went away (`cutrace report t.json.gz | head`) is no failure.
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            // Nothing is left to do if stderr itself is gone.
            let _ = writeln!(io::stderr(), "cutrace: error: {error:#}");
            failure
        }
    }
}

fn try_main(cli: cli::Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        cli::Command::Run(args) => run::run(args),
        cli::Command::Report(args) => report::run(&args),
        cli::Command::Convert(args) => convert::run(&args),
        cli::Command::Doctor => Ok(doctor::run()),
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}
