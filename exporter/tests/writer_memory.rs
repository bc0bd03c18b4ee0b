//! What writing a trace allocates beside the trace itself, counted by the memory
//! ceiling's allocator: a few bytes per event and a bounded number of chunks in
//! flight, however many threads write. One test: the counts are process-wide.

use cutrace_exporter::memory::{self, Ceiling};
use cutrace_exporter::{Encoding, WriteOptions, write_trace_to};
use cutrace_tracer::Trace;
use cutrace_tracer::model::{ApiCall, ApiKind, Kernel};

#[global_allocator]
static ALLOCATOR: Ceiling = Ceiling;

/// `launches` runtime calls on one thread, each launching a kernel on one of four
/// streams, every vector allocated at its final size.
fn launches(launches: usize) -> Trace {
    let mut trace = Trace::default();
    let call = trace.names.intern("cudaLaunchKernel");
    let kernel = trace.names.intern("gemm");
    trace.api_calls = Vec::with_capacity(launches);
    trace.kernels = Vec::with_capacity(launches);
    for i in 0..launches {
        let at = 1_000_000 + 10_000 * i as i64;
        let correlation = i as u64 + 1;
        trace.api_calls.push(ApiCall {
            start: at,
            end: at + 3_000,
            name: call,
            kind: ApiKind::Runtime,
            pid: 1,
            tid: 1,
            correlation,
            ..Default::default()
        });
        trace.kernels.push(Kernel {
            start: at + 5_000,
            end: at + 9_000,
            name: kernel,
            device: 0,
            stream: 7 + (i % 4) as u32,
            correlation,
            ..Default::default()
        });
    }
    trace
}

#[test]
fn writing_holds_a_few_bytes_per_event_and_a_bounded_number_of_chunks() {
    const LAUNCHES: usize = 100_000;
    let trace = launches(LAUNCHES);
    let slices = 2 * LAUNCHES as u64;
    let options = WriteOptions {
        encoding: Encoding::Gzip { level: 1 },
        chunk_events: 256,
    };
    // More threads than the chunks a wave holds: the text buffers in flight must
    // not grow with the threads (a host process may have a core per thread).
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(64)
        .build()
        .expect("a thread pool");
    let before = memory::in_use();
    assert!(
        memory::peak() < before + (1 << 20),
        "the trace was built at its size"
    );

    let mut file = std::io::sink();
    let stats = pool
        .install(|| write_trace_to(&trace, &mut file, "t.json.gz", &options))
        .expect("written");
    // A call, a kernel and a flow's two ends a launch; three metadata events for
    // each of the two processes and two for each of the five tracks.
    assert_eq!(stats.events, 4 * LAUNCHES + 2 * 3 + 5 * 2);

    let above = memory::peak() - before;
    // Per event: its id on its track and its flow flag; then the wave of chunks
    // in flight, each a text buffer of 512 bytes an event and its gzip member.
    let bound = 8 * slices + (4 << 20);
    assert!(
        above <= bound,
        "writing took {above} bytes beside the trace, more than {bound}"
    );
}
