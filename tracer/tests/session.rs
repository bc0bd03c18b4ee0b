//! The profiler against the CUPTI test double: what a window holds, how windows
//! follow the schedule, the memory cap, and failures that must not hurt the host.
//!
//! CUPTI is process-wide, so every test takes the double with `double::take()`,
//! which serializes them and resets it.

mod double;

use std::ffi::{CString, c_char, c_void};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use cupti_sys::sys::*;
use cutrace_tracer::model::{ApiKind, CopyKind, MemoryKind, RangeKind, SyncKind};
use cutrace_tracer::{
    Activity, Control, GraphMode, Profiler, ProfilerConfig, Trace, TraceSink, UnwrittenWindow,
};
use double::{Collect, api, current_tid, kernel, memcpy, warnings, zero};

const RUNTIME: CUpti_ActivityKind = CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_RUNTIME;
const DRIVER: CUpti_ActivityKind = CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_DRIVER;
const LAUNCH: u32 =
    CUpti_runtime_api_trace_cbid_enum::CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000.0;
const GRAPH_LAUNCH: u32 =
    CUpti_runtime_api_trace_cbid_enum::CUPTI_RUNTIME_TRACE_CBID_cudaGraphLaunch_v10000.0;
const STREAM_SYNC: u32 =
    CUpti_runtime_api_trace_cbid_enum::CUPTI_RUNTIME_TRACE_CBID_cudaStreamSynchronize_v3020.0;
const GET_DEVICE: u32 =
    CUpti_runtime_api_trace_cbid_enum::CUPTI_RUNTIME_TRACE_CBID_cudaGetDevice_v3020.0;
const CU_LAUNCH: u32 = CUpti_driver_api_trace_cbid_enum::CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel.0;

fn config(activities: &[Activity]) -> ProfilerConfig {
    ProfilerConfig {
        activities: activities.iter().copied().collect(),
        ..ProfilerConfig::default()
    }
}

fn all_activities() -> ProfilerConfig {
    config(&Activity::ALL)
}

#[test]
fn a_window_holds_exactly_the_scripted_events() {
    let (_serial, cupti) = double::take();
    let sink = Arc::new(Collect::default());
    let (warn, warned) = warnings();
    let mut config = all_activities();
    config.latency_timestamps = true;
    config.rank = Some(2);
    let profiler = Profiler::with_warnings(config, sink.clone(), warn);
    assert!(profiler.is_traced());
    assert_eq!(
        cupti.thread_id_type(),
        CUpti_ActivityThreadIdType::CUPTI_ACTIVITY_THREAD_ID_TYPE_SYSTEM.0
    );
    assert_eq!(cupti.latency_timestamps(), 1);
    let gpu = Box::leak(CString::new("NVIDIA Test GPU").unwrap().into_boxed_c_str());
    let mut device: CUpti_ActivityDevice5 = zero();
    device.kind = CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_DEVICE;
    device.name = gpu.as_ptr();
    device.computeCapabilityMajor = 9;
    device.numMultiprocessors = 132;
    assert_eq!(
        cupti.emit(&device),
        1,
        "device records flow for the whole session"
    );
    let mut context: CUpti_ActivityContext = zero();
    context.kind = CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_CONTEXT;
    context.contextId = 1;
    context.deviceId = 0;
    assert_eq!(cupti.emit(&context), 1);

    assert_eq!(
        cupti.emit(&kernel(c"_Z6beforev", 90, 7, 10)),
        0,
        "not collecting yet"
    );
    profiler.start();
    assert!(profiler.is_recording());
    let tid = current_tid();

    let annotated = {
        let range = profiler.annotate("forward");
        assert_eq!(cupti.emit(&api(RUNTIME, LAUNCH, 1, 1_000)), 1);
        range.external_id().unwrap()
    };
    assert_eq!(cupti.emit(&kernel(c"_Z4gemmPfS_i", 1, 7, 1_100)), 1);
    assert_eq!(cupti.emit(&api(DRIVER, CU_LAUNCH, 2, 1_200)), 1);
    assert_eq!(cupti.emit(&kernel(c"relu_kernel", 2, 8, 1_250)), 1);
    assert_eq!(
        cupti.emit(&api(RUNTIME, GET_DEVICE, 9, 1_260)),
        0,
        "muted call"
    );
    profiler.step();

    use CUpti_ActivityMemcpyKind as C;
    use CUpti_ActivityMemoryKind as M;
    let copies = [
        memcpy(
            C::CUPTI_ACTIVITY_MEMCPY_KIND_HTOD,
            M::CUPTI_ACTIVITY_MEMORY_KIND_PAGEABLE,
            M::CUPTI_ACTIVITY_MEMORY_KIND_DEVICE,
            3,
            2_000,
        ),
        memcpy(
            C::CUPTI_ACTIVITY_MEMCPY_KIND_DTOH,
            M::CUPTI_ACTIVITY_MEMORY_KIND_DEVICE,
            M::CUPTI_ACTIVITY_MEMORY_KIND_PINNED,
            4,
            2_100,
        ),
        memcpy(
            C::CUPTI_ACTIVITY_MEMCPY_KIND_DTOD,
            M::CUPTI_ACTIVITY_MEMORY_KIND_DEVICE,
            M::CUPTI_ACTIVITY_MEMORY_KIND_DEVICE,
            5,
            2_200,
        ),
    ];
    for copy in &copies {
        assert_eq!(cupti.emit(copy), 1);
    }
    let mut peer: CUpti_ActivityMemcpyPtoP4 = zero();
    peer.kind = CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_MEMCPY2;
    peer.copyKind = C::CUPTI_ACTIVITY_MEMCPY_KIND_PTOP.0 as u8;
    peer.srcDeviceId = 0;
    peer.dstDeviceId = 1;
    peer.bytes = 4096;
    peer.correlationId = 6;
    peer.start = 2_300;
    peer.end = 2_350;
    assert_eq!(cupti.emit(&peer), 1);
    let mut memset: CUpti_ActivityMemset4 = zero();
    memset.kind = CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_MEMSET;
    memset.memoryKind = M::CUPTI_ACTIVITY_MEMORY_KIND_DEVICE.0 as u16;
    memset.bytes = 512;
    memset.streamId = 7;
    memset.correlationId = 7;
    memset.start = 2_400;
    memset.end = 2_450;
    assert_eq!(cupti.emit(&memset), 1);

    assert_eq!(cupti.emit(&api(RUNTIME, GRAPH_LAUNCH, 8, 3_000)), 1);
    for node in [11u64, 12] {
        let mut k = kernel(c"_Z8graph_opv", 8, 9, 3_000 + node * 100);
        k.graphId = 5;
        k.graphNodeId = node;
        assert_eq!(cupti.emit(&k), 1);
    }
    assert_eq!(cupti.emit(&api(RUNTIME, STREAM_SYNC, 10, 4_000)), 1);
    let mut sync: CUpti_ActivitySynchronization = zero();
    sync.kind = CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_SYNCHRONIZATION;
    sync.type_ =
        CUpti_ActivitySynchronizationType::CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_STREAM_SYNCHRONIZE;
    sync.start = 4_000;
    sync.end = 4_400;
    sync.correlationId = 10;
    sync.contextId = 1;
    sync.streamId = 7;
    assert_eq!(cupti.emit(&sync), 1);

    let step_name = Box::leak(CString::new("decode step").unwrap().into_boxed_c_str());
    for (flags, ts, name) in [
        (
            CUpti_ActivityFlag::CUPTI_ACTIVITY_FLAG_MARKER_START,
            5_000,
            step_name.as_ptr(),
        ),
        (
            CUpti_ActivityFlag::CUPTI_ACTIVITY_FLAG_MARKER_END,
            5_500,
            std::ptr::null(),
        ),
    ] {
        let mut marker: CUpti_ActivityMarker2 = zero();
        marker.kind = CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_MARKER;
        marker.flags = flags;
        marker.timestamp = ts;
        marker.id = 1;
        marker.objectKind = CUpti_ActivityObjectKind::CUPTI_ACTIVITY_OBJECT_THREAD;
        marker.objectId.pt.processId = std::process::id();
        marker.objectId.pt.threadId = tid;
        marker.name = name;
        assert_eq!(cupti.emit(&marker), 1);
    }
    let mut newer: CUpti_ActivityAPI = zero();
    newer.kind = CUpti_ActivityKind(1000);
    assert_eq!(
        cupti.emit(&newer),
        1,
        "a newer CUPTI's kind reaches the decoder"
    );
    profiler.step();
    profiler.stop();
    assert!(!profiler.is_recording());
    assert_eq!(
        cupti.emit(&kernel(c"_Z5afterv", 91, 7, 9_000)),
        0,
        "not collecting any more"
    );
    profiler.shutdown();

    assert!(!cupti.subscribed());
    assert_eq!(cupti.outstanding_buffers(), 0, "every buffer came back");
    assert!(
        warned.lock().unwrap().is_empty(),
        "{:?}",
        warned.lock().unwrap()
    );
    let traces = sink.traces();
    assert_eq!(traces.len(), 1);
    let t = &traces[0];

    let pid = std::process::id();
    assert_eq!(t.info.window, 1);
    assert_eq!(t.info.rank, 2);
    assert_eq!(t.info.pid, pid);
    assert_eq!(t.info.cupti_version, 130001);
    assert_eq!(t.info.dropped_records, 0);
    assert_eq!(t.info.unknown_records, 1);
    assert_eq!(
        t.iterations.iter().map(|i| i.number).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert!(t.iterations.windows(2).all(|w| w[0].end == w[1].start));
    assert_eq!(t.iterations[0].start, t.base_time_ns);
    assert!(t.base_time_ns > 0);

    let kernels: Vec<(&str, u64, u32, u32, u64)> = t
        .kernels
        .iter()
        .map(|k| {
            (
                t.names.get(k.name),
                k.correlation,
                k.stream,
                k.graph_id,
                k.graph_node_id,
            )
        })
        .collect();
    assert_eq!(
        kernels,
        [
            ("gemm(float*, float*, int)", 1, 7, 0, 0),
            ("relu_kernel", 2, 8, 0, 0),
            ("graph_op()", 8, 9, 5, 11),
            ("graph_op()", 8, 9, 5, 12),
        ]
    );
    assert_eq!(t.config(t.kernels[0].config).registers_per_thread, 40);

    let calls: Vec<(&str, ApiKind, u64, u64, u32)> = t
        .api_calls
        .iter()
        .map(|c| {
            (
                t.names.get(c.name),
                c.kind,
                c.correlation,
                c.external_id,
                c.tid,
            )
        })
        .collect();
    assert_eq!(
        calls,
        [
            ("cudaLaunchKernel", ApiKind::Runtime, 1, annotated, tid),
            ("cuLaunchKernel", ApiKind::Driver, 2, 0, tid),
            ("cudaGraphLaunch", ApiKind::Runtime, 8, 0, tid),
            ("cudaStreamSynchronize", ApiKind::Runtime, 10, 0, tid),
        ]
    );

    let copies: Vec<(CopyKind, MemoryKind, MemoryKind, u64)> = t
        .memcpys
        .iter()
        .map(|m| (m.kind, m.src_kind, m.dst_kind, m.correlation))
        .collect();
    assert_eq!(
        copies,
        [
            (CopyKind::HtoD, MemoryKind::Pageable, MemoryKind::Device, 3),
            (CopyKind::DtoH, MemoryKind::Device, MemoryKind::Pinned, 4),
            (CopyKind::DtoD, MemoryKind::Device, MemoryKind::Device, 5),
            (CopyKind::PtoP, MemoryKind::Unknown, MemoryKind::Unknown, 6),
        ]
    );
    assert_eq!((t.memcpys[3].src_device, t.memcpys[3].dst_device), (0, 1));
    assert_eq!(t.memsets.len(), 1);
    assert_eq!((t.memsets[0].bytes, t.memsets[0].correlation), (512, 7));
    assert_eq!(t.syncs.len(), 1);
    let s = t.syncs[0];
    assert_eq!(
        (s.kind, s.pid, s.tid, s.stream),
        (SyncKind::StreamSync, pid, tid, 7)
    );

    let ranges: Vec<(&str, RangeKind, u64, u32, u32)> = t
        .ranges
        .iter()
        .map(|r| (t.names.get(r.name), r.kind, r.external_id, r.pid, r.tid))
        .collect();
    assert_eq!(
        ranges,
        [
            ("decode step", RangeKind::Nvtx, 0, pid, tid),
            ("forward", RangeKind::Annotation, annotated, pid, tid),
            ("ProfilerStep#1", RangeKind::UserAnnotation, 0, pid, tid),
            ("ProfilerStep#2", RangeKind::UserAnnotation, 0, pid, tid),
            ("ProfilerStep#3", RangeKind::UserAnnotation, 0, pid, tid),
        ]
    );
    let forward = t.ranges[1];
    assert!(forward.start >= t.base_time_ns && forward.end > forward.start);
    assert_eq!(t.names.get(forward.category), "user_annotation");

    assert_eq!(t.devices.len(), 1);
    assert_eq!(t.devices[0].name, "NVIDIA Test GPU");
    assert_eq!(t.devices[0].num_sms, 132);
    let this_thread = std::thread::current()
        .name()
        .unwrap()
        .chars()
        .take(15)
        .collect::<String>();
    assert!(
        t.threads
            .iter()
            .any(|n| n.pid == pid && n.tid == tid && n.name == this_thread),
        "{:?}",
        t.threads
    );
}

fn kernel_per_iteration(cupti: &double::Double, iteration: u32) -> i32 {
    cupti.emit(&kernel(
        c"_Z4stepv",
        iteration,
        7,
        u64::from(iteration) * 1_000,
    ))
}

#[test]
fn windows_hold_the_iterations_of_the_schedule() {
    let (_serial, cupti) = double::take();
    let sink = Arc::new(Collect::default());
    let (warn, warned) = warnings();
    let mut config = config(&[Activity::Kernel]);
    config.delay_iters = 2;
    config.warmup_iters = 1;
    config.max_iters = 2;
    config.repeat = 2;
    let profiler = Profiler::with_warnings(config, sink.clone(), warn);
    profiler.start();
    let mut written = Vec::new();
    for iteration in 1..=8 {
        written.push(kernel_per_iteration(cupti, iteration));
        profiler.step();
    }
    profiler.shutdown();
    assert!(warned.lock().unwrap().is_empty());
    // Delay: off; warmup: collected then thrown away; 3-4 and 5-6 recorded; then off.
    assert_eq!(written, [0, 1, 1, 1, 1, 1, 0, 0]);
    let traces = sink.traces();
    let windows: Vec<(u32, Vec<u64>, Vec<u64>)> = traces
        .iter()
        .map(|t| {
            (
                t.info.window,
                t.iterations.iter().map(|i| i.number).collect(),
                t.kernels.iter().map(|k| k.correlation).collect(),
            )
        })
        .collect();
    assert_eq!(
        windows,
        [(1, vec![3, 4], vec![3, 4]), (2, vec![5, 6], vec![5, 6])]
    );
}

#[test]
fn stop_cuts_a_window_short_and_a_new_start_counts_again() {
    let (_serial, cupti) = double::take();
    let sink = Arc::new(Collect::default());
    let mut config = config(&[Activity::Kernel]);
    config.max_iters = 5;
    let profiler = Profiler::with_warnings(config, sink.clone(), warnings().0);
    profiler.start();
    kernel_per_iteration(cupti, 1);
    profiler.step();
    kernel_per_iteration(cupti, 2);
    profiler.stop();
    profiler.start();
    kernel_per_iteration(cupti, 11);
    profiler.stop();
    profiler.shutdown();
    let traces = sink.traces();
    assert_eq!(traces.len(), 2);
    assert_eq!(
        traces[0]
            .kernels
            .iter()
            .map(|k| k.correlation)
            .collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(traces[0].iterations.len(), 2);
    assert_eq!(traces[1].info.window, 2);
    assert_eq!(
        traces[1]
            .kernels
            .iter()
            .map(|k| k.correlation)
            .collect::<Vec<_>>(),
        [11]
    );
}

#[test]
fn the_memory_cap_holds_and_drops_are_counted() {
    let (_serial, cupti) = double::take();
    let sink = Arc::new(Collect::default());
    let (warn, warned) = warnings();
    let mut config = config(&[Activity::Kernel]);
    config.buffer_size = 512 * 1024;
    config.max_buffer_mb = 1;
    let profiler = Profiler::with_warnings(config, sink.clone(), warn);
    profiler.start();
    // CUPTI keeps full buffers until the flush: the two the cap allows fill up.
    cupti.hold_completions(true);
    let emitted = 6_000;
    let written = (0..emitted)
        .filter(|&i| cupti.emit(&kernel(c"_Z4fillv", i, 7, u64::from(i) + 1)) == 1)
        .count();
    cupti.hold_completions(false);
    profiler.stop();
    profiler.shutdown();

    assert!(cupti.peak_outstanding_bytes() <= 1 << 20);
    let dropped = cupti.dropped_total();
    assert!(dropped > 0);
    assert_eq!(written + dropped, emitted as usize);
    let traces = sink.traces();
    assert_eq!(traces.len(), 1);
    assert_eq!(traces[0].kernels.len(), written);
    assert_eq!(traces[0].info.dropped_records, dropped as u64);
    // The double asks for a buffer again before each record: one refusal each.
    assert_eq!(traces[0].info.refused_buffers, dropped as u64);
    let warned = warned.lock().unwrap();
    assert_eq!(
        *warned,
        [format!(
            "window 1: {dropped} records dropped by CUPTI, {dropped} buffer requests refused \
             because the buffer pool was full; raise max_buffer_mb"
        )]
    );
}

#[test]
fn drops_count_in_their_window_even_with_no_buffer_after_them() {
    let (_serial, cupti) = double::take();
    let sink = Arc::new(Collect::default());
    let (warn, warned) = warnings();
    let mut config = config(&[Activity::Kernel]);
    config.max_iters = 1;
    config.repeat = 3;
    let profiler = Profiler::with_warnings(config, sink.clone(), warn);
    profiler.start();
    // Window 1: drops CUPTI reports with no completed buffer to carry them.
    cupti.drop_records(4);
    profiler.step();
    // Window 2: drops before a kernel, whose buffer completes at the flush.
    cupti.drop_records(2);
    assert_eq!(cupti.emit(&kernel(c"_Z1kv", 1, 7, 1)), 1);
    profiler.step();
    // Window 3: nothing lost.
    profiler.step();
    profiler.shutdown();

    let traces = sink.traces();
    assert_eq!(
        traces
            .iter()
            .map(|t| (
                t.info.window,
                t.info.dropped_records,
                t.info.refused_buffers
            ))
            .collect::<Vec<_>>(),
        [(1, 4, 0), (2, 2, 0), (3, 0, 0)]
    );
    assert_eq!(
        *warned.lock().unwrap(),
        [
            "window 1: 4 records dropped by CUPTI",
            "window 2: 2 records dropped by CUPTI"
        ]
    );
}

#[test]
fn a_failed_subscription_leaves_an_untraced_profiler() {
    let (_serial, cupti) = double::take();
    cupti.fail(
        "cuptiSubscribe",
        CUptiResult::CUPTI_ERROR_INSUFFICIENT_PRIVILEGES,
    );
    let sink = Arc::new(Collect::default());
    let (warn, warned) = warnings();
    let profiler = Profiler::with_warnings(all_activities(), sink.clone(), warn);
    assert!(!profiler.is_traced());
    profiler.start();
    let guard = profiler.annotate("nothing");
    assert_eq!(guard.external_id(), None);
    drop(guard);
    profiler.step();
    assert!(!profiler.is_recording());
    profiler.stop();
    profiler.shutdown();
    assert!(sink.traces().is_empty());
    assert!(!cupti.kind_enabled(CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL));
    let warned = warned.lock().unwrap();
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(
        warned[0].contains("cuptiSubscribe failed: CUPTI_ERROR_INSUFFICIENT_PRIVILEGES"),
        "{warned:?}"
    );
}

#[test]
fn another_cupti_client_leaves_an_untraced_profiler() {
    let (_serial, cupti) = double::take();
    cupti.report_multiple_subscribers(true);
    let (warn, warned) = warnings();
    let profiler = Profiler::with_warnings(all_activities(), Arc::new(Collect::default()), warn);
    assert!(!profiler.is_traced());
    profiler.start();
    assert!(!profiler.is_recording());
    drop(profiler);
    let warned = warned.lock().unwrap();
    assert_eq!(warned.len(), 1);
    assert!(warned[0].contains("another CUPTI client"), "{warned:?}");
}

#[test]
fn a_failing_setup_step_unsubscribes_again() {
    let (_serial, cupti) = double::take();
    cupti.fail(
        "cuptiActivityRegisterCallbacks",
        CUptiResult::CUPTI_ERROR_NOT_INITIALIZED,
    );
    let (warn, warned) = warnings();
    let profiler = Profiler::with_warnings(all_activities(), Arc::new(Collect::default()), warn);
    assert!(!profiler.is_traced());
    assert!(!cupti.subscribed());
    assert!(warned.lock().unwrap()[0].contains("cuptiActivityRegisterCallbacks failed"));
}

#[test]
fn a_second_profiler_in_the_process_is_untraced() {
    let (_serial, cupti) = double::take();
    let sink = Arc::new(Collect::default());
    let first = Profiler::with_warnings(config(&[Activity::Kernel]), sink.clone(), warnings().0);
    let (warn, warned) = warnings();
    let second = Profiler::with_warnings(config(&[Activity::Kernel]), sink.clone(), warn);
    assert!(first.is_traced());
    assert!(!second.is_traced());
    assert!(warned.lock().unwrap()[0].contains("already active"));
    drop(second);
    first.start();
    assert_eq!(kernel_per_iteration(cupti, 1), 1);
    first.stop();
    first.shutdown();
    assert_eq!(sink.traces().len(), 1);
}

struct Failing;

/// An error that leaves its cause to `source()`, as the exporter's do.
#[derive(Debug)]
struct NotWritten(std::io::Error);

impl std::fmt::Display for NotWritten {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not written")
    }
}

impl std::error::Error for NotWritten {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl TraceSink for Failing {
    fn window_finished(&self, _: Trace) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        Err(Box::new(NotWritten(std::io::Error::from_raw_os_error(28))))
    }
}

struct Panicking;

impl TraceSink for Panicking {
    fn window_finished(&self, _: Trace) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        panic!("sink bug")
    }
}

#[test]
fn sink_errors_and_panics_are_warnings() {
    for (sink, expected) in [
        (
            Arc::new(Failing) as Arc<dyn TraceSink>,
            "window 1: not written: No space left on device (os error 28)",
        ),
        (Arc::new(Panicking), "window 1: the trace sink panicked"),
    ] {
        let (_serial, _cupti) = double::take();
        let (warn, warned) = warnings();
        let profiler = Profiler::with_warnings(config(&[Activity::Kernel]), sink, warn);
        profiler.start();
        profiler.stop();
        profiler.shutdown();
        assert_eq!(*warned.lock().unwrap(), [expected]);
    }
}

/// A sink that waits for the test's word before taking the window.
struct Gate {
    open: Mutex<std::sync::mpsc::Receiver<()>>,
    waited: Mutex<Option<Result<(), RecvTimeoutError>>>,
}

impl TraceSink for Gate {
    fn window_finished(&self, _: Trace) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let outcome = self
            .open
            .lock()
            .unwrap()
            .recv_timeout(Duration::from_secs(30));
        *self.waited.lock().unwrap() = Some(outcome);
        Ok(())
    }
}

#[test]
fn stop_returns_while_the_window_is_written() {
    let (_serial, cupti) = double::take();
    let (open, gate) = channel();
    let sink = Arc::new(Gate {
        open: Mutex::new(gate),
        waited: Mutex::new(None),
    });
    let profiler = Profiler::with_warnings(config(&[Activity::Kernel]), sink.clone(), warnings().0);
    profiler.start();
    kernel_per_iteration(cupti, 1);
    profiler.stop();
    // Had stop() waited for the sink, the sink would have timed out by now.
    open.send(()).unwrap();
    profiler.shutdown();
    assert_eq!(*sink.waited.lock().unwrap(), Some(Ok(())));
}

#[test]
fn a_window_is_unwritten_from_its_beginning_until_the_sink_has_taken_it() {
    let (_serial, cupti) = double::take();
    let (open, gate) = channel();
    let sink = Arc::new(Gate {
        open: Mutex::new(gate),
        waited: Mutex::new(None),
    });
    let profiler = Profiler::with_warnings(config(&[Activity::Kernel]), sink.clone(), warnings().0);
    profiler.start();
    kernel_per_iteration(cupti, 1);
    kernel_per_iteration(cupti, 2);
    let recording = UnwrittenWindow {
        window: 1,
        events: None,
    };
    assert_eq!(profiler.unwritten(), [recording], "being recorded");
    profiler.stop();
    // The sink holds the window: its trace is built, with its two kernels and the
    // `ProfilerStep#1` range of its one iteration.
    let built = UnwrittenWindow {
        window: 1,
        events: Some(3),
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while profiler.unwritten() != [built] {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            profiler.unwritten()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(built.to_string(), "window 1 (3 events)");
    open.send(()).unwrap();
    profiler.shutdown();
    assert_eq!(profiler.unwritten(), []);
}

#[test]
fn graph_mode_records_graph_launches() {
    let (_serial, cupti) = double::take();
    let sink = Arc::new(Collect::default());
    let mut config = config(&[Activity::Kernel]);
    config.graph_mode = GraphMode::Graph;
    let profiler = Profiler::with_warnings(config, sink.clone(), warnings().0);
    profiler.start();
    assert!(cupti.kind_enabled(CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_GRAPH_TRACE));
    let mut launch: CUpti_ActivityGraphTrace2 = zero();
    launch.kind = CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_GRAPH_TRACE;
    launch.graphId = 5;
    launch.correlationId = 8;
    launch.start = 100;
    launch.end = 900;
    launch.streamId = 9;
    assert_eq!(cupti.emit(&launch), 1);
    profiler.stop();
    profiler.shutdown();
    let traces = sink.traces();
    let g = traces[0].graph_launches[0];
    assert_eq!(
        (g.graph_id, g.correlation, g.start, g.end, g.stream),
        (5, 8, 100, 900, 9)
    );
}

#[test]
fn gpu_work_still_running_at_the_flush_is_left_out_with_a_warning() {
    let (_serial, cupti) = double::take();
    let sink = Arc::new(Collect::default());
    let (warn, warned) = warnings();
    let profiler = Profiler::with_warnings(config(&[Activity::Kernel]), sink.clone(), warn);
    profiler.start();
    assert_eq!(cupti.emit(&kernel(c"_Z4donev", 1, 7, 1_000)), 1);
    let mut running = kernel(c"_Z7runningv", 2, 7, 2_000);
    running.end = 0;
    assert_eq!(cupti.emit(&running), 1);
    profiler.stop();
    profiler.shutdown();
    let traces = sink.traces();
    assert_eq!(traces[0].kernels.len(), 1);
    assert_eq!(traces[0].kernels[0].correlation, 1);
    assert_eq!(traces[0].info.incomplete_records, 1);
    assert_eq!(
        *warned.lock().unwrap(),
        [
            "window 1: 1 GPU records were still incomplete when the window was flushed and are left out"
        ]
    );
}

/// The callbacks the application's calls come through.
const RUNTIME_DOMAIN: CUpti_CallbackDomain = CUpti_CallbackDomain::CUPTI_CB_DOMAIN_RUNTIME_API;
const NVTX_DOMAIN: CUpti_CallbackDomain = CUpti_CallbackDomain::CUPTI_CB_DOMAIN_NVTX;
const ENTER: CUpti_ApiCallbackSite = CUpti_ApiCallbackSite::CUPTI_API_ENTER;
const EXIT: CUpti_ApiCallbackSite = CUpti_ApiCallbackSite::CUPTI_API_EXIT;
const PROFILER_START: u32 =
    CUpti_runtime_api_trace_cbid_enum::CUPTI_RUNTIME_TRACE_CBID_cudaProfilerStart_v4000.0;
const PROFILER_STOP: u32 =
    CUpti_runtime_api_trace_cbid_enum::CUPTI_RUNTIME_TRACE_CBID_cudaProfilerStop_v4000.0;
const RANGE_PUSH: u32 = CUpti_nvtx_api_trace_cbid::CUPTI_CBID_NVTX_nvtxRangePushA.0;
const RANGE_POP: u32 = CUpti_nvtx_api_trace_cbid::CUPTI_CBID_NVTX_nvtxRangePop.0;

/// Makes `profiler` follow the application's calls as the injection does (NVTX
/// ranges too when `nvtx`, a range `step` ending an iteration), showing `seen`
/// each call first.
fn follow_as_injected(
    profiler: &Arc<Profiler>,
    nvtx: bool,
    seen: impl Fn(&Control) + Send + Sync + 'static,
) {
    let weak: Weak<Profiler> = Arc::downgrade(profiler);
    profiler
        .follow_application(
            nvtx,
            Arc::new(move |control: Control| {
                seen(&control);
                let Some(profiler) = weak.upgrade() else {
                    return;
                };
                match control {
                    Control::ProfilerStart => profiler.start(),
                    Control::ProfilerStop => profiler.stop(),
                    Control::RangeEnd(name) if name == "step" => profiler.step(),
                    Control::RangeEnd(_) => {}
                }
            }),
        )
        .unwrap();
}

#[test]
fn the_application_drives_windows_through_callbacks() {
    let (_serial, cupti) = double::take();
    let sink = Arc::new(Collect::default());
    let profiler = Arc::new(Profiler::with_warnings(
        config(&[Activity::Kernel]),
        sink.clone(),
        warnings().0,
    ));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    follow_as_injected(&profiler, true, move |control| {
        log.lock().unwrap().push(control.clone())
    });
    let none: *const c_void = std::ptr::null();

    assert_eq!(
        cupti.invoke_callback(RUNTIME_DOMAIN, PROFILER_START, ENTER, none),
        1
    );
    assert!(
        !profiler.is_recording(),
        "a window begins when cudaProfilerStart returns"
    );
    assert_eq!(
        cupti.invoke_callback(RUNTIME_DOMAIN, PROFILER_START, EXIT, none),
        1
    );
    assert!(profiler.is_recording());
    for (iteration, name) in [(1, c"step"), (2, c"inner"), (3, c"step")] {
        kernel_per_iteration(cupti, iteration);
        let message: *const c_char = name.as_ptr();
        let params = (&raw const message).cast::<c_void>();
        assert_eq!(
            cupti.invoke_callback(NVTX_DOMAIN, RANGE_PUSH, ENTER, params),
            1
        );
        assert_eq!(
            cupti.invoke_callback(NVTX_DOMAIN, RANGE_POP, ENTER, none),
            1
        );
    }
    assert_eq!(
        cupti.invoke_callback(RUNTIME_DOMAIN, PROFILER_STOP, ENTER, none),
        1
    );
    assert!(!profiler.is_recording());
    profiler.shutdown();

    assert_eq!(
        *seen.lock().unwrap(),
        [
            Control::ProfilerStart,
            Control::RangeEnd("step".into()),
            Control::RangeEnd("inner".into()),
            Control::RangeEnd("step".into()),
            Control::ProfilerStop,
        ]
    );
    let traces = sink.traces();
    assert_eq!(traces.len(), 1);
    assert_eq!(traces[0].kernels.len(), 3);
    assert_eq!(
        traces[0]
            .iterations
            .iter()
            .map(|i| i.number)
            .collect::<Vec<_>>(),
        [1, 2, 3]
    );
}

/// How back-to-back windows are opened and closed by the application.
#[derive(Debug, Clone, Copy)]
enum BackToBack {
    /// `cudaProfilerStart()` … `cudaProfilerStop()` around each kernel.
    ProfilerApi,
    /// An NVTX range `step` ends after each kernel, with `max_iters: 1, repeat: 0`.
    NvtxStep,
}

/// Runs `windows` windows of one kernel each, with no gap between them, on a pool
/// of exactly one buffer: a window can only record its kernel if the buffer the
/// previous window's flush handed back is in the pool again when it begins.
fn back_to_back_windows(how: BackToBack, windows: u32) {
    let (_serial, cupti) = double::take();
    let sink = Arc::new(Collect::default());
    let (warn, warned) = warnings();
    let mut config = config(&[Activity::Kernel]);
    config.buffer_size = 1 << 20;
    config.max_buffer_mb = 1;
    if let BackToBack::NvtxStep = how {
        config.max_iters = 1;
        config.repeat = 0;
    }
    let profiler = Arc::new(Profiler::with_warnings(config, sink.clone(), warn));
    follow_as_injected(&profiler, matches!(how, BackToBack::NvtxStep), |_| {});
    let none: *const c_void = std::ptr::null();
    let step: *const c_char = c"step".as_ptr();
    let step = (&raw const step).cast::<c_void>();

    if let BackToBack::NvtxStep = how {
        profiler.start();
    }
    let mut refused = Vec::new();
    for window in 1..=windows {
        if let BackToBack::ProfilerApi = how {
            assert_eq!(
                cupti.invoke_callback(RUNTIME_DOMAIN, PROFILER_START, EXIT, none),
                1
            );
        }
        if kernel_per_iteration(cupti, window) != 1 {
            refused.push(window);
        }
        match how {
            BackToBack::ProfilerApi => {
                assert_eq!(
                    cupti.invoke_callback(RUNTIME_DOMAIN, PROFILER_STOP, ENTER, none),
                    1
                );
            }
            BackToBack::NvtxStep => {
                assert_eq!(
                    cupti.invoke_callback(NVTX_DOMAIN, RANGE_PUSH, ENTER, step),
                    1
                );
                assert_eq!(
                    cupti.invoke_callback(NVTX_DOMAIN, RANGE_POP, ENTER, none),
                    1
                );
            }
        }
    }
    profiler.shutdown();

    assert!(
        refused.is_empty(),
        "{how:?}: the kernels of {} of {windows} windows were dropped, from window {:?} on",
        refused.len(),
        refused.first()
    );
    assert_eq!(cupti.dropped_total(), 0);
    assert_eq!(cupti.outstanding_buffers(), 0);
    let traces = sink.traces();
    let seen: Vec<(u32, Vec<u64>, u64, u64)> = traces
        .iter()
        .map(|t| {
            (
                t.info.window,
                t.kernels.iter().map(|k| k.correlation).collect(),
                t.info.dropped_records,
                t.info.refused_buffers,
            )
        })
        .collect();
    let expected: Vec<(u32, Vec<u64>, u64, u64)> = (1..=windows)
        .map(|w| (w, vec![u64::from(w)], 0, 0))
        .collect();
    // With NVTX steps the window the last step opened is still open at shutdown:
    // it is written, empty.
    let open_at_shutdown = matches!(how, BackToBack::NvtxStep) as usize;
    assert_eq!(traces.len(), windows as usize + open_at_shutdown);
    assert_eq!(seen[..windows as usize], expected, "{how:?}");
    assert!(
        warned.lock().unwrap().is_empty(),
        "{how:?}: {:?}",
        warned.lock().unwrap()
    );
}

#[test]
fn back_to_back_profiler_api_windows_lose_nothing() {
    back_to_back_windows(BackToBack::ProfilerApi, 1_000);
}

#[test]
fn back_to_back_nvtx_step_windows_lose_nothing() {
    back_to_back_windows(BackToBack::NvtxStep, 1_000);
}

#[test]
fn records_completed_between_back_to_back_windows_are_kept() {
    let (_serial, cupti) = double::take();
    let sink = Arc::new(Collect::default());
    let (warn, warned) = warnings();
    let mut config = config(&[Activity::Kernel]);
    // A few records fill a buffer, so the double's own thread completes buffers
    // all the time, window boundaries included.
    config.buffer_size = 1024;
    config.max_iters = 1;
    config.repeat = 0;
    let profiler = Arc::new(Profiler::with_warnings(config, sink.clone(), warn));
    profiler.start();
    let emitted = 20_000;
    let written = std::thread::scope(|scope| {
        let other = scope.spawn(|| {
            (0..emitted)
                .filter(|&i| cupti.emit(&kernel(c"_Z5otherv", 1_000_000 + i, 8, 1)) == 1)
                .count()
        });
        let mut windows = 0;
        while !other.is_finished() || windows < 100 {
            windows += 1;
            profiler.step();
        }
        other.join().unwrap()
    });
    profiler.shutdown();
    let kept: usize = sink.traces().iter().map(|t| t.kernels.len()).sum();
    assert_eq!(written, emitted as usize);
    assert_eq!(
        kept, written,
        "records were thrown away at window boundaries"
    );
    assert!(
        warned.lock().unwrap().is_empty(),
        "{:?}",
        warned.lock().unwrap()
    );
}
