//! Placing the slices of one track on lanes so that each lane nests properly.
//!
//! Perfetto requires the `X` events of one (pid, tid) to nest: two slices may touch
//! or contain each other, never partially overlap, and nest at most 512 deep. Host
//! ranges from different sources (NVTX, our annotations, API calls) and slices read
//! from other tools' files break that; rather than drop or clip them, a slice that
//! does not fit goes to the next lane, a synthetic thread of its own.

use crate::validate::MAX_DEPTH;

/// Most lanes one track may grow; a slice that fits none of them is dropped and
/// counted. Only a pathological staircase of overlapping slices gets here, and the
/// cap keeps placement linear in the number of slices.
pub(crate) const MAX_LANES: usize = 1024;

/// The open slices of each lane of one track.
#[derive(Debug, Default)]
pub(crate) struct Lanes {
    /// For each lane, the ends of the slices still open, outermost first.
    open: Vec<Vec<i64>>,
}

impl Lanes {
    /// No lanes yet.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Places the slice `[start, end)` on the first lane where it nests, adding a
    /// lane when none fits; `None` when all [`MAX_LANES`] lanes are taken.
    ///
    /// Slices must come sorted by start, and by end descending among equal starts,
    /// so that a parent always comes before its children. Intervals are closed at
    /// the start and open at the end: a slice starting where another ends does not
    /// overlap it.
    pub(crate) fn place(&mut self, start: i64, end: i64) -> Option<u32> {
        let end = end.max(start);
        for (lane, stack) in self.open.iter_mut().enumerate() {
            while stack.last().is_some_and(|&open_end| open_end <= start) {
                stack.pop();
            }
            let nests = stack.last().is_none_or(|&open_end| end <= open_end);
            if nests && stack.len() < MAX_DEPTH {
                stack.push(end);
                return Some(lane as u32);
            }
        }
        if self.open.len() >= MAX_LANES {
            return None;
        }
        self.open.push(vec![end]);
        Some((self.open.len() - 1) as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place_all(slices: &[(i64, i64)]) -> Vec<Option<u32>> {
        let mut lanes = Lanes::new();
        slices.iter().map(|&(s, e)| lanes.place(s, e)).collect()
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
