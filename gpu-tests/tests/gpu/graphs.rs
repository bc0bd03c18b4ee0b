//! A captured CUDA graph of three kernels replayed N times: N×3 kernels carrying
//! the graph's id and their node's id in node mode, N graph launches in graph mode.

use std::collections::{BTreeMap, BTreeSet};

use cudarc::driver::CudaGraph;
use cudarc::driver::sys::{CUgraphInstantiate_flags, CUstreamCaptureMode};
use cutrace_tracer::{GraphMode, Trace};

use crate::support::{Gpu, SMALL, config, name, ptx, record_window};

/// Graph replays in the window.
const REPLAYS: usize = 5;

/// Kernel nodes in the graph.
const NODES: usize = 3;

/// Captures fill → scale → add on a new stream, replays it [`REPLAYS`] times in a
/// window recorded with `mode`, and returns the window.
fn replay(mode: GraphMode) -> Trace {
    let gpu = Gpu::open();
    let stream = gpu.stream();
    let mut a = gpu.buffer(&stream);
    let mut b = gpu.buffer(&stream);
    let mut c = gpu.buffer(&stream);
    stream
        .begin_capture(CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
        .unwrap();
    gpu.fill(&stream, &mut a, 3.0, SMALL);
    gpu.scale(&stream, &mut b, &a, 2.0, SMALL);
    gpu.add(&stream, &mut c, &a, &b, SMALL);
    let graph: CudaGraph = stream
        .end_capture(CUgraphInstantiate_flags(0))
        .unwrap()
        .expect("the capture holds work");
    graph.upload().unwrap();
    gpu.synchronize();

    let trace = record_window(config(mode), |_| {
        for _ in 0..REPLAYS {
            graph.launch().unwrap();
        }
        gpu.synchronize();
    });
    assert_eq!(stream.clone_dtoh(&c).unwrap()[0], 9.0, "the graph ran");
    trace
}

#[test]
#[ignore = "needs a GPU"]
fn node_mode_records_every_kernel_of_every_replay_with_graph_and_node_ids() {
    let trace = replay(GraphMode::Node);

    assert_eq!(trace.kernels.len(), REPLAYS * NODES, "{:?}", trace.kernels);
    assert!(trace.graph_launches.is_empty());
    let graphs: BTreeSet<u32> = trace.kernels.iter().map(|k| k.graph_id).collect();
    assert_eq!(graphs.len(), 1, "one graph: {graphs:?}");
    assert!(!graphs.contains(&0), "kernels carry their graph's id");

    let mut per_node: BTreeMap<u64, Vec<&str>> = BTreeMap::new();
    for k in &trace.kernels {
        per_node
            .entry(k.graph_node_id)
            .or_default()
            .push(name(&trace, k.name));
    }
    assert_eq!(per_node.len(), NODES, "{per_node:?}");
    assert!(!per_node.contains_key(&0), "kernels carry their node's id");
    let mut names: Vec<&str> = per_node
        .values()
        .map(|names| {
            assert_eq!(names.len(), REPLAYS, "each node once per replay: {names:?}");
            assert!(names.iter().all(|n| *n == names[0]), "one kernel per node");
            names[0]
        })
        .collect();
    names.sort_unstable();
    assert_eq!(names, [ptx::ADD, ptx::FILL, ptx::SCALE]);

    // Each replay is one launch call whose correlation its three kernels share.
    let mut per_launch: BTreeMap<u64, usize> = BTreeMap::new();
    for k in &trace.kernels {
        *per_launch.entry(k.correlation).or_default() += 1;
    }
    assert_eq!(per_launch.len(), REPLAYS);
    assert!(per_launch.values().all(|&n| n == NODES), "{per_launch:?}");
}

#[test]
#[ignore = "needs a GPU"]
fn graph_mode_records_one_launch_per_replay() {
    let trace = replay(GraphMode::Graph);

    assert_eq!(
        trace.graph_launches.len(),
        REPLAYS,
        "{:?}",
        trace.graph_launches
    );
    let graphs: BTreeSet<u32> = trace.graph_launches.iter().map(|g| g.graph_id).collect();
    assert_eq!(graphs.len(), 1, "one graph: {graphs:?}");
    assert!(!graphs.contains(&0));
    let correlations: BTreeSet<u64> = trace.graph_launches.iter().map(|g| g.correlation).collect();
    assert_eq!(correlations.len(), REPLAYS, "one launch call each");
    assert!(
        trace.kernels.is_empty(),
        "graph mode records no kernel of a graph: {:?}",
        trace.kernels
    );
}
