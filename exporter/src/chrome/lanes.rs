//! Placing the slices of one track on lanes so that each lane nests properly.
//!
//! Perfetto requires the `X` events of one (pid, tid) to nest: two slices may touch
//! or contain each other, never partially overlap, and nest at most 512 deep. Host
//! ranges from different sources (NVTX, our annotations, API calls) and slices read
//! from other tools' files break that; rather than drop or clip them, a slice that
//! does not fit goes to the next lane, a synthetic thread of its own.
//!
//! A slice must nest on its lane by every reading of its times ([`Span`]): the
//! exact one, and those of readers that parse `ts` and `dur` as doubles and round
//! `us * 1000` to the nanosecond (Perfetto half away from zero, Python half to
//! even). Far from the base (2^42 µs and more) they differ by a nanosecond, enough
//! to turn a kernel that ends with its enclosing range into a partial overlap.

use crate::validate::MAX_DEPTH;

/// Most lanes one track may grow; a slice that fits none of them is dropped and
/// counted. Only a pathological staircase of overlapping slices gets here, and the
/// cap keeps placement linear in the number of slices.
pub(crate) const MAX_LANES: usize = 1024;

/// Readings of a slice's times, ns: exact, then as doubles rounded half away from
/// zero, then half to even.
const READINGS: usize = 3;

/// Below this many nanoseconds from the base, every reading of a time is the exact
/// one: the double's two roundings (`ns / 1000`, then `* 1000`) are each off by at
/// most 2^-53 of it, together by less than half a nanosecond below 2^51.
const READ_EXACTLY: u64 = 1 << 50;

/// A slice's `[start, end)` by each reading of its times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    /// Start and end by each reading.
    pub readings: [(i64, i64); READINGS],
}

impl Span {
    /// The span of `[start, end)`, written relative to `base`.
    pub(crate) fn new(start: i64, end: i64, base: i64) -> Self {
        let end = end.max(start);
        let (rel, dur) = (start.saturating_sub(base), end.saturating_sub(start));
        if rel.unsigned_abs() < READ_EXACTLY && dur.unsigned_abs() < READ_EXACTLY {
            return Span {
                readings: [(start, end); READINGS],
            };
        }
        let read = |round: fn(f64) -> f64| {
            let start = as_read(rel, round).saturating_add(base);
            (start, start.saturating_add(as_read(dur, round)))
        };
        Span {
            readings: [(start, end), read(f64::round), read(f64::round_ties_even)],
        }
    }
}

/// What a reader that parses `<us>.<ns:03>` into a double and rounds `us * 1000`
/// with `round` gets back for `ns`: the decimal text's nearest double is
/// `ns / 1000` rounded once, since `ns` converts exactly below 2^53.
pub(crate) fn as_read(ns: i64, round: fn(f64) -> f64) -> i64 {
    let us = ns as f64 / 1000.0;
    round(us * 1000.0) as i64
}

/// The open slices of each lane of one track.
#[derive(Debug, Default)]
pub(crate) struct Lanes {
    /// For each lane, the ends (by each reading) of the slices still open,
    /// outermost first.
    open: Vec<Vec<[i64; READINGS]>>,
}

impl Lanes {
    /// No lanes yet.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Places the slice `span` on the first lane where it nests by both readings
    /// of its times, adding a lane when none fits; `None` when all [`MAX_LANES`]
    /// lanes are taken.
    ///
    /// Slices must come sorted by start, and by end descending among equal starts,
    /// so that a parent always comes before its children. Intervals are closed at
    /// the start and open at the end: a slice starting where another ends does not
    /// overlap it.
    pub(crate) fn place(&mut self, span: Span) -> Option<u32> {
        let ends = span.readings.map(|(_, end)| end);
        let ended = |open: &[i64; READINGS]| {
            open.iter()
                .zip(&span.readings)
                .all(|(&end, &(start, _))| end <= start)
        };
        let inside = |open: &[i64; READINGS]| open.iter().zip(&ends).all(|(o, e)| e <= o);
        for (lane, stack) in self.open.iter_mut().enumerate() {
            while stack.last().is_some_and(ended) {
                stack.pop();
            }
            let nests = stack.last().is_none_or(inside);
            if nests && stack.len() < MAX_DEPTH {
                stack.push(ends);
                return Some(lane as u32);
            }
        }
        if self.open.len() >= MAX_LANES {
            return None;
        }
        self.open.push(vec![ends]);
        Some((self.open.len() - 1) as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place_all(slices: &[(i64, i64)]) -> Vec<Option<u32>> {
        let mut lanes = Lanes::new();
        slices
            .iter()
            .map(|&(s, e)| lanes.place(Span::new(s, e, 0)))
            .collect()
    }

    #[test]
    fn slices_nest_as_doubles_read_them_too() {
        // nccl_data.json.gz: a range and the kernel that ends with it, 2^42 µs
        // past the base. Exactly, the kernel nests; as doubles, it ends 1 ns late.
        let base = 1_711_964_646_000_000_000;
        let range = Span::new(
            base + 4_458_676_422_880_181,
            base + 4_458_676_520_797_138,
            base,
        );
        let kernel = Span::new(
            base + 4_458_676_520_793_586,
            base + 4_458_676_520_797_138,
            base,
        );
        assert_eq!(range.readings[0].1, kernel.readings[0].1);
        // Python's round (half to even) reads the range's start, 4458676422880180.5,
        // one nanosecond early; Perfetto's llround does not.
        assert_eq!(range.readings[1], range.readings[0]);
        assert!(
            kernel.readings[2].1 > range.readings[2].1,
            "{range:?} {kernel:?}"
        );
        let mut lanes = Lanes::new();
        assert_eq!(lanes.place(range), Some(0));
        assert_eq!(lanes.place(kernel), Some(1));
        // Near the base the readings agree and the two share a lane.
        let mut lanes = Lanes::new();
        assert_eq!(lanes.place(Span::new(0, 97_916_957, 0)), Some(0));
        assert_eq!(lanes.place(Span::new(97_913_406, 97_916_957, 0)), Some(0));
        for ns in [0, 1, 540_100, 999_999_999, 1 << 40, -12_345] {
            assert_eq!(as_read(ns, f64::round), ns, "{ns}");
            assert_eq!(as_read(ns, f64::round_ties_even), ns, "{ns}");
        }
    }

    #[test]
    fn below_the_exact_bound_every_reading_is_exact() {
        // The span takes the exact times without reading them as doubles there:
        // the readings it skips must agree, up to the bound and on both sides.
        let bound = READ_EXACTLY as i64;
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let near_bound = (0..20_000).map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            bound - 1 - (x % (1 << 24)) as i64
        });
        let spread = (0..20_000).map(|i: i64| (bound - 1) / 20_000 * i + i);
        for ns in near_bound.chain(spread) {
            for ns in [ns, -ns] {
                assert_eq!(as_read(ns, f64::round), ns, "{ns}");
                assert_eq!(as_read(ns, f64::round_ties_even), ns, "{ns}");
            }
        }
        // Past it the readings are taken, and differ where doubles lose the ns
        // (the range of the test above, read half to even a nanosecond early).
        let far = Span::new(4_458_676_422_880_181, 4_458_676_520_797_138, 0);
        assert_eq!(far.readings[2].0, far.readings[0].0 - 1, "{far:?}");
    }

    #[test]
    fn nested_and_touching_slices_share_a_lane() {
        let got = place_all(&[(0, 100), (0, 50), (10, 20), (20, 30), (50, 50), (50, 100)]);
        assert!(got.iter().all(|&l| l == Some(0)), "{got:?}");
    }

    #[test]
    fn partial_overlap_goes_to_the_next_lane() {
        let got = place_all(&[(0, 100), (10, 60), (50, 150), (120, 130), (150, 160)]);
        // (120, 130) fits lane 0 again once (0, 100) has ended.
        assert_eq!(got, vec![Some(0), Some(0), Some(1), Some(0), Some(0)]);
    }

    #[test]
    fn a_slice_goes_back_to_the_first_lane_where_it_fits() {
        // (20, 40) overlaps nothing open on lane 0 once (0, 10) has ended.
        let got = place_all(&[(0, 10), (5, 30), (20, 40)]);
        assert_eq!(got, vec![Some(0), Some(1), Some(0)]);
    }

    #[test]
    fn nesting_deeper_than_the_limit_spills() {
        let slices: Vec<(i64, i64)> = (0..MAX_DEPTH as i64 + 3).map(|i| (i, 10_000 - i)).collect();
        let got = place_all(&slices);
        assert!(got[..MAX_DEPTH].iter().all(|&l| l == Some(0)));
        assert!(got[MAX_DEPTH..].iter().all(|&l| l == Some(1)));
    }

    #[test]
    fn a_staircase_beyond_the_lane_cap_is_refused() {
        let slices: Vec<(i64, i64)> = (0..MAX_LANES as i64 + 2)
            .map(|i| (i, 1_000_000 + i))
            .collect();
        let got = place_all(&slices);
        assert_eq!(got[MAX_LANES - 1], Some(MAX_LANES as u32 - 1));
        assert_eq!(got[MAX_LANES], None);
        assert_eq!(got[MAX_LANES + 1], None);
    }

    #[test]
    fn reversed_end_is_treated_as_zero_length() {
        let got = place_all(&[(0, 10), (5, 1)]);
        assert_eq!(got, vec![Some(0), Some(0)]);
    }
}
