//! The trace writer: one [`Trace`] to one Kineto-compatible Chrome trace file
//! (`<worker>.<unix_ns>.pt.trace.json.gz`), in the exact format of `docs/formats.md` §1.
//!
//! Writing is streamed and parallel. The events are first planned ([`plan`]):
//! every `X` event becomes a small record pointing into the trace, sorted by track,
//! put on lanes so that no two slices of a track partially overlap, and marked
//! where an `ac2g` flow starts or ends. The sorted records are cut into chunks;
//! rayon serializes each chunk to JSON text and compresses it into a gzip member of
//! its own; the members are written in order to a temporary file in the target
//! directory, which is renamed over the target only when complete. Concatenated
//! gzip members form one valid gzip stream (RFC 1952), which every reader we target
//! decodes whole; each member's header records its length ([`crate::member_length`]),
//! so that cutrace's reader inflates them on every core.
//!
//! Besides Kineto's top-level keys the file carries `dropped_records`,
//! `refused_buffers`, `unknown_records`, `incomplete_records`, `window`, `iterations`
//! (numbers of the recorded iterations) and `tracer_version`, between `host_name` and `distributedInfo`.

mod events;
mod json;
mod lanes;
mod occupancy;
mod packed;
mod plan;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::{Condvar, Mutex, PoisonError};

use cutrace_tracer::Trace;
use flate2::{Compress, Compression};

use crate::{ExportError, member_length, write_output};
use events::Serializer;
use plan::{Plan, Track};

/// How the file's bytes are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Gzip members at this level (0–9). Level 1, the default, is the fastest
    /// that compresses; trace text still shrinks about sixteenfold.
    Gzip {
        /// Compression level, 0 to 9.
        level: u32,
    },
    /// Uncompressed JSON (for measuring, or for tools that want plain text).
    Plain,
}

/// Tuning knobs of [`write_trace_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOptions {
    /// Encoding of the file.
    pub encoding: Encoding,
    /// `X` events per chunk (one gzip member each).
    pub chunk_events: usize,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            encoding: Encoding::Gzip { level: 1 },
            // About a megabyte of text a member: small enough that the members a
            // reader inflates ahead cost little memory, large enough that gzip
            // loses nothing to restarting its dictionary.
            chunk_events: 2048,
        }
    }
}

/// Most chunks encoded ahead of the file: with the default chunks, some 16 MB of
/// text however many threads rayon has.
const MAX_AHEAD: usize = 16;

/// What [`write_trace`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteStats {
    /// Events in `traceEvents` (metadata, slices and flow endpoints).
    pub events: usize,
    /// Size of the JSON text, bytes.
    pub bytes_uncompressed: u64,
    /// Size of the file, bytes.
    pub bytes_written: u64,
    /// Synthetic lanes added to keep overlapping slices apart.
    pub extra_lanes: usize,
    /// Slices left out because they overlapped more than a track's lanes can hold.
    pub dropped_slices: usize,
}

/// The file name torch's `tensorboard_trace_handler` gives a trace:
/// `<worker_name>.<unix_time_ns>.pt.trace.json.gz`.
pub fn trace_file_name(worker_name: &str, unix_time_ns: u128) -> Result<String, ExportError> {
    let refuse = |reason| ExportError::InvalidWorkerName {
        name: worker_name.to_owned(),
        reason,
    };
    if worker_name.is_empty() {
        return Err(refuse("it is empty"));
    }
    if worker_name == "." || worker_name == ".." {
        return Err(refuse("it names a directory"));
    }
    if worker_name.contains(['/', '\\']) {
        return Err(refuse("it contains a path separator"));
    }
    if worker_name.chars().any(char::is_control) {
        return Err(refuse("it contains a control character"));
    }
    Ok(format!("{worker_name}.{unix_time_ns}.pt.trace.json.gz"))
}

/// Writes `trace` to `path` as gzip Kineto JSON with the default options.
pub fn write_trace(trace: &Trace, path: &Path) -> Result<WriteStats, ExportError> {
    write_trace_with(trace, path, &WriteOptions::default())
}

/// Writes `trace` to `path` as [`crate::write_output`] writes any output: whole
/// or not at all at a regular file (a link followed), as a stream to a FIFO or a
/// device, never over a directory.
pub fn write_trace_with(
    trace: &Trace,
    path: &Path,
    options: &WriteOptions,
) -> Result<WriteStats, ExportError> {
    let trace_name = path.to_string_lossy();
    write_output(path, |file| {
        write_trace_to(trace, file, &trace_name, options)
    })
}

/// Writes `trace` to `out` as a stream, with `trace_name` as its `traceName`.
pub fn write_trace_to(
    trace: &Trace,
    out: &mut (impl Write + Send),
    trace_name: &str,
    options: &WriteOptions,
) -> std::io::Result<WriteStats> {
    let plan = Plan::build(trace);
    let serializer = Serializer::new(trace, &plan);
    let mut stats = WriteStats {
        extra_lanes: plan.extra_lanes,
        dropped_slices: plan.dropped_slices,
        ..WriteStats::default()
    };

    let mut header = Vec::new();
    serializer.header(&mut header);
    let compressors = Pool::new();
    let encoded = encode(options.encoding, &header, &compressors)?;
    put(out, &mut stats, encoded, serializer.metadata_events())?;

    // Chunks are serialized and compressed on every thread, a few per thread ahead
    // of the file at most, so memory stays bounded while every thread keeps busy;
    // on a machine of many cores the lead stops growing, since writing must not
    // take a host process's memory with it.
    let chunks = cut_chunks(&plan.tracks, options.chunk_events.max(1));
    let first_in_file = serializer.metadata_events() == 0;
    let text_capacity = options.chunk_events.max(1) * 512;
    let buffers = Pool::new();
    let encode_chunk = |c: usize| {
        let slices = chunks[c].iter().flat_map(|piece| {
            plan.slices(trace, &plan.tracks[piece.track], piece.positions.clone())
        });
        let mut text = buffers.take(|| Vec::with_capacity(text_capacity));
        text.clear();
        let events = serializer.slices(slices, first_in_file && c == 0, &mut text);
        let encoded = encode(options.encoding, &text, &compressors);
        buffers.give_back(text);
        Ok((encoded?, events))
    };
    let ahead = (rayon::current_num_threads().max(1) * 4).min(MAX_AHEAD);
    let mut stats = InOrder::write(out, stats, chunks.len(), ahead, encode_chunk)?;

    let mut footer = Vec::new();
    serializer.footer(trace_name, &mut footer);
    let encoded = encode(options.encoding, &footer, &compressors)?;
    put(out, &mut stats, encoded, 0)?;
    Ok(stats)
}

/// Chunks encoded on every thread and written in file order: whichever thread
/// finishes the chunk the file waits for writes it and every later one already
/// done, so no thread waits for a whole wave of chunks or for the writes.
struct InOrder<'w, W> {
    out: &'w mut W,
    stats: WriteStats,
    /// Chunks handed out so far.
    taken: usize,
    /// Chunks written so far.
    written: usize,
    /// Chunks encoded ahead of the next one to write.
    ready: BTreeMap<usize, (Encoded, usize)>,
    /// The first error met; once set, no more chunks are handed out.
    failed: Option<std::io::Error>,
}

impl<'w, W: Write + Send> InOrder<'w, W> {
    /// Encodes chunks `0..count` with `encode` on rayon's threads, at most `ahead`
    /// (at least 1) past the last one written, and appends them to `out` in order.
    fn write(
        out: &'w mut W,
        stats: WriteStats,
        count: usize,
        ahead: usize,
        encode: impl Fn(usize) -> std::io::Result<(Encoded, usize)> + Sync,
    ) -> std::io::Result<WriteStats> {
        let state = Mutex::new(InOrder {
            out,
            stats,
            taken: 0,
            written: 0,
            ready: BTreeMap::new(),
            failed: None,
        });
        let behind = Condvar::new();
        rayon::scope(|scope| {
            for _ in 0..rayon::current_num_threads().clamp(1, ahead) {
                scope.spawn(|_| InOrder::work(&state, &behind, count, ahead, &encode));
            }
        });
        let state = state.into_inner().unwrap_or_else(PoisonError::into_inner);
        match state.failed {
            Some(e) => Err(e),
            None => Ok(state.stats),
        }
    }

    /// One thread's share: takes the next chunk, encodes it, writes what is ready,
    /// until every chunk is taken. A thread too far ahead waits for the chunk the
    /// file needs, which another thread is encoding at that moment.
    fn work(
        state: &Mutex<Self>,
        behind: &Condvar,
        count: usize,
        ahead: usize,
        encode: &(impl Fn(usize) -> std::io::Result<(Encoded, usize)> + Sync),
    ) {
        let lock = || state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            let chunk = {
                let mut s = lock();
                while s.failed.is_none() && s.taken < count && s.taken >= s.written + ahead {
                    s = behind.wait(s).unwrap_or_else(PoisonError::into_inner);
                }
                if s.failed.is_some() || s.taken == count {
                    return;
                }
                s.taken += 1;
                s.taken - 1
            };
            let part = encode(chunk);
            let mut s = lock();
            match part {
                Ok(part) => {
                    s.ready.insert(chunk, part);
                    s.write_ready();
                }
                Err(e) => s.failed = Some(e),
            }
            behind.notify_all();
        }
    }

    /// Appends the chunks that are next in the file and encoded.
    fn write_ready(&mut self) {
        while let Some((encoded, events)) = self.ready.remove(&self.written) {
            if let Err(e) = put(self.out, &mut self.stats, encoded, events) {
                self.failed = Some(e);
                return;
            }
            self.written += 1;
        }
    }
}

/// Consecutive slices of one track.
struct Piece {
    /// Index of the track in the plan.
    track: usize,
    /// Positions of the slices on it.
    positions: std::ops::Range<usize>,
}

/// Cuts the tracks' slices, in order, into chunks of `size` slices; a chunk holds
/// pieces of one or more tracks.
fn cut_chunks(tracks: &[Track], size: usize) -> Vec<Vec<Piece>> {
    let mut chunks = Vec::new();
    let mut current: Vec<Piece> = Vec::new();
    let mut len = 0;
    for (t, track) in tracks.iter().enumerate() {
        let mut from = 0;
        while from < track.len() {
            let to = track.len().min(from + size - len);
            current.push(Piece {
                track: t,
                positions: from..to,
            });
            len += to - from;
            from = to;
            if len == size {
                chunks.push(std::mem::take(&mut current));
                len = 0;
            }
        }
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

/// Text buffers and compressors reused from chunk to chunk: fresh ones (buffers
/// of a megabyte, compressors of half a megabyte of tables) would cost page faults
/// and regrowth copies on every chunk.
struct Pool<T> {
    free: std::sync::Mutex<Vec<T>>,
}

impl<T> Pool<T> {
    fn new() -> Self {
        Pool {
            free: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// One of the pool's, or a new one from `make`.
    fn take(&self, make: impl FnOnce() -> T) -> T {
        let reused = self.free.lock().map(|mut f| f.pop()).unwrap_or(None);
        reused.unwrap_or_else(make)
    }

    /// Returns `item` for a later chunk.
    fn give_back(&self, item: T) {
        if let Ok(mut free) = self.free.lock() {
            free.push(item);
        }
    }
}

/// One encoded chunk.
struct Encoded {
    /// Length of the text before encoding.
    raw_len: u64,
    /// The bytes to write.
    bytes: Vec<u8>,
}

/// Appends one encoded chunk of `events` events to the file.
fn put(
    file: &mut impl Write,
    stats: &mut WriteStats,
    encoded: Encoded,
    events: usize,
) -> std::io::Result<()> {
    file.write_all(&encoded.bytes)?;
    stats.events += events;
    stats.bytes_uncompressed += encoded.raw_len;
    stats.bytes_written += encoded.bytes.len() as u64;
    Ok(())
}

fn encode(
    encoding: Encoding,
    text: &[u8],
    compressors: &Pool<Compress>,
) -> std::io::Result<Encoded> {
    let raw_len = text.len() as u64;
    let bytes = match encoding {
        Encoding::Plain => text.to_vec(),
        Encoding::Gzip { level } => {
            let level = Compression::new(level.min(9));
            let mut deflate = compressors.take(|| member_length::compressor(level));
            let member = member_length::member(&mut deflate, level, text);
            compressors.give_back(deflate);
            member?
        }
    };
    Ok(Encoded { raw_len, bytes })
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::time::Duration;

    use super::*;

    fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
    }

    /// Chunk `c` as its own bytes.
    fn chunk(c: usize) -> (Encoded, usize) {
        let bytes = format!("<{c}>").into_bytes();
        let encoded = Encoded {
            raw_len: bytes.len() as u64,
            bytes,
        };
        (encoded, 1)
    }

    fn chunks(range: std::ops::Range<usize>) -> String {
        range.map(|c| format!("<{c}>")).collect()
    }

    /// Collects what is written and counts the chunks, each of which ends in `>`.
    struct Counting<'a> {
        bytes: Vec<u8>,
        chunks: &'a AtomicUsize,
    }

    impl Write for Counting<'_> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.bytes.extend_from_slice(buf);
            let ends = buf.iter().filter(|&&b| b == b'>').count();
            self.chunks.fetch_add(ends, SeqCst);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn chunks_encoded_on_many_threads_are_written_in_order_never_far_ahead() {
        let (written, lead) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let mut out = Counting {
            bytes: Vec::new(),
            chunks: &written,
        };
        let stats = pool(4).install(|| {
            InOrder::write(&mut out, WriteStats::default(), 300, 3, |c| {
                lead.fetch_max(c + 1 - written.load(SeqCst).min(c + 1), SeqCst);
                // Now and then a chunk takes longer than the ones after it.
                std::thread::sleep(Duration::from_micros((c % 7 * 40) as u64));
                Ok(chunk(c))
            })
        });
        let stats = stats.unwrap();
        assert_eq!(String::from_utf8(out.bytes).unwrap(), chunks(0..300));
        assert_eq!(stats.events, 300);
        assert_eq!(stats.bytes_written, chunks(0..300).len() as u64);
        // A chunk is begun only while fewer than 3 are begun and not yet written.
        assert!(lead.load(SeqCst) <= 3, "{} chunks ahead", lead.load(SeqCst));
    }

    #[test]
    fn the_first_error_stops_the_chunks_and_is_returned() {
        let mut out = Vec::new();
        let failed = pool(3).install(|| {
            InOrder::write(&mut out, WriteStats::default(), 200, 4, |c| {
                if c == 50 {
                    return Err(io::Error::other("chunk 50 failed"));
                }
                Ok(chunk(c))
            })
        });
        assert_eq!(failed.unwrap_err().to_string(), "chunk 50 failed");
        // What was written is the chunks before the failed one, in order.
        let written = String::from_utf8(out).unwrap();
        let whole = (0..=50).find(|&k| chunks(0..k) == written);
        assert!(whole.is_some(), "{written}");

        /// Takes `room` bytes, then fails.
        struct Full {
            room: usize,
        }
        impl Write for Full {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                if buf.len() > self.room {
                    return Err(io::Error::other("disk full"));
                }
                self.room -= buf.len();
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut full = Full { room: 100 };
        let failed = pool(2)
            .install(|| InOrder::write(&mut full, WriteStats::default(), 200, 4, |c| Ok(chunk(c))));
        assert_eq!(failed.unwrap_err().to_string(), "disk full");
    }
}
