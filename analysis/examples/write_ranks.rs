//! Writes the traces of a made-up multi-rank run, for checking and timing the
//! report across ranks (scripts/ci/hta_check.py compares its figures with
//! HolisticTraceAnalysis's on them; docs/benchmarks.md times it on 64 of them).
//!
//! ```text
//! cargo run --release -p cutrace-analysis --example write_ranks -- --ranks 4 --events 5000 DIR
//! ```
//!
//! Each rank records five `ProfilerStep#<n>` iterations of about `--events` events
//! in all: kernels launched every few microseconds on a compute stream, an NCCL
//! all-reduce every tenth launch on a communication stream (overlapping the
//! computation), a copy every 25th, a CUDA graph of four node kernels launched once
//! per iteration (node mode: graph and node ids), and a `cudaStreamSynchronize` at
//! the end of each iteration. The last rank is the straggler: its computation in
//! iteration 3 takes 30% longer. Every time has a sub-microsecond part.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use cutrace_exporter::{trace_file_name, write_trace};
use cutrace_tracer::Trace;
use cutrace_tracer::model::{
    ApiCall, CopyKind, Device, HostRange, Iteration, Kernel, Memcpy, MemoryKind, RangeKind,
    SyncKind, Synchronization, ThreadName,
};

#[derive(Parser)]
struct Args {
    /// Number of ranks (one trace each).
    #[arg(long, default_value_t = 4)]
    ranks: u32,
    /// Events per trace, about.
    #[arg(long, default_value_t = 5000)]
    events: usize,
    /// Directory to write into (created when missing).
    dir: PathBuf,
}

const STEPS: u64 = 5;
const STRAGGLING_STEP: u64 = 3;
const COMPUTE: u32 = 7;
const COMM: u32 = 13;

const KERNELS: [&str; 6] = [
    "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64",
    "void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<float> >",
    "flash_fwd_kernel<Flash_fwd_kernel_traits<128, 64, 64, 4, false, false, cutlass::half_t> >",
    "void at::native::reduce_kernel<512, 1, at::native::ReduceOp<float> >",
    "triton_poi_fused_mul_silu_0",
    "void rms_norm_kernel<c10::BFloat16, 4>",
];
const NCCL: &str =
    "ncclDevKernel_AllReduce_Sum_bf16_RING_LL(ncclDevComm*, unsigned long, ncclWork*)";
const GRAPH_NODES: [&str; 4] = [
    "graph_attention_decode",
    "graph_mlp_up",
    "graph_mlp_down",
    "graph_logits",
];

/// One rank's trace.
fn rank_trace(rank: u32, ranks: u32, events: usize) -> Trace {
    let base: i64 = 1_760_000_000_000_000_000;
    let mut t = Trace {
        base_time_ns: base,
        ..Trace::default()
    };
    let pid = 2000 + rank;
    t.info.worker_name = format!("rank{rank}_{pid}");
    t.info.rank = rank;
    t.info.world_size = ranks;
    t.info.rank_known = true;
    t.info.host_name = "node0".into();
    t.info.pid = pid;
    t.info.process_name = "python3".into();
    t.info.tracer_version = env!("CARGO_PKG_VERSION").into();
    t.devices.push(Device {
        id: rank,
        name: "NVIDIA H100 80GB HBM3".into(),
        compute_major: 9,
        num_sms: 132,
        warp_size: 32,
        ..Default::default()
    });
    t.threads.push(ThreadName {
        pid,
        tid: pid,
        name: "python3".into(),
    });
    let launch = t.names.intern("cudaLaunchKernel");
    let copy = t.names.intern("cudaMemcpyAsync");
    let graph_launch = t.names.intern("cudaGraphLaunch");
    let synchronize = t.names.intern("cudaStreamSynchronize");
    let step_category = t.names.intern("user_annotation");
    let kernels: Vec<_> = KERNELS.iter().map(|k| t.names.intern(k)).collect();
    let nccl = t.names.intern(NCCL);
    let nodes: Vec<_> = GRAPH_NODES.iter().map(|k| t.names.intern(k)).collect();

    // Two events per launch (the call and its GPU work).
    let per_step = (events / 2 / STEPS as usize).max(12);
    let mut correlation = 0u64;
    let mut host = base + 1_000;
    let mut free = [base, base]; // when the compute and communication streams are next free
    let api = |t: &mut Trace, name, start: i64, correlation: u64| {
        t.api_calls.push(ApiCall {
            start,
            end: start + 2_317,
            correlation,
            name,
            cbid: 211,
            pid,
            tid: pid,
            ..Default::default()
        });
    };
    for step in 1..=STEPS {
        let step_start = host;
        let slow = rank + 1 == ranks && step == STRAGGLING_STEP;
        for i in 0..per_step {
            correlation += 1;
            host += 4_000 + (i as i64 * 37 + i64::from(rank) * 11) % 500;
            let jitter = (correlation as i64 * 131 + i64::from(rank) * 17) % 1000;
            if i % 25 == 24 {
                api(&mut t, copy, host, correlation);
                let start = free[0].max(host + 3_000) + jitter;
                let end = start + 2_000 + jitter;
                t.memcpys.push(Memcpy {
                    start,
                    end,
                    bytes: 1 << 20,
                    correlation,
                    kind: CopyKind::HtoD,
                    src_kind: MemoryKind::Pinned,
                    dst_kind: MemoryKind::Device,
                    device: rank,
                    src_device: rank,
                    dst_device: rank,
                    stream: COMPUTE,
                    ..Default::default()
                });
                free[0] = end;
            } else if i % 10 == 9 {
                api(&mut t, launch, host, correlation);
                let start = free[1].max(host + 3_000) + jitter;
                let end = start + 9_000 + 3 * jitter;
                t.kernels.push(Kernel {
                    start,
                    end,
                    correlation,
                    name: nccl,
                    stream: COMM,
                    device: rank,
                    ..Default::default()
                });
                free[1] = end;
            } else {
                api(&mut t, launch, host, correlation);
                let mut duration = 2_500 + ((i as i64 * 7919) % 4_000) + jitter;
                if slow {
                    duration += duration * 3 / 10;
                }
                let start = free[0].max(host + 3_000) + jitter / 3;
                let end = start + duration;
                t.kernels.push(Kernel {
                    start,
                    end,
                    correlation,
                    name: kernels[i % kernels.len()],
                    stream: COMPUTE,
                    device: rank,
                    ..Default::default()
                });
                free[0] = end;
            }
        }
        // One launch of graph 1 per iteration, its nodes back to back.
        correlation += 1;
        host += 5_000;
        api(&mut t, graph_launch, host, correlation);
        let mut start = free[0].max(host + 4_000) + 123;
        for (node, &name) in nodes.iter().enumerate() {
            let end = start + 1_500 + 250 * node as i64 + i64::from(rank) * 7;
            t.kernels.push(Kernel {
                start,
                end,
                correlation,
                name,
                stream: COMPUTE,
                device: rank,
                graph_id: 1,
                graph_node_id: node as u64 + 1,
                ..Default::default()
            });
            start = end + 311;
        }
        free[0] = start;
        // The iteration ends waiting for its work.
        correlation += 1;
        host += 3_000;
        let waited = free[0].max(free[1]) + 500;
        t.api_calls.push(ApiCall {
            start: host,
            end: waited + 1_000,
            correlation,
            name: synchronize,
            cbid: 131,
            pid,
            tid: pid,
            ..Default::default()
        });
        t.syncs.push(Synchronization {
            start: host + 700,
            end: waited,
            correlation,
            kind: SyncKind::StreamSync,
            stream: COMPUTE,
            device: rank,
            pid,
            tid: pid,
            ..Default::default()
        });
        host = waited + 2_000;
        let name = t.names.intern(&format!("ProfilerStep#{step}"));
        t.ranges.push(HostRange {
            start: step_start,
            end: host,
            name,
            category: step_category,
            kind: RangeKind::Annotation,
            pid,
            tid: pid,
            ..Default::default()
        });
        t.iterations.push(Iteration {
            number: step,
            start: step_start,
            end: host,
        });
    }
    t
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    for rank in 0..args.ranks {
        let trace = rank_trace(rank, args.ranks, args.events);
        let name = trace_file_name(
            &trace.info.worker_name,
            1_760_000_000_000_000_000 + u128::from(rank),
        )?;
        let path = args.dir.join(name);
        write_trace(&trace, &path)?;
        println!("{}: {} events", path.display(), trace.event_count());
    }
    Ok(())
}
