//! `cutrace convert`: reads any trace `cutrace report` reads and writes it again as
//! cutrace writes traces (Kineto's object format, times relative to
//! `baseTimeNanoseconds`, slices that nest), optionally keeping only a time range;
//! or writes many traces as Parquet (`--to parquet`, in `parquet.rs`). A regular
//! output file appears whole or not at all (the writer renames a
//! finished temporary file into place); a link is followed; a FIFO, a device or
//! `-` (standard output) is written as a stream. What the model has no place for
//! is named on stderr.

use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use cutrace_exporter::{Encoding, WriteOptions, write_trace_to, write_trace_with};
use cutrace_tracer::Trace;

use super::input::{self, MemoryArgs};

/// Arguments of `cutrace convert`.
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// Trace file to read (Kineto/Chrome JSON, gzip-compressed or plain; `-` reads
    /// standard input); with `--to parquet`, any number of them or directories of
    /// them.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,

    /// File to write: gzip when its name ends in `.gz`, plain JSON otherwise; `-`
    /// writes plain JSON to standard output. With `--to parquet`, the folder to
    /// write into (created when missing).
    #[arg(short, long, value_name = "PATH")]
    pub output: PathBuf,

    /// What to write: a trace, or Parquet (one row per event, one file per trace,
    /// in a folder partitioned by rank: OUTPUT/rank=<n>/<trace>.parquet).
    #[arg(long, value_enum, default_value_t = Target::Trace)]
    pub to: Target,

    /// Keep only events that start at or after this time, in microseconds from the
    /// input's origin: its `baseTimeNanoseconds`, or its earliest event (rounded down
    /// to the microsecond) when it has none. `cutrace report` prints the origin and
    /// each iteration's start and end on this scale.
    #[arg(long, value_name = "US", allow_negative_numbers = true)]
    pub from_us: Option<f64>,

    /// Keep only events that start before this time (same scale as --from-us).
    #[arg(long, value_name = "US", allow_negative_numbers = true)]
    pub to_us: Option<f64>,

    /// The memory ceiling.
    #[command(flatten)]
    pub memory: MemoryArgs,
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
pub fn run(args: &ConvertArgs) -> anyhow::Result<u8> {
    if args.to == Target::Parquet {
        if args.from_us.is_some() || args.to_us.is_some() {
            bail!("--from-us and --to-us cut a trace; --to parquet writes whole traces");
        }
        return super::parquet::run(&args.inputs, &args.output, &args.memory);
    }
    let [input_path] = &args.inputs[..] else {
        bail!(
            "a trace is converted into one trace: {} inputs given (--to parquet takes many)",
            args.inputs.len()
        );
    };
    let (mut trace, notes) = input::read(input_path, &args.memory)?;
    let shown_input = input::shown(input_path).display();
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
        let span = event_span(&trace);
        cut(
            &mut trace,
            base.saturating_add(from),
            base.saturating_add(to),
        );
        if trace.event_count() == 0 {
            let held = match span {
                Some((first, last)) => format!(
                    "its events start from {} to {} us",
                    micros(first - base),
                    micros(last - base)
                ),
                None => "it holds no events".to_owned(),
            };
            bail!(
                "{shown_input}: the range selects no event: {held}, counted from {}",
                input::origin(&trace, notes.origin)
            );
        }
    }
    input::within_ceiling(input_path, "cutting")?;
    let to_stdout = args.output.as_os_str() == "-";
    let gzip = !to_stdout && args.output.to_string_lossy().ends_with(".gz");
    let options = WriteOptions {
        encoding: if gzip {
            Encoding::Gzip { level: 1 }
        } else {
            Encoding::Plain
        },
        ..WriteOptions::default()
    };
    let stats = if to_stdout {
        // Not locked: the writer's threads take turns writing.
        let mut stdout = io::stdout();
        write_trace_to(&trace, &mut stdout, "-", &options)
            .and_then(|stats| stdout.flush().map(|()| stats))
            .context("cannot write to standard output")?
    } else {
        write_trace_with(&trace, &args.output, &options)
            .with_context(|| format!("cannot convert {shown_input}"))?
    };
    let shown_output = if to_stdout {
        "standard output".to_owned()
    } else {
        args.output.display().to_string()
    };
    if let Some(dropped) = notes.dropped() {
        input::note(&format!(
            "{shown_output}: not kept from {shown_input}: {dropped}"
        ));
    }
    let summary = format!(
        "{shown_output}: {} events, {} bytes\n",
        stats.events, stats.bytes_written
    );
    // The summary never mixes into a trace written to standard output.
    if to_stdout {
        let _ = io::stderr().write_all(summary.as_bytes());
    } else {
        let mut stdout = io::stdout().lock();
        stdout
            .write_all(summary.as_bytes())
            .and_then(|()| stdout.flush())
            .context("cannot write to standard output")?;
    }
    Ok(0)
}

/// Start of the first and of the last event, ns.
fn event_span(trace: &Trace) -> Option<(i64, i64)> {
    let starts = trace
        .kernels
        .iter()
        .map(|e| e.start)
        .chain(trace.memcpys.iter().map(|e| e.start))
        .chain(trace.memsets.iter().map(|e| e.start))
        .chain(trace.api_calls.iter().map(|e| e.start))
        .chain(trace.syncs.iter().map(|e| e.start))
        .chain(trace.ranges.iter().map(|e| e.start))
        .chain(trace.graph_launches.iter().map(|e| e.start))
        .chain(trace.overheads.iter().map(|e| e.start));
    starts.fold(None, |span, t| match span {
        None => Some((t, t)),
        Some((first, last)) => Some((first.min(t), last.max(t))),
    })
}

/// Nanoseconds as microseconds with three decimals.
fn micros(ns: i64) -> String {
    let sign = if ns < 0 { "-" } else { "" };
    let abs = ns.unsigned_abs();
    format!("{sign}{}.{:03}", abs / 1000, abs % 1000)
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
    fn spans_and_micros() {
        let mut trace = Trace::default();
        assert_eq!(event_span(&trace), None);
        for start in [30, 10, 20] {
            trace.kernels.push(Kernel {
                start,
                ..Default::default()
            });
        }
        trace.ranges.push(HostRange {
            start: 5,
            ..Default::default()
        });
        assert_eq!(event_span(&trace), Some((5, 30)));
        assert_eq!(micros(1_500), "1.500");
        assert_eq!(micros(-7), "-0.007");
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
