//! A track's events as packed ids: about a byte an event instead of four.
//!
//! An id is a kind's slot and an index into that kind's events. On a track,
//! consecutive events are mostly of one kind and close in index (a stream's
//! kernels, a thread's calls), so each index is kept as the difference from the last
//! index of its kind, zigzag-coded, in a LEB128 varint whose low bit tells a
//! difference from a switch to another kind. Every [`BLOCK`] events (and where
//! one list is appended to another) the differences start afresh, so a chunk of
//! the track is read from the block it starts in.

use integer_encoding::VarInt;

/// Events between fresh starts: reading from a position first decodes at most
/// this many before it.
const BLOCK: usize = 1024;

/// Kind slots an id may name.
pub(crate) const SLOTS: usize = 9;

/// What differences are taken from, from one block's start.
#[derive(Debug, Default, Clone, Copy)]
struct State {
    /// Slot of the last id.
    slot: usize,
    /// Last index of each slot.
    last: [u32; SLOTS],
}

/// The ids of one track, in order.
#[derive(Debug, Default)]
pub(crate) struct PackedIds {
    bytes: Vec<u8>,
    /// Where each block starts: its first position, and its first byte in `bytes`.
    blocks: Vec<(usize, usize)>,
    len: usize,
    /// The encoder's state after the last id.
    state: State,
}

fn zigzag(delta: i64) -> u64 {
    ((delta << 1) ^ (delta >> 63)) as u64
}

fn unzigzag(coded: u64) -> i64 {
    (coded >> 1) as i64 ^ -((coded & 1) as i64)
}

impl PackedIds {
    /// Number of ids.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends index `idx` of slot `slot` (below [`SLOTS`]).
    pub(crate) fn push(&mut self, slot: usize, idx: u32) {
        debug_assert!(slot < SLOTS);
        if self
            .blocks
            .last()
            .is_none_or(|&(pos, _)| self.len - pos == BLOCK)
        {
            self.blocks.push((self.len, self.bytes.len()));
            self.state = State::default();
        }
        if slot != self.state.slot {
            self.put(((slot as u64) << 1) | 1);
            self.state.slot = slot;
        }
        let last = &mut self.state.last[slot];
        let delta = i64::from(idx) - i64::from(*last);
        *last = idx;
        self.put(zigzag(delta) << 1);
        self.len += 1;
    }

    fn put(&mut self, value: u64) {
        let mut buf = [0u8; 10];
        let n = value.encode_var(&mut buf);
        self.bytes.extend_from_slice(&buf[..n]);
    }

    /// Appends the ids of `other`, whose blocks stay as they are.
    pub(crate) fn append(&mut self, other: PackedIds) {
        if other.is_empty() {
            return;
        }
        let (len, bytes) = (self.len, self.bytes.len());
        self.blocks.extend(
            other
                .blocks
                .iter()
                .map(|&(pos, at)| (pos + len, at + bytes)),
        );
        self.bytes.extend_from_slice(&other.bytes);
        self.len += other.len;
        self.state = other.state;
    }

    /// Gives back the room grown past what the ids take.
    pub(crate) fn shrink_to_fit(&mut self) {
        self.bytes.shrink_to_fit();
        self.blocks.shrink_to_fit();
    }

    /// The (slot, index) of every id from position `pos` on.
    pub(crate) fn iter_from(&self, pos: usize) -> Iter<'_> {
        let block = self
            .blocks
            .partition_point(|&(first, _)| first <= pos)
            .saturating_sub(1);
        let (first, at) = self.blocks.get(block).copied().unwrap_or((0, 0));
        let mut iter = Iter {
            bytes: self.bytes.get(at..).unwrap_or_default(),
            pos: first,
            len: self.len,
            state: State::default(),
            blocks: self.blocks.get(block..).unwrap_or_default(),
        };
        for _ in first..pos.min(self.len) {
            iter.next();
        }
        iter
    }

    /// The (slot, index) of every id.
    pub(crate) fn iter(&self) -> Iter<'_> {
        self.iter_from(0)
    }
}

impl FromIterator<(usize, u32)> for PackedIds {
    fn from_iter<I: IntoIterator<Item = (usize, u32)>>(ids: I) -> Self {
        let mut packed = PackedIds::default();
        for (slot, idx) in ids {
            packed.push(slot, idx);
        }
        packed.shrink_to_fit();
        packed
    }
}

/// Reads ids back, in order.
#[derive(Debug, Clone)]
pub(crate) struct Iter<'a> {
    bytes: &'a [u8],
    pos: usize,
    len: usize,
    state: State,
    /// The blocks from the one being read.
    blocks: &'a [(usize, usize)],
}

impl Iter<'_> {
    fn take_value(&mut self) -> Option<u64> {
        let (value, n) = u64::decode_var(self.bytes)?;
        self.bytes = self.bytes.get(n..)?;
        Some(value)
    }
}

impl Iterator for Iter<'_> {
    type Item = (usize, u32);

    fn next(&mut self) -> Option<(usize, u32)> {
        if self.pos >= self.len {
            return None;
        }
        if let Some((&(first, _), later)) = self.blocks.split_first()
            && first == self.pos
        {
            self.state = State::default();
            self.blocks = later;
        }
        let mut value = self.take_value()?;
        if value & 1 == 1 {
            self.state.slot = usize::try_from(value >> 1).ok().filter(|&s| s < SLOTS)?;
            value = self.take_value()?;
        }
        let last = &mut self.state.last[self.state.slot];
        let idx = u32::try_from(i64::from(*last) + unzigzag(value >> 1)).ok()?;
        *last = idx;
        self.pos += 1;
        Some((self.state.slot, idx))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.len.saturating_sub(self.pos);
        (left, Some(left))
    }
}

impl ExactSizeIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pseudo-random walk over slots and indices, with jumps both ways.
    fn ids(n: usize, seed: u64) -> Vec<(usize, u32)> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let slot = if x % 5 == 0 {
                    (x >> 8) as usize % SLOTS
                } else {
                    0
                };
                let idx = match x % 7 {
                    0 => u32::MAX - (x >> 40) as u32,
                    1 => 0,
                    _ => (x >> 20) as u32 % 5000,
                };
                (slot, idx)
            })
            .collect()
    }

    #[test]
    fn gives_back_what_was_packed_from_any_position() {
        for n in [0, 1, 2, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 17] {
            let ids = ids(n, n as u64 + 1);
            let packed: PackedIds = ids.iter().copied().collect();
            assert_eq!(packed.len(), n);
            assert_eq!(packed.iter().collect::<Vec<_>>(), ids, "{n} ids");
            for pos in [
                0,
                1,
                BLOCK - 1,
                BLOCK,
                BLOCK + 5,
                n.saturating_sub(1),
                n,
                n + 3,
            ] {
                let from: Vec<_> = packed.iter_from(pos).collect();
                assert_eq!(from, ids[pos.min(n)..], "{n} ids from {pos}");
                assert_eq!(packed.iter_from(pos).len(), n.saturating_sub(pos));
            }
        }
    }

    #[test]
    fn appended_lists_read_as_one_from_any_position() {
        let parts = [
            ids(700, 3),
            ids(0, 4),
            ids(BLOCK + 300, 5),
            ids(1, 6),
            ids(2 * BLOCK, 7),
        ];
        let mut joined = PackedIds::default();
        for part in &parts {
            joined.append(part.iter().copied().collect());
        }
        // Pushing after an append goes on from the appended list's state.
        joined.push(3, 17);
        let mut all: Vec<(usize, u32)> = parts.concat();
        all.push((3, 17));
        assert_eq!(joined.len(), all.len());
        assert_eq!(joined.iter().collect::<Vec<_>>(), all);
        for pos in (0..all.len() + 2)
            .step_by(97)
            .chain([699, 700, 701, all.len() - 1])
        {
            let from: Vec<_> = joined.iter_from(pos).collect();
            assert_eq!(from, all[pos.min(all.len())..], "from {pos}");
        }
    }

    #[test]
    fn a_stream_of_close_indices_takes_a_byte_an_event() {
        // Every fourth kernel on one of four streams, then calls of another kind.
        let ids: Vec<(usize, u32)> = (0..10_000u32)
            .map(|i| (5, 4 * i + 1))
            .chain((0..10_000).map(|i| (1, i)))
            .collect();
        let packed: PackedIds = ids.iter().copied().collect();
        assert_eq!(packed.iter().collect::<Vec<_>>(), ids);
        assert!(packed.bytes.len() < 20_200, "{} bytes", packed.bytes.len());
    }

    #[test]
    fn interleaved_kinds_take_two_bytes_an_event() {
        let ids: Vec<(usize, u32)> = (0..10_000u32)
            .flat_map(|i| [(0, 1_000_000 + i), (1, i)])
            .collect();
        let packed: PackedIds = ids.iter().copied().collect();
        assert_eq!(packed.iter().collect::<Vec<_>>(), ids);
        assert!(
            packed.bytes.len() < 4 * 20_000 / 2 + 200,
            "{} bytes",
            packed.bytes.len()
        );
    }
}
