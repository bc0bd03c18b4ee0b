//! Reads a Kineto/Chrome trace file back into a [`Trace`]: what `cutrace report`
//! runs on, for cutrace's own files and for those torch.profiler wrote.
//!
//! Accepted: gzip (recognised by its magic bytes, several members read as one
//! stream) or plain JSON; the object format (`{"traceEvents": [...]}`) or the bare
//! array; numbers written as strings; string pids and tids; relative times with
//! `baseTimeNanoseconds` or absolute ones without; trailing commas; an array-format
//! file cut before its closing `]`, as a crashed tracer leaves it. Everything else is
//! a [`ReadError`] naming the file and the problem.
//!
//! Events are cut out of the decompressed stream one at a time ([`scan`]) and each
//! is deserialized borrowing from its bytes ([`event`]), so memory holds the model,
//! not the file.

mod build;
mod event;
mod gpu_names;
mod scan;

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use cutrace_tracer::Trace;
use flate2::bufread::MultiGzDecoder;

use build::Builder;
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
        }
    }
}

/// Reads the trace file at `path` into a [`Trace`] with absolute times.
///
/// Without `baseTimeNanoseconds` the file's times are taken as absolute and the base
/// becomes the earliest event time, rounded down to the microsecond.
pub fn read_trace(path: &Path) -> Result<Trace, ReadError> {
    let file = File::open(path).map_err(|e| ReadError {
        path: path.to_owned(),
        kind: ReadErrorKind::Open(e),
    })?;
    read_trace_from(file, path)
}

/// Reads a trace from `input`; `path` names it in errors and gives the worker name.
pub fn read_trace_from(mut input: impl Read, path: &Path) -> Result<Trace, ReadError> {
    let error = |kind| ReadError {
        path: path.to_owned(),
        kind,
    };
    let mut magic = [0u8; GZIP_MAGIC.len()];
    let got = read_up_to(&mut input, &mut magic).map_err(|source| {
        error(ReadErrorKind::Read {
            gzip: false,
            source,
        })
    })?;
    let gzip = magic[..got] == GZIP_MAGIC;
    let input = BufReader::with_capacity(
        BUFFER_SIZE,
        io::Cursor::new(magic[..got].to_vec()).chain(input),
    );
    let mut builder = Builder::new(worker_name(path));
    let parsed = if gzip {
        let decoder = BufReader::with_capacity(BUFFER_SIZE, MultiGzDecoder::new(input));
        parse(&mut Scanner::new(decoder), &mut builder)
    } else {
        parse(&mut Scanner::new(input), &mut builder)
    };
    parsed.map_err(|kind| match kind {
        ReadErrorKind::Read { source, .. } => error(ReadErrorKind::Read { gzip, source }),
        kind => error(kind),
    })?;
    Ok(builder.finish())
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

fn parse<R: BufRead>(scanner: &mut Scanner<R>, builder: &mut Builder) -> Result<(), ReadErrorKind> {
    match scanner.peek()? {
        None => return Err(ReadErrorKind::Empty),
        Some(b'{') => parse_object(scanner, builder)?,
        Some(b'[') => parse_events(scanner, builder, Format::Array)?,
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

fn parse_object<R: BufRead>(
    scanner: &mut Scanner<R>,
    builder: &mut Builder,
) -> Result<(), ReadErrorKind> {
    scanner.bump();
    let mut buf = Vec::new();
    loop {
        match scanner.peek()? {
            Some(b'}') => {
                scanner.bump();
                return Ok(());
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
            parse_events(scanner, builder, Format::Object)?;
        } else if Builder::wants(&key) {
            buf.clear();
            scanner.value(Some(&mut buf))?;
            builder
                .top_level(&key, &buf)
                .map_err(|message| ReadErrorKind::Field { key, message })?;
        } else {
            scanner.value(None)?;
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

fn parse_events<R: BufRead>(
    scanner: &mut Scanner<R>,
    builder: &mut Builder,
    format: Format,
) -> Result<(), ReadErrorKind> {
    scanner.expect(b'[', "'[' opening traceEvents")?;
    // The end of the input where the array would go on is its missing `]` for the
    // array format (a tracer that died), and a truncated file for the object format.
    let end_of_input = |offset| match format {
        Format::Array => Ok(()),
        Format::Object => Err(ReadErrorKind::Truncated { offset }),
    };
    let mut buf = Vec::with_capacity(4096);
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
        buf.clear();
        scanner.value(Some(&mut buf))?;
        builder
            .event(&buf)
            .map_err(|message| ReadErrorKind::Event {
                index,
                offset,
                message,
            })?;
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
