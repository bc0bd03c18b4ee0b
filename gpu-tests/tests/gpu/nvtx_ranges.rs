//! NVTX push/pop ranges reach the trace, nested as pushed, around the launches made
//! inside them.

use cutrace_tracer::GraphMode;
use cutrace_tracer::model::RangeKind;

use crate::support::nvtx::Nvtx;
use crate::support::{Gpu, SMALL, calls_by_correlation, config, name, ptx, record_window};

#[test]
#[ignore = "needs a GPU"]
fn nvtx_ranges_are_recorded_nested_around_their_launches() {
    let nvtx = match Nvtx::open() {
        Ok(nvtx) => nvtx,
        Err(why) => {
            eprintln!("skipped: NVTX ranges not checked: {why}");
            return;
        }
    };
    eprintln!("NVTX from {}", nvtx.path().display());
    let gpu = Gpu::open();
    let stream = gpu.stream();
    let mut a = gpu.buffer(&stream);
    let mut b = gpu.buffer(&stream);

    let trace = record_window(config(GraphMode::Node), |_| {
        nvtx.push(c"outer");
        gpu.fill(&stream, &mut a, 1.0, SMALL);
        nvtx.push(c"inner");
        gpu.scale(&stream, &mut b, &a, 2.0, SMALL);
        nvtx.pop();
        nvtx.pop();
        gpu.synchronize();
    });

    let range = |wanted: &str| {
        let found: Vec<_> = trace
            .ranges
            .iter()
            .filter(|r| r.kind == RangeKind::Nvtx && name(&trace, r.name) == wanted)
            .collect();
        assert_eq!(found.len(), 1, "NVTX range {wanted:?}: {:?}", trace.ranges);
        *found[0]
    };
    let outer = range("outer");
    let inner = range("inner");
    assert!(outer.start <= inner.start && inner.end <= outer.end);
    assert_eq!(outer.tid, inner.tid);

    let calls = calls_by_correlation(&trace);
    let launch = |kernel: &str| {
        let k = trace
            .kernels
            .iter()
            .find(|k| name(&trace, k.name) == kernel)
            .unwrap_or_else(|| panic!("{kernel} not recorded"));
        *calls[&k.correlation]
    };
    let fill = launch(ptx::FILL);
    let scale = launch(ptx::SCALE);
    assert!(outer.start <= fill.start && fill.end <= inner.start);
    assert!(inner.start <= scale.start && scale.end <= inner.end);
    assert_eq!(fill.tid, outer.tid);
}
