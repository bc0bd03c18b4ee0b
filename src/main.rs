//! The `cutrace` command.

use std::process::ExitCode;

use clap::Parser;

mod cli;
mod doctor;
mod locate;
mod outputs;
mod process;
mod run;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match try_main(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("cutrace: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn try_main(cli: cli::Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        cli::Command::Run(args) => run::run(args),
        cli::Command::Doctor => Ok(doctor::run()),
    }
}
