//! `cutrace run`: traces a command it did not write. It points the CUDA driver at
//! the injection library through the environment, runs the command, passes
//! signals on to it, exits with its exit code, and lists the files each process
//! wrote.
//!
//! Everything reaches the traced processes through the environment, which every
//! child process inherits: each process that initialises CUDA loads the injection
//! library and writes its own files, named after its own pid, and notes them in
//! the run's log (a hidden file in the output directory while the run lasts).

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::driver;
use anyhow::Context;
use clap::{Args, ValueEnum};
use cutrace_exporter::{RUN_LOG_VAR, RunLog};
use cutrace_tracer::ProfilerConfig;

use super::{locate, outputs, process};

/// Arguments of `cutrace run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Directory the traces and tables are written to; created when missing.
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
    /// Where windows start and stop: `none` records from CUDA initialisation to exit
    /// (or as --delay and --duration say); `cudaProfilerApi` between the program's
    /// cudaProfilerStart() and cudaProfilerStop() calls.
    #[arg(short = 'c', long, value_enum, default_value_t = CaptureArg::None)]
    pub capture_range: CaptureArg,
    /// NVTX ranges whose names match this glob are iterations: each end of one is a
    /// step (what --delay-iters, --max-iters, --warmup-iters and --repeat count).
    #[arg(long, value_name = "PATTERN")]
    pub nvtx_step: Option<String>,
    /// Seconds after a process initialises CUDA before recording begins.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub delay: Option<u64>,
    /// Seconds to record for.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub duration: Option<u64>,
    /// Iterations that pass before the first recorded one.
    #[arg(long, value_name = "N")]
    pub delay_iters: Option<u64>,
    /// Iterations recorded per window.
    #[arg(long, value_name = "N")]
    pub max_iters: Option<u64>,
    /// Iterations before each window that are traced and thrown away.
    #[arg(long, value_name = "N")]
    pub warmup_iters: Option<u64>,
    /// Windows per start, back to back (0: until the end).
    #[arg(long, value_name = "N")]
    pub repeat: Option<u64>,
    /// The command to trace, and its arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<OsString>,
}

/// `--capture-range` values, as nsys spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CaptureArg {
    /// The whole run, or the time window of --delay and --duration.
    None,
    /// The program's cudaProfilerStart() and cudaProfilerStop().
    #[value(name = "cudaProfilerApi")]
    CudaProfilerApi,
}

/// Environment variable through which NVTX finds its injection library.
const NVTX_INJECTION_ENV: &str = "NVTX_INJECTION64_PATH";

/// Runs `cutrace run`; the exit code is the command's.
pub fn run(args: RunArgs) -> anyhow::Result<u8> {
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("cannot create output directory {}", args.output.display()))?;
    let output = std::path::absolute(&args.output)
        .with_context(|| format!("output directory {}", args.output.display()))?;
    // clap requires the command, so this fails only for a hand-built `RunArgs`.
    let Some((program, program_args)) = args.command.split_first() else {
        anyhow::bail!("no command to run");
    };
    let mut command = Command::new(program);
    command.args(program_args);
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
    let log_file = traced.then(|| run_log(&output)).transpose()?;
    if let Some(file) = &log_file {
        command.env(RUN_LOG_VAR, file.path());
    }
    let status = match process::run_forwarding_signals(&mut command) {
        Ok(status) => status,
        Err(error) => match error.exit_code() {
            // A shell's answer: the code, and one line naming the program.
            Some(code) => {
                eprintln!("cutrace: error: {:#}", anyhow::Error::from(error));
                return Ok(code);
            }
            None => return Err(error.into()),
        },
    };
    if let Some(file) = &log_file {
        let log = RunLog::new(file.path());
        match log.read() {
            Ok(record) => {
                let files = outputs::written(&output, &record);
                let killed_by = std::os::unix::process::ExitStatusExt::signal(&status);
                eprint!(
                    "{}",
                    outputs::render(&output, &files, record.traced.len(), killed_by)
                );
            }
            Err(e) => eprintln!("cutrace: cannot read {}: {e}", log.path().display()),
        }
    }
    Ok(process::exit_code(status))
}

/// A fresh, empty run log in `output`, removed when dropped.
fn run_log(output: &Path) -> anyhow::Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .prefix(".cutrace-run-")
        .suffix(".log")
        .tempfile_in(output)
        .with_context(|| format!("cannot create the run log in {}", output.display()))
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
    let cupti = match cupti_sys::load() {
        Ok(library) => library.path().to_path_buf(),
        // The full search list is for `cutrace doctor`; here one line must do.
        Err(cupti_sys::Error::NotFound { .. }) => anyhow::bail!(
            "cannot trace: no usable libcupti found (set {} to its path; `cutrace doctor` shows where it looked)",
            cupti_sys::OVERRIDE_VAR
        ),
        Err(error) => return Err(error).context("cannot trace"),
    };
    let library = locate::injection_library().context("cannot trace")?;
    Ok(Injection { library, cupti })
}

/// The variables set for the command.
fn environment(args: &RunArgs, output: &Path, injection: &Injection) -> Vec<(OsString, OsString)> {
    let mut vars: Vec<(OsString, OsString)> = vec![
        (
            "CUDA_INJECTION64_PATH".into(),
            injection.library.clone().into(),
        ),
        // The tracer and NVTX must use one libcupti: NVTX hands its calls to the
        // library named here, and only that instance can turn them into records
        // and window steps.
        (
            cupti_sys::OVERRIDE_VAR.into(),
            injection.cupti.clone().into(),
        ),
        ("CUTRACE_OUTPUT_DIR".into(), output.into()),
    ];
    if std::env::var_os(NVTX_INJECTION_ENV).is_none_or(|v| v.is_empty()) {
        vars.push((NVTX_INJECTION_ENV.into(), injection.cupti.clone().into()));
    }
    let mut set = |field: &str, value: String| {
        vars.push((
            format!("CUTRACE_{}", field.to_ascii_uppercase()).into(),
            value.into(),
        ));
    };
    if args.capture_range == CaptureArg::CudaProfilerApi {
        set("capture_range", "cudaProfilerApi".into());
    }
    if let Some(pattern) = &args.nvtx_step {
        set("nvtx_step", pattern.clone());
    }
    for (field, value) in [
        ("delay_ms", args.delay),
        ("duration_ms", args.duration),
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

/// Checks the configuration the traced processes will read, so that a bad value
/// is one error here rather than a warning in every process.
fn validate(vars: &[(OsString, OsString)]) -> anyhow::Result<()> {
    let lookup = |name: &str| -> Option<String> {
        match vars.iter().rev().find(|(k, _)| k == OsStr::new(name)) {
            Some((_, value)) => Some(value.to_string_lossy().into_owned()),
            None => std::env::var_os(name).map(|v| v.to_string_lossy().into_owned()),
        }
    };
    ProfilerConfig::from_env_vars(lookup)?;
    Ok(())
}

/// Parses a number of seconds into milliseconds.
fn parse_seconds(text: &str) -> Result<u64, String> {
    match text.parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && seconds >= 0.0 => {
            Ok((seconds * 1000.0).round() as u64)
        }
        _ => Err(format!("{text:?} is not a number of seconds, 0 or more")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    fn parse(args: &[&str]) -> RunArgs {
        Cli::try_parse_from(std::iter::once("run").chain(args.iter().copied()))
            .unwrap()
            .run
    }

    fn env_of(args: &RunArgs) -> Vec<(String, String)> {
        let injection = Injection {
            library: "/lib/libcutrace.so".into(),
            cupti: "/lib/libcupti.so.13".into(),
        };
        environment(args, Path::new("/out"), &injection)
            .into_iter()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.to_string_lossy().into_owned(),
                )
            })
            .filter(|(k, _)| k != NVTX_INJECTION_ENV)
            .collect()
    }

    #[test]
    fn options_become_the_variables_the_tracer_reads() {
        let args = parse(&[
            "-o",
            "out",
            "-c",
            "cudaProfilerApi",
            "--nvtx-step",
            "step*",
            "--delay-iters",
            "2",
            "--max-iters",
            "3",
            "--warmup-iters",
            "1",
            "--repeat",
            "2",
            "--",
            "python3",
            "-u",
            "train.py",
        ]);
        assert_eq!(args.command, ["python3", "-u", "train.py"]);
        let vars = env_of(&args);
        let expected = [
            ("CUDA_INJECTION64_PATH", "/lib/libcutrace.so"),
            ("CUTRACE_CUPTI_LIB", "/lib/libcupti.so.13"),
            ("CUTRACE_OUTPUT_DIR", "/out"),
            ("CUTRACE_CAPTURE_RANGE", "cudaProfilerApi"),
            ("CUTRACE_NVTX_STEP", "step*"),
            ("CUTRACE_DELAY_ITERS", "2"),
            ("CUTRACE_MAX_ITERS", "3"),
            ("CUTRACE_WARMUP_ITERS", "1"),
            ("CUTRACE_REPEAT", "2"),
        ];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(vars, expected);
        let vars: Vec<(OsString, OsString)> = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        validate(&vars).unwrap();
    }

    #[test]
    fn seconds_become_milliseconds() {
        let args = parse(&["-o", "out", "--delay", "1.5", "--duration", "2", "prog"]);
        let vars = env_of(&args);
        assert!(
            vars.contains(&("CUTRACE_DELAY_MS".into(), "1500".into())),
            "{vars:?}"
        );
        assert!(
            vars.contains(&("CUTRACE_DURATION_MS".into(), "2000".into())),
            "{vars:?}"
        );
        let err = Cli::try_parse_from(["run", "-o", "o", "--delay", "-1", "prog"])
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .contains("\"-1\" is not a number of seconds"),
            "{err}"
        );
    }

    #[test]
    fn values_that_do_not_fit_together_are_refused_before_running() {
        let vars: Vec<(OsString, OsString)> = vec![
            ("CUTRACE_CAPTURE_RANGE".into(), "cudaProfilerApi".into()),
            ("CUTRACE_DURATION_MS".into(), "5".into()),
        ];
        let err = validate(&vars).unwrap_err().to_string();
        assert!(err.contains("time the window of capture_range"), "{err}");
    }
}
