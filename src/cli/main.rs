//! The `cutrace` executable. The command itself lives in the library
//! ([`cutrace::command`]), which also exports it to C as `cutrace_main`: the
//! Python package's `cutrace` runs that, so both run the same code (and the
//! same memory ceiling: the library installs the allocator that keeps it).

use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(cutrace::command::main(std::env::args_os(), None))
}
