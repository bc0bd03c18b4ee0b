//! Embedding cutrace in a Rust program: `cargo run --example embed -- [OUTPUT_DIR]`.
//!
//! A training-style loop marks its iterations with `step()` and its phases with
//! `annotate()`; cutrace skips the first iteration and records the next three, then
//! writes `<worker>.<unix_ns>.pt.trace.json.gz` and `profiler_out_<rank>.txt` into
//! the output directory. The loop here launches no GPU work of its own: on a GPU
//! machine, the kernels a real step launches appear in the trace under its
//! `forward` range.

use std::process::ExitCode;

fn main() -> ExitCode {
    let output_dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "cutrace_traces".into());
    let config = match cutrace::ProfilerConfig::from_json(&format!(
        r#"{{"delay_iters": 1, "max_iters": 3, "output_dir": {}}}"#,
        serde_json::Value::from(output_dir)
    )) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("embed: {error}");
            return ExitCode::FAILURE;
        }
    };
    let profiler = match cutrace::profiler(&config) {
        Ok(profiler) => profiler,
        Err(error) => {
            eprintln!("embed: {error}");
            return ExitCode::FAILURE;
        }
    };

    profiler.start();
    for _ in 0..6 {
        {
            let _forward = profiler.annotate("forward");
            // A real program launches its kernels here.
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        profiler.step();
    }
    profiler.stop();
    // Waits until every recorded window is on disk.
    profiler.shutdown();
    ExitCode::SUCCESS
}
