//! Decoding throughput on one core: `cargo run --release -p cutrace-tracer --example
//! decode_bench`.
//!
//! Builds 8 MiB activity buffers as CUPTI lays them out (CUDA 12 records, 8-byte
//! aligned, back to back), cycles through enough of them that they do not stay in
//! cache, and decodes them into one window: kernel records with a few hundred
//! distinct mangled names, then kernels interleaved with their runtime launch calls.
//! Prints records per second and the memory each kernel event costs in the window.

use std::ffi::CString;
use std::time::Instant;

use cupti_sys::sys::{
    CUpti_Activity, CUpti_ActivityAPI, CUpti_ActivityKernel9, CUpti_ActivityKind,
    CUpti_runtime_api_trace_cbid_enum,
};
use cutrace_tracer::decode::Decoder;
use cutrace_tracer::model::{ApiKind, Kernel};

const BUFFER_BYTES: usize = 8 << 20;
const BUFFERS: usize = 32;
const PASSES: usize = 4;
const DISTINCT_NAMES: usize = 300;

/// One activity buffer: records back to back, with the offset of each.
struct Buffer {
    words: Vec<u64>,
    offsets: Vec<usize>,
}

impl Buffer {
    fn push<T>(&mut self, record: &T) -> bool {
        let used = self.offsets.last().map_or(0, |&o| o + self.size_at(o));
        let len = size_of::<T>();
        if used + len > BUFFER_BYTES {
            return false;
        }
        // SAFETY: the words hold BUFFER_BYTES bytes; `used + len` fits; records are
        // plain data and every size is a multiple of 8.
        unsafe {
            let at = self.words.as_mut_ptr().cast::<u8>().add(used);
            std::ptr::copy_nonoverlapping((record as *const T).cast::<u8>(), at, len);
        }
        self.offsets.push(used);
        true
    }

    fn size_at(&self, offset: usize) -> usize {
        // SAFETY: `offset` is the start of a record written by `push`.
        let kind = unsafe {
            self.words
                .as_ptr()
                .cast::<u8>()
                .add(offset)
                .cast::<u32>()
                .read()
        };
        match CUpti_ActivityKind(kind) {
            CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_RUNTIME => size_of::<CUpti_ActivityAPI>(),
            _ => size_of::<CUpti_ActivityKernel9>(),
        }
    }
}

fn kernel(name: &CString, i: u64) -> CUpti_ActivityKernel9 {
    // SAFETY: records are plain integers, newtypes and raw pointers.
    let mut k: CUpti_ActivityKernel9 = unsafe { std::mem::zeroed() };
    k.kind = CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL;
    k.start = 1_700_000_000_000_000_000 + i * 1_000;
    k.end = k.start + 700;
    k.streamId = 7 + (i % 4) as u32;
    k.contextId = 1;
    k.gridX = 64 << (i % 5);
    k.gridY = 1;
    k.gridZ = 1;
    k.blockX = 128 << (i % 3);
    k.blockY = 1;
    k.blockZ = 1;
    k.registersPerThread = 32 + (i % 4) as u16 * 8;
    k.correlationId = i as u32;
    k.name = name.as_ptr();
    k
}

fn launch(i: u64) -> CUpti_ActivityAPI {
    // SAFETY: as above.
    let mut a: CUpti_ActivityAPI = unsafe { std::mem::zeroed() };
    a.kind = CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_RUNTIME;
    a.cbid = CUpti_runtime_api_trace_cbid_enum::CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000.0;
    a.start = 1_700_000_000_000_000_000 + i * 1_000 - 300;
    a.end = a.start + 4_000;
    a.processId = 4242;
    a.threadId = 4243;
    a.correlationId = i as u32;
    a
}

fn buffers(names: &[CString], with_launches: bool) -> Vec<Buffer> {
    let mut i = 0u64;
    (0..BUFFERS)
        .map(|_| {
            let mut buffer = Buffer {
                words: vec![0u64; BUFFER_BYTES / 8],
                offsets: Vec::new(),
            };
            loop {
                let name = &names[(i as usize * 7919) % names.len()];
                if with_launches && !buffer.push(&launch(i)) {
                    break;
                }
                if !buffer.push(&kernel(name, i)) {
                    break;
                }
                i += 1;
            }
            buffer
        })
        .collect()
}

fn run(label: &str, buffers: &[Buffer]) {
    let mut decoder = Decoder::new(|_: ApiKind, _: u32| Some("cudaLaunchKernel_v7000".to_owned()));
    let records: usize = buffers.iter().map(|b| b.offsets.len()).sum::<usize>() * PASSES;
    let began = Instant::now();
    for _ in 0..PASSES {
        for buffer in buffers {
            let base = buffer.words.as_ptr().cast::<u8>();
            for &offset in &buffer.offsets {
                // SAFETY: each offset starts a complete record whose name outlives it.
                unsafe { decoder.decode(base.add(offset).cast::<CUpti_Activity>()) };
            }
        }
    }
    let seconds = began.elapsed().as_secs_f64();
    let finishing = Instant::now();
    let trace = decoder.finish_window();
    let finish_ms = finishing.elapsed().as_secs_f64() * 1e3;
    let kernels = trace.kernels.len();
    let window_bytes = trace.kernels.capacity() * size_of::<Kernel>()
        + trace.launch_configs.capacity() * size_of::<cutrace_tracer::model::LaunchConfig>()
        + (0..trace.names.len())
            .map(|i| {
                trace
                    .names
                    .get(cutrace_tracer::model::NameId(i as u32))
                    .len()
            })
            .sum::<usize>();
    println!(
        "{label}: {records} records decoded in {seconds:.3} s = {:.2} M records/s on one \
         core, window finished in {finish_ms:.1} ms; {kernels} kernels, {} names, {} launch \
         configs; {:.1} bytes of window per kernel (Kernel is {} bytes)",
        records as f64 / seconds / 1e6,
        trace.names.len(),
        trace.launch_configs.len(),
        window_bytes as f64 / kernels as f64,
        size_of::<Kernel>(),
    );
}

fn main() {
    let names: Vec<CString> = (0..DISTINCT_NAMES)
        .map(|n| CString::new(format!("_ZN2at6native6kernelILi{n}EEEvPfi")).unwrap_or_default())
        .collect();
    run("kernels", &buffers(&names, false));
    run("kernels + launches", &buffers(&names, true));
}
