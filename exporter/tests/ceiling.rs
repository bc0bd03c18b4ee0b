//! The memory ceiling with its allocator installed: reading a trace that needs
//! more memory than the ceiling allows ends in an error naming the file, and the
//! same trace reads once the ceiling is raised. One test: the ceiling is
//! process-wide.

use std::path::Path;

use cutrace_exporter::memory::{self, Ceiling};
use cutrace_exporter::{ReadErrorKind, read_trace_from};

#[global_allocator]
static ALLOCATOR: Ceiling = Ceiling;

/// A trace of `n` kernels with distinct names.
fn distinct_kernels(n: usize) -> String {
    let events: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"ph": "X", "cat": "kernel", "name": "kernel_number_{i}", "pid": 0, "tid": 7, "ts": {i}, "dur": 1}}"#
            )
        })
        .collect();
    format!(r#"{{"traceEvents": [{}]}}"#, events.join(",\n"))
}

#[test]
fn reading_stops_at_the_ceiling_with_an_error_naming_the_file() {
    let text = distinct_kernels(300_000);
    let before = memory::in_use();
    assert!(before > text.len() as u64, "the allocator counts");

    memory::set_limit(before + (24 << 20));
    let error = read_trace_from(text.as_bytes(), Path::new("big.json")).unwrap_err();
    assert!(
        matches!(error.kind(), ReadErrorKind::Memory(passed) if passed.limit == before + (24 << 20)),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.starts_with("big.json: memory use reached the ceiling of "),
        "{message}"
    );
    assert!(
        memory::check().is_ok(),
        "the failed read gave its memory back"
    );

    memory::set_limit(u64::MAX);
    let trace = read_trace_from(text.as_bytes(), Path::new("big.json")).unwrap();
    assert_eq!(trace.kernels.len(), 300_000);
    assert!(memory::peak() > memory::in_use());
}
