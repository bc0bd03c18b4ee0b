//! Windows over a loop hold exactly the iterations the schedule asks for: with
//! `delay_iters = 2`, `max_iters = 3`, `warmup_iters = 1` and `repeat = 2`, windows
//! of iterations 3–5 and 6–8; iteration 2's warmup and everything else dropped.
//!
//! Iteration `k` launches one kernel with `k` blocks and waits for it, so each
//! kernel belongs to exactly one iteration and tells which.

use cutrace_tracer::{GraphMode, ProfilerConfig};

use crate::support::{Gpu, Shape, config, profiler};

/// Iterations the loop runs: more than the two windows need.
const ITERATIONS: u32 = 10;

#[test]
#[ignore = "needs a GPU"]
fn delay_and_max_iters_give_windows_of_exactly_the_iterations_asked() {
    let gpu = Gpu::open();
    let stream = gpu.stream();
    let mut buffer = gpu.buffer(&stream);
    let (profiler, recording) = profiler(ProfilerConfig {
        delay_iters: 2,
        max_iters: 3,
        warmup_iters: 1,
        repeat: 2,
        ..config(GraphMode::Node)
    });

    profiler.start();
    for k in 1..=ITERATIONS {
        gpu.fill(
            &stream,
            &mut buffer,
            k as f32,
            Shape::new([k, 1, 1], [32, 1, 1]),
        );
        stream.synchronize().unwrap();
        profiler.step();
    }
    profiler.stop();
    let traces = recording.finish(profiler);

    assert_eq!(traces.len(), 2, "two windows");
    for (trace, expected) in traces.iter().zip([[3u32, 4, 5], [6, 7, 8]]) {
        let numbers: Vec<u64> = trace.iterations.iter().map(|i| i.number).collect();
        assert_eq!(numbers, expected.map(u64::from));
        let mut blocks: Vec<u32> = trace
            .kernels
            .iter()
            .map(|k| trace.config(k.config).grid[0])
            .collect();
        blocks.sort_unstable();
        assert_eq!(blocks, expected, "kernels of window {}", trace.info.window);
        // Each kernel ran inside its iteration's host span: one clock for both.
        for kernel in &trace.kernels {
            let k = u64::from(trace.config(kernel.config).grid[0]);
            let iteration = trace.iterations.iter().find(|i| i.number == k).unwrap();
            assert!(
                iteration.start <= kernel.start && kernel.end <= iteration.end,
                "kernel of iteration {k} at {}..{} outside {iteration:?}",
                kernel.start,
                kernel.end
            );
        }
    }
}
