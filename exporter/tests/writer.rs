//! The trace writer end to end: traces built in code are written, read back and
//! checked with the validator and against exact expectations.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use cutrace_exporter::validate::{validate_trace_file, validate_trace_json};
use cutrace_exporter::{Encoding, WriteOptions, write_trace, write_trace_with};
use cutrace_tracer::Trace;
use cutrace_tracer::model::{
    ApiCall, ApiKind, CopyKind, Device, GraphLaunch, HostRange, Iteration, Kernel, LaunchConfig,
    Memcpy, MemoryKind, Memset, Overhead, RangeKind, SyncKind, Synchronization, ThreadName,
    TraceInfo,
};
use serde_json::Value;

const BASE: i64 = 1_700_000_000_000_000_000;
const PID: u32 = 4242;
const MAIN: u32 = 4242;
const WORKER: u32 = 4300;
const ODD_KERNEL: &str = "void k<\"q\">(\n\t\u{1})";

fn h100() -> Device {
    Device {
        id: 0,
        name: "NVIDIA H100 80GB HBM3".into(),
        total_global_mem: 85_520_809_984,
        compute_major: 9,
        compute_minor: 0,
        max_threads_per_block: 1024,
        max_threads_per_multiprocessor: 2048,
        regs_per_block: 65536,
        warp_size: 32,
        shared_mem_per_block: 49152,
        num_sms: 132,
        regs_per_multiprocessor: 65536,
        shared_mem_per_block_optin: 232_448,
        shared_mem_per_multiprocessor: 233_472,
    }
}

/// Builds traces event by event; times are nanoseconds after [`BASE`].
struct Builder {
    t: Trace,
}

impl Builder {
    fn new() -> Self {
        let info = TraceInfo {
            worker_name: "node1_4242".into(),
            rank: 3,
            world_size: 8,
            rank_known: true,
            host_name: "node1".into(),
            pid: PID,
            process_name: "python3".into(),
            cupti_version: 26,
            cuda_driver_version: 13000,
            cuda_runtime_version: 12080,
            window: 2,
            dropped_records: 5,
            refused_buffers: 2,
            unknown_records: 1,
            incomplete_records: 4,
            tracer_version: "0.1.0".into(),
        };
        let t = Trace {
            info,
            base_time_ns: BASE,
            ..Trace::default()
        };
        Builder { t }
    }

    fn api(
        &mut self,
        kind: ApiKind,
        name: &str,
        tid: u32,
        span: (i64, i64),
        corr: u64,
    ) -> &mut ApiCall {
        let name = self.t.names.intern(name);
        self.t.api_calls.push(ApiCall {
            start: BASE + span.0,
            end: BASE + span.1,
            correlation: corr,
            name,
            kind,
            cbid: if kind == ApiKind::Driver { 307 } else { 211 },
            pid: PID,
            tid,
            ..Default::default()
        });
        self.t.api_calls.last_mut().unwrap()
    }

    fn kernel(
        &mut self,
        name: &str,
        device: u32,
        stream: u32,
        span: (i64, i64),
        corr: u64,
    ) -> &mut Kernel {
        let name = self.t.names.intern(name);
        let config = self.t.intern_config(LaunchConfig {
            grid: [264, 2, 1],
            block: [128, 1, 1],
            registers_per_thread: 32,
            static_shared_memory: 1024,
            dynamic_shared_memory: 2048,
        });
        self.t.kernels.push(Kernel {
            start: BASE + span.0,
            end: BASE + span.1,
            correlation: corr,
            name,
            config,
            stream,
            context: 1,
            device,
            ..Default::default()
        });
        self.t.kernels.last_mut().unwrap()
    }

    fn range(
        &mut self,
        kind: RangeKind,
        name: &str,
        category: &str,
        tid: u32,
        span: (i64, i64),
    ) -> &mut HostRange {
        let name = self.t.names.intern(name);
        let category = self.t.names.intern(category);
        self.t.ranges.push(HostRange {
            start: BASE + span.0,
            end: BASE + span.1,
            name,
            category,
            kind,
            pid: PID,
            tid,
            ..Default::default()
        });
        self.t.ranges.last_mut().unwrap()
    }

    #[allow(clippy::too_many_arguments)]
    fn memcpy(
        &mut self,
        kind: CopyKind,
        src: MemoryKind,
        dst: MemoryKind,
        stream: u32,
        span: (i64, i64),
        bytes: u64,
        corr: u64,
    ) -> &mut Memcpy {
        self.t.memcpys.push(Memcpy {
            start: BASE + span.0,
            end: BASE + span.1,
            bytes,
            correlation: corr,
            kind,
            src_kind: src,
            dst_kind: dst,
            context: 1,
            stream,
            ..Default::default()
        });
        self.t.memcpys.last_mut().unwrap()
    }

    fn sync(&mut self, kind: SyncKind, stream: u32, span: (i64, i64), corr: u64) {
        self.t.syncs.push(Synchronization {
            start: BASE + span.0,
            end: BASE + span.1,
            correlation: corr,
            kind,
            stream,
            context: 1,
            device: 0,
            pid: PID,
            tid: MAIN,
            ..Default::default()
        });
    }
}

/// A window with a bit of everything (see the comments for what each part tests).
fn rich_trace() -> Trace {
    use ApiKind::{Driver, Runtime};
    let mut b = Builder::new();
    b.t.devices = vec![
        h100(),
        Device {
            id: 1,
            name: "unknown props".into(),
            ..Default::default()
        },
    ];
    b.t.threads = vec![
        ThreadName {
            pid: PID,
            tid: MAIN,
            name: "python3".into(),
        },
        ThreadName {
            pid: PID,
            tid: WORKER,
            name: "worker \"quoted\"\n".into(),
        },
    ];
    b.t.iterations = vec![
        Iteration {
            number: 3,
            start: BASE,
            end: BASE + 50_000,
        },
        Iteration {
            number: 4,
            start: BASE + 50_000,
            end: BASE + 120_000,
        },
    ];

    // Host ranges on the main thread: "step#1" starts before the base time;
    // "overlap" partially overlaps "step#1" and "forward" and needs a lane.
    b.range(RangeKind::Annotation, "step#1", "", MAIN, (-500, 100_000))
        .external_id = 501;
    b.range(RangeKind::Annotation, "forward", "", MAIN, (1_000, 50_000));
    b.range(
        RangeKind::Annotation,
        "overlap",
        "",
        MAIN,
        (40_000, 120_000),
    );
    b.range(
        RangeKind::Nvtx,
        "nvtx \"q\"\u{1}",
        "nvtx",
        MAIN,
        (2_000, 10_000),
    );
    // Iteration markers are not projected onto the GPU (HTA reads any event named
    // ProfilerStep as a host iteration).
    b.range(
        RangeKind::Annotation,
        "ProfilerStep#3",
        "",
        MAIN,
        (-500, 100_000),
    );
    // A torch operator read from a file keeps its category.
    b.range(
        RangeKind::CpuOp,
        "aten::mm",
        "cpu_op",
        WORKER,
        (14_500, 16_500),
    );

    b.api(Runtime, "cudaLaunchKernel", MAIN, (3_000, 4_000), 1);
    b.kernel("gemm", 0, 7, (20_000, 25_000), 1);
    b.api(Runtime, "cudaLaunchKernel", MAIN, (5_000, 6_000), 2);
    b.kernel(ODD_KERNEL, 0, 13, (21_000, 30_000), 2);
    b.api(Runtime, "cudaMemcpyAsync", MAIN, (7_000, 8_000), 3);
    b.memcpy(
        CopyKind::HtoD,
        MemoryKind::Pageable,
        MemoryKind::Device,
        7,
        (26_000, 27_000),
        1 << 20,
        3,
    );
    b.api(Driver, "cuLaunchKernel", MAIN, (11_000, 12_000), 4);
    b.kernel("triton_\u{1F600}", 0, 7, (28_000, 29_000), 4);
    b.api(Runtime, "cudaMemsetAsync", MAIN, (13_000, 14_000), 5);
    b.t.memsets.push(Memset {
        start: BASE + 29_500,
        end: BASE + 29_500,
        bytes: 4096,
        correlation: 5,
        memory_kind: MemoryKind::Device,
        context: 1,
        stream: 7,
        ..Default::default()
    });
    b.api(Runtime, "cudaMemcpy", MAIN, (60_000, 70_000), 6);
    b.memcpy(
        CopyKind::DtoH,
        MemoryKind::Device,
        MemoryKind::Pinned,
        7,
        (61_000, 62_000),
        3_000,
        6,
    );
    b.sync(SyncKind::StreamSync, 7, (60_500, 69_000), 6);
    // A replayed graph in per-node mode: two kernels share the launch's correlation.
    b.api(Runtime, "cudaGraphLaunch", MAIN, (71_000, 72_000), 7);
    let k = b.kernel("graph_node_a", 0, 13, (73_000, 74_000), 7);
    k.graph_id = 5;
    k.graph_node_id = 11;
    let k = b.kernel("graph_node_b", 0, 13, (74_000, 75_000), 7);
    k.graph_id = 5;
    k.graph_node_id = 12;
    b.api(Runtime, "cudaLaunchKernel", MAIN, (80_000, 81_000), 8)
        .external_id = 77;
    b.kernel("on_device_1", 1, 7, (82_000, 83_000), 8).queued = BASE + 81_500;
    b.api(Runtime, "cudaDeviceSynchronize", MAIN, (90_000, 95_000), 9);
    b.sync(SyncKind::ContextSync, u32::MAX, (90_100, 94_000), 9);
    b.api(Runtime, "cudaStreamIsCapturing", MAIN, (96_500, 96_600), 10);
    b.kernel("no_launch_seen", 0, 7, (100_000, 101_000), 11);
    // A peer copy issued from the worker thread, inside a torch operator.
    b.api(Runtime, "cudaMemcpyPeerAsync", WORKER, (15_000, 16_000), 12);
    let m = b.memcpy(
        CopyKind::PtoP,
        MemoryKind::Device,
        MemoryKind::Device,
        20,
        (30_000, 31_000),
        1 << 30,
        12,
    );
    m.src_device = 0;
    m.dst_device = 1;
    // A graph launch in graph-level mode.
    b.api(Runtime, "cudaGraphLaunch", WORKER, (17_000, 18_000), 13);
    b.t.graph_launches.push(GraphLaunch {
        start: BASE + 40_000,
        end: BASE + 45_000,
        correlation: 13,
        graph_id: 9,
        device: 0,
        context: 1,
        stream: 21,
    });
    // Bad input: a kernel overlapping another on the same stream.
    b.kernel("overlapping", 0, 13, (25_000, 35_000), 14);
    let name = b.t.names.intern("CUPTI buffer flush");
    b.t.overheads.push(Overhead {
        start: BASE + 96_000,
        end: BASE + 97_000,
        name,
        pid: PID,
        tid: MAIN,
    });
    b.t
}

fn read_gz(path: &Path) -> String {
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    text
}

struct Written {
    text: String,
    events: Vec<Value>,
    stats: cutrace_exporter::WriteStats,
}

fn write_and_read(trace: &Trace, options: &WriteOptions) -> Written {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.1.pt.trace.json.gz");
    let stats = write_trace_with(trace, &path, options).unwrap();
    let violations = validate_trace_file(&path).unwrap();
    assert!(violations.is_empty(), "{violations:#?}");
    let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(entries.len(), 1, "temporary file left behind: {entries:?}");
    let text = read_gz(&path);
    let top: Value = serde_json::from_str(&text).unwrap();
    let events = top["traceEvents"].as_array().unwrap().clone();
    Written {
        text,
        events,
        stats,
    }
}

fn by_cat<'a>(events: &'a [Value], cat: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["cat"] == cat && e["ph"] == "X")
        .collect()
}

fn one<'a>(events: &'a [Value], cat: &str, name: &str) -> &'a Value {
    let found: Vec<_> = by_cat(events, cat)
        .into_iter()
        .filter(|e| e["name"] == name)
        .collect();
    assert_eq!(found.len(), 1, "{cat} {name}: {found:?}");
    found[0]
}

/// The raw text of the `X` event of category `cat` named `name` (unique in these
/// tests), up to the end of its line.
fn raw_event<'a>(text: &'a str, cat: &str, name: &str) -> &'a str {
    let key = format!(
        "\"cat\":\"{cat}\",\"name\":{}",
        serde_json::to_string(name).unwrap()
    );
    let at = text.find(&key).unwrap_or_else(|| panic!("{key}"));
    let from = text[..at].rfind('{').unwrap();
    let to = at + text[at..].find('\n').unwrap_or(text.len() - at);
    &text[from..to]
}

/// A file's text up to its traceName, which differs between files.
fn without_trace_name(text: &str) -> &str {
    &text[..text.rfind("\"traceName\"").unwrap()]
}

#[test]
fn rich_trace_has_the_expected_events_per_category() {
    let w = write_and_read(&rich_trace(), &WriteOptions::default());
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for e in &w.events {
        *counts
            .entry(format!(
                "{}:{}",
                e["ph"].as_str().unwrap(),
                e["cat"].as_str().unwrap_or("")
            ))
            .or_default() += 1;
    }
    let expected: BTreeMap<String, usize> = [
        ("X:kernel", 8),
        ("X:gpu_memcpy", 3),
        ("X:gpu_memset", 1),
        ("X:cuda_runtime", 11),
        ("X:cuda_driver", 1),
        ("X:cuda_sync", 2),
        ("X:user_annotation", 5),
        ("X:cpu_op", 1),
        ("X:gpu_user_annotation", 10),
        ("X:cuda_graph", 1),
        ("X:overhead", 1),
        ("s:ac2g", 10),
        ("f:ac2g", 10),
        // 3 processes × 3, and 2 threads + 1 lane on the host, streams 7, 13,
        // 20, 21 and one lane on device 0, stream 7 on device 1: 9 tracks × 2.
        ("M:", 9 + 18),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(counts, expected);
    assert_eq!(w.stats.events, w.events.len());
    assert_eq!(w.stats.extra_lanes, 2);
    assert_eq!(w.stats.dropped_slices, 0);
    assert_eq!(w.stats.bytes_uncompressed, w.text.len() as u64);
}

#[test]
fn top_level_keys_come_in_kineto_order_with_our_metadata() {
    let w = write_and_read(&rich_trace(), &WriteOptions::default());
    let keys = [
        "\"schemaVersion\": 1,",
        "\"deviceProperties\": [",
        "\"cupti_version\": 26,",
        "\"cuda_driver_version\": 13000,",
        "\"cuda_runtime_version\": 12080,",
        "\"host_name\": \"node1\",",
        "\"dropped_records\": 5,",
        "\"refused_buffers\": 2,",
        "\"unknown_records\": 1,",
        "\"incomplete_records\": 4,",
        "\"window\": 2,",
        "\"iterations\": [3, 4],",
        "\"tracer_version\": \"0.1.0\",",
        "\"distributedInfo\": {\"rank\": 3, \"world_size\": 8},",
        "\"displayTimeUnit\": \"ms\",",
        "\"baseTimeNanoseconds\": 1700000000000000000,",
        "\"traceEvents\": [",
        "\"traceName\": \"",
    ];
    let mut at = 0;
    for key in keys {
        let found = w.text[at..]
            .find(key)
            .unwrap_or_else(|| panic!("{key} missing or out of order"));
        at += found + key.len();
    }
    let top: Value = serde_json::from_str(&w.text).unwrap();
    let d = &top["deviceProperties"][0];
    assert_eq!(d["name"], "NVIDIA H100 80GB HBM3");
    assert_eq!(d["numSms"], 132);
    assert_eq!(d["sharedMemPerBlockOptin"], 232_448);
    assert_eq!(top["deviceProperties"].as_array().unwrap().len(), 2);
    assert!(
        top["traceName"]
            .as_str()
            .unwrap()
            .ends_with("w.1.pt.trace.json.gz")
    );
}

#[test]
fn metadata_events_come_first_and_name_processes_threads_and_lanes() {
    let w = write_and_read(&rich_trace(), &WriteOptions::default());
    let first_other = w.events.iter().position(|e| e["ph"] != "M").unwrap();
    assert!(w.events[first_other..].iter().all(|e| e["ph"] != "M"));
    let meta = |name: &str, pid: u32, tid: u32| -> Value {
        let found: Vec<_> = w.events[..first_other]
            .iter()
            .filter(|e| e["name"] == name && e["pid"] == pid && e["tid"] == tid)
            .collect();
        assert_eq!(found.len(), 1, "{name} {pid} {tid}");
        found[0]["args"].clone()
    };
    assert_eq!(meta("process_labels", PID, 0)["labels"], "CPU");
    assert_eq!(meta("process_labels", 0, 0)["labels"], "GPU 0");
    assert_eq!(meta("process_labels", 1, 0)["labels"], "GPU 1");
    assert_eq!(meta("process_name", 1, 0)["name"], "python3");
    assert_eq!(meta("process_sort_index", 1, 0)["sort_index"], 0x100_0001);
    assert_eq!(meta("process_sort_index", PID, 0)["sort_index"], PID);
    assert_eq!(
        meta("thread_name", PID, MAIN)["name"],
        "thread 4242 (python3)"
    );
    assert_eq!(
        meta("thread_name", PID, WORKER)["name"],
        "thread 4300 (worker \"quoted\"\n)"
    );
    assert_eq!(meta("thread_name", 0, 13)["name"], "stream 13 ");
    assert_eq!(meta("thread_sort_index", 0, 13)["sort_index"], 13);

    // "overlap" went to the main thread's second lane, named after it.
    let overlap = one(&w.events, "user_annotation", "overlap");
    let lane = overlap["tid"].as_u64().unwrap() as u32;
    assert_ne!(lane, MAIN);
    assert!(
        i32::try_from(lane).is_ok(),
        "lane tid {lane} is not an int32"
    );
    assert_eq!(overlap["pid"], PID);
    assert_eq!(
        meta("thread_name", PID, lane)["name"],
        "thread 4242 (python3) lane 2"
    );
    assert_eq!(meta("thread_sort_index", PID, lane)["sort_index"], MAIN);
    // Everything else of the main thread stayed on it.
    for name in ["step#1", "forward", "ProfilerStep#3"] {
        assert_eq!(one(&w.events, "user_annotation", name)["tid"], MAIN);
    }
    // The kernel overlapping another on stream 13 went to a lane of that stream,
    // keeping its real stream in its args.
    let k = one(&w.events, "kernel", "overlapping");
    assert_ne!(k["tid"], 13);
    assert_eq!(k["args"]["stream"], 13);
    let lane = k["tid"].as_u64().unwrap() as u32;
    assert_eq!(meta("thread_name", 0, lane)["name"], "stream 13 lane 2");
}

#[test]
fn kernels_carry_kineto_args() {
    let w = write_and_read(&rich_trace(), &WriteOptions::default());
    let k = one(&w.events, "kernel", "gemm");
    assert_eq!(k["pid"], 0);
    assert_eq!(k["tid"], 7);
    let a = &k["args"];
    assert_eq!(a["device"], 0);
    assert_eq!(a["context"], 1);
    assert_eq!(a["stream"], 7);
    assert_eq!(a["correlation"], 1);
    assert_eq!(a["registers per thread"], 32);
    assert_eq!(a["shared memory"], 3072);
    assert_eq!(a["grid"], serde_json::json!([264, 2, 1]));
    assert_eq!(a["block"], serde_json::json!([128, 1, 1]));
    // 528 blocks on 132 SMs, 4 warps each; 16 resident blocks, 64 warps per SM.
    assert_eq!(a["blocks per SM"], 4.0);
    assert_eq!(a["warps per SM"], 16.0);
    assert_eq!(a["est. achieved occupancy %"], 25);
    for absent in ["graph id", "graph node id", "queued", "External id"] {
        assert!(a.get(absent).is_none(), "{absent}");
    }
    let raw = raw_event(&w.text, "kernel", "gemm");
    assert!(
        raw.contains("\"blocks per SM\":4.000000,\"warps per SM\":16.000000"),
        "{raw}"
    );

    let g = one(&w.events, "kernel", "graph_node_a");
    assert_eq!(g["args"]["graph id"], 5);
    assert_eq!(g["args"]["graph node id"], 11);
    assert_eq!(g["args"]["correlation"], 7);

    // No device properties: no per-SM figures. The launch's external id and the
    // queue time (µs on the file's time base) are carried over.
    let d1 = one(&w.events, "kernel", "on_device_1");
    assert_eq!(d1["pid"], 1);
    for absent in ["blocks per SM", "warps per SM", "est. achieved occupancy %"] {
        assert!(d1["args"].get(absent).is_none(), "{absent}");
    }
    assert_eq!(d1["args"]["External id"], 77);
    assert_eq!(d1["args"]["queued"], 81);

    // Names survive escaping.
    one(&w.events, "kernel", ODD_KERNEL);
    one(&w.events, "kernel", "triton_\u{1F600}");
    assert!(w.text.contains(r#""name":"void k<\"q\">(\n\t\u0001)""#));
}

#[test]
fn memcpys_memsets_syncs_and_graphs_are_named_from_their_kinds() {
    let w = write_and_read(&rich_trace(), &WriteOptions::default());
    let h2d = one(&w.events, "gpu_memcpy", "Memcpy HtoD (Pageable -> Device)");
    assert_eq!(h2d["args"]["bytes"], 1 << 20);
    assert_eq!(h2d["args"]["memory bandwidth (GB/s)"], 1048.576);
    assert_eq!(h2d["args"]["stream"], 7);
    let d2h = one(&w.events, "gpu_memcpy", "Memcpy DtoH (Device -> Pinned)");
    assert_eq!(d2h["args"]["memory bandwidth (GB/s)"], 3.0);
    let p2p = one(&w.events, "gpu_memcpy", "Memcpy PtoP (Device -> Device)");
    assert_eq!(p2p["args"]["fromDevice"], 0);
    assert_eq!(p2p["args"]["toDevice"], 1);
    assert_eq!(p2p["tid"], 20);

    let ms = one(&w.events, "gpu_memset", "Memset (Device)");
    assert_eq!(ms["args"]["bytes"], 4096);
    assert!(
        ms["args"].get("memory bandwidth (GB/s)").is_none(),
        "dur 0: no bandwidth"
    );
    assert!(raw_event(&w.text, "gpu_memset", "Memset (Device)").contains("\"dur\":0.000"));

    let ss = one(&w.events, "cuda_sync", "Stream Sync");
    assert_eq!(
        (ss["pid"].as_u64(), ss["tid"].as_u64()),
        (Some(PID.into()), Some(MAIN.into()))
    );
    assert_eq!(ss["args"]["stream"], 7);
    assert_eq!(ss["args"]["correlation"], 6);
    assert_eq!(ss["args"]["cuda_sync_kind"], "Stream Sync");
    let cs = one(&w.events, "cuda_sync", "Context Sync");
    assert_eq!(cs["args"]["stream"], -1);

    let g = one(&w.events, "cuda_graph", "Graph 9");
    assert_eq!(g["args"]["graph id"], 9);
    assert_eq!((g["pid"].as_u64(), g["tid"].as_u64()), (Some(0), Some(21)));

    let drv = one(&w.events, "cuda_driver", "cuLaunchKernel");
    assert_eq!(drv["args"]["cbid"], 307);
    assert_eq!(drv["args"]["correlation"], 4);
    let ext: Vec<_> = by_cat(&w.events, "cuda_runtime")
        .into_iter()
        .filter(|e| e["args"].get("External id").is_some())
        .collect();
    assert_eq!(ext.len(), 1);
    assert_eq!(ext[0]["args"]["External id"], 77);

    one(&w.events, "cpu_op", "aten::mm");
    one(&w.events, "user_annotation", "nvtx \"q\"\u{1}");
    one(&w.events, "overhead", "CUPTI buffer flush");
}

#[test]
fn flows_link_each_launch_to_its_first_gpu_event() {
    let w = write_and_read(&rich_trace(), &WriteOptions::default());
    let mut pairs: BTreeMap<u64, (Option<&Value>, Option<&Value>)> = BTreeMap::new();
    for e in w.events.iter().filter(|e| e["cat"] == "ac2g") {
        let slot = pairs.entry(e["id"].as_u64().unwrap()).or_default();
        if e["ph"] == "s" {
            slot.0 = Some(e)
        } else {
            slot.1 = Some(e)
        }
    }
    assert_eq!(
        pairs.keys().copied().collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5, 6, 7, 8, 12, 13]
    );
    let (s, f) = pairs[&1];
    let (s, f) = (s.unwrap(), f.unwrap());
    assert_eq!(
        (s["pid"].as_u64(), s["tid"].as_u64()),
        (Some(PID.into()), Some(MAIN.into()))
    );
    assert_eq!((f["pid"].as_u64(), f["tid"].as_u64()), (Some(0), Some(7)));
    assert_eq!(f["bp"], "e");
    assert!(s.get("bp").is_none());
    assert_eq!(s["name"], "ac2g");
    assert_eq!(f["name"], "ac2g");
    assert!(w.text.contains(
        r#"{"ph":"s","id":1,"pid":4242,"tid":4242,"ts":3.000,"cat":"ac2g","name":"ac2g"}"#
    ));
    assert!(w.text.contains(
        r#"{"ph":"f","id":1,"pid":0,"tid":7,"ts":20.000,"cat":"ac2g","name":"ac2g","bp":"e"}"#
    ));
    // The graph's flow ends on its first node only.
    let (_, f) = pairs[&7];
    assert!(
        w.text
            .contains(r#"{"ph":"f","id":7,"pid":0,"tid":13,"ts":73.000,"#)
    );
    assert!(f.is_some());
}

#[test]
fn annotations_are_projected_onto_each_stream_they_launched_work_on() {
    let w = write_and_read(&rich_trace(), &WriteOptions::default());
    let mut got: Vec<(String, u64, u64, String, String)> = by_cat(&w.events, "gpu_user_annotation")
        .into_iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_owned(),
                e["pid"].as_u64().unwrap(),
                e["args"]["External id"].as_u64().unwrap_or(0),
                e["ts"].to_string(),
                e["dur"].to_string(),
            )
        })
        .collect();
    got.sort();
    let want = |n: &str, pid: u64, ext: u64, ts: &str, dur: &str| {
        (n.to_owned(), pid, ext, ts.to_owned(), dur.to_owned())
    };
    let nvtx = "nvtx \"q\"\u{1}";
    let mut expected = vec![
        want("forward", 0, 0, "20.0", "9.5"),
        want("forward", 0, 0, "21.0", "9.0"),
        want(nvtx, 0, 0, "20.0", "7.0"),
        want(nvtx, 0, 0, "21.0", "9.0"),
        want("overlap", 0, 0, "61.0", "1.0"),
        want("overlap", 0, 0, "73.0", "2.0"),
        want("overlap", 1, 0, "82.0", "1.0"),
        want("step#1", 0, 501, "20.0", "42.0"),
        want("step#1", 0, 501, "21.0", "54.0"),
        want("step#1", 1, 501, "82.0", "1.0"),
    ];
    expected.sort();
    assert_eq!(got, expected);
}

#[test]
fn times_are_relative_microseconds_with_three_decimals() {
    let w = write_and_read(&rich_trace(), &WriteOptions::default());
    std::fs::write("/tmp/rich.json", &w.text).unwrap();
    let step = raw_event(&w.text, "user_annotation", "step#1");
    assert!(step.contains("\"ts\":-0.500,\"dur\":100.500"), "{step}");
    let k = raw_event(&w.text, "kernel", "gemm");
    assert!(k.contains("\"ts\":20.000,\"dur\":5.000"), "{k}");
}

#[test]
fn a_file_of_many_gzip_members_reads_whole_only_with_a_multi_member_decoder() {
    let trace = rich_trace();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.pt.trace.json.gz");
    let options = WriteOptions {
        chunk_events: 3,
        ..WriteOptions::default()
    };
    write_trace_with(&trace, &path, &options).unwrap();
    let whole = read_gz(&path);
    let mut first_member = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap())
        .read_to_string(&mut first_member)
        .unwrap();
    assert!(
        first_member.len() < whole.len() / 2,
        "{} vs {}",
        first_member.len(),
        whole.len()
    );
    assert!(whole.starts_with(&first_member));
    // Chunking does not change the text.
    let one_chunk = write_and_read(
        &trace,
        &WriteOptions {
            chunk_events: 1 << 20,
            ..WriteOptions::default()
        },
    );
    assert_eq!(
        without_trace_name(&whole),
        without_trace_name(&one_chunk.text)
    );
}

#[test]
fn plain_encoding_writes_the_same_text_uncompressed() {
    let trace = rich_trace();
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("a.json.gz");
    let plain = dir.path().join("a.json");
    write_trace(&trace, &gz).unwrap();
    let stats = write_trace_with(
        &trace,
        &plain,
        &WriteOptions {
            encoding: Encoding::Plain,
            ..WriteOptions::default()
        },
    )
    .unwrap();
    let text = std::fs::read_to_string(&plain).unwrap();
    assert_eq!(stats.bytes_written, text.len() as u64);
    assert_eq!(without_trace_name(&text), without_trace_name(&read_gz(&gz)));
    assert!(validate_trace_json(&text).is_empty());
}

#[test]
fn a_failed_write_leaves_nothing_behind() {
    let trace = rich_trace();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no/such/dir/t.pt.trace.json.gz");
    let err = write_trace(&trace, &missing).unwrap_err();
    assert!(err.to_string().contains("no/such/dir"), "{err}");
    assert!(!missing.exists());

    // A parent that is a file, not a directory.
    let file = dir.path().join("plain");
    std::fs::write(&file, b"x").unwrap();
    let under_file = file.join("t.pt.trace.json.gz");
    assert!(write_trace(&trace, &under_file).is_err());
    let entries: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, vec![std::ffi::OsString::from("plain")]);
}

#[test]
fn an_existing_target_is_replaced_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.pt.trace.json.gz");
    std::fs::write(&path, b"old").unwrap();
    write_trace(&rich_trace(), &path).unwrap();
    assert!(validate_trace_file(&path).unwrap().is_empty());
}

#[test]
fn an_empty_trace_is_still_a_valid_file() {
    let w = write_and_read(&Builder::new().t, &WriteOptions::default());
    assert!(w.events.is_empty());
    assert_eq!(w.stats.events, 0);
}

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn span(&mut self, horizon: i64) -> (i64, i64) {
        let start = self.below(horizon as u64 * 2) as i64 - horizon / 2;
        let len = if self.below(8) == 0 {
            0
        } else {
            self.below(horizon as u64 / 4) as i64
        };
        (start, start + len)
    }
}

fn random_trace(seed: u64) -> Trace {
    let mut r = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut b = Builder::new();
    b.t.devices = vec![h100()];
    let names = ["a", "b\"q\"", "c\n\u{7}", "δ", "e\\"];
    let horizon = 1 + r.below(50_000) as i64;
    let threads = [MAIN, WORKER, u32::MAX];
    let streams = [7, 13, 0, u32::MAX - 1];
    let n = r.below(120);
    for corr in 1..=n {
        let tid = threads[r.below(3) as usize];
        let name = names[r.below(5) as usize];
        if r.below(4) != 0 {
            let kind = if r.below(5) == 0 {
                ApiKind::Driver
            } else {
                ApiKind::Runtime
            };
            b.api(kind, name, tid, r.span(horizon), corr).external_id = r.below(3);
        }
        match r.below(6) {
            0 => {
                let span = r.span(horizon);
                b.memcpy(
                    CopyKind::HtoD,
                    MemoryKind::Pinned,
                    MemoryKind::Device,
                    streams[r.below(4) as usize],
                    span,
                    r.below(1 << 20),
                    corr,
                );
            }
            1 => b.sync(SyncKind::EventSync, 7, r.span(horizon), corr),
            2 => {}
            _ => {
                let device = r.below(2) as u32;
                let span = r.span(horizon);
                let stream = streams[r.below(4) as usize];
                b.kernel(name, device, stream, span, corr).graph_id = r.below(2) as u32;
            }
        }
        if r.below(3) == 0 {
            let kind = [
                RangeKind::Annotation,
                RangeKind::Nvtx,
                RangeKind::CpuOp,
                RangeKind::Other,
            ][r.below(4) as usize];
            b.range(kind, name, "python_function", tid, r.span(horizon));
        }
    }
    b.t
}

#[test]
fn random_traces_always_validate() {
    for seed in 0..200 {
        let trace = random_trace(seed);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.pt.trace.json.gz");
        let options = WriteOptions {
            chunk_events: 1 + seed as usize % 17,
            ..WriteOptions::default()
        };
        let stats = write_trace_with(&trace, &path, &options).unwrap();
        let violations = validate_trace_file(&path).unwrap();
        assert!(violations.is_empty(), "seed {seed}: {violations:#?}");
        // Every event of the trace is in the file.
        let top: Value = serde_json::from_str(&read_gz(&path)).unwrap();
        let events = top["traceEvents"].as_array().unwrap();
        let written = events
            .iter()
            .filter(|e| e["ph"] == "X" && e["cat"] != "gpu_user_annotation")
            .count();
        assert_eq!(written, trace.event_count(), "seed {seed}");
        assert_eq!(stats.dropped_slices, 0, "seed {seed}");
        assert_eq!(stats.events, events.len(), "seed {seed}");
    }
}

#[test]
fn slices_beyond_the_lane_cap_are_dropped_with_their_flows() {
    // A staircase of launch calls that all partially overlap each other: each one
    // needs a lane of its own, and the cap is 1024 lanes per track.
    let mut b = Builder::new();
    let n = 1030;
    for i in 0..n {
        let corr = i as u64 + 1;
        b.api(
            ApiKind::Runtime,
            "cudaLaunchKernel",
            MAIN,
            (i, 1_000_000 + i),
            corr,
        );
        b.kernel(
            "k",
            0,
            7,
            (2_000_000 + 10 * i, 2_000_000 + 10 * i + 5),
            corr,
        );
    }
    // Once the staircase has ended, a call fits the first lane again.
    b.api(
        ApiKind::Runtime,
        "cudaDeviceSynchronize",
        MAIN,
        (3_000_000, 3_000_100),
        0,
    );
    let w = write_and_read(&b.t, &WriteOptions::default());
    assert_eq!(w.stats.dropped_slices, 6);
    assert_eq!(w.stats.extra_lanes, 1023);
    let calls = by_cat(&w.events, "cuda_runtime");
    assert_eq!(calls.len(), 1025);
    let after = calls
        .iter()
        .filter(|e| e["name"] == "cudaDeviceSynchronize");
    assert_eq!(after.map(|e| &e["tid"]).collect::<Vec<_>>(), [MAIN]);
    assert_eq!(by_cat(&w.events, "kernel").len(), n as usize);
    let finishes = w.events.iter().filter(|e| e["ph"] == "f").count();
    assert_eq!(finishes, 1024);
}

#[test]
fn a_host_pid_that_is_also_a_device_index_moves_to_a_pid_of_its_own() {
    // A kernel of device 4037 and host slices of process 4037: one pid cannot be
    // labelled both GPU and CPU, and a reader drops host slices on a GPU's pid.
    let mut t = Trace {
        base_time_ns: BASE,
        ..Trace::default()
    };
    let kernel = t.names.intern("k");
    let range = t.names.intern("step");
    t.kernels.push(Kernel {
        start: BASE + 1_000,
        end: BASE + 2_000,
        name: kernel,
        device: 4037,
        stream: 7,
        ..Default::default()
    });
    t.ranges.push(HostRange {
        start: BASE,
        end: BASE + 5_000,
        name: range,
        kind: RangeKind::Annotation,
        pid: 4037,
        tid: 12,
        ..Default::default()
    });
    t.threads.push(ThreadName {
        pid: 4037,
        tid: 12,
        name: "main".into(),
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clash.pt.trace.json.gz");
    write_trace(&t, &path).unwrap();
    assert_eq!(validate_trace_file(&path).unwrap(), []);
    let back = cutrace_exporter::read_trace(&path).unwrap();
    assert_eq!((back.kernels.len(), back.ranges.len()), (1, 1));
    assert_eq!(back.kernels[0].device, 4037);
    assert_ne!(back.ranges[0].pid, 4037);
    let thread = back
        .threads
        .iter()
        .find(|th| th.pid == back.ranges[0].pid)
        .unwrap();
    assert_eq!(thread.name, "main");
}

#[test]
fn a_host_track_on_a_gpu_stream_track_moves_to_a_pid_of_its_own() {
    // A copy on device 0, stream 0 and a host slice of process 0, thread 0: the same
    // (pid, tid) pair, which once made one track of both, labelled GPU, and the
    // reader then dropped the host slice (found by fuzzing).
    let mut t = Trace {
        base_time_ns: BASE,
        ..Trace::default()
    };
    t.memcpys.push(Memcpy {
        start: BASE + 1_000,
        end: BASE + 3_000,
        ..Default::default()
    });
    t.ranges.push(HostRange {
        start: BASE + 5_000,
        end: BASE + 8_000,
        name: t.names.intern("j"),
        kind: RangeKind::Annotation,
        ..Default::default()
    });
    let w = write_and_read(&t, &WriteOptions::default());
    assert_eq!(validate_trace_json(&w.text), []);
    let back = cutrace_exporter::read_trace_from(w.text.as_bytes(), Path::new("t.json")).unwrap();
    assert_eq!((back.memcpys.len(), back.ranges.len()), (1, 1));
    assert_eq!(back.memcpys[0].device, 0);
    assert_ne!(back.ranges[0].pid, 0);
}
