//! Reading on two threads: one decompresses the input and frames its JSON, the
//! calling thread parses each event and builds the trace. Decompression and framing
//! are about a third of the work; overlapping them with the rest shortens a read by
//! as much.
//!
//! The framing side hands over events in batches of about a megabyte, in file order,
//! through a bounded queue, so memory stays bounded however large the file.

use std::io::{self, BufRead};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread;

use super::ReadErrorKind;
use super::build::Builder;
use super::scan::Scanner;
use crate::memory;

/// Bytes of events gathered before a batch is handed over.
pub(crate) const BATCH_BYTES: usize = 1 << 20;
/// Batches in flight between the threads.
const QUEUE_DEPTH: usize = 4;

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
        let batch = std::mem::take(&mut self.batch);
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
    thread::scope(|scope| {
        let framing = scope.spawn(move || {
            let mut producer = Producer {
                queue,
                batch: Batch::default(),
            };
            frame(&mut scanner, &mut producer)?;
            producer.flush()?;
            Ok(scanner.cut_strings())
        });
        // Consuming drops the receiver, which releases a framing thread blocked on
        // a full queue.
        let parsed = consume(received, builder);
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

fn consume(received: Receiver<Message>, builder: &mut Builder) -> Result<(), ReadErrorKind> {
    for message in received {
        match message {
            Message::Events(batch) => {
                let mut start = 0;
                for span in batch.events {
                    builder
                        .event(&batch.bytes[start..span.end])
                        .map_err(|message| ReadErrorKind::Event {
                            index: span.index,
                            offset: span.offset,
                            message,
                        })?;
                    start = span.end;
                }
                memory::check().map_err(ReadErrorKind::Memory)?;
            }
            Message::TopLevel(key, json) => builder
                .top_level(&key, &json)
                .map_err(|message| ReadErrorKind::Field { key, message })?,
            Message::Skipped(key) => builder.skipped_key(key),
        }
    }
    Ok(())
}
