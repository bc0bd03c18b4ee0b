//! Annotations (`Profiler::annotate`) attribute the kernels launched inside them:
//! by external correlation id, and in the key-averages table.

use cutrace_exporter::{KeyAverages, RowKind};
use cutrace_tracer::GraphMode;
use cutrace_tracer::model::RangeKind;

use crate::support::{Gpu, SMALL, config, name, ptx, record_window};

#[test]
#[ignore = "needs a GPU"]
fn annotations_attribute_the_kernels_launched_inside_them() {
    let gpu = Gpu::open();
    let stream = gpu.stream();
    let mut a = gpu.buffer(&stream);
    let mut b = gpu.buffer(&stream);
    let mut c = gpu.buffer(&stream);

    let mut ids = Vec::new();
    let trace = record_window(config(GraphMode::Node), |profiler| {
        {
            let forward = profiler.annotate("forward");
            ids.push(forward.external_id().expect("recording"));
            gpu.fill(&stream, &mut a, 1.0, SMALL);
        }
        {
            let backward = profiler.annotate("backward");
            ids.push(backward.external_id().expect("recording"));
            gpu.scale(&stream, &mut b, &a, 2.0, SMALL);
            gpu.add(&stream, &mut c, &a, &b, SMALL);
        }
        gpu.fill(&stream, &mut a, 0.0, SMALL);
        gpu.synchronize();
    });

    let expected = [
        ("forward", vec![ptx::FILL]),
        ("backward", vec![ptx::SCALE, ptx::ADD]),
    ];
    let table = KeyAverages::from_trace(&trace);
    for ((annotation, kernels), id) in expected.iter().zip(&ids) {
        let range = trace
            .ranges
            .iter()
            .find(|r| r.kind == RangeKind::Annotation && name(&trace, r.name) == *annotation)
            .unwrap_or_else(|| panic!("annotation {annotation} not recorded"));
        assert_eq!(range.external_id, *id);

        // The launch calls made inside carry the annotation's id, and only those.
        let correlations: Vec<u64> = trace
            .api_calls
            .iter()
            .filter(|call| call.external_id == *id)
            .map(|call| call.correlation)
            .collect();
        let mut launched: Vec<&str> = trace
            .kernels
            .iter()
            .filter(|k| correlations.contains(&k.correlation))
            .map(|k| name(&trace, k.name))
            .collect();
        let mut want = kernels.clone();
        launched.sort_unstable();
        want.sort_unstable();
        assert_eq!(launched, want, "kernels attributed to {annotation}");

        // The table gives the annotation exactly its kernels' GPU time.
        let gpu_ns: i64 = trace
            .kernels
            .iter()
            .filter(|k| correlations.contains(&k.correlation))
            .map(|k| k.end - k.start)
            .sum();
        let row = table
            .rows()
            .iter()
            .find(|r| r.kind == RowKind::Annotation && r.name == *annotation)
            .unwrap_or_else(|| panic!("no table row for {annotation}"));
        assert_eq!(row.calls, 1);
        assert_eq!(row.cuda_total_ns, gpu_ns, "{annotation}");
    }
    assert_eq!(trace.kernels.len(), 4, "the last fill is outside both");
}
