//! `cutrace convert`: reads any trace `cutrace report` reads and writes it again as
//! cutrace writes traces (Kineto's object format, times relative to
//! `baseTimeNanoseconds`, slices that nest), optionally keeping only a time range;
//! or writes many traces as Parquet (`--to parquet`, in `parquet.rs`). The output
//! appears whole or not at all: the writer renames a finished temporary file into
//! place.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use cutrace_exporter::{Encoding, WriteOptions, read_trace, write_trace_with};
use cutrace_tracer::Trace;

/// Arguments of `cutrace convert`.
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// Trace file to read (Kineto/Chrome JSON, gzip-compressed or plain); with
    /// `--to parquet`, any number of them or directories of them.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,

    /// File to write: gzip when its name ends in `.gz`, plain JSON otherwise; with
    /// `--to parquet`, the folder to write into (created when missing).
    #[arg(short, long, value_name = "PATH")]
    pub output: PathBuf,

    /// What to write: a trace, or Parquet (one row per event, one file per trace,
    /// in a folder partitioned by rank: OUTPUT/rank=<n>/<trace>.parquet).
    #[arg(long, value_enum, default_value_t = Target::Trace)]
    pub to: Target,

    /// Keep only events that start at or after this time, in microseconds on the
    /// input's `ts` scale: from its `baseTimeNanoseconds`, or from its earliest
    /// event when it has none.
    #[arg(long, value_name = "US", allow_negative_numbers = true)]
    pub from_us: Option<f64>,

    /// Keep only events that start before this time (same scale as --from-us).
    #[arg(long, value_name = "US", allow_negative_numbers = true)]
    pub to_us: Option<f64>,
}

/// What `cutrace convert` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// A Kineto trace, as cutrace writes them.
    Trace,
    /// Parquet, for DuckDB, Spark and other engines.
    Parquet,
}

/// Reads, cuts and writes; prints what it wrote.
pub fn run(args: &ConvertArgs) -> anyhow::Result<ExitCode> {
    if args.to == Target::Parquet {
        if args.from_us.is_some() || args.to_us.is_some() {
            bail!("--from-us and --to-us cut a trace; --to parquet writes whole traces");
        }
        return crate::parquet::run(&args.inputs, &args.output);
    }
    let [input] = &args.inputs[..] else {
        bail!(
            "a trace is converted into one trace: {} inputs given (--to parquet takes many)",
            args.inputs.len()
        );
    };
    let mut trace = read_trace(input)?;
    if args.from_us.is_some() || args.to_us.is_some() {
        let from = offset_ns(args.from_us, "--from-us", i64::MIN)?;
        let to = offset_ns(args.to_us, "--to-us", i64::MAX)?;
        if from >= to {
            bail!(
                "--from-us {} is not before --to-us {}: the range is empty",
                args.from_us.unwrap_or(f64::NEG_INFINITY),
                args.to_us.unwrap_or(f64::INFINITY)
            );
        }
        let base = trace.base_time_ns;
        cut(
            &mut trace,
            base.saturating_add(from),
            base.saturating_add(to),
        );
    }
    let gzip = args.output.to_string_lossy().ends_with(".gz");
    let options = WriteOptions {
        encoding: if gzip {
            Encoding::Gzip { level: 1 }
        } else {
            Encoding::Plain
        },
        ..WriteOptions::default()
    };
    let stats = write_trace_with(&trace, &args.output, &options)
        .with_context(|| format!("cannot convert {}", input.display()))?;
    println!(
        "{}: {} events, {} bytes",
        args.output.display(),
        stats.events,
        stats.bytes_written
    );
    Ok(ExitCode::SUCCESS)
}

/// Microseconds from an option as nanoseconds; `unset` when the option is absent.
fn offset_ns(us: Option<f64>, option: &str, unset: i64) -> anyhow::Result<i64> {
    let Some(us) = us else {
        return Ok(unset);
    };
    let ns = (us * 1000.0).round();
    if !ns.is_finite() || ns.abs() >= 9.2e18 {
        bail!("{option} {us} is not a time in microseconds a trace can hold");
    }
    Ok(ns as i64)
}

/// Keeps the events of `trace` that start in `[from, to)`, ns.
fn cut(trace: &mut Trace, from: i64, to: i64) {
    let inside = |start: i64| from <= start && start < to;
    trace.kernels.retain(|e| inside(e.start));
    trace.memcpys.retain(|e| inside(e.start));
    trace.memsets.retain(|e| inside(e.start));
    trace.api_calls.retain(|e| inside(e.start));
    trace.syncs.retain(|e| inside(e.start));
    trace.ranges.retain(|e| inside(e.start));
    trace.graph_launches.retain(|e| inside(e.start));
    trace.overheads.retain(|e| inside(e.start));
    trace.iterations.retain(|e| inside(e.start));
}

#[cfg(test)]
mod tests {
    use cutrace_tracer::model::{ApiCall, HostRange, Iteration, Kernel, Memcpy, Memset};

    use super::*;

    #[test]
    fn cutting_keeps_what_starts_inside() {
        let mut trace = Trace::default();
        for start in [5, 10, 19, 20] {
            trace.kernels.push(Kernel {
                start,
                end: start + 50,
                ..Default::default()
            });
            trace.memcpys.push(Memcpy {
                start,
                ..Default::default()
            });
            trace.memsets.push(Memset {
                start,
                ..Default::default()
            });
            trace.api_calls.push(ApiCall {
                start,
                ..Default::default()
            });
            trace.ranges.push(HostRange {
                start,
                ..Default::default()
            });
            trace.iterations.push(Iteration {
                start,
                ..Default::default()
            });
        }
        cut(&mut trace, 10, 20);
        let starts: Vec<i64> = trace.kernels.iter().map(|k| k.start).collect();
        assert_eq!(starts, [10, 19]);
        assert_eq!(trace.memcpys.len(), 2);
        assert_eq!(trace.memsets.len(), 2);
        assert_eq!(trace.api_calls.len(), 2);
        assert_eq!(trace.ranges.len(), 2);
        assert_eq!(trace.iterations.len(), 2);
    }

    #[test]
    fn offsets_are_checked() {
        assert_eq!(offset_ns(None, "--from-us", 7).unwrap(), 7);
        assert_eq!(offset_ns(Some(1.5), "--from-us", 0).unwrap(), 1500);
        assert_eq!(offset_ns(Some(-2.0), "--from-us", 0).unwrap(), -2000);
        let error = offset_ns(Some(f64::INFINITY), "--to-us", 0).unwrap_err();
        assert!(
            error.to_string().starts_with("--to-us inf is not a time"),
            "{error}"
        );
        assert!(offset_ns(Some(1e20), "--to-us", 0).is_err());
    }
}
