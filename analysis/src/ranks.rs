//! How the traces of a run compare: each iteration's stragglers, and the kernels
//! whose time differs most between ranks.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use crate::figures::{IterationAcrossRanks, KernelSpread, RankGpu, TraceFigures};

/// The median of sorted `values`: the mean of the middle two for an even count,
/// rounded down.
fn median(sorted: &[i64]) -> i64 {
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 0 {
        (sorted[mid - 1] + sorted[mid]).div_euclid(2)
    } else {
        sorted[mid]
    }
}

/// Each iteration number any trace recorded, with every trace's GPU time in it.
pub(crate) fn iterations(traces: &[TraceFigures]) -> Vec<IterationAcrossRanks> {
    let mut by_number: BTreeMap<u64, Vec<RankGpu>> = BTreeMap::new();
    for (index, trace) in traces.iter().enumerate() {
        for iteration in &trace.iterations {
            by_number
                .entry(iteration.number)
                .or_default()
                .push(RankGpu {
                    trace: index,
                    rank: trace.rank,
                    gpu_ns: iteration.gpu_ns,
                });
        }
    }
    by_number
        .into_iter()
        .map(|(number, ranks)| {
            let mut times: Vec<i64> = ranks.iter().map(|r| r.gpu_ns).collect();
            times.sort_unstable();
            let median_ns = median(&times);
            // The first of the slowest: `max_by_key` would give the last.
            let slowest = ranks
                .iter()
                .copied()
                .reduce(|a, b| if b.gpu_ns > a.gpu_ns { b } else { a })
                .unwrap_or(RankGpu {
                    trace: 0,
                    rank: 0,
                    gpu_ns: 0,
                });
            IterationAcrossRanks {
                number,
                median_ns,
                excess_ns: slowest.gpu_ns - median_ns,
                slowest,
                ranks,
            }
        })
        .collect()
}

/// Every kernel name of two or more traces, by how much its total differs between
/// them; nothing for a single trace.
pub(crate) fn kernel_spread(traces: &[TraceFigures]) -> Vec<KernelSpread> {
    if traces.len() < 2 {
        return Vec::new();
    }
    let mut totals: FxHashMap<&str, Vec<i64>> = FxHashMap::default();
    for (index, trace) in traces.iter().enumerate() {
        for kernel in &trace.kernels {
            totals
                .entry(kernel.name.as_str())
                .or_insert_with(|| vec![0; traces.len()])[index] += kernel.total_ns;
        }
    }
    let at = |totals: &[i64], index: usize| RankGpu {
        trace: index,
        rank: traces[index].rank,
        gpu_ns: totals[index],
    };
    let mut spread: Vec<KernelSpread> = totals
        .into_iter()
        .map(|(name, totals_ns)| {
            let (mut low, mut high) = (0, 0);
            for (i, &t) in totals_ns.iter().enumerate() {
                if t < totals_ns[low] {
                    low = i;
                }
                if t > totals_ns[high] {
                    high = i;
                }
            }
            KernelSpread {
                name: name.to_owned(),
                min: at(&totals_ns, low),
                max: at(&totals_ns, high),
                spread_ns: totals_ns[high] - totals_ns[low],
                totals_ns,
            }
        })
        .collect();
    spread.sort_by(|a, b| {
        b.spread_ns
            .cmp(&a.spread_ns)
            .then_with(|| a.name.cmp(&b.name))
    });
    spread
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Figures;
    use crate::figures::{IterationGpu, KernelTotal};
    use crate::trace::tests::Build;

    fn rank(rank: u32, iterations: &[(u64, i64)], kernels: &[(&str, i64)]) -> TraceFigures {
        let mut figures = TraceFigures::from_trace(format!("r{rank}"), 0, &Build::default().trace);
        figures.rank = rank;
        figures.iterations = iterations
            .iter()
            .map(|&(number, gpu_ns)| IterationGpu {
                number,
                duration_ns: 0,
                gpu_ns,
                gpu_events: 1,
                unlaunched_gpu_ns: 0,
            })
            .collect();
        figures.kernels = kernels
            .iter()
            .map(|&(name, total_ns)| KernelTotal {
                name: name.into(),
                calls: 1,
                total_ns,
            })
            .collect();
        figures
    }

    #[test]
    fn the_slowest_rank_is_measured_against_the_median() {
        let figures = Figures::new(
            vec![
                rank(0, &[(1, 100), (2, 100)], &[]),
                rank(1, &[(1, 130), (2, 90)], &[]),
                rank(2, &[(1, 110), (2, 100)], &[]),
                rank(3, &[(1, 400)], &[]),
            ],
            Vec::new(),
        );
        let summary: Vec<(u64, usize, i64, u32, i64)> = figures
            .iterations
            .iter()
            .map(|i| {
                (
                    i.number,
                    i.ranks.len(),
                    i.median_ns,
                    i.slowest.rank,
                    i.excess_ns,
                )
            })
            .collect();
        // Iteration 1: 100, 110, 130, 400 → median 120. Iteration 2: 90, 100, 100 →
        // median 100, and the first of the two slowest is rank 0.
        assert_eq!(summary, [(1, 4, 120, 3, 280), (2, 3, 100, 0, 0)]);
        assert_eq!(figures.iterations[1].slowest.trace, 0);
    }

    #[test]
    fn kernels_spread_by_their_totals_and_missing_counts_as_zero() {
        let figures = Figures::new(
            vec![
                rank(0, &[], &[("gemm", 100), ("nccl", 50)]),
                rank(1, &[], &[("gemm", 160), ("nccl", 40), ("only1", 5)]),
            ],
            Vec::new(),
        );
        let summary: Vec<(&str, Vec<i64>, u32, u32, i64)> = figures
            .kernel_spread
            .iter()
            .map(|k| {
                (
                    k.name.as_str(),
                    k.totals_ns.clone(),
                    k.min.rank,
                    k.max.rank,
                    k.spread_ns,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("gemm", vec![100, 160], 0, 1, 60),
                ("nccl", vec![50, 40], 1, 0, 10),
                ("only1", vec![0, 5], 0, 1, 5),
            ]
        );
        let single = Figures::new(vec![rank(0, &[(1, 5)], &[("gemm", 1)])], Vec::new());
        assert!(single.kernel_spread.is_empty());
        assert_eq!(single.iterations[0].excess_ns, 0);
    }

    #[test]
    fn medians_of_even_counts_round_down() {
        assert_eq!(median(&[1, 2]), 1);
        assert_eq!(median(&[-3, -2]), -3);
        assert_eq!(median(&[5]), 5);
        assert_eq!(median(&[1, 4, 9, 10]), 6);
    }
}
