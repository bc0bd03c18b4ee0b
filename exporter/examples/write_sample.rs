//! Writes small sample traces with known GPU times, for checking the writer's
//! output with other tools (scripts/ci/hta_check.py reads them with
//! HolisticTraceAnalysis).
//!
//! ```text
//! cargo run -p cutrace-exporter --example write_sample -- DIR
//! ```
//!
//! Writes two ranks of three `ProfilerStep#<n>` iterations twice: `DIR/us/` with
//! every time on a whole microsecond (HTA rounds nanosecond times inwards to whole
//! microseconds by default, which these survive exactly) and `DIR/ns/` with
//! nanosecond times. Prints, as one JSON object, the total duration in
//! microseconds of each GPU event name per rank, of all iterations and of those
//! before the last (HTA leaves the last out by default):
//! `{"us": {"all": {"0": {"<name>": <us>, ...}, "1": {...}}, "before_last": {...}},
//! "ns": {...}}`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Parser;
use cutrace_exporter::{trace_file_name, write_trace};
use cutrace_tracer::Trace;
use cutrace_tracer::model::{
    ApiCall, CopyKind, Device, HostRange, Kernel, LaunchConfig, Memcpy, MemoryKind, Memset,
    RangeKind, ThreadName,
};

#[derive(Parser)]
struct Args {
    /// Directory to write the traces into (created when missing).
    dir: PathBuf,
}

const KERNELS: [&str; 3] = [
    "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64",
    "void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<float>, at::detail::Array<char*, 3> >(int, at::native::CUDAFunctor_add<float>, at::detail::Array<char*, 3>)",
    "ncclDevKernel_AllReduce_Sum_f32_RING_LL(ncclDevComm*, unsigned long, ncclWork*)",
];

/// Per GPU event name, total duration in ns.
type Totals = BTreeMap<String, i64>;

/// Launches per iteration.
const PER_STEP: i64 = 20;

/// Iterations per window.
const STEPS: i64 = 3;

/// One rank's window: a launch every 20 µs on one host thread, its GPU work on one
/// of two streams, in three `ProfilerStep#<n>` annotations. `ns` adds
/// sub-microsecond offsets to every time. Returns the trace and the totals of all
/// iterations and of those before the last.
fn sample_trace(rank: u32, ns: bool) -> (Trace, Totals, Totals) {
    let base: i64 = 1_750_000_000_000_000_000;
    let jitter = |i: i64| {
        if ns {
            (i * 137 + i64::from(rank) * 59) % 1000
        } else {
            0
        }
    };
    let mut t = Trace {
        base_time_ns: base,
        ..Trace::default()
    };
    t.info.worker_name = format!("sample_rank{rank}");
    t.info.rank = rank;
    t.info.world_size = 2;
    t.info.host_name = "sample".into();
    t.info.pid = 1000 + rank;
    t.info.process_name = "python3".into();
    t.info.tracer_version = env!("CARGO_PKG_VERSION").into();
    t.devices.push(Device {
        id: rank,
        name: "NVIDIA H100 80GB HBM3".into(),
        compute_major: 9,
        max_threads_per_block: 1024,
        max_threads_per_multiprocessor: 2048,
        regs_per_block: 65536,
        warp_size: 32,
        shared_mem_per_block: 49152,
        num_sms: 132,
        regs_per_multiprocessor: 65536,
        shared_mem_per_block_optin: 232_448,
        shared_mem_per_multiprocessor: 233_472,
        ..Default::default()
    });
    let (pid, tid) = (1000 + rank, 1000 + rank);
    t.threads.push(ThreadName {
        pid,
        tid,
        name: "python3".into(),
    });
    let config = t.intern_config(LaunchConfig {
        grid: [264, 1, 1],
        block: [256, 1, 1],
        registers_per_thread: 64,
        ..Default::default()
    });
    let launch = t.names.intern("cudaLaunchKernel");
    let copy = t.names.intern("cudaMemcpyAsync");
    let set = t.names.intern("cudaMemsetAsync");
    let (mut all, mut before_last) = (Totals::new(), Totals::new());
    for i in 0..PER_STEP * STEPS {
        let correlation = i as u64 + 1;
        let start = base + 20_000 * i + jitter(i);
        let gpu_start = start + 8_000 + jitter(i + 1);
        let dur = 1_000 * (1 + (i * 7 + i64::from(rank) * 3) % 9) + jitter(i + 2);
        let stream = [7, 13][(i % 2) as usize];
        let (api_name, name) = match i % 10 {
            3 => {
                t.memcpys.push(Memcpy {
                    start: gpu_start,
                    end: gpu_start + dur,
                    bytes: 1 << 20,
                    correlation,
                    kind: CopyKind::HtoD,
                    src_kind: MemoryKind::Pinned,
                    dst_kind: MemoryKind::Device,
                    device: rank,
                    src_device: rank,
                    dst_device: rank,
                    context: 1,
                    stream,
                    graph_node_id: 0,
                    name: None,
                });
                (copy, "Memcpy HtoD (Pinned -> Device)".to_owned())
            }
            7 => {
                t.memsets.push(Memset {
                    start: gpu_start,
                    end: gpu_start + dur,
                    bytes: 4096,
                    correlation,
                    memory_kind: MemoryKind::Device,
                    device: rank,
                    context: 1,
                    stream,
                    graph_node_id: 0,
                    name: None,
                });
                (set, "Memset (Device)".to_owned())
            }
            _ => {
                let kernel = KERNELS[(i % 3) as usize];
                let name = t.names.intern(kernel);
                t.kernels.push(Kernel {
                    start: gpu_start,
                    end: gpu_start + dur,
                    correlation,
                    name,
                    config,
                    stream,
                    context: 1,
                    device: rank,
                    ..Default::default()
                });
                (launch, kernel.to_owned())
            }
        };
        if i < PER_STEP * (STEPS - 1) {
            *before_last.entry(name.clone()).or_default() += dur;
        }
        *all.entry(name).or_default() += dur;
        t.api_calls.push(ApiCall {
            start,
            end: start + 3_000,
            correlation,
            name: api_name,
            cbid: 211,
            pid,
            tid,
            ..Default::default()
        });
    }
    let category = t.names.intern("user_annotation");
    for step in 0..STEPS {
        let name = t.names.intern(&format!("ProfilerStep#{}", step + 1));
        t.ranges.push(HostRange {
            start: base + 20_000 * PER_STEP * step - 1_000,
            end: base + 20_000 * PER_STEP * (step + 1) - 1_000,
            name,
            category,
            kind: RangeKind::Annotation,
            external_id: step as u64 + 1,
            pid,
            tid,
        });
    }
    (t, all, before_last)
}

/// Per rank, per GPU event name, total duration in µs.
type RankTotals = BTreeMap<String, BTreeMap<String, f64>>;

/// Writes both ranks into `dir` and returns their totals of all iterations and of
/// those before the last.
fn write_ranks(dir: &Path, ns: bool) -> anyhow::Result<serde_json::Value> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let in_us = |totals: Totals| -> BTreeMap<String, f64> {
        totals
            .into_iter()
            .map(|(name, total_ns)| (name, total_ns as f64 / 1000.0))
            .collect()
    };
    let (mut all, mut before_last) = (RankTotals::new(), RankTotals::new());
    for rank in 0..2 {
        let (trace, totals, totals_before_last) = sample_trace(rank, ns);
        let name = trace_file_name(&trace.info.worker_name, 1_750_000_000_000_000_000)?;
        write_trace(&trace, &dir.join(name))?;
        all.insert(rank.to_string(), in_us(totals));
        before_last.insert(rank.to_string(), in_us(totals_before_last));
    }
    Ok(serde_json::json!({"all": all, "before_last": before_last}))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let expected = serde_json::json!({
        "us": write_ranks(&args.dir.join("us"), false)?,
        "ns": write_ranks(&args.dir.join("ns"), true)?,
    });
    println!("{expected}");
    Ok(())
}
