//! Reading on every core: one thread decompresses the input and frames its JSON
//! into batches of events; rayon's pool parses the events of each batch in
//! parallel; the calling thread builds the trace from them in file order, batch `n`
//! while batch `n + 1` is parsed. Parsing is about half the work of a read and
//! building a tenth, so the parse is what is spread.
//!
//! The framing side hands over events in batches of about half a megabyte, in file
//! order, through a bounded queue, and gets their buffers back for the next ones, so
//! memory stays bounded however large the file.

use std::io::{self, BufRead};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::thread;

use rayon::prelude::*;

use super::ReadErrorKind;
use super::build::{Builder, Refused};
use super::event::Parsed;
use super::scan::Scanner;
use crate::memory;

/// Bytes of events gathered before a batch is handed over: enough for a few
/// tasks of the pool each; a megabyte held 15 MiB more at the peak of a
/// 100,000-launch report, for no time gained.
pub(crate) const BATCH_BYTES: usize = 1 << 19;
/// Batches in flight between the threads.
const QUEUE_DEPTH: usize = 4;
/// Events one parsing task takes at least: fewer would cost more in handing out
/// than in parsing.
const EVENTS_PER_TASK: usize = 256;

/// Where one event of a batch ends, and where it came from.
struct EventSpan {
    index: u64,
    offset: u64,
    end: usize,
}

/// Consecutive events, their bytes back to back.
#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    events: Vec<EventSpan>,
}

impl Batch {
    /// The bytes of event `i`.
    fn event(&self, i: usize) -> &[u8] {
        let start = i.checked_sub(1).map_or(0, |before| self.events[before].end);
        &self.bytes[start..self.events[i].end]
    }
}

/// The events of a batch, as parsed.
type ParsedEvents<'a> = Vec<Parsed<'a>>;

self_cell::self_cell!(
    /// A batch with its events parsed, borrowing from its bytes.
    struct ParsedBatch {
        owner: Batch,
        #[covariant]
        dependent: ParsedEvents,
    }
);

impl ParsedBatch {
    /// Parses the events of `batch` on rayon's pool, or on this thread alone.
    fn parse(batch: Batch, in_parallel: bool) -> Self {
        ParsedBatch::new(batch, |batch| {
            let events = 0..batch.events.len();
            if in_parallel {
                events
                    .into_par_iter()
                    .with_min_len(EVENTS_PER_TASK)
                    .map(|i| Parsed::of(batch.event(i)))
                    .collect()
            } else {
                events.map(|i| Parsed::of(batch.event(i))).collect()
            }
        })
    }

    /// Hands the events to `builder` in order, then the batch's buffers to `spare`.
    fn build(self, builder: &mut Builder, spare: &Sender<Batch>) -> Result<(), ReadErrorKind> {
        self.with_dependent(|batch, parsed| {
            for (span, event) in batch.events.iter().zip(parsed) {
                builder.take(event).map_err(|refused| match refused {
                    Refused::Malformed(message) => ReadErrorKind::Event {
                        index: span.index,
                        offset: span.offset,
                        message,
                    },
                    Refused::Unfoldable => ReadErrorKind::Unfoldable,
                })?;
            }
            Ok::<_, ReadErrorKind>(())
        })?;
        memory::check().map_err(ReadErrorKind::Memory)?;
        // The framing side may be gone already; the buffers are then dropped.
        let _ = spare.send(self.into_owner());
        Ok(())
    }
}

enum Message {
    Events(Batch),
    TopLevel(String, Vec<u8>),
    /// A top-level key whose value the model has no place for.
    Skipped(String),
}

/// The framing side's end of the queue.
pub(crate) struct Producer {
    queue: SyncSender<Message>,
    batch: Batch,
    /// Batches the parsing side is done with, whose buffers are reused: fresh
    /// buffers would cost page faults and regrowth copies every time.
    spare: Receiver<Batch>,
}

impl Producer {
    /// Reads the next value of `scanner` as event `index`, which starts at `offset`.
    pub(crate) fn event<R: BufRead>(
        &mut self,
        scanner: &mut Scanner<R>,
        index: u64,
        offset: u64,
    ) -> Result<(), ReadErrorKind> {
        scanner.value(Some(&mut self.batch.bytes))?;
        memory::check().map_err(ReadErrorKind::Memory)?;
        self.batch.events.push(EventSpan {
            index,
            offset,
            end: self.batch.bytes.len(),
        });
        if self.batch.bytes.len() >= BATCH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Hands over the value of a wanted top-level key, after the events before it.
    pub(crate) fn top_level(&mut self, key: String, json: Vec<u8>) -> Result<(), ReadErrorKind> {
        self.flush()?;
        self.send(Message::TopLevel(key, json))
    }

    /// Tells the parsing side that the top-level key `key` was skipped.
    pub(crate) fn skipped(&mut self, key: String) -> Result<(), ReadErrorKind> {
        self.send(Message::Skipped(key))
    }

    fn flush(&mut self) -> Result<(), ReadErrorKind> {
        if self.batch.events.is_empty() {
            return Ok(());
        }
        let mut next = self.spare.try_recv().unwrap_or_default();
        next.bytes.clear();
        next.events.clear();
        let batch = std::mem::replace(&mut self.batch, next);
        self.send(Message::Events(batch))
    }

    fn send(&self, message: Message) -> Result<(), ReadErrorKind> {
        // The parsing side stops listening only when it has failed; its error is
        // the one reported, so this one only has to stop the framing.
        self.queue.send(message).map_err(|_| ReadErrorKind::Read {
            gzip: false,
            source: io::Error::other("parsing stopped"),
        })
    }
}

/// Runs `frame` over `scanner` on a thread of its own while the calling thread
/// parses what it finds into `builder`. The first error in file order wins; on
/// success, the number of strings the scanner cut.
pub(crate) fn read_framed<R, F>(
    mut scanner: Scanner<R>,
    builder: &mut Builder,
    frame: F,
) -> Result<u64, ReadErrorKind>
where
    R: BufRead + Send,
    F: FnOnce(&mut Scanner<R>, &mut Producer) -> Result<(), ReadErrorKind> + Send,
{
    let (queue, received) = mpsc::sync_channel(QUEUE_DEPTH);
    let (give_back, spare) = mpsc::channel();
    thread::scope(|scope| {
        let framing = scope.spawn(move || {
            let mut producer = Producer {
                queue,
                batch: Batch::default(),
                spare,
            };
            frame(&mut scanner, &mut producer)?;
            producer.flush()?;
            Ok(scanner.cut_strings())
        });
        // Consuming drops the receiver, which releases a framing thread blocked on
        // a full queue.
        let parsed = consume(received, builder, &give_back);
        let framed = framing.join().unwrap_or_else(|_| {
            Err(ReadErrorKind::Read {
                gzip: false,
                source: io::Error::other("the reading thread failed"),
            })
        });
        // Events are parsed only up to where framing stopped: a parse error lies
        // before any framing error.
        parsed.and(framed)
    })
}

/// Whether this thread is one of rayon's: a read among others read side by side.
pub(crate) fn within_pool() -> bool {
    rayon::current_thread_index().is_some()
}

/// Builds what arrives in order, each batch while the next one is parsed (on
/// rayon's pool, unless this read is itself one task of the pool).
fn consume(
    received: Receiver<Message>,
    builder: &mut Builder,
    spare: &Sender<Batch>,
) -> Result<(), ReadErrorKind> {
    let mut parsed: Option<ParsedBatch> = None;
    let build = |parsed: Option<ParsedBatch>, builder: &mut Builder| {
        parsed.map_or(Ok(()), |batch| batch.build(builder, spare))
    };
    for message in received {
        match message {
            Message::Events(batch) if within_pool() => {
                // One read per core already (many traces at once): more threads
                // would only cost memory and switching.
                build(parsed.take(), builder)?;
                parsed = Some(ParsedBatch::parse(batch, false));
            }
            Message::Events(batch) => {
                let before = parsed.take();
                let (built, next) = rayon::join(
                    || build(before, builder),
                    || ParsedBatch::parse(batch, true),
                );
                built?;
                parsed = Some(next);
            }
            Message::TopLevel(key, json) => {
                build(parsed.take(), builder)?;
                builder
                    .top_level(&key, &json)
                    .map_err(|message| ReadErrorKind::Field { key, message })?;
            }
            Message::Skipped(key) => {
                build(parsed.take(), builder)?;
                builder.skipped_key(key);
            }
        }
    }
    build(parsed, builder)
}
