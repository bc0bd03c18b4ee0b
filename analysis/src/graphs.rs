//! CUDA graphs: which GPU work belongs to which launch of which graph, and the
//! figures of each graph.
//!
//! A launch is found three ways, as the trace allows: the node kernels of
//! cutrace's node mode carry their graph's id and the correlation of the
//! `cudaGraphLaunch` that ran them, so the kernels (and the copies and memsets
//! correlated to the same call) of one correlation are one launch; graph mode gives
//! one slice per launch, with the graph's id and no kernels; torch's traces carry no
//! graph ids, but their GPU work is correlated to the `cudaGraphLaunch` call, and
//! launches that ran the same kernels in the same order are taken for one graph.

use std::collections::BTreeMap;

use cutrace_tracer::model::{NameId, Names};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::figures::{GraphFigures, GraphSource, KernelTotal};
use crate::trace::{Work, WorkKind};

/// One launch of a graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Launch {
    graph_id: u32,
    start: i64,
    end: i64,
    /// Its kernels by start, `None` for a graph-mode slice.
    kernels: Option<Vec<(i64, NameId, i64)>>,
}

/// Which graph a launch is of.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum GraphKey {
    Id(u32),
    /// The kernel names a launch without a graph id ran, in order.
    Nodes(Vec<NameId>),
}

/// The correlations of the graph launch calls: `graph_calls`, those of the API
/// records, and those the node kernels of `kernels` (correlation, graph id)
/// carry, for a launch whose API record is not in the trace. A launch's copies
/// and memsets share its call's correlation.
pub(crate) fn calls(
    graph_calls: &FxHashSet<u64>,
    kernels: impl Iterator<Item = (u64, u32)>,
) -> FxHashSet<u64> {
    let mut calls = graph_calls.clone();
    calls.extend(
        kernels
            .filter(|&(_, graph_id)| graph_id != 0)
            .map(|(correlation, _)| correlation),
    );
    calls.remove(&0);
    calls
}

/// The launches in `work`, given the correlations of the graph launch calls.
pub(crate) fn launches(
    work: impl Iterator<Item = Work> + Clone,
    graph_calls: &FxHashSet<u64>,
) -> Vec<Launch> {
    let kernels = work.clone().filter(|w| w.kind == WorkKind::Kernel);
    let calls = calls(graph_calls, kernels.map(|w| (w.correlation, w.graph_id)));
    let mut by_call: FxHashMap<u64, Launch> = FxHashMap::default();
    let mut launches = Vec::new();
    for w in work {
        if w.kind == WorkKind::GraphLaunch {
            launches.push(Launch {
                graph_id: w.graph_id,
                start: w.start,
                end: w.end,
                kernels: None,
            });
            continue;
        }
        if !calls.contains(&w.correlation) {
            continue;
        }
        let launch = by_call.entry(w.correlation).or_insert(Launch {
            graph_id: 0,
            start: w.start,
            end: w.end,
            kernels: Some(Vec::new()),
        });
        launch.graph_id = launch.graph_id.max(w.graph_id);
        launch.start = launch.start.min(w.start);
        launch.end = launch.end.max(w.end);
        if w.kind == WorkKind::Kernel
            && let Some(kernels) = &mut launch.kernels
        {
            kernels.push((w.start, w.name, w.end - w.start));
        }
    }
    launches.extend(by_call.into_values());
    launches.sort_by_key(|l| (l.start, l.end, l.graph_id));
    for launch in &mut launches {
        if let Some(kernels) = &mut launch.kernels {
            kernels.sort_unstable();
        }
    }
    launches
}

/// One graph's launches, as they are gathered.
struct Graph {
    source: GraphSource,
    spans: Vec<i64>,
    kernel_counts: Vec<usize>,
    kernels: FxHashMap<NameId, (u64, i64)>,
}

/// The figures of each graph in `launches`, most total time first.
pub(crate) fn figures(launches: Vec<Launch>, names: &Names) -> Vec<GraphFigures> {
    let mut graphs: BTreeMap<GraphKey, Graph> = BTreeMap::new();
    // Graphs without an id are numbered in the order of their first launch.
    let mut unnamed: Vec<GraphKey> = Vec::new();
    for launch in launches {
        let (key, source) = match (&launch.kernels, launch.graph_id) {
            (None, id) => (GraphKey::Id(id), GraphSource::GraphLaunches),
            (Some(_), id) if id != 0 => (GraphKey::Id(id), GraphSource::Nodes),
            (Some(kernels), _) => {
                let key = GraphKey::Nodes(kernels.iter().map(|k| k.1).collect());
                if !unnamed.contains(&key) {
                    unnamed.push(key.clone());
                }
                (key, GraphSource::LaunchCalls)
            }
        };
        let graph = graphs.entry(key).or_insert_with(|| Graph {
            source,
            spans: Vec::new(),
            kernel_counts: Vec::new(),
            kernels: FxHashMap::default(),
        });
        graph.spans.push(launch.end - launch.start);
        if let Some(kernels) = launch.kernels {
            graph.kernel_counts.push(kernels.len());
            for (_, name, duration) in kernels {
                let total = graph.kernels.entry(name).or_default();
                total.0 += 1;
                total.1 += duration;
            }
        }
    }
    let mut figures: Vec<GraphFigures> = graphs
        .into_iter()
        .map(|(key, graph)| {
            let (id, label) = match &key {
                GraphKey::Id(id) => (Some(*id), format!("graph {id}")),
                GraphKey::Nodes(_) => {
                    let n = unnamed.iter().position(|k| *k == key).map_or(0, |i| i + 1);
                    (None, format!("graph #{n}"))
                }
            };
            let launches = graph.spans.len() as u64;
            let total: i64 = graph.spans.iter().sum();
            let kernels = KernelTotal::ranked(graph.kernels, names);
            let counted = graph.kernel_counts.len();
            GraphFigures {
                id,
                label,
                source: graph.source,
                launches,
                total_ns: total,
                mean_ns: total / launches.max(1) as i64,
                min_ns: graph.spans.iter().copied().min().unwrap_or(0),
                max_ns: graph.spans.iter().copied().max().unwrap_or(0),
                kernels_per_launch: (counted > 0 && !kernels.is_empty())
                    .then(|| graph.kernel_counts.iter().sum::<usize>() as f64 / counted as f64),
                kernels,
            }
        })
        .collect();
    figures.sort_by(|a, b| {
        b.total_ns
            .cmp(&a.total_ns)
            .then_with(|| a.label.cmp(&b.label))
    });
    figures
}

#[cfg(test)]
mod tests {
    use cutrace_tracer::model::{GraphLaunch, Memset};

    use crate::trace::tests::Build;
    use crate::trace::{graph_figures, measure};

    use super::*;

    /// The graphs of `trace`, which `graph_figures` gives alone as `measure` does
    /// with every other figure.
    fn graphs_of(trace: &cutrace_tracer::Trace) -> Vec<GraphFigures> {
        let graphs = measure(trace).graphs;
        assert_eq!(graph_figures(trace), graphs);
        graphs
    }

    #[test]
    fn node_kernels_of_one_call_are_one_launch_of_their_graph() {
        let mut b = Build::default();
        // Graph 3 launched twice (calls 10 and 11), graph 4 once; a memset of the
        // first launch; a kernel outside any graph.
        b.kernel_of("a", 7, 100, 110, 10, 3)
            .kernel_of("b", 7, 110, 130, 10, 3)
            .kernel_of("a", 7, 200, 212, 11, 3)
            .kernel_of("b", 7, 212, 240, 11, 3)
            .kernel_of("c", 7, 300, 330, 12, 4)
            .kernel_of("eager", 7, 500, 600, 13, 0);
        b.trace.memsets.push(Memset {
            start: 130,
            end: 135,
            correlation: 10,
            ..Default::default()
        });
        let graphs = graphs_of(&b.trace);
        assert_eq!(graphs.len(), 2, "{graphs:?}");
        let g3 = &graphs[0];
        assert_eq!(
            (g3.id, g3.label.as_str(), g3.source, g3.launches),
            (Some(3), "graph 3", GraphSource::Nodes, 2)
        );
        assert_eq!(
            (g3.total_ns, g3.mean_ns, g3.min_ns, g3.max_ns),
            (75, 37, 35, 40)
        );
        assert_eq!(g3.kernels_per_launch, Some(2.0));
        let kernels: Vec<(&str, u64, i64)> = g3
            .kernels
            .iter()
            .map(|k| (k.name.as_str(), k.calls, k.total_ns))
            .collect();
        assert_eq!(kernels, [("b", 2, 48), ("a", 2, 22)]);
        assert_eq!((graphs[1].id, graphs[1].total_ns), (Some(4), 30));
    }

    #[test]
    fn graph_mode_slices_are_launches_without_kernels() {
        let mut b = Build::default();
        for (start, end) in [(0, 50), (100, 170)] {
            b.trace.graph_launches.push(GraphLaunch {
                start,
                end,
                graph_id: 9,
                ..Default::default()
            });
        }
        let graphs = graphs_of(&b.trace);
        let [g] = &graphs[..] else {
            panic!("{graphs:?}")
        };
        assert_eq!(
            (g.id, g.source, g.launches, g.total_ns, g.min_ns, g.max_ns),
            (Some(9), GraphSource::GraphLaunches, 2, 120, 50, 70)
        );
        assert_eq!(g.kernels_per_launch, None);
        assert!(g.kernels.is_empty());
    }

    #[test]
    fn launch_calls_without_ids_group_by_the_kernels_they_ran() {
        let mut b = Build::default();
        b.api("cudaGraphLaunch", 0, 1)
            .api("cudaGraphLaunch", 10, 2)
            .api("cudaGraphLaunch", 20, 3)
            .api("cudaLaunchKernel", 30, 4)
            .kernel_of("x", 7, 100, 110, 1, 0)
            .kernel_of("y", 7, 110, 120, 1, 0)
            .kernel_of("x", 7, 200, 212, 2, 0)
            .kernel_of("y", 7, 212, 220, 2, 0)
            .kernel_of("y", 7, 300, 305, 3, 0)
            .kernel_of("eager", 7, 400, 500, 4, 0);
        let graphs = graphs_of(&b.trace);
        let summary: Vec<(Option<u32>, &str, GraphSource, u64, i64)> = graphs
            .iter()
            .map(|g| (g.id, g.label.as_str(), g.source, g.launches, g.total_ns))
            .collect();
        assert_eq!(
            summary,
            [
                (None, "graph #1", GraphSource::LaunchCalls, 2, 40),
                (None, "graph #2", GraphSource::LaunchCalls, 1, 5),
            ]
        );
    }
}
