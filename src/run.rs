//! `cutrace run`: traces a command it did not write. It points the CUDA driver at
//! the injection library through the environment, runs the command, passes
//! signals on to it, exits with its exit code, and lists the files each process
//! wrote.
//!
//! Everything reaches the traced processes through the environment, which every
//! child process inherits: each process that initialises CUDA loads the injection
//! library and writes its own files, named after its own pid.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::SystemTime;

use anyhow::Context;
use clap::{Args, ValueEnum};
use cutrace::driver;

use crate::{locate, outputs, process};

/// Arguments of `cutrace run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Directory the traces and tables are written to; created when missing.
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
    /// Where windows come from: the whole run (or --delay/--duration), the program's
    /// cudaProfilerStart/Stop calls, or NVTX ranges (each end of a range matching
    /// --nvtx-step is one iteration).
    #[arg(short = 'c', long, value_enum, default_value_t = CaptureRange::None)]
    pub capture_range: CaptureRange,
    /// Names of the NVTX ranges that mark iterations (with -c nvtx).
    #[arg(long, value_name = "PATTERN")]
    pub nvtx_step: Option<String>,
    /// Seconds after the process initialises CUDA before recording begins.
    #[arg(long, value_name = "SECONDS")]
    pub delay: Option<f64>,
    /// Seconds to record for, then stop.
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
    /// Iterations that pass before the first recorded one.
    #[arg(long, value_name = "N")]
    pub delay_iters: Option<u64>,
    /// Iterations recorded per window.
    #[arg(long, value_name = "N")]
    pub max_iters: Option<u64>,
    /// Iterations before each window that are traced and thrown away.
    #[arg(long, value_name = "N")]
    pub warmup_iters: Option<u64>,
    /// Windows per start, back to back (0: until stop).
    #[arg(long, value_name = "N")]
    pub repeat: Option<u64>,
    /// The command to trace, and its arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<OsString>,
}

/// Where windows come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CaptureRange {
    /// The whole run, or the time window of --delay and --duration.
    None,
    /// The program's cudaProfilerStart() and cudaProfilerStop().
    #[value(name = "cudaProfilerApi")]
    CudaProfilerApi,
    /// NVTX ranges named by --nvtx-step.
    Nvtx,
}

/// Runs `cutrace run`; the exit code is the command's.
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("cannot create output directory {}", args.output.display()))?;
    let output = std::path::absolute(&args.output)
        .with_context(|| format!("output directory {}", args.output.display()))?;
    let mut command = Command::new(&args.command[0]);
    command.args(&args.command[1..]);
    let traced = match injection() {
        Ok(injection) => {
            let vars = environment(&args, &output, &injection);
            validate(&vars)?;
            command.envs(vars);
            true
        }
        Err(why) => {
            eprintln!("cutrace: {why:#}");
            eprintln!("cutrace: running the command untraced");
            false
        }
    };
    let started = SystemTime::now();
    let status = process::run_forwarding_signals(&mut command)
        .with_context(|| format!("cannot run {}", args.command[0].to_string_lossy()))?;
    if traced {
        match outputs::written_since(&output, started) {
            Ok(files) => eprint!("{}", outputs::render(&output, &files)),
            Err(e) => eprintln!("cutrace: cannot list {}: {e}", output.display()),
        }
    }
    Ok(ExitCode::from(process::exit_code(status)))
}

/// What tracing needs on this machine.
struct Injection {
    /// libcutrace.so.
    library: PathBuf,
    /// The libcupti the tracer and NVTX capture will share.
    cupti: PathBuf,
}

/// Finds the driver, CUPTI and the injection library, or says which is missing.
fn injection() -> anyhow::Result<Injection> {
    driver::find().context("cannot trace")?;
    let cupti = find_cupti().context("cannot trace")?;
    let library = locate::injection_library().context("cannot trace")?;
    Ok(Injection { library, cupti })
}

/// The variables set for the command.
fn environment(args: &RunArgs, output: &Path, injection: &Injection) -> Vec<(OsString, OsString)> {
    let mut vars: Vec<(OsString, OsString)> = vec![
        ("CUDA_INJECTION64_PATH".into(), injection.library.clone().into()),
        // The tracer and NVTX must use one libcupti: NVTX hands its calls to the
        // library named here, and only that instance can turn them into records
        // and window steps.
        (CUPTI_LIB_ENV.into(), injection.cupti.clone().into()),
        ("CUTRACE_OUTPUT_DIR".into(), output.into()),
    ];
    if std::env::var_os(NVTX_INJECTION_ENV).is_none_or(|v| v.is_empty()) {
        vars.push((NVTX_INJECTION_ENV.into(), injection.cupti.clone().into()));
    }
    let mut set = |field: &str, value: String| {
        vars.push((format!("CUTRACE_{}", field.to_ascii_uppercase()).into(), value.into()));
    };
    for (field, value) in [
        ("delay_iters", args.delay_iters),
        ("max_iters", args.max_iters),
        ("warmup_iters", args.warmup_iters),
        ("repeat", args.repeat),
    ] {
        if let Some(value) = value {
            set(field, value.to_string());
        }
    }
    vars
}
