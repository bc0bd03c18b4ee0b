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

/// Writes `trace` with chunks of `chunk_events` on a pool of `threads`; returns
/// the peak of what the process allocated, counted from `before`.
fn peak_writing(trace: &Trace, threads: usize, chunk_events: usize, before: u64) -> u64 {
    let options = WriteOptions {
        encoding: Encoding::Gzip { level: 1 },
        chunk_events,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a thread pool");
    let stats = pool
        .install(|| write_trace_to(trace, &mut std::io::sink(), "t.json.gz", &options))
        .expect("written");
    // A call, a kernel and a flow's two ends a launch; three metadata events for
    // each of the two processes and two for each of the five tracks.
    assert_eq!(stats.events, 4 * trace.kernels.len() + 2 * 3 + 5 * 2);
    memory::peak() - before
}

#[test]
fn writing_holds_a_few_bytes_per_event_and_a_bounded_number_of_chunks() {
    const LAUNCHES: u64 = 200_000;
    let trace = launches(LAUNCHES as usize);
    let before = memory::in_use();
    assert!(
        memory::peak() < before + (1 << 20),
        "the trace was built at its size"
    );

    // On one thread, one chunk at a time: what is left is the plan, a few bytes an
    // event at its peak (the plan of commit 71b6847 held 22 MB here; that of
    // 72edf2a, whose tracks held four-byte ids, 2.8 MB; that of 0cbe8e6, which
    // listed every launch and every kernel by correlation even in that order
    // already, 1.9 MB).
    let plan_bound = 3 * (2 * LAUNCHES) + (1 << 18);
    let one = peak_writing(&trace, 1, 256, before);
    assert!(
        one <= plan_bound,
        "one thread: {one} bytes beside the trace, more than {plan_bound}"
    );

    // More threads than a wave has chunks: the chunks in flight, each with a text
    // buffer of a megabyte and a compressor, must not grow with the threads (a host
    // process may have a core per thread).
    let chunk = 2 * 1024 * 1024;
    let wave_bound = plan_bound + 16 * chunk;
    let many = peak_writing(&trace, 64, 2048, before);
    assert!(
        many <= wave_bound,
        "64 threads: {many} bytes beside the trace, more than {wave_bound}"
    );
}
