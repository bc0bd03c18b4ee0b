//! cutrace's own gzip files inflated on every core: their members record their
//! lengths ([`crate::member_length`]), so the input is cut into whole members as it
//! is read, threads of this read inflate several at once, and the text comes out in
//! order. A member without a recorded length (a file another writer appended to, a
//! truncated one), or one that does not inflate as its length says (a corrupt
//! one), sends the rest of the input from that member on down the sequential
//! decoder, which reads, or fails on, exactly what it would have from the start:
//! the text and the errors are those of a sequential read.
//!
//! The inflating threads are plain threads of this read, not rayon's: the read
//! itself may run on rayon's pool (`cutrace report DIR`), where a task waiting on
//! other tasks of the pool could wait for ever.

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::thread;

use flate2::bufread::{GzDecoder, MultiGzDecoder};

use crate::member_length;

/// Longest member taken whole: cutrace writes members of a few hundred kilobytes,
/// so a longer recorded length is not cutrace's and goes down the sequential path.
const MAX_MEMBER: usize = 64 << 20;
/// Most inflating threads for one read.
const MAX_THREADS: usize = 16;

/// A member to inflate, a buffer for its text, and where both go back.
type Job = (Vec<u8>, Vec<u8>, SyncSender<Inflated>);

/// A member, and its text or why it has none.
type Inflated = (Vec<u8>, io::Result<Vec<u8>>);

/// Runs `body` over the text of `input`, a gzip file whose first member records
/// its length, inflating its members on threads of their own.
pub(crate) fn inflated<R, T>(input: R, body: impl FnOnce(Members<R>) -> T) -> T
where
    R: BufRead + Send,
{
    let threads = thread::available_parallelism()
        .map_or(1, NonZeroUsize::get)
        .min(MAX_THREADS);
    let (jobs, queue) = mpsc::channel::<Job>();
    let queue = Mutex::new(queue);
    thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| inflate_jobs(&queue));
        }
        // `body` drops the members, and with them the job queue's sender, before
        // the scope waits for the threads, which then find the queue closed.
        body(Members {
            input: Some(input),
            jobs,
            in_flight: VecDeque::new(),
            depth: threads + 1,
            spare: Vec::new(),
            text: Cursor::new(Vec::new()),
            unindexed: None,
            rest: None,
        })
    })
}

fn inflate_jobs(queue: &Mutex<Receiver<Job>>) {
    loop {
        let job = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        let Ok((member, buffer, back)) = job else {
            return;
        };
        let inflated = inflate(&member, buffer);
        // The reader may have stopped; then nobody wants the text.
        let _ = back.send((member, inflated));
    }
}

/// The text of one whole member, in `text`'s buffer.
fn inflate(member: &[u8], mut text: Vec<u8>) -> io::Result<Vec<u8>> {
    // The member's last four bytes are its text's length (modulo 2^32).
    let size = member
        .len()
        .checked_sub(4)
        .and_then(|at| member.get(at..))
        .and_then(|tail| <[u8; 4]>::try_from(tail).ok())
        .map_or(0, u32::from_le_bytes);
    text.clear();
    text.reserve(usize::try_from(size).unwrap_or(0).min(4 * MAX_MEMBER));
    let mut decoder = GzDecoder::new(member);
    decoder.read_to_end(&mut text)?;
    if !decoder.into_inner().is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "a gzip member is longer than its header says",
        ));
    }
    Ok(text)
}

/// The sequential decoder over the rest of the input, from the member at hand.
type Sequential<R> = BufReader<MultiGzDecoder<io::Chain<Cursor<Vec<u8>>, R>>>;

/// The text of a gzip input, its members inflated ahead on other threads.
pub(crate) struct Members<R> {
    /// What is left of the input, until it goes to `rest`.
    input: Option<R>,
    jobs: Sender<Job>,
    /// Members being inflated, in file order.
    in_flight: VecDeque<Receiver<Inflated>>,
    /// Members kept in flight.
    depth: usize,
    /// Text buffers read out, for the next members: reused, they cost no page
    /// faults and stay in one place rather than in every thread's heap.
    spare: Vec<Vec<u8>>,
    /// The text being read out.
    text: Cursor<Vec<u8>>,
    /// The start of a member without a recorded length, read from the input and
    /// left for the sequential decoder once the members before it are out.
    unindexed: Option<Vec<u8>>,
    /// The sequential decoder, once it takes over.
    rest: Option<Sequential<R>>,
}

impl<R: BufRead + Send> Members<R> {
    /// Sends members to be inflated until `depth` are in flight or the members
    /// with lengths end.
    fn send_ahead(&mut self) -> io::Result<()> {
        while self.in_flight.len() < self.depth {
            let Some(member) = self.next_member()? else {
                return Ok(());
            };
            let (text, received) = mpsc::sync_channel(1);
            let buffer = self.spare.pop().unwrap_or_default();
            self.jobs
                .send((member, buffer, text))
                .map_err(|_| io::Error::other("the inflating threads stopped"))?;
            self.in_flight.push_back(received);
        }
        Ok(())
    }

    /// The next whole member with a recorded length; `None` at the end of the
    /// input or where the sequential decoder takes over.
    fn next_member(&mut self) -> io::Result<Option<Vec<u8>>> {
        let Some(input) = self.input.as_mut().filter(|_| self.unindexed.is_none()) else {
            return Ok(None);
        };
        let mut member = Vec::with_capacity(member_length::HEADER_LEN);
        input
            .by_ref()
            .take(member_length::HEADER_LEN as u64)
            .read_to_end(&mut member)?;
        if member.is_empty() {
            return Ok(None);
        }
        if let Some(len) = member_length::read(&member).filter(|&len| len <= MAX_MEMBER) {
            input
                .by_ref()
                .take((len - member.len()) as u64)
                .read_to_end(&mut member)?;
            if member.len() == len {
                return Ok(Some(member));
            }
        }
        self.unindexed = Some(member);
        Ok(None)
    }

    /// Reads the rest of the input, from `members`, with the sequential decoder.
    fn go_sequential(&mut self, members: Vec<u8>) {
        self.rest = self
            .input
            .take()
            .map(|input| BufReader::new(MultiGzDecoder::new(Cursor::new(members).chain(input))));
    }

    /// The text of the next member in flight, or `None` where the sequential
    /// decoder takes over from it.
    fn next_text(&mut self, received: &Receiver<Inflated>) -> io::Result<Option<Vec<u8>>> {
        let stopped = || io::Error::other("an inflating thread failed");
        let (member, text) = received.recv().map_err(|_| stopped())?;
        if let Ok(text) = text {
            return Ok(Some(text));
        }
        let mut members = member;
        while let Some(received) = self.in_flight.pop_front() {
            members.extend(received.recv().map_err(|_| stopped())?.0);
        }
        members.extend(self.unindexed.take().unwrap_or_default());
        self.go_sequential(members);
        Ok(None)
    }
}

impl<R: BufRead + Send> Read for Members<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let text = self.fill_buf()?;
        let n = text.len().min(buf.len());
        buf[..n].copy_from_slice(&text[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead + Send> BufRead for Members<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.text.position() as usize >= self.text.get_ref().len() {
            if self.rest.is_none() {
                self.send_ahead()?;
            }
            let text = match self.in_flight.pop_front() {
                Some(received) => self.next_text(&received)?,
                None => {
                    if let Some(member) = self.unindexed.take() {
                        self.go_sequential(member);
                    }
                    None
                }
            };
            match text {
                Some(text) => {
                    let done = std::mem::replace(&mut self.text, Cursor::new(text));
                    self.spare.push(done.into_inner());
                }
                None => match self.rest.as_mut() {
                    Some(rest) => return rest.fill_buf(),
                    None => return Ok(&[]),
                },
            }
        }
        self.text.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        if self.text.position() as usize >= self.text.get_ref().len() {
            if let Some(rest) = self.rest.as_mut() {
                rest.consume(n);
                return;
            }
        }
        self.text.consume(n);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::GzEncoder;

    use super::*;

    fn ours(text: &[u8]) -> Vec<u8> {
        let fast = Compression::fast();
        member_length::member(&mut member_length::compressor(fast), fast, text).unwrap()
    }

    fn theirs(text: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        encoder.write_all(text).unwrap();
        encoder.finish().unwrap()
    }

    fn in_parallel(file: &[u8]) -> io::Result<Vec<u8>> {
        inflated(file, |mut members| {
            let mut text = Vec::new();
            members.read_to_end(&mut text).map(|_| text)
        })
    }

    fn in_sequence(file: &[u8]) -> io::Result<Vec<u8>> {
        let mut text = Vec::new();
        MultiGzDecoder::new(file)
            .read_to_end(&mut text)
            .map(|_| text)
    }

    /// Members of varied sizes, some empty, more than are ever in flight.
    fn texts() -> Vec<Vec<u8>> {
        (0..100)
            .map(|i| {
                format!("{{\"i\": {i}}}, ")
                    .repeat(i * 37 % 500)
                    .into_bytes()
            })
            .collect()
    }

    #[test]
    fn members_read_in_parallel_give_the_sequential_text() {
        let texts = texts();
        let file: Vec<u8> = texts.iter().flat_map(|t| ours(t)).collect();
        let text = in_parallel(&file).unwrap();
        assert!(text == texts.concat());
        assert!(text == in_sequence(&file).unwrap());
    }

    #[test]
    fn a_member_without_a_length_sends_the_rest_down_the_sequential_path() {
        let texts = texts();
        let mut file: Vec<u8> = texts[..50].iter().flat_map(|t| ours(t)).collect();
        file.extend(theirs(&texts[50]));
        file.extend(texts[51..].iter().flat_map(|t| ours(t)));
        assert!(in_parallel(&file).unwrap() == texts.concat());
    }

    #[test]
    fn damaged_files_fail_as_they_do_in_sequence() {
        let texts = texts();
        let file: Vec<u8> = texts.iter().flat_map(|t| ours(t)).collect();
        let second = member_length::read(&file).unwrap();
        let mut damaged = Vec::new();
        // Cut inside a member, inside a header, and after the magic bytes.
        for cut in [file.len() / 2, second + 5, second + 2] {
            damaged.push(file[..cut].to_vec());
        }
        // Deflate data turned to garbage, and a length that says too much or too
        // little.
        let mut garbage = file.clone();
        garbage[second + 30..second + 38].copy_from_slice(b"garbage!");
        damaged.push(garbage);
        for wrong in [second as u32 + 7, second as u32 - 7, 20] {
            let mut lying = file.clone();
            lying[16..20].copy_from_slice(&wrong.to_le_bytes());
            damaged.push(lying);
        }
        // Trailing bytes that are no gzip member.
        damaged.push([file.clone(), b"trailing".to_vec()].concat());
        for (i, file) in damaged.iter().enumerate() {
            let parallel = in_parallel(file);
            let sequential = in_sequence(file);
            assert_eq!(parallel.is_err(), sequential.is_err(), "case {i}");
            if let (Ok(parallel), Ok(sequential)) = (parallel, sequential) {
                assert!(parallel == sequential, "case {i}: the texts differ");
            }
        }
    }
}
