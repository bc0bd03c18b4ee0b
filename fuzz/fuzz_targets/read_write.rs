//! Any bytes through what `cutrace report` and `convert` do: read as a trace, the
//! key-averages table and the figures, written again, and the written trace read
//! back. Reading may refuse the input (with an error, never a panic); what it
//! accepts must be written as a trace Perfetto imports and read back to the same
//! events.

#![no_main]

use std::path::Path;

use cutrace_exporter::validate::validate_trace_json;
use cutrace_exporter::{
    Encoding, KeyAverages, SortKey, TraceStats, WriteOptions, read_trace_from, write_trace_to,
};
use cutrace_tracer::Trace;
use libfuzzer_sys::fuzz_target;

/// How many events of each kind a trace holds.
fn counts(trace: &Trace) -> [usize; 8] {
    [
        trace.kernels.len(),
        trace.memcpys.len(),
        trace.memsets.len(),
        trace.api_calls.len(),
        trace.syncs.len(),
        trace.ranges.len(),
        trace.graph_launches.len(),
        trace.overheads.len(),
    ]
}

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.json");
    let Ok(trace) = read_trace_from(data, path) else {
        return;
    };
    let averages = KeyAverages::from_trace(&trace);
    let _ = averages.table(SortKey::default(), Some(100));
    let _ = averages.json(SortKey::default(), None);
    let _ = TraceStats::from_trace(&trace).text(Some(100));

    let options = WriteOptions {
        encoding: Encoding::Plain,
        ..WriteOptions::default()
    };
    let mut written = Vec::new();
    let stats = write_trace_to(&trace, &mut written, "fuzz.json", &options)
        .expect("writing to memory cannot fail");
    let text = std::str::from_utf8(&written).expect("the writer writes UTF-8");
    let violations = validate_trace_json(text);
    assert!(violations.is_empty(), "{violations:?}");

    let again = read_trace_from(&written[..], path).expect("a written trace reads back");
    if stats.dropped_slices == 0 {
        assert_eq!(counts(&again), counts(&trace));
    }
    assert_eq!(again.base_time_ns, trace.base_time_ns);
});
