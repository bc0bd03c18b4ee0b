//! `cutrace convert --to parquet`: many traces into a folder partitioned by rank,
//! one row per event; bad input as `report` treats it. What the rows hold is checked
//! by the exporter's tests and, with an independent reader, by DuckDB in CI
//! (scripts/ci/parquet_check.py).

use std::path::Path;

use crate::util::{TestDir, cutrace_command, shared_trace, stderr};

fn convert(inputs: &[&Path], output: &Path) -> std::process::Output {
    cutrace_command(["convert", "--to", "parquet", "-o"])
        .arg(output)
        .args(inputs)
        .output()
        .unwrap()
}

/// With Parquet built in.
#[cfg(feature = "parquet")]
mod written {
    use std::path::{Path, PathBuf};

    use cutrace_exporter::read_trace;

    use super::convert;
    use crate::util::{TestDir, shared_trace, stderr, stdout};

    #[test]
    fn each_trace_becomes_a_file_of_its_events_under_its_rank() {
        let dir = TestDir::new();
        let inputs = [
            shared_trace("sampled_rank-0.json.gz"),
            shared_trace("sampled_rank-1.json.gz"),
            shared_trace("no_distributed_info.json.gz"),
        ];
        let out = dir.path("parquet");
        let inputs: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
        let run = convert(&inputs, &out);
        assert!(run.status.success(), "{}", stderr(&run));
        // The third names no rank: its place in the list is its rank.
        let expected = [
            ("rank=0/sampled_rank-0.parquet", inputs[0]),
            ("rank=1/sampled_rank-1.parquet", inputs[1]),
            ("rank=2/no_distributed_info.parquet", inputs[2]),
        ];
        let lines: Vec<&str> = stdout(&run).lines().collect();
        assert_eq!(lines.len(), 3, "{}", stdout(&run));
        for ((file, input), line) in expected.iter().zip(lines) {
            let path = out.join(file);
            let events = read_trace(input).unwrap().event_count();
            let bytes = std::fs::metadata(&path).unwrap().len();
            assert_eq!(
                line,
                format!("{}: {events} rows, {bytes} bytes", path.display())
            );
            // Parquet files begin and end with `PAR1`.
            let data = std::fs::read(&path).unwrap();
            assert_eq!(
                (&data[..4], &data[data.len() - 4..]),
                (&b"PAR1"[..], &b"PAR1"[..])
            );
        }
    }

    #[test]
    fn unreadable_traces_are_skipped_and_same_names_refused() {
        let dir = TestDir::new();
        let broken = dir.write("broken.json", b"{\"traceEvents\": [");
        let good = shared_trace("simple_add.json.gz");
        let out = dir.path("parquet");
        let run = convert(&[&good, &broken], &out);
        assert!(run.status.success(), "{}", stderr(&run));
        assert!(out.join("rank=0/simple_add.parquet").is_file());
        assert!(!out.join("rank=1").exists());
        assert!(
            stderr(&run).ends_with("cutrace: skipped 1 of 2 traces that could not be read\n"),
            "{}",
            stderr(&run)
        );

        std::fs::create_dir(dir.path("other")).unwrap();
        let copy = dir.path("other/simple_add.json.gz");
        std::fs::copy(&good, &copy).unwrap();
        let run = convert(&[&good, &copy], &dir.path("again"));
        assert_eq!(run.status.code(), Some(1));
        assert!(
            stderr(&run).contains("have the same name, and"),
            "{}",
            stderr(&run)
        );
        assert!(!dir.path("again").exists());
    }
}

#[cfg(not(feature = "parquet"))]
#[test]
fn without_the_feature_the_command_says_how_to_get_it() {
    let dir = TestDir::new();
    let run = convert(&[&shared_trace("simple_add.json.gz")], &dir.path("parquet"));
    assert_eq!(run.status.code(), Some(1));
    assert_eq!(
        stderr(&run),
        "cutrace: error: this cutrace was built without Parquet output: build it with `cargo build --release --features parquet`\n"
    );
}

#[test]
fn a_trace_is_converted_into_one_trace_only() {
    let dir = TestDir::new();
    let a = shared_trace("simple_add.json.gz");
    let run = cutrace_command(["convert", "-o"])
        .arg(dir.path("x.json.gz"))
        .args([&a, &a])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1));
    assert_eq!(
        stderr(&run),
        "cutrace: error: a trace is converted into one trace: 2 inputs given (--to parquet takes many)\n"
    );
}
