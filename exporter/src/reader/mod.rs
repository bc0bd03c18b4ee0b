//! Reads a Kineto/Chrome trace file back into a [`Trace`]: what `cutrace report`
//! runs on, for cutrace's own files and for those torch.profiler wrote.
//!
//! Accepted: gzip (recognised by its magic bytes, several members read as one
//! stream; cutrace's own, whose members record their lengths, inflated on every
//! core by [`members`]) or plain JSON; the object format (`{"traceEvents": [...]}`) or the bare
//! array; numbers written as strings; string pids and tids; relative times with
//! `baseTimeNanoseconds` or absolute ones without; trailing commas; an array-format
//! file cut before its closing `]`, as a crashed tracer leaves it. Everything else is
//! a [`ReadError`] naming the file and the problem: a JSON object without
//! `traceEvents` too, and a base that moves events past what an `i64` of
//! nanoseconds holds.
//!
//! Events are cut out of the decompressed stream one at a time ([`scan`]) and each
//! is deserialized borrowing from its bytes ([`event`]), so memory holds the model,
//! not the file; strings longer than 64 KiB are cut as they stream past, and the
//! reader stops at the memory ceiling ([`crate::memory`]). What the model has no
//! place for is counted in [`ReadNotes`] ([`read_trace_noted`]).

mod build;
mod event;
mod folding;
mod gpu_names;
mod members;
mod notes;
mod pipeline;
mod scan;

pub use folding::FoldedTrace;
pub use notes::{ReadNotes, TimeOrigin};

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use cutrace_tracer::Trace;
use flate2::bufread::MultiGzDecoder;

use crate::member_length;
use crate::memory::CeilingPassed;
use build::Builder;
use pipeline::{Producer, read_framed};
use scan::{MAX_DEPTH, ScanError, Scanner};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const BUFFER_SIZE: usize = 1 << 18;

/// Why a trace file could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{}: {kind}", path.display())]
pub struct ReadError {
    path: PathBuf,
    kind: ReadErrorKind,
}

impl ReadError {
    /// The file that could not be read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What was wrong with it.
    pub fn kind(&self) -> &ReadErrorKind {
        &self.kind
    }
}

/// What was wrong with a trace file. Byte offsets count in the decompressed data.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReadErrorKind {
    /// The file could not be opened.
    Open(io::Error),
    /// Reading or decompressing failed.
    Read {
        /// Whether the file is gzip.
        gzip: bool,
        /// The underlying error.
        source: io::Error,
    },
    /// The file holds nothing.
    Empty,
    /// The first byte is not where a JSON trace starts.
    NotJson {
        /// The byte found.
        found: u8,
    },
    /// The JSON is malformed.
    Syntax {
        /// Where.
        offset: u64,
        /// What was wrong.
        message: String,
    },
    /// The data ends in the middle of the trace.
    Truncated {
        /// Where it ends.
        offset: u64,
    },
    /// Nesting deeper than any trace has.
    TooDeep {
        /// Where the limit was passed.
        offset: u64,
    },
    /// One event is malformed.
    Event {
        /// Its index in `traceEvents`.
        index: u64,
        /// Where it starts.
        offset: u64,
        /// What was wrong.
        message: String,
    },
    /// The value of a top-level key is malformed.
    Field {
        /// The key.
        key: String,
        /// What was wrong.
        message: String,
    },
    /// A JSON object without `traceEvents`: some other JSON file.
    NoEvents,
    /// Memory use reached the ceiling ([`crate::memory`]) while reading.
    Memory(CeilingPassed),
    /// `baseTimeNanoseconds` plus an event's time falls outside the times a trace
    /// can hold (nanoseconds in an `i64`, up to the year 2262).
    TimeOutOfRange {
        /// The base, ns.
        base: i64,
        /// The event time on the file's scale, ns.
        time: i64,
    },
    /// The events do not come in the order folding them needs: only
    /// [`fold_trace_noted`] meets this, and it answers `None` instead.
    Unfoldable,
}

fn describe_byte(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("'{}'", b as char)
    } else {
        format!("byte 0x{b:02x}")
    }
}

impl fmt::Display for ReadErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadErrorKind::Open(e) => write!(f, "cannot open: {e}"),
            ReadErrorKind::Read { gzip: true, source } => {
                write!(f, "cannot decompress gzip data: {source}")
            }
            ReadErrorKind::Read {
                gzip: false,
                source,
            } => write!(f, "cannot read: {source}"),
            ReadErrorKind::Empty => write!(f, "the file is empty"),
            ReadErrorKind::NotJson { found } => write!(
                f,
                "not a JSON trace: it starts with {}, not '{{' or '['",
                describe_byte(*found)
            ),
            ReadErrorKind::Syntax { offset, message } => {
                write!(f, "invalid JSON at byte {offset}: {message}")
            }
            ReadErrorKind::Truncated { offset } => {
                write!(
                    f,
                    "the data ends at byte {offset}, inside the trace (truncated file?)"
                )
            }
            ReadErrorKind::TooDeep { offset } => {
                write!(
                    f,
                    "JSON nested deeper than {MAX_DEPTH} levels at byte {offset}"
                )
            }
            ReadErrorKind::Event {
                index,
                offset,
                message,
            } => write!(f, "traceEvents[{index}] at byte {offset}: {message}"),
            ReadErrorKind::Field { key, message } => write!(f, "\"{key}\": {message}"),
            ReadErrorKind::Memory(passed) => {
                write!(f, "{passed} while reading (--memory-limit raises it)")
            }
            ReadErrorKind::NoEvents => {
                write!(f, "not a trace: the JSON object has no \"traceEvents\"")
            }
            ReadErrorKind::TimeOutOfRange { base, time } => write!(
                f,
                "\"baseTimeNanoseconds\": {base} plus event time {time} ns lies beyond the \
                 times a trace can hold (the year 2262)"
            ),
            ReadErrorKind::Unfoldable => {
                write!(
                    f,
                    "the events do not come in the order a one-pass report needs"
                )
            }
        }
    }
}

/// Reads the trace file at `path` into a [`Trace`] with absolute times.
///
/// Without `baseTimeNanoseconds` the file's times are taken as absolute and the base
/// becomes the earliest event time, rounded down to the microsecond.
pub fn read_trace(path: &Path) -> Result<Trace, ReadError> {
    read_trace_noted(path).map(|(trace, _)| trace)
}

/// Reads a trace from `input`; `path` names it in errors and gives the worker name.
pub fn read_trace_from(input: impl Read + Send, path: &Path) -> Result<Trace, ReadError> {
    read_trace_from_noted(input, path).map(|(trace, _)| trace)
}

/// [`read_trace`], with what reading left out of the trace.
pub fn read_trace_noted(path: &Path) -> Result<(Trace, ReadNotes), ReadError> {
    let file = File::open(path).map_err(|e| ReadError {
        path: path.to_owned(),
        kind: ReadErrorKind::Open(e),
    })?;
    read_trace_from_noted(file, path)
}

/// [`read_trace_from`], with what reading left out of the trace.
pub fn read_trace_from_noted(
    input: impl Read + Send,
    path: &Path,
) -> Result<(Trace, ReadNotes), ReadError> {
    let mut builder = Builder::new(worker_name(path));
    let cut_strings = read_into(input, path, &mut builder)?;
    let (trace, mut notes) = builder.finish().map_err(|kind| ReadError {
        path: path.to_owned(),
        kind,
    })?;
    notes.cut_strings = cut_strings;
    Ok((trace, notes))
}

/// Which files [`fold_trace_noted`] tries to fold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FoldFiles {
    /// Only files cutrace wrote, whose tracks come in the order folding needs;
    /// others are read no further than their first event.
    Cutrace,
    /// Any file.
    Any,
}

/// Reads the trace file at `path` for its report alone: its events are folded
/// into the key averages and figures as they come, and only what the graph
/// figures need is kept. `None` when they cannot be ([`FoldFiles`], and the
/// checks in `folding`): the report is then that of [`read_trace_noted`]'s
/// trace, which a fold always equals.
pub fn fold_trace_noted(
    path: &Path,
    files: FoldFiles,
) -> Result<Option<(FoldedTrace, ReadNotes)>, ReadError> {
    let error = |kind| ReadError {
        path: path.to_owned(),
        kind,
    };
    let file = File::open(path).map_err(|e| error(ReadErrorKind::Open(e)))?;
    let mut builder = Builder::folding(worker_name(path), files == FoldFiles::Any);
    let cut_strings = match read_into(file, path, &mut builder) {
        Err(e) if matches!(e.kind, ReadErrorKind::Unfoldable) => return Ok(None),
        read => read?,
    };
    match builder.finish_folded() {
        Ok((folded, mut notes)) => {
            notes.cut_strings = cut_strings;
            Ok(Some((folded, notes)))
        }
        Err(ReadErrorKind::Unfoldable) => Ok(None),
        Err(kind) => Err(error(kind)),
    }
}

/// Reads `input` into `builder`; the number of strings cut short.
fn read_into(
    mut input: impl Read + Send,
    path: &Path,
    builder: &mut Builder,
) -> Result<u64, ReadError> {
    let error = |kind| ReadError {
        path: path.to_owned(),
        kind,
    };
    // Enough for the magic bytes, and for the header of a member that records its
    // length.
    let mut head = [0u8; member_length::HEADER_LEN];
    let got = read_up_to(&mut input, &mut head).map_err(|source| {
        error(ReadErrorKind::Read {
            gzip: false,
            source,
        })
    })?;
    let gzip = head[..got.min(GZIP_MAGIC.len())] == GZIP_MAGIC;
    // A read that is one of several side by side keeps to its own thread.
    let indexed = member_length::read(&head[..got]).is_some() && !pipeline::within_pool();
    let input = BufReader::with_capacity(
        BUFFER_SIZE,
        io::Cursor::new(head[..got].to_vec()).chain(input),
    );
    let parsed = if indexed {
        members::inflated(input, |text| {
            read_framed(Scanner::new(text), builder, frame)
        })
    } else if gzip {
        let decoder = BufReader::with_capacity(BUFFER_SIZE, MultiGzDecoder::new(input));
        read_framed(Scanner::new(decoder), builder, frame)
    } else {
        read_framed(Scanner::new(input), builder, frame)
    };
    parsed.map_err(|kind| match kind {
        ReadErrorKind::Read { source, .. } => error(ReadErrorKind::Read { gzip, source }),
        kind => error(kind),
    })
}

/// Fills `buf` as far as the input goes; the number of bytes read.
fn read_up_to(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match input.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// The worker name torch's file names start with: `<worker>.<ns>.pt.trace.json.gz`.
fn worker_name(path: &Path) -> String {
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy())
        .unwrap_or_default();
    let mut stem: &str = &file;
    for suffix in [".gz", ".json", ".trace", ".pt"] {
        stem = stem.strip_suffix(suffix).unwrap_or(stem);
    }
    match stem.rsplit_once('.') {
        Some((worker, time)) if !time.is_empty() && time.bytes().all(|b| b.is_ascii_digit()) => {
            worker.to_owned()
        }
        _ => stem.to_owned(),
    }
}

impl From<ScanError> for ReadErrorKind {
    fn from(e: ScanError) -> Self {
        match e {
            ScanError::Io(source) => ReadErrorKind::Read {
                gzip: false,
                source,
            },
            ScanError::Eof { offset } => ReadErrorKind::Truncated { offset },
            ScanError::Unexpected {
                offset,
                found,
                expected,
            } => ReadErrorKind::Syntax {
                offset,
                message: format!("expected {expected}, found {}", describe_byte(found)),
            },
            ScanError::TooDeep { offset } => ReadErrorKind::TooDeep { offset },
        }
    }
}

/// Whether the trace is a `{...}` object or a bare `[...]` array of events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Object,
    Array,
}

/// Frames the whole input, handing events and wanted top-level values to `sink`.
fn frame<R: BufRead>(scanner: &mut Scanner<R>, sink: &mut Producer) -> Result<(), ReadErrorKind> {
    match scanner.peek()? {
        None => return Err(ReadErrorKind::Empty),
        Some(b'{') => frame_object(scanner, sink)?,
        Some(b'[') => frame_events(scanner, sink, Format::Array)?,
        Some(found) => return Err(ReadErrorKind::NotJson { found }),
    }
    match scanner.peek()? {
        None => Ok(()),
        Some(found) => Err(ReadErrorKind::Syntax {
            offset: scanner.offset(),
            message: format!(
                "unexpected {} after the end of the trace",
                describe_byte(found)
            ),
        }),
    }
}

fn frame_object<R: BufRead>(
    scanner: &mut Scanner<R>,
    sink: &mut Producer,
) -> Result<(), ReadErrorKind> {
    scanner.bump();
    let mut buf = Vec::new();
    let mut has_events = false;
    loop {
        match scanner.peek()? {
            Some(b'}') => {
                scanner.bump();
                return if has_events {
                    Ok(())
                } else {
                    Err(ReadErrorKind::NoEvents)
                };
            }
            Some(b'"') => {}
            Some(found) => {
                return Err(ScanError::Unexpected {
                    offset: scanner.offset(),
                    found,
                    expected: "a key or '}'",
                }
                .into());
            }
            None => {
                return Err(ReadErrorKind::Truncated {
                    offset: scanner.offset(),
                });
            }
        }
        let key_offset = scanner.offset();
        buf.clear();
        scanner.value(Some(&mut buf))?;
        let key: String = serde_json::from_slice(&buf).map_err(|e| ReadErrorKind::Syntax {
            offset: key_offset,
            message: e.to_string(),
        })?;
        scanner.expect(b':', "':'")?;
        if key == "traceEvents" {
            has_events = true;
            frame_events(scanner, sink, Format::Object)?;
        } else if Builder::wants(&key) {
            let mut value = Vec::new();
            scanner.value(Some(&mut value))?;
            sink.top_level(key, value)?;
        } else {
            scanner.value(None)?;
            if !Builder::rebuilds(&key) {
                sink.skipped(key)?;
            }
        }
        match scanner.peek()? {
            Some(b',') => scanner.bump(),
            Some(b'}') => {}
            Some(found) => {
                return Err(ScanError::Unexpected {
                    offset: scanner.offset(),
                    found,
                    expected: "',' or '}'",
                }
                .into());
            }
            None => {
                return Err(ReadErrorKind::Truncated {
                    offset: scanner.offset(),
                });
            }
        }
    }
}

fn frame_events<R: BufRead>(
    scanner: &mut Scanner<R>,
    sink: &mut Producer,
    format: Format,
) -> Result<(), ReadErrorKind> {
    scanner.expect(b'[', "'[' opening traceEvents")?;
    // The end of the input where the array would go on is its missing `]` for the
    // array format (a tracer that died), and a truncated file for the object format.
    let end_of_input = |offset| match format {
        Format::Array => Ok(()),
        Format::Object => Err(ReadErrorKind::Truncated { offset }),
    };
    let mut index = 0u64;
    loop {
        match scanner.peek()? {
            Some(b']') => {
                scanner.bump();
                return Ok(());
            }
            None => return end_of_input(scanner.offset()),
            Some(_) => {}
        }
        let offset = scanner.offset();
        sink.event(scanner, index, offset)?;
        index += 1;
        match scanner.peek()? {
            Some(b',') => scanner.bump(),
            Some(b']') => {}
            None => return end_of_input(scanner.offset()),
            Some(found) => {
                return Err(ScanError::Unexpected {
                    offset: scanner.offset(),
                    found,
                    expected: "',' or ']' after an event",
                }
                .into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use cutrace_tracer::model::{ApiKind, CopyKind, MemoryKind, RangeKind, SyncKind};
    use flate2::Compression;
    use flate2::write::GzEncoder;

    use super::*;

    fn read(bytes: &[u8]) -> Result<Trace, ReadError> {
        read_trace_from(
            bytes,
            Path::new("dir/host_42.1700000000000000000.pt.trace.json.gz"),
        )
    }

    fn gzip(parts: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for part in parts {
            let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
            encoder.write_all(part).unwrap();
            out.extend(encoder.finish().unwrap());
        }
        out
    }

    const EVENTS: &str = r#"
        {"ph": "M", "name": "process_labels", "pid": 7, "tid": 0, "args": {"labels": "CPU"}},
        {"ph": "M", "name": "process_name", "pid": 7, "tid": 0, "args": {"name": "python3"}},
        {"ph": "M", "name": "process_labels", "pid": 0, "tid": 0, "args": {"labels": "GPU 0"}},
        {"ph": "M", "name": "thread_name", "pid": 7, "tid": 8, "args": {"name": "thread 8 (python3)"}},
        {"ph": "M", "name": "thread_name", "pid": 0, "tid": 9, "args": {"name": "stream 9 "}},
        {"ph": "X", "cat": "user_annotation", "name": "ProfilerStep#3", "pid": 7, "tid": 8, "ts": 10.5, "dur": 100},
        {"ph": "X", "cat": "cpu_op", "name": "aten::mm", "pid": 7, "tid": 8, "ts": 11, "dur": 20,
         "args": {"External id": 5}},
        {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 7, "tid": 8,
         "ts": "12.25", "dur": "3", "args": {"cbid": 211, "correlation": 77, "External id": 5}},
        {"ph": "X", "cat": "cuda_driver", "name": "cuLaunchKernel", "pid": 7, "tid": 8, "ts": 16, "dur": 1,
         "args": {"cbid": 307, "correlation": 78}},
        {"ph": "s", "id": 77, "pid": 7, "tid": 8, "ts": 12.25, "cat": "ac2g", "name": "ac2g"},
        {"ph": "X", "cat": "kernel", "name": "gemm", "pid": 0, "tid": 9, "ts": 20.001, "dur": 5.5,
         "args": {"device": 0, "context": 1, "stream": 9, "correlation": 77, "registers per thread": 32,
                  "shared memory": 1024, "grid": [4, 2, 1], "block": [128, 1, 1], "queued": 19,
                  "graph id": 3, "graph node id": 12}},
        {"ph": "X", "cat": "gpu_memcpy", "name": "Memcpy DtoH (Device -> Pinned)", "pid": 0, "tid": 9,
         "ts": 30, "dur": 2, "args": {"device": 0, "stream": 9, "correlation": 79, "bytes": 4096}},
        {"ph": "X", "cat": "gpu_memset", "name": "Memset (Device)", "pid": 0, "tid": 9,
         "ts": 33, "dur": 1, "args": {"device": 0, "stream": 9, "correlation": 80, "bytes": 64}},
        {"ph": "X", "cat": "cuda_runtime", "name": "cudaStreamSynchronize", "pid": 7, "tid": 8, "ts": 40, "dur": 10,
         "args": {"correlation": 81}},
        {"ph": "X", "cat": "cuda_sync", "name": "Stream Sync", "pid": 0, "tid": 9, "ts": 41, "dur": 8,
         "args": {"correlation": 81, "stream": 9, "device": 0}},
        {"ph": "X", "cat": "gpu_user_annotation", "name": "ProfilerStep#3", "pid": 0, "tid": 9, "ts": 20, "dur": 14},
        {"ph": "X", "cat": "python_function", "name": "train.py(10): step", "pid": 7, "tid": 8, "ts": 10.6, "dur": 90},
        {"ph": "X", "cat": "cuda_profiler_range", "name": "gemm", "pid": 0, "tid": 0, "ts": 20, "dur": 6},
        {"ph": "X", "cat": "Trace", "name": "PyTorch Profiler (0)", "pid": "Spans", "tid": "PyTorch Profiler", "ts": 1, "dur": 200},
        {"ph": "i", "name": "Record Window End", "pid": "", "tid": "", "ts": 300, "s": "g"}
    "#;

    fn object_trace(base: &str) -> String {
        format!(
            r#"{{"schemaVersion": 1, "deviceProperties": [{{"id": 0, "name": "NVIDIA H100", "totalGlobalMem": 85000000000,
                "computeMajor": 9, "computeMinor": 0, "numSms": 132, "warpSize": 32}}],
              "distributedInfo": {{"backend": "nccl", "rank": 3, "world_size": 8}},
              "cupti_version": 24, "host_name": "node1", "dropped_records": 12, "refused_buffers": 3,
              "unknown_records": 2,
              "window": 4, "iterations": [3], "tracer_version": "0.1.0",
              "traceEvents": [{EVENTS}],
              "traceName": "x"{base}}}"#
        )
    }

    #[test]
    fn a_sync_without_a_call_of_its_correlation_stays_on_its_own_thread() {
        let trace = read(
            br#"[{"ph": "X", "cat": "cuda_sync", "name": "Stream Sync", "pid": 1, "tid": 2, "ts": 1, "dur": 1,
                  "args": {"correlation": 5}},
                 {"ph": "X", "cat": "cuda_sync", "name": "Stream Sync", "pid": 1, "tid": 3, "ts": 3, "dur": 1,
                  "args": {"correlation": 5}},
                 {"ph": "X", "cat": "cuda_sync", "name": "Stream Sync", "pid": 1, "tid": 4, "ts": 5, "dur": 1,
                  "args": {"correlation": 6}},
                 {"ph": "X", "cat": "cuda_runtime", "name": "cudaStreamSynchronize", "pid": 7, "tid": 8,
                  "ts": 5, "dur": 2, "args": {"correlation": 6}}]"#,
        )
        .unwrap();
        let threads: Vec<_> = trace.syncs.iter().map(|s| (s.pid, s.tid)).collect();
        assert_eq!(threads, [(1, 2), (1, 3), (7, 8)]);
    }

    #[test]
    fn a_rank_is_known_only_when_distributed_info_names_one() {
        let known = |json: &str| read(json.as_bytes()).unwrap().info.rank_known;
        assert!(known(
            r#"{"distributedInfo": {"rank": 0}, "traceEvents": []}"#
        ));
        assert!(!known(
            r#"{"distributedInfo": {"backend": "nccl"}, "traceEvents": []}"#
        ));
        assert!(!known(r#"{"traceEvents": []}"#));
        assert!(!known("[]"));
    }

    /// Checks the trace read from [`EVENTS`], whose times are `base` + the file's.
    fn assert_example(trace: &Trace, base: i64) {
        let name = |id| trace.names.get(id);
        assert_eq!(trace.info.rank, 3);
        assert!(trace.info.rank_known);
        assert_eq!(trace.info.world_size, 8);
        assert_eq!(trace.info.cupti_version, 24);
        assert_eq!(trace.info.host_name, "node1");
        assert_eq!(
            (
                trace.info.dropped_records,
                trace.info.refused_buffers,
                trace.info.unknown_records
            ),
            (12, 3, 2)
        );
        assert_eq!(
            (trace.info.window, trace.info.tracer_version.as_str()),
            (4, "0.1.0")
        );
        assert_eq!(trace.info.pid, 7);
        assert_eq!(trace.info.process_name, "python3");
        assert_eq!(trace.info.worker_name, "host_42");
        assert_eq!(trace.devices.len(), 1);
        assert_eq!(trace.devices[0].name, "NVIDIA H100");
        assert_eq!(trace.devices[0].num_sms, 132);

        let [kernel] = trace.kernels[..] else {
            panic!("{:?}", trace.kernels)
        };
        assert_eq!(name(kernel.name), "gemm");
        assert_eq!((kernel.start, kernel.end), (base + 20_001, base + 25_501));
        assert_eq!(kernel.queued, base + 19_000);
        assert_eq!((kernel.device, kernel.stream, kernel.context), (0, 9, 1));
        assert_eq!(
            (kernel.correlation, kernel.graph_id, kernel.graph_node_id),
            (77, 3, 12)
        );
        let config = trace.config(kernel.config);
        assert_eq!(config.grid, [4, 2, 1]);
        assert_eq!(config.block, [128, 1, 1]);
        assert_eq!(
            (config.registers_per_thread, config.static_shared_memory),
            (32, 1024)
        );

        let [memcpy] = trace.memcpys[..] else {
            panic!()
        };
        assert_eq!(
            (memcpy.kind, memcpy.src_kind, memcpy.dst_kind),
            (CopyKind::DtoH, MemoryKind::Device, MemoryKind::Pinned)
        );
        assert_eq!(
            (memcpy.bytes, memcpy.correlation, memcpy.start),
            (4096, 79, base + 30_000)
        );
        let [memset] = trace.memsets[..] else {
            panic!()
        };
        assert_eq!((memset.memory_kind, memset.bytes), (MemoryKind::Device, 64));

        let apis: Vec<_> = trace
            .api_calls
            .iter()
            .map(|c| (name(c.name), c.kind, c.correlation, c.cbid))
            .collect();
        assert_eq!(
            apis,
            [
                ("cudaLaunchKernel", ApiKind::Runtime, 77, 211),
                ("cuLaunchKernel", ApiKind::Driver, 78, 307),
                ("cudaStreamSynchronize", ApiKind::Runtime, 81, 0),
            ]
        );
        assert_eq!(trace.api_calls[0].external_id, 5);
        assert_eq!(
            (trace.api_calls[0].start, trace.api_calls[0].end),
            (base + 12_250, base + 15_250)
        );

        let [sync] = trace.syncs[..] else { panic!() };
        assert_eq!(sync.kind, SyncKind::StreamSync);
        assert_eq!(
            (sync.pid, sync.tid, sync.stream),
            (7, 8, 9),
            "moved to the waiting thread"
        );

        let ranges: Vec<_> = trace
            .ranges
            .iter()
            .map(|r| (name(r.name), r.kind, name(r.category)))
            .collect();
        assert_eq!(
            ranges,
            [
                (
                    "ProfilerStep#3",
                    RangeKind::UserAnnotation,
                    "user_annotation"
                ),
                ("aten::mm", RangeKind::CpuOp, "cpu_op"),
                ("train.py(10): step", RangeKind::Other, "python_function"),
            ]
        );
        assert_eq!(trace.ranges[1].external_id, 5);
        assert_eq!(trace.iterations.len(), 1);
        assert_eq!(trace.iterations[0].number, 3);
        assert_eq!(
            (trace.iterations[0].start, trace.iterations[0].end),
            (base + 10_500, base + 110_500)
        );
        assert_eq!(trace.threads.len(), 1);
        assert_eq!((trace.threads[0].pid, trace.threads[0].tid), (7, 8));
        assert_eq!(trace.threads[0].name, "python3");
    }

    #[test]
    fn object_format_with_base_time() {
        let text = object_trace(r#", "baseTimeNanoseconds": 1700000000000000000"#);
        let trace = read(text.as_bytes()).unwrap();
        assert_eq!(trace.base_time_ns, 1_700_000_000_000_000_000);
        assert_example(&trace, 1_700_000_000_000_000_000);
    }

    #[test]
    fn what_the_model_cannot_hold_is_noted() {
        let text = object_trace(r#", "baseTimeNanoseconds": 1700000000000000000, "INFO": ["x"]"#);
        let (_, notes) = read_trace_from_noted(
            text.as_bytes(),
            Path::new("dir/host_42.1700000000000000000.pt.trace.json.gz"),
        )
        .unwrap();
        assert_eq!(notes.origin, TimeOrigin::BaseTime);
        assert_eq!(
            notes.dropped().unwrap(),
            "1 host slices on device tracks, 1 instant events, 1 profiler spans, \
             top-level keys \"distributedInfo.backend\", \"INFO\""
        );
        assert_eq!(notes.cut_strings, 0);
        let (_, notes) =
            read_trace_from_noted(format!("[{EVENTS}]").as_bytes(), Path::new("t.json")).unwrap();
        assert_eq!(notes.origin, TimeOrigin::EarliestEvent);

        let long = "n".repeat(200_000);
        let text = format!(
            r#"{{"traceEvents": [{{"ph": "X", "cat": "kernel", "name": "{long}", "pid": 0, "tid": 7,
                "ts": 1, "dur": 2, "args": {{"huge": "{long}"}}}}]}}"#
        );
        let (trace, notes) = read_trace_from_noted(text.as_bytes(), Path::new("t.json")).unwrap();
        assert_eq!(notes.cut_strings, 2);
        assert_eq!(trace.names.get(trace.kernels[0].name).len(), 64 * 1024);
    }

    #[test]
    fn without_base_time_the_earliest_event_is_the_base() {
        let trace = read(object_trace("").as_bytes()).unwrap();
        // Earliest kept event: ProfilerStep#3 at 10.5 µs, rounded down to 10 µs.
        assert_eq!(trace.base_time_ns, 10_000);
        assert_example(&trace, 0);
    }

    #[test]
    fn array_format_gzip_and_lenient_endings_read_the_same() {
        let base = r#", "baseTimeNanoseconds": "1700000000000000000""#;
        let object = object_trace(base);
        let (head, tail) = object.split_at(object.len() / 2);
        let variants: Vec<Vec<u8>> = vec![
            gzip(&[object.as_bytes()]),
            // Members split in the middle of an event.
            gzip(&[head.as_bytes(), tail.as_bytes()]),
            object_trace(&format!("{base},")).into_bytes(),
        ];
        for bytes in &variants {
            let trace = read(bytes).unwrap();
            assert_eq!(trace.base_time_ns, 1_700_000_000_000_000_000);
            assert_example(&trace, 1_700_000_000_000_000_000);
        }
        let array = format!("[{EVENTS}]");
        let arrays = [
            array.clone(),
            format!("[{EVENTS},]"),
            format!("[{EVENTS}"),
            format!("[{EVENTS},\n"),
            array.replace(r#""bytes": 64}}"#, r#""bytes": 64,},}"#),
        ];
        for text in &arrays {
            let trace = read(text.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(trace.kernels.len(), 1);
            assert_eq!(trace.memsets.len(), 1);
            assert_eq!(trace.ranges.len(), 3);
            assert_eq!(trace.base_time_ns, 10_000);
        }
        let gz = read(&gzip(&[format!("[{EVENTS}").as_bytes()])).unwrap();
        assert_eq!(gz.api_calls.len(), 3);
    }

    #[test]
    fn string_ids_get_stand_in_numbers_and_names() {
        let text = r#"[
            {"ph": "X", "cat": "cpu_op", "name": "a", "pid": "1234", "tid": "worker", "ts": 1, "dur": 2},
            {"ph": "X", "cat": "cpu_op", "name": "b", "pid": 1234, "tid": "worker", "ts": 1.5, "dur": 1},
            {"ph": "X", "cat": "cpu_op", "name": "c", "pid": 1234, "tid": 99999999999, "ts": 2, "dur": 1},
            {"ph": "X", "cat": "kernel", "name": "k", "pid": 0, "tid": "stream 7", "ts": 3, "dur": 1}
        ]"#;
        let trace = read(text.as_bytes()).unwrap();
        let tids: Vec<u32> = trace.ranges.iter().map(|r| r.tid).collect();
        assert_eq!(tids[0], tids[1], "one thread, one number");
        assert_ne!(tids[0], tids[2]);
        assert!(tids[0] > u32::MAX - 10 && tids[2] > u32::MAX - 10);
        assert!(trace.ranges.iter().all(|r| r.pid == 1234));
        let worker = trace.threads.iter().find(|t| t.tid == tids[0]).unwrap();
        assert_eq!((worker.pid, worker.name.as_str()), (1234, "worker"));
        assert_eq!(trace.kernels[0].stream, 7);
    }

    fn error_of(bytes: &[u8]) -> ReadError {
        match read(bytes) {
            Ok(trace) => panic!(
                "read {} events from {:?}",
                trace.event_count(),
                String::from_utf8_lossy(&bytes[..bytes.len().min(80)])
            ),
            Err(e) => {
                let text = e.to_string();
                assert!(text.starts_with("dir/host_42."), "{text}");
                assert!(!text.contains('\n'), "{text}");
                e
            }
        }
    }

    #[test]
    fn malformed_inputs_are_one_line_errors() {
        assert!(matches!(error_of(b"").kind(), ReadErrorKind::Empty));
        assert!(matches!(error_of(b" \n\t ").kind(), ReadErrorKind::Empty));
        assert!(matches!(
            error_of(&gzip(&[b""])).kind(),
            ReadErrorKind::Empty
        ));
        assert!(matches!(
            error_of(b"\x00\x01binary").kind(),
            ReadErrorKind::NotJson { found: 0 }
        ));
        assert!(matches!(
            error_of(b"hello").kind(),
            ReadErrorKind::NotJson { found: b'h' }
        ));
        assert!(matches!(
            error_of(&vec![b'['; 200_000]).kind(),
            ReadErrorKind::TooDeep { .. }
        ));
        assert!(matches!(
            error_of(&vec![b'{'; 200_000]).kind(),
            ReadErrorKind::Syntax { .. }
        ));
        let deep_event = format!(
            r#"{{"traceEvents": [{{"args": {}}}]}}"#,
            "[".repeat(100_000)
        );
        assert!(matches!(
            error_of(deep_event.as_bytes()).kind(),
            ReadErrorKind::TooDeep { .. }
        ));
        assert!(matches!(
            error_of(br#"{"traceEvents": [{"ph": "X", "ts": 1}"#).kind(),
            ReadErrorKind::Truncated { .. }
        ));
        assert!(matches!(
            error_of(br#"{"traceEvents": [{"ph": "X", "ts": 1"#).kind(),
            ReadErrorKind::Truncated { .. }
        ));
        assert!(matches!(
            error_of(br#"[{"ph": "X", "ts": 1"#).kind(),
            ReadErrorKind::Truncated { .. }
        ));
        assert!(matches!(
            error_of(br#"{"traceEvents": []} x"#).kind(),
            ReadErrorKind::Syntax { .. }
        ));
        assert!(matches!(
            error_of(br#"{"traceEvents": [] "a": 1}"#).kind(),
            ReadErrorKind::Syntax { .. }
        ));
        assert!(matches!(
            error_of(br#"{"traceEvents": {}}"#).kind(),
            ReadErrorKind::Syntax { .. }
        ));
        assert!(matches!(
            error_of(br#"{1: 2}"#).kind(),
            ReadErrorKind::Syntax { .. }
        ));
        assert!(
            matches!(error_of(br#"{"baseTimeNanoseconds": "soon"}"#).kind(), ReadErrorKind::Field { key, .. } if key == "baseTimeNanoseconds")
        );
        assert!(matches!(
            error_of(br#"{"deviceProperties": 5}"#).kind(),
            ReadErrorKind::Field { .. }
        ));
        match error_of(br#"[{"ph": "X", "ts": 1}, 17]"#).kind() {
            ReadErrorKind::Event {
                index: 1,
                offset: 23,
                message,
            } => assert!(message.contains("trace event object"), "{message}"),
            other => panic!("{other:?}"),
        }
        match error_of(br#"[{"ph": "X", "cat": "kernel", "ts": "soon"}]"#).kind() {
            ReadErrorKind::Event {
                index: 0, message, ..
            } => assert!(message.contains("ts \"soon\""), "{message}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            error_of(br#"[{"ph": "X", "name": "no ts"}]"#).kind(),
            ReadErrorKind::Event { .. }
        ));
        assert!(matches!(
            error_of(b"[{\"name\": \"\xff\"}]").kind(),
            ReadErrorKind::Event { .. }
        ));

        let mut corrupt = gzip(&[object_trace("").as_bytes()]);
        let middle = corrupt.len() / 2;
        corrupt[middle..middle + 8].copy_from_slice(b"garbage!");
        let error = error_of(&corrupt);
        assert!(
            matches!(
                error.kind(),
                ReadErrorKind::Read { gzip: true, .. }
                    | ReadErrorKind::Syntax { .. }
                    | ReadErrorKind::Event { .. }
            ),
            "{error}"
        );
        let whole = gzip(&[object_trace("").as_bytes()]);
        let cut = error_of(&whole[..whole.len() - 20]);
        assert!(
            matches!(cut.kind(), ReadErrorKind::Read { gzip: true, .. }),
            "{cut}"
        );
    }

    /// An array of `n` kernel events, several batches' worth when `n` is large.
    fn many_kernels(n: usize) -> String {
        let events: Vec<String> = (0..n)
            .map(|i| format!(r#"{{"ph": "X", "cat": "kernel", "name": "k{}", "pid": 0, "tid": 7, "ts": {i}, "dur": 1, "args": {{"correlation": {i}}}}}"#, i % 5))
            .collect();
        format!("[{}]", events.join(",\n"))
    }

    #[test]
    fn large_inputs_cross_batches_in_order() {
        let text = many_kernels(30_000);
        assert!(text.len() > 3 * pipeline::BATCH_BYTES);
        let trace = read(text.as_bytes()).unwrap();
        assert_eq!(trace.kernels.len(), 30_000);
        assert!(
            trace
                .kernels
                .iter()
                .enumerate()
                .all(|(i, k)| k.correlation == i as u64)
        );

        // A bad event late in the file, then a syntax error after it: the event,
        // first in file order, is the one reported.
        let bad = text.replacen(r#""ts": 25000,"#, r#""ts": "late","#, 1);
        let broken = format!("{}}}", &bad[..bad.len() - 1]);
        match error_of(broken.as_bytes()).kind() {
            ReadErrorKind::Event { index: 25_000, .. } => {}
            other => panic!("{other:?}"),
        }
        let truncated = &text[..text.len() * 9 / 10];
        let cut_at = truncated.rfind('{').unwrap();
        match error_of(&truncated.as_bytes()[..cut_at + 5]).kind() {
            ReadErrorKind::Truncated { offset } => assert_eq!(*offset as usize, cut_at + 5),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn json_that_is_not_a_trace_is_refused_but_an_empty_trace_reads() {
        for text in [
            &br#"{"foo": 1}"#[..],
            b"{}",
            br#"{"traceName": "x", "deviceProperties": []}"#,
        ] {
            let error = error_of(text);
            assert!(matches!(error.kind(), ReadErrorKind::NoEvents), "{error}");
            assert!(
                error
                    .to_string()
                    .ends_with("not a trace: the JSON object has no \"traceEvents\"")
            );
        }
        for text in [
            &br#"{"traceEvents": []}"#[..],
            b"[]",
            br#"{"schemaVersion": 1, "traceEvents": [], "x": 2}"#,
        ] {
            let trace = read(text).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(trace.event_count(), 0);
        }
    }

    #[test]
    fn a_base_that_moves_events_out_of_range_is_an_error() {
        // The kernel starts in range and ends beyond it.
        let near_max = i64::MAX - 12_000;
        let text = format!(
            r#"{{"baseTimeNanoseconds": {near_max}, "traceEvents": [
                {{"ph": "X", "cat": "kernel", "name": "k", "pid": 0, "tid": 7, "ts": 10, "dur": 5}}]}}"#
        );
        match error_of(text.as_bytes()).kind() {
            ReadErrorKind::TimeOutOfRange { base, time } => {
                assert_eq!((*base, *time), (near_max, 15_000));
            }
            other => panic!("{other:?}"),
        }
        // The same base with events that stay in range reads exactly.
        let text = format!(
            r#"{{"baseTimeNanoseconds": {}, "traceEvents": [
                {{"ph": "X", "cat": "kernel", "name": "k", "pid": 0, "tid": 7, "ts": 10, "dur": 5}}]}}"#,
            near_max - 15_000
        );
        let trace = read(text.as_bytes()).unwrap();
        assert_eq!(trace.kernels[0].end - trace.kernels[0].start, 5_000);
    }

    #[test]
    fn old_torch_iterations_and_capitalised_categories_read() {
        // PyTorch 1.8/1.9: `Operator`, `Runtime`, `Kernel`, `Memcpy`.
        let text = r#"[
            {"ph": "X", "cat": "Operator", "name": "ProfilerStep#7", "pid": 5, "tid": 5, "ts": 0, "dur": 100},
            {"ph": "X", "cat": "Operator", "name": "aten::add", "pid": 5, "tid": 5, "ts": 1, "dur": 10},
            {"ph": "X", "cat": "Runtime", "name": "cudaLaunchKernel", "pid": 5, "tid": 5, "ts": 2, "dur": 3,
             "args": {"correlation": 4}},
            {"ph": "X", "cat": "Kernel", "name": "add_kernel", "pid": 0, "tid": 7, "ts": 20, "dur": 5,
             "args": {"correlation": 4}},
            {"ph": "X", "cat": "Memcpy", "name": "Memcpy HtoD (Pageable -> Device)", "pid": 0, "tid": 7,
             "ts": 30, "dur": 5}
        ]"#;
        let trace = read(text.as_bytes()).unwrap();
        assert_eq!(trace.iterations.len(), 1);
        assert_eq!(trace.iterations[0].number, 7);
        assert_eq!(
            (
                trace.kernels.len(),
                trace.memcpys.len(),
                trace.api_calls.len()
            ),
            (1, 1, 1)
        );
        assert!(trace.ranges.iter().all(|r| r.kind == RangeKind::CpuOp));
    }

    #[test]
    fn nothing_on_a_device_pid_is_host_time() {
        let text = r#"[
            {"ph": "M", "name": "process_labels", "pid": 1, "tid": 0, "args": {"labels": "MTIA 1"}},
            {"ph": "X", "cat": "mtia_ccp_events", "name": "ccp job", "pid": 1, "tid": 3, "ts": 0, "dur": 100},
            {"ph": "X", "cat": "mtia_ccp_events", "name": "ccp job", "pid": 2, "tid": 3, "ts": 0, "dur": 100},
            {"ph": "X", "cat": "cpu_op", "name": "on the device", "pid": 1, "tid": 3, "ts": 0, "dur": 50},
            {"ph": "X", "cat": "mtia_runtime", "name": "launch", "pid": 9, "tid": 9, "ts": 0, "dur": 5},
            {"ph": "X", "cat": "python_function", "name": "on pid 2", "pid": 2, "tid": 1, "ts": 0, "dur": 5}
        ]"#;
        let trace = read(text.as_bytes()).unwrap();
        let names: Vec<&str> = trace
            .ranges
            .iter()
            .map(|r| trace.names.get(r.name))
            .collect();
        assert_eq!(names, ["launch"]);
    }

    #[test]
    fn gpu_event_names_are_kept_as_written() {
        let text = r#"[
            {"ph": "X", "cat": "gpu_memcpy", "name": "Memcpy HtoD (Host -> Device)", "pid": 0, "tid": 7, "ts": 0, "dur": 5},
            {"ph": "X", "cat": "gpu_memcpy", "name": "Memcpy DtoH (Device -> Host)", "pid": 0, "tid": 7, "ts": 10, "dur": 5},
            {"ph": "X", "cat": "gpu_memset", "name": "Memset (Host)", "pid": 0, "tid": 7, "ts": 20, "dur": 5},
            {"ph": "X", "cat": "cuda_sync", "name": "Device Sync", "pid": 0, "tid": 7, "ts": 30, "dur": 5}
        ]"#;
        let trace = read(text.as_bytes()).unwrap();
        let names: Vec<&str> = trace
            .memcpys
            .iter()
            .map(|m| m.name)
            .chain(trace.memsets.iter().map(|m| m.name))
            .chain(trace.syncs.iter().map(|s| s.name))
            .map(|id| trace.names.get(id.unwrap()))
            .collect();
        assert_eq!(
            names,
            [
                "Memcpy HtoD (Host -> Device)",
                "Memcpy DtoH (Device -> Host)",
                "Memset (Host)",
                "Device Sync"
            ]
        );
        assert_eq!(
            (
                trace.memcpys[0].kind,
                trace.memcpys[0].src_kind,
                trace.memcpys[0].dst_kind
            ),
            (CopyKind::HtoD, MemoryKind::Unknown, MemoryKind::Device)
        );
    }

    #[test]
    fn missing_file_is_an_open_error() {
        let error = read_trace(Path::new("/nonexistent/trace.json")).unwrap_err();
        assert!(matches!(error.kind(), ReadErrorKind::Open(_)));
        assert_eq!(error.path(), Path::new("/nonexistent/trace.json"));
        assert!(
            error
                .to_string()
                .starts_with("/nonexistent/trace.json: cannot open: "),
            "{error}"
        );
    }

    /// xorshift: reproducible bytes without a dependency.
    fn noise(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    #[test]
    fn random_and_mutated_inputs_never_panic() {
        let mut seed = 0x9e37_79b9_7f4a_7c15;
        let valid = object_trace("").into_bytes();
        let alphabet = b"{}[]\",:0123456789.-eE \\tnrufalsX";
        for round in 0..2000 {
            let bytes: Vec<u8> = if round % 2 == 0 {
                let len = (noise(&mut seed) % 300) as usize;
                (0..len)
                    .map(|_| {
                        let r = noise(&mut seed);
                        if r % 4 == 0 {
                            r as u8
                        } else {
                            alphabet[(r >> 8) as usize % alphabet.len()]
                        }
                    })
                    .collect()
            } else {
                let mut bytes = valid.clone();
                for _ in 0..1 + noise(&mut seed) % 4 {
                    let at = (noise(&mut seed) as usize) % bytes.len();
                    bytes[at] = alphabet[(noise(&mut seed) as usize) % alphabet.len()];
                }
                bytes
            };
            let _ = read(&bytes);
            let _ = read(&gzip(&[&bytes]));
        }
    }

    #[test]
    fn worker_names_come_from_torch_file_names() {
        assert_eq!(
            worker_name(Path::new("/t/node_12.1718000000000000000.pt.trace.json.gz")),
            "node_12"
        );
        assert_eq!(worker_name(Path::new("alexnet.json.gz")), "alexnet");
        assert_eq!(worker_name(Path::new("a.b.json")), "a.b");
        assert_eq!(worker_name(Path::new("trace")), "trace");
    }
}
