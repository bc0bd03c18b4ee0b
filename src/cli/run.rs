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

use anyhow::Context;
use clap::{Args, ValueEnum};
use cutrace_exporter::{RUN_LOG_VAR, RunLog};
use cutrace_tracer::{ConfigError, ProfilerConfig, field_var};

use super::{driver, locate, outputs, process};

/// What `cutrace run --help` adds after the options.
const AFTER_LONG_HELP: &str = concat!(
    "Examples:
  cutrace run -o traces -- python3 train.py
      the whole run, one window per process
  cutrace run -o traces --nvtx-step 'execute_model*' --delay-iters 10 --max-iters 5 -- vllm serve MODEL
      iterations 11 to 15, counted by the ends of NVTX ranges named execute_model*

Where the files go: each process that initialises CUDA writes, per window,
  DIR/<hostname>_<pid>.<unix_ns>.pt.trace.json.gz   the trace
  DIR/profiler_out_<rank>.txt                       torch's key-averages table
(rank from RANK or LOCAL_RANK, else 0), and cutrace lists them when the command ends.

Opening them:
  ui.perfetto.dev                drag the .pt.trace.json.gz file in, as it is
  HolisticTraceAnalysis          TraceAnalysis(trace_dir=\"DIR\")
  cutrace report FILE            the table, kernel spread, stream busy time

Every option and CUTRACE_* variable, with its default and an example:
",
    env!("CARGO_PKG_REPOSITORY"),
    "/blob/main/docs/config.md"
);

/// Arguments of `cutrace run`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples, where the files go, and every option: cutrace run --help",
    after_long_help = AFTER_LONG_HELP
)]
pub struct RunArgs {
    /// Directory the traces and tables are written to; created when missing.
    #[arg(short, long, value_name = "DIR", required_unless_present = "check")]
    pub output: Option<PathBuf>,
    /// Where windows start and stop: `none` records from CUDA initialisation to exit
    /// (or as --delay and --duration say); `cudaProfilerApi` between the program's
    /// cudaProfilerStart() and cudaProfilerStop() calls. Unless given, as
    /// CUTRACE_CAPTURE_RANGE (or CUTRACE_CONFIG) says, else `none`.
    #[arg(short = 'c', long, value_enum)]
    pub capture_range: Option<CaptureArg>,
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
    /// Check the configuration (these options, CUTRACE_CONFIG and the CUTRACE_*
    /// variables) and whether this machine can trace, print both, and run nothing.
    #[arg(long)]
    pub check: bool,
    /// The command to trace, and its arguments.
    #[arg(
        required_unless_present = "check",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
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
    let output = match &args.output {
        Some(dir) => Some(
            std::path::absolute(dir)
                .with_context(|| format!("output directory {}", dir.display()))?,
        ),
        None => None,
    };
    let settings = settings(&args, output.as_deref());
    // Before anything else, so that a bad value is one error here rather than a
    // warning in every traced process, driver or not.
    let config = validate(&settings)?;
    if args.check {
        print!("{}", check_report(&config, &injection()));
        return Ok(0);
    }
    // clap requires both unless --check, so this fails only for a hand-built `RunArgs`.
    let (Some(output), Some((program, program_args))) = (output, args.command.split_first()) else {
        anyhow::bail!("no command to run, or no output directory");
    };
    std::fs::create_dir_all(&output)
        .with_context(|| format!("cannot create output directory {}", output.display()))?;
    let mut command = Command::new(program);
    command.args(program_args);
    let traced = match injection() {
        Ok(injection) => {
            command.envs(environment(&settings, &injection));
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

/// A configuration field that an option of `cutrace run` sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The option, as the user writes it (`--delay-iters`).
    pub option: &'static str,
    /// The field of the tracer's configuration.
    pub field: &'static str,
    /// The value for the tracer, when the option was given.
    pub value: Option<OsString>,
}

/// Every field the options set, with the values given in `args`; `output` is the
/// absolute output directory.
pub fn settings(args: &RunArgs, output: Option<&Path>) -> [Setting; 9] {
    let setting = |option, field, value| Setting {
        option,
        field,
        value,
    };
    let count = |n: Option<u64>| n.map(|n| n.to_string().into());
    [
        setting("--output", "output_dir", output.map(Into::into)),
        setting(
            "--capture-range",
            "capture_range",
            args.capture_range.map(|c| {
                match c {
                    CaptureArg::None => "none",
                    CaptureArg::CudaProfilerApi => "cudaProfilerApi",
                }
                .into()
            }),
        ),
        setting(
            "--nvtx-step",
            "nvtx_step",
            args.nvtx_step.clone().map(Into::into),
        ),
        setting("--delay", "delay_ms", count(args.delay)),
        setting("--duration", "duration_ms", count(args.duration)),
        setting("--delay-iters", "delay_iters", count(args.delay_iters)),
        setting("--max-iters", "max_iters", count(args.max_iters)),
        setting("--warmup-iters", "warmup_iters", count(args.warmup_iters)),
        setting("--repeat", "repeat", count(args.repeat)),
    ]
}

/// The `CUTRACE_<FIELD>` variables of the settings that were given.
fn setting_vars(settings: &[Setting]) -> impl Iterator<Item = (String, &OsStr)> {
    settings
        .iter()
        .filter_map(|s| Some((field_var(s.field), s.value.as_deref()?)))
}

/// Reads the configuration the traced processes will read, with the tracer's own
/// reading and checks: the settings over this process's environment. An error
/// names the options, and the variables, it comes from.
fn validate(settings: &[Setting]) -> anyhow::Result<ProfilerConfig> {
    let lookup = |name: &str| -> Option<String> {
        match setting_vars(settings).find(|(var, _)| var == name) {
            Some((_, value)) => Some(value.to_string_lossy().into_owned()),
            None => std::env::var_os(name).map(|v| v.to_string_lossy().into_owned()),
        }
    };
    ProfilerConfig::from_env_vars(lookup).map_err(|error| match error {
        ConfigError::Env { var, error } => {
            let sources: Vec<String> = var
                .split(", ")
                .map(|name| {
                    settings
                        .iter()
                        .find(|s| s.value.is_some() && field_var(s.field) == name)
                        .map_or_else(|| name.to_owned(), |s| s.option.to_owned())
                })
                .collect();
            anyhow::anyhow!("{}: {error}", sources.join(", "))
        }
        other => other.into(),
    })
}

/// What `--check` prints: the configuration the traced processes would use, and
/// whether they would be traced here.
fn check_report(config: &ProfilerConfig, injection: &anyhow::Result<Injection>) -> String {
    let json = serde_json::to_string_pretty(config).unwrap_or_else(|e| e.to_string());
    let machine = match injection {
        Ok(found) => format!(
            "this machine can trace: {} with {}",
            found.library.display(),
            found.cupti.display()
        ),
        Err(why) => format!(
            "{why:#}; on this machine the command would run untraced (`cutrace doctor` says why)"
        ),
    };
    format!("configuration ok:\n{json}\n{machine}\n")
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

/// The variables set for the command: the injection, and the settings.
fn environment(settings: &[Setting], injection: &Injection) -> Vec<(OsString, OsString)> {
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
    ];
    if std::env::var_os(NVTX_INJECTION_ENV).is_none_or(|v| v.is_empty()) {
        vars.push((NVTX_INJECTION_ENV.into(), injection.cupti.clone().into()));
    }
    vars.extend(setting_vars(settings).map(|(var, value)| (var.into(), value.to_owned())));
    vars
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
        environment(&settings(args, Some(Path::new("/out"))), &injection)
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

    /// The error `cutrace run <args> prog` stops at before running anything.
    fn refusal(args: &[&str]) -> String {
        let mut all = vec!["-o", "out"];
        all.extend_from_slice(args);
        all.push("prog");
        let args = parse(&all);
        validate(&settings(&args, Some(Path::new("/out"))))
            .unwrap_err()
            .to_string()
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
        let config = validate(&settings(&args, Some(Path::new("/out")))).unwrap();
        assert_eq!(
            (config.delay_iters, config.max_iters, config.repeat),
            (2, 3, 2)
        );
        assert_eq!(config.output_dir, Path::new("/out"));
    }

    #[test]
    fn a_capture_range_given_is_passed_on_even_when_it_is_the_default() {
        let var = |args: &[&str]| {
            env_of(&parse(args))
                .into_iter()
                .find(|(k, _)| k == "CUTRACE_CAPTURE_RANGE")
                .map(|(_, v)| v)
        };
        // `-c none` overrides a CUTRACE_CAPTURE_RANGE or CUTRACE_CONFIG of the
        // environment; no option leaves them be.
        assert_eq!(
            var(&["-o", "out", "-c", "none", "prog"]).as_deref(),
            Some("none")
        );
        assert_eq!(var(&["-o", "out", "prog"]), None);
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
    fn values_that_do_not_fit_together_are_refused_naming_the_options() {
        for (args, expected) in [
            (
                &["--repeat", "2"][..],
                "--repeat: invalid profiler config: repeat: 2 windows need max_iters above 0",
            ),
            (
                &["--nvtx-step", "step["],
                "--nvtx-step: invalid profiler config: nvtx_step: \"step[\" is not a glob pattern",
            ),
            (
                &["--delay", "1", "--delay-iters", "2"],
                "--delay, --delay-iters: invalid profiler config: delay_ms 1000 and delay_iters 2 both put off the first window",
            ),
            (
                &["-c", "cudaProfilerApi", "--duration", "5"],
                "--capture-range, --duration: invalid profiler config: delay_ms and duration_ms time the window",
            ),
        ] {
            let message = refusal(args);
            assert!(message.starts_with(expected), "{args:?}: {message}");
            assert_eq!(message.lines().count(), 1, "{message}");
        }
    }

    #[test]
    fn check_needs_neither_a_directory_nor_a_command() {
        let args = parse(&["--check", "--max-iters", "3"]);
        assert!(args.check && args.output.is_none() && args.command.is_empty());
        let config = validate(&settings(&args, None)).unwrap();
        assert_eq!(config.max_iters, 3);
        for missing in [&["--max-iters", "3"][..], &["-o", "out"], &["prog"]] {
            let args = std::iter::once("run").chain(missing.iter().copied());
            assert!(Cli::try_parse_from(args).is_err(), "{missing:?}");
        }
    }

    #[test]
    fn the_check_report_shows_the_configuration_and_the_machine() {
        let args = parse(&["--check", "--delay-iters", "4"]);
        let config = validate(&settings(&args, None)).unwrap();
        let report = check_report(&config, &Err(anyhow::anyhow!("cannot trace: no driver")));
        let (head, json) = report.split_once('\n').unwrap();
        assert_eq!(head, "configuration ok:");
        let json = &json[..json.rfind("\n}").unwrap() + 2];
        let shown: ProfilerConfig = serde_json::from_str(json).unwrap();
        assert_eq!(shown, config);
        assert!(
            report.ends_with(
                "\ncannot trace: no driver; on this machine the command would run untraced (`cutrace doctor` says why)\n"
            ),
            "{report}"
        );
    }
}
