//! Copies in every direction, from pageable and pinned host memory, and a memset:
//! each one record with its bytes, direction and memory kinds.

use cutrace_tracer::GraphMode;
use cutrace_tracer::model::{CopyKind, MemoryKind};

use crate::support::{ELEMENTS, Gpu, config, record_window};

/// Elements each operation moves: all different (the pinned upload moves all
/// [`ELEMENTS`]), so each is found by its size.
const HTOD_PAGEABLE: usize = 1 << 10;
const DTOD: usize = 1 << 12;
const DTOH_PAGEABLE: usize = 1 << 13;
const DTOH_PINNED: usize = 1 << 14;
const MEMSET: usize = 1 << 15;

const FLOAT: u64 = std::mem::size_of::<f32>() as u64;

#[test]
#[ignore = "needs a GPU"]
fn copies_and_memsets_have_their_bytes_directions_and_memory_kinds() {
    let gpu = Gpu::open();
    let stream = gpu.stream();
    let mut a = gpu.buffer(&stream);
    let mut b = gpu.buffer(&stream);
    let mut pageable = vec![2.0f32; ELEMENTS];
    // SAFETY: filled by a copy from the device before it is read.
    let mut pinned = unsafe { gpu.ctx.alloc_pinned_with_flags::<f32>(ELEMENTS, 0) }.unwrap();

    let trace = record_window(config(GraphMode::Node), |_| {
        stream
            .memcpy_htod(&pageable[..HTOD_PAGEABLE], &mut a)
            .unwrap();
        stream
            .memcpy_dtoh(&a.slice(..DTOH_PINNED), &mut pinned)
            .unwrap();
        stream.memcpy_htod(&pinned, &mut b).unwrap();
        stream.memcpy_dtod(&a.slice(..DTOD), &mut b).unwrap();
        stream
            .memcpy_dtoh(&b.slice(..DTOH_PAGEABLE), &mut pageable)
            .unwrap();
        stream.memset_zeros(&mut b.slice_mut(..MEMSET)).unwrap();
        gpu.synchronize();
    });

    let expected = [
        (
            CopyKind::HtoD,
            MemoryKind::Pageable,
            MemoryKind::Device,
            HTOD_PAGEABLE,
        ),
        (
            CopyKind::DtoH,
            MemoryKind::Device,
            MemoryKind::Pinned,
            DTOH_PINNED,
        ),
        (
            CopyKind::HtoD,
            MemoryKind::Pinned,
            MemoryKind::Device,
            ELEMENTS,
        ),
        (CopyKind::DtoD, MemoryKind::Device, MemoryKind::Device, DTOD),
        (
            CopyKind::DtoH,
            MemoryKind::Device,
            MemoryKind::Pageable,
            DTOH_PAGEABLE,
        ),
    ];
    let mut seen: Vec<_> = trace
        .memcpys
        .iter()
        .map(|m| (m.kind, m.src_kind, m.dst_kind, m.bytes))
        .collect();
    let mut want: Vec<_> = expected
        .iter()
        .map(|&(kind, src, dst, n)| (kind, src, dst, n as u64 * FLOAT))
        .collect();
    let order = |c: &(CopyKind, MemoryKind, MemoryKind, u64)| c.3;
    seen.sort_by_key(order);
    want.sort_by_key(order);
    assert_eq!(seen, want, "one record per copy");
    assert!(trace.memcpys.iter().all(|m| m.end > m.start));

    assert_eq!(trace.memsets.len(), 1, "{:?}", trace.memsets);
    let memset = trace.memsets[0];
    assert_eq!(memset.bytes, MEMSET as u64 * FLOAT);
    assert_eq!(memset.memory_kind, MemoryKind::Device);

    // All on the one stream they were issued to.
    let streams: std::collections::HashSet<u32> = trace
        .memcpys
        .iter()
        .map(|m| m.stream)
        .chain(trace.memsets.iter().map(|m| m.stream))
        .collect();
    assert_eq!(streams.len(), 1, "{streams:?}");
    assert!(trace.kernels.is_empty(), "no kernels were launched");
}
