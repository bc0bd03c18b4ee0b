//! Measures the trace writer on a synthetic window of kernel launches.
//!
//! Each launch is a `cudaLaunchKernel` call on one host thread and its kernel on
//! one of four streams, linked by a flow. Prints one JSON line of figures.
//!
//! ```text
//! cargo run --release -p cutrace-exporter --example export_bench -- \
//!     --launches 1000000 --out /tmp/bench.pt.trace.json.gz [--dump-json /tmp/bench.json]
//! ```
//!
//! With the `parquet` feature (`--features parquet`), `--parquet FILE` also writes the
//! window as Parquet and prints one more line of figures for it.

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use cutrace_exporter::{Encoding, WriteOptions, write_trace_with};
use cutrace_tracer::Trace;
use cutrace_tracer::model::{
    ApiCall, Device, HostRange, Iteration, Kernel, LaunchConfig, RangeKind,
};

#[derive(Parser)]
struct Args {
    /// Number of kernel launches in the window.
    #[arg(long, default_value_t = 1_000_000)]
    launches: u64,
    /// Trace file to write.
    #[arg(long)]
    out: PathBuf,
    /// Also write the uncompressed JSON here (to time other compressors on it).
    #[arg(long)]
    dump_json: Option<PathBuf>,
    /// Slices per chunk (gzip member).
    #[arg(long, default_value_t = WriteOptions::default().chunk_events)]
    chunk_events: usize,
    /// Gzip level.
    #[arg(long, default_value_t = 1)]
    level: u32,
    /// Iterations the window is cut into, as cutrace's own traces are (none unless
    /// told).
    #[arg(long, default_value_t = 0)]
    iterations: u64,
    /// Also write the window as Parquet here, timed on its own.
    #[cfg(feature = "parquet")]
    #[arg(long)]
    parquet: Option<PathBuf>,
}

const KERNELS: [&str; 6] = [
    "void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<float>, at::detail::Array<char*, 3> >(int, at::native::CUDAFunctor_add<float>, at::detail::Array<char*, 3>)",
    "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1_execute_segment_k_off_kernel__5x_cublas",
    "void at::native::(anonymous namespace)::vectorized_layer_norm_kernel<c10::BFloat16, float>(int, float, c10::BFloat16 const*, c10::BFloat16 const*, c10::BFloat16 const*, float*, float*, c10::BFloat16*)",
    "triton_poi_fused_add_mul_silu_0",
    "void flash::flash_fwd_kernel<Flash_fwd_kernel_traits<128, 128, 64, 4, false, false, cutlass::bfloat16_t, Flash_kernel_traits<128, 128, 64, 4, cutlass::bfloat16_t> >, false, true, false, false, true, true, false, false>(Flash_fwd_params)",
    "ncclDevKernel_AllReduce_Sum_bf16_RING_LL(ncclDevComm*, unsigned long, ncclWork*)",
];

fn synthetic_window(launches: u64, iterations: u64) -> Trace {
    let mut t = Trace::default();
    let base: i64 = 1_750_000_000_000_000_000;
    t.base_time_ns = base;
    t.info.worker_name = "bench_1000".into();
    t.info.host_name = "bench".into();
    t.info.pid = 1000;
    t.info.process_name = "python3".into();
    t.info.world_size = 1;
    t.devices.push(Device {
        id: 0,
        name: "NVIDIA H100 80GB HBM3".into(),
        total_global_mem: 85_520_809_984,
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
    let launch = t.names.intern("cudaLaunchKernel");
    let names: Vec<_> = KERNELS.iter().map(|k| t.names.intern(k)).collect();
    let configs: Vec<_> = (0..4u32)
        .map(|i| {
            t.intern_config(LaunchConfig {
                grid: [132 * (i + 1), 1 + i, 1],
                block: [128 << (i % 3), 1, 1],
                registers_per_thread: 32 + 16 * i,
                static_shared_memory: 1024 * i,
                dynamic_shared_memory: 4096 * i,
            })
        })
        .collect();
    let n = launches as usize;
    t.api_calls.reserve(n);
    t.kernels.reserve(n);
    for i in 0..launches {
        // A launch every 2 µs; each stream gets every fourth kernel, so kernels
        // of up to 5 µs never overlap on their stream.
        let start = base + 2_000 * i as i64;
        let correlation = i + 1;
        t.api_calls.push(ApiCall {
            start,
            end: start + 1_500 + 100 * (i % 7) as i64,
            correlation,
            name: launch,
            cbid: 211,
            pid: 1000,
            tid: 1000,
            ..Default::default()
        });
        let kstart = start + 10_000;
        t.kernels.push(Kernel {
            start: kstart,
            end: kstart + 3_000 + 500 * (i % 5) as i64,
            correlation,
            name: names[(i % names.len() as u64) as usize],
            config: configs[(i % 4) as usize],
            stream: [7, 13, 17, 21][(i % 4) as usize],
            context: 1,
            device: 0,
            ..Default::default()
        });
    }
    // Equal iterations over the launches, the last one ending after its kernels,
    // each marked by a `ProfilerStep#<n>` range on the launching thread as the
    // tracer marks them.
    let span = 2_000 * launches as i64 + 20_000;
    for k in 0..iterations {
        let number = k + 1;
        let start = base + span * k as i64 / iterations as i64;
        let end = base + span * (k as i64 + 1) / iterations as i64;
        t.iterations.push(Iteration { number, start, end });
        let name = t.names.intern(&format!("ProfilerStep#{number}"));
        let category = t.names.intern("user_annotation");
        t.ranges.push(HostRange {
            start,
            end,
            name,
            category,
            kind: RangeKind::UserAnnotation,
            pid: 1000,
            tid: 1000,
            ..Default::default()
        });
    }
    t
}

/// A `Vm*` figure of /proc/self/status, in bytes (0 where unavailable).
fn proc_status_bytes(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// CPU time of the whole process (all threads, user + system), seconds, from
/// /proc/self/stat (in USER_HZ ticks, 100 per second on Linux).
fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) as f64 / 100.0
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let trace = synthetic_window(args.launches, args.iterations);
    let rss_before = proc_status_bytes("VmRSS:");
    let options = WriteOptions {
        encoding: Encoding::Gzip { level: args.level },
        chunk_events: args.chunk_events,
    };
    let cpu_before = process_cpu_seconds();
    let started = Instant::now();
    let stats = write_trace_with(&trace, &args.out, &options)?;
    let seconds = started.elapsed().as_secs_f64();
    let cpu_seconds = process_cpu_seconds() - cpu_before;
    let peak = proc_status_bytes("VmHWM:");
    if let Some(dump) = &args.dump_json {
        let plain = WriteOptions {
            encoding: Encoding::Plain,
            ..options
        };
        write_trace_with(&trace, dump, &plain)?;
    }
    println!(
        "{{\"launches\":{},\"events\":{},\"seconds\":{:.3},\"cpu_seconds\":{:.2},\"bytes_uncompressed\":{},\"bytes_written\":{},\"peak_rss_bytes\":{},\"rss_before_write_bytes\":{},\"threads\":{}}}",
        args.launches,
        stats.events,
        seconds,
        cpu_seconds,
        stats.bytes_uncompressed,
        stats.bytes_written,
        peak,
        rss_before,
        rayon::current_num_threads()
    );
    #[cfg(feature = "parquet")]
    if let Some(path) = &args.parquet {
        let cpu_before = process_cpu_seconds();
        let started = Instant::now();
        let written = cutrace_exporter::write_parquet(&trace, path)?;
        println!(
            "{{\"parquet_rows\":{},\"parquet_seconds\":{:.3},\"parquet_cpu_seconds\":{:.2},\"parquet_bytes\":{},\"peak_rss_bytes\":{}}}",
            written.rows,
            started.elapsed().as_secs_f64(),
            process_cpu_seconds() - cpu_before,
            written.bytes,
            proc_status_bytes("VmHWM:")
        );
    }
    Ok(())
}
