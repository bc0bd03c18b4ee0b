//! Unions of time intervals: the measure every busy, idle and overlap figure is
//! made of.

/// Intervals `[start, end)` in nanoseconds, gathered in any order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Intervals {
    spans: Vec<(i64, i64)>,
}

impl Intervals {
    /// Adds `[start, end)`; an empty one covers nothing.
    pub(crate) fn push(&mut self, start: i64, end: i64) {
        if end > start {
            self.spans.push((start, end));
        }
    }

    /// The time covered by at least one interval, as disjoint intervals in order,
    /// merged in place: a second list would double the memory of millions.
    pub(crate) fn union(mut self) -> Union {
        self.spans.sort_unstable();
        // Touching intervals merge, as HTA's `merge_kernel_intervals` does.
        self.spans.dedup_by(|next, last| {
            let overlaps = next.0 <= last.1;
            if overlaps {
                last.1 = last.1.max(next.1);
            }
            overlaps
        });
        Union { spans: self.spans }
    }
}

/// Disjoint intervals in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Union {
    spans: Vec<(i64, i64)>,
}

impl Union {
    /// Total length.
    pub(crate) fn length(&self) -> i64 {
        self.spans.iter().map(|(start, end)| end - start).sum()
    }

    /// The time covered in each of `count` bins of `bin_ns` from `start`; time
    /// outside them is left out.
    pub(crate) fn bins(&self, start: i64, bin_ns: i64, count: usize) -> Vec<i64> {
        let mut bins = vec![0; count];
        if bin_ns <= 0 {
            return bins;
        }
        for &(from, to) in &self.spans {
            let first = (from - start).div_euclid(bin_ns).max(0);
            let last = (to - 1 - start).div_euclid(bin_ns);
            for bin in first..=last {
                let Some(slot) = usize::try_from(bin).ok().and_then(|b| bins.get_mut(b)) else {
                    continue;
                };
                let (low, high) = (start + bin * bin_ns, start + (bin + 1) * bin_ns);
                *slot += to.min(high) - from.max(low);
            }
        }
        bins
    }

    /// Length of the time covered by both `self` and `other`.
    pub(crate) fn overlap(&self, other: &Union) -> i64 {
        let (mut i, mut j, mut total) = (0, 0, 0);
        while i < self.spans.len() && j < other.spans.len() {
            let (a, b) = (self.spans[i], other.spans[j]);
            let (start, end) = (a.0.max(b.0), a.1.min(b.1));
            if end > start {
                total += end - start;
            }
            if a.1 < b.1 {
                i += 1;
            } else {
                j += 1;
            }
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn union(spans: &[(i64, i64)]) -> Union {
        let mut intervals = Intervals::default();
        for &(start, end) in spans {
            intervals.push(start, end);
        }
        intervals.union()
    }

    #[test]
    fn bins_hold_the_time_covered_in_them() {
        let u = union(&[(5, 25), (30, 31), (38, 60)]);
        // Bins [0, 10), [10, 20), [20, 30), [30, 40): the last interval runs past them.
        assert_eq!(u.bins(0, 10, 4), [5, 10, 5, 3]);
        assert_eq!(u.bins(20, 10, 2), [5, 3]);
        assert_eq!(u.bins(0, 0, 2), [0, 0]);
        assert!(u.bins(0, 10, 0).is_empty());
    }

    #[test]
    fn unions_merge_overlapping_and_touching_intervals() {
        let u = union(&[(10, 20), (0, 5), (15, 30), (30, 31), (40, 40), (50, 45)]);
        assert_eq!(u.spans, [(0, 5), (10, 31)]);
        assert_eq!(u.length(), 5 + 21);
        assert_eq!(union(&[]).length(), 0);
        // One interval inside another.
        assert_eq!(union(&[(0, 100), (10, 20)]).length(), 100);
    }

    #[test]
    fn overlap_is_the_common_time() {
        let a = union(&[(0, 10), (20, 30), (40, 50)]);
        let b = union(&[(5, 25), (28, 42), (60, 70)]);
        assert_eq!(a.overlap(&b), 5 + 5 + 2 + 2);
        assert_eq!(b.overlap(&a), a.overlap(&b));
        assert_eq!(a.overlap(&a), a.length());
        assert_eq!(a.overlap(&Union::default()), 0);
    }

    #[test]
    fn overlap_agrees_with_counting_every_nanosecond() {
        // Small pseudo-random interval sets against a brute-force count.
        let mut seed = 7u64;
        let mut next = |n: i64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) % n as u64) as i64
        };
        for _ in 0..200 {
            let mut sets: Vec<Vec<(i64, i64)>> = Vec::new();
            for _ in 0..2 {
                let count = next(6);
                sets.push(
                    (0..count)
                        .map(|_| {
                            let start = next(60);
                            (start, start + next(15))
                        })
                        .collect(),
                );
            }
            let covered =
                |spans: &[(i64, i64)], t: i64| spans.iter().any(|&(s, e)| s <= t && t < e);
            let brute_union = (0..80).filter(|&t| covered(&sets[0], t)).count() as i64;
            let brute_both = (0..80)
                .filter(|&t| covered(&sets[0], t) && covered(&sets[1], t))
                .count() as i64;
            let (a, b) = (union(&sets[0]), union(&sets[1]));
            assert_eq!(a.length(), brute_union, "{sets:?}");
            assert_eq!(a.overlap(&b), brute_both, "{sets:?}");
        }
    }
}
