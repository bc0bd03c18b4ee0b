//! Kernels on several streams: each launch exactly once, on its stream, with its
//! grid and block; and the window written to a file reads back the same.

use std::collections::{BTreeSet, HashSet};

use cutrace_exporter::validate::validate_trace_file;
use cutrace_exporter::{ExportSink, read_trace};
use cutrace_tracer::GraphMode;

use crate::support::{Gpu, Shape, config, name, ptx, record_window};

/// Which of the three streams each launch goes to, and its shape: every shape
/// differs, so each launch can be found in the trace.
const LAUNCHES: [(usize, Shape); 5] = [
    (0, Shape::new([4, 1, 1], [64, 1, 1])),
    (1, Shape::new([2, 3, 1], [32, 2, 1])),
    (2, Shape::new([1, 1, 1], [128, 1, 1])),
    (2, Shape::new([8, 1, 1], [32, 1, 1])),
    (0, Shape::new([3, 1, 2], [16, 4, 2])),
];

#[test]
#[ignore = "needs a GPU"]
fn kernels_on_several_streams_appear_once_each_with_stream_grid_and_block() {
    let gpu = Gpu::open();
    let streams = [gpu.stream(), gpu.stream(), gpu.stream()];
    let mut buffers: Vec<_> = LAUNCHES
        .iter()
        .map(|&(stream, _)| gpu.buffer(&streams[stream]))
        .collect();

    let trace = record_window(config(GraphMode::Node), |_| {
        for (i, &(stream, shape)) in LAUNCHES.iter().enumerate() {
            gpu.fill(&streams[stream], &mut buffers[i], i as f32, shape);
        }
        gpu.synchronize();
    });

    assert_eq!(trace.kernels.len(), LAUNCHES.len(), "one record per launch");
    let mut stream_of_launch = Vec::new();
    for &(_, shape) in &LAUNCHES {
        let found: Vec<_> = trace
            .kernels
            .iter()
            .filter(|k| shape.matches(trace.config(k.config)))
            .collect();
        assert_eq!(found.len(), 1, "launch {shape:?} recorded once: {found:?}");
        assert_eq!(name(&trace, found[0].name), ptx::FILL);
        stream_of_launch.push(found[0].stream);
    }
    // Launches on one stream share its id; the three streams have three ids.
    for (a, &(stream_a, _)) in LAUNCHES.iter().enumerate() {
        for (b, &(stream_b, _)) in LAUNCHES.iter().enumerate() {
            assert_eq!(
                stream_of_launch[a] == stream_of_launch[b],
                stream_a == stream_b,
                "launches {a} and {b}: stream ids {} and {}",
                stream_of_launch[a],
                stream_of_launch[b]
            );
        }
    }
    let contexts: HashSet<u32> = trace.kernels.iter().map(|k| k.context).collect();
    assert_eq!(contexts.len(), 1, "one context: {contexts:?}");

    // The same window through the exporter: a well-formed file that reads back.
    let dir = tempfile::tempdir().unwrap();
    let path = ExportSink::new(dir.path()).export(&trace).unwrap().trace;
    let violations = validate_trace_file(&path).unwrap();
    assert!(violations.is_empty(), "{violations:?}");
    let back = read_trace(&path).unwrap();
    let streams = |t: &cutrace_tracer::Trace| -> BTreeSet<u32> {
        t.kernels.iter().map(|k| k.stream).collect()
    };
    assert_eq!(back.kernels.len(), trace.kernels.len());
    assert_eq!(streams(&back), streams(&trace));
}
