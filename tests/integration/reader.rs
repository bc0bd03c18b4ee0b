//! The reader on every real trace, checked against a plain count of the file's
//! events.

use cutrace_exporter::read_trace;
use cutrace_tracer::model::{ApiKind, RangeKind};

use crate::util::{PlainTrace, shared_traces};

/// Categories the reader maps to something other than a generic host range.
const KNOWN: [&str; 11] = [
    "kernel",
    "gpu_memcpy",
    "gpu_memset",
    "cuda_runtime",
    "cuda_driver",
    "cuda_sync",
    "cpu_op",
    "user_annotation",
    "gpu_user_annotation",
    "cuda_graph",
    "overhead",
];

#[test]
fn every_shared_trace_reads_with_every_event_counted() {
    for path in shared_traces() {
        let name = path.display();
        let plain = PlainTrace::load(&path);
        let trace = read_trace(&path).unwrap_or_else(|e| panic!("{e}"));

        assert_eq!(
            trace.kernels.len(),
            plain.count("kernel"),
            "{name}: kernels"
        );
        assert_eq!(
            trace.memcpys.len(),
            plain.count("gpu_memcpy"),
            "{name}: memcpys"
        );
        assert_eq!(
            trace.memsets.len(),
            plain.count("gpu_memset"),
            "{name}: memsets"
        );
        assert_eq!(trace.syncs.len(), plain.count("cuda_sync"), "{name}: syncs");
        let api = |kind| trace.api_calls.iter().filter(|c| c.kind == kind).count();
        assert_eq!(
            api(ApiKind::Runtime),
            plain.count("cuda_runtime"),
            "{name}: runtime"
        );
        assert_eq!(
            api(ApiKind::Driver),
            plain.count("cuda_driver"),
            "{name}: driver"
        );
        let ranges = |kind| trace.ranges.iter().filter(|r| r.kind == kind).count();
        assert_eq!(
            ranges(RangeKind::CpuOp),
            plain.count("cpu_op"),
            "{name}: cpu ops"
        );
        assert_eq!(
            ranges(RangeKind::UserAnnotation),
            plain.count("user_annotation"),
            "{name}: user annotations"
        );
        // Any other slice on a numeric host pid is a generic range.
        let device_pids = plain.device_pids();
        let others = plain
            .events()
            .iter()
            .filter(|e| e["ph"] == "X" && !KNOWN.iter().any(|c| e["cat"] == *c))
            .filter(|e| e["pid"].as_i64().is_some_and(|p| !device_pids.contains(&p)))
            .count();
        assert_eq!(ranges(RangeKind::Other), others, "{name}: other ranges");

        // torch marks iterations as user annotations, PyTorch 1.8/1.9 as operators.
        let steps = plain
            .events()
            .iter()
            .filter(|e| e["ph"] == "X")
            .filter(|e| {
                e["cat"].as_str().is_some_and(|c| {
                    ["user_annotation", "operator"].contains(&c.to_lowercase().as_str())
                })
            })
            .filter(|e| e["name"].as_str().unwrap().starts_with("ProfilerStep#"))
            .count();
        assert_eq!(trace.iterations.len(), steps, "{name}: iterations");
        let devices = plain.json["deviceProperties"]
            .as_array()
            .map_or(0, Vec::len);
        assert_eq!(trace.devices.len(), devices, "{name}: devices");
        let rank = plain.json["distributedInfo"]["rank"].as_u64().unwrap_or(0);
        assert_eq!(u64::from(trace.info.rank), rank, "{name}: rank");

        let plain_kernel_us: f64 = plain.sums("kernel").values().map(|s| s.1).sum();
        let kernel_ns: i64 = trace.kernels.iter().map(|k| k.end - k.start).sum();
        assert!(
            (kernel_ns as f64 / 1000.0 - plain_kernel_us).abs() <= 1e-6 * plain_kernel_us.max(1.0),
            "{name}: kernel time {kernel_ns} ns against {plain_kernel_us} us"
        );

        // Absolute times: the base plus the file's time, to within what an f64 of
        // epoch microseconds resolves.
        let base = plain.json["baseTimeNanoseconds"].as_i64();
        if let Some(base) = base {
            assert_eq!(trace.base_time_ns, base, "{name}: base");
        }
        if let (Some(first), Some(kernel)) =
            (plain.complete("kernel").next(), trace.kernels.first())
        {
            let expected = base.unwrap_or(0) as f64 + first["ts"].as_f64().unwrap() * 1000.0;
            assert!(
                (kernel.start as f64 - expected).abs() <= 512.0,
                "{name}: first kernel at {} against {expected}",
                kernel.start
            );
        }
        if base.is_none() {
            assert_eq!(
                trace.base_time_ns % 1000,
                0,
                "{name}: base on a microsecond"
            );
            let earliest = trace
                .ranges
                .iter()
                .map(|r| r.start)
                .chain(trace.kernels.iter().map(|k| k.start))
                .min();
            assert!(
                earliest.is_none_or(|t| t >= trace.base_time_ns && t - trace.base_time_ns < 1000),
                "{name}: base"
            );
        }
    }
}
