//! `cutrace convert`: a trace read and written again keeps its GPU work, a cut keeps
//! what starts in the range, and a failure leaves no file behind.

use cutrace_exporter::read_trace;
use cutrace_tracer::Trace;

use crate::util::{TestDir, cutrace, optional_trace, shared_trace, stderr, stdout};

fn gpu_work(trace: &Trace) -> Vec<(String, i64, i64)> {
    let mut work: Vec<(String, i64, i64)> = trace
        .kernels
        .iter()
        .map(|k| (trace.names.get(k.name).to_owned(), k.start, k.end))
        .chain(
            trace
                .memcpys
                .iter()
                .map(|m| (format!("memcpy {:?}", m.kind), m.start, m.end)),
        )
        .chain(
            trace
                .memsets
                .iter()
                .map(|m| ("memset".to_owned(), m.start, m.end)),
        )
        .collect();
    work.sort();
    work
}

#[test]
fn a_converted_trace_keeps_its_gpu_work() {
    let dir = TestDir::new();
    for name in [
        "alexnet.json.gz",
        // Nanosecond times against a `baseTimeNanoseconds`.
        "nccl_data.json.gz",
        "triton_example.json.gz",
    ] {
        let input = shared_trace(name);
        let output = dir.path(&format!("{name}.out.json.gz"));
        let run = cutrace([
            "convert".as_ref(),
            input.as_os_str(),
            "-o".as_ref(),
            output.as_os_str(),
        ]);
        assert!(run.status.success(), "{name}: {}", stderr(&run));
        assert!(stdout(&run).starts_with(&format!("{}: ", output.display())));
        let before = read_trace(&input).unwrap();
        let after = read_trace(&output).unwrap();
        assert_eq!(after.base_time_ns, before.base_time_ns, "{name}");
        assert_eq!(gpu_work(&after), gpu_work(&before), "{name}");
        assert_eq!(after.api_calls.len(), before.api_calls.len(), "{name}");
        assert_eq!(after.info.rank, before.info.rank, "{name}");
        assert_eq!(after.devices, before.devices, "{name}");
    }
}

#[test]
fn a_converted_trace_reports_the_same_table() {
    let dir = TestDir::new();
    let input = shared_trace("alexnet.json.gz");
    let output = dir.path("alexnet.json.gz");
    let run = cutrace([
        "convert".as_ref(),
        input.as_os_str(),
        "-o".as_ref(),
        output.as_os_str(),
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let report = |path: &std::path::Path| {
        let run = cutrace([
            "report".as_ref(),
            path.as_os_str(),
            "--row-limit".as_ref(),
            "-1".as_ref(),
        ]);
        assert!(run.status.success(), "{}", stderr(&run));
        stdout(&run).to_owned()
    };
    assert_eq!(report(&output), report(&input));
}

#[test]
fn plain_output_unless_the_name_ends_in_gz() {
    let dir = TestDir::new();
    let output = dir.path("plain.json");
    let run = cutrace([
        "convert".as_ref(),
        shared_trace("simple_add.json.gz").as_os_str(),
        "-o".as_ref(),
        output.as_os_str(),
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let text = std::fs::read(&output).unwrap();
    assert_eq!(text[0], b'{');
    assert_eq!(read_trace(&output).unwrap().kernels.len(), 79);
}

#[test]
fn a_cut_keeps_what_starts_in_the_range() {
    let dir = TestDir::new();
    let Some(input) = optional_trace("negative_queue_rank0.json.gz") else {
        return;
    };
    let trace = read_trace(&input).unwrap();
    let base = trace.base_time_ns;
    // The middle third of the GPU work.
    let first = trace.kernels.iter().map(|k| k.start).min().unwrap();
    let last = trace.kernels.iter().map(|k| k.start).max().unwrap();
    let from_us = ((first - base) + (last - first) / 3) / 1000;
    let to_us = ((first - base) + 2 * (last - first) / 3) / 1000;
    let inside = |start: i64| base + from_us * 1000 <= start && start < base + to_us * 1000;
    let output = dir.path("cut.json.gz");
    let run = cutrace([
        "convert".as_ref(),
        input.as_os_str(),
        "-o".as_ref(),
        output.as_os_str(),
        "--from-us".as_ref(),
        from_us.to_string().as_ref(),
        "--to-us".as_ref(),
        to_us.to_string().as_ref(),
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let cut = read_trace(&output).unwrap();
    let expected = trace.kernels.iter().filter(|k| inside(k.start)).count();
    assert!(expected > 100 && expected < trace.kernels.len());
    assert_eq!(cut.kernels.len(), expected);
    assert!(cut.kernels.iter().all(|k| inside(k.start)));
    let expected_calls = trace.api_calls.iter().filter(|c| inside(c.start)).count();
    assert_eq!(cut.api_calls.len(), expected_calls);
}

#[test]
fn failures_leave_no_file() {
    let dir = TestDir::new();
    let bad = dir.write("bad.json", b"[{\"ph\": \"X\", \"ts\": \"noon\"}]");
    let output = dir.write("out.json.gz", b"old contents");
    let run = cutrace([
        "convert".as_ref(),
        bad.as_os_str(),
        "-o".as_ref(),
        output.as_os_str(),
    ]);
    assert_eq!(run.status.code(), Some(1));
    assert!(
        stderr(&run).starts_with(&format!("cutrace: error: {}: ", bad.display())),
        "{}",
        stderr(&run)
    );
    assert_eq!(std::fs::read(&output).unwrap(), b"old contents");

    let empty_range = cutrace([
        "convert".as_ref(),
        shared_trace("triton_example.json.gz").as_os_str(),
        "-o".as_ref(),
        output.as_os_str(),
        "--from-us".as_ref(),
        "10".as_ref(),
        "--to-us".as_ref(),
        "10".as_ref(),
    ]);
    assert_eq!(empty_range.status.code(), Some(1));
    assert!(
        stderr(&empty_range).contains("the range is empty"),
        "{}",
        stderr(&empty_range)
    );

    let missing_dir = dir.path("no/such/dir/out.json.gz");
    let run = cutrace([
        "convert".as_ref(),
        shared_trace("triton_example.json.gz").as_os_str(),
        "-o".as_ref(),
        missing_dir.as_os_str(),
    ]);
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    assert_eq!(stderr(&run).lines().count(), 1, "{}", stderr(&run));
    let names: Vec<_> = std::fs::read_dir(dir.path(""))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}: nothing but the two inputs");
}
