//! `cutrace convert`: a trace read and written again keeps its GPU work, a cut keeps
//! what starts in the range, and a failure leaves no file behind.

use std::os::unix::fs::FileTypeExt;

use cutrace_exporter::read_trace;
use cutrace_exporter::validate::validate_trace_file;
use cutrace_tracer::Trace;

use crate::util::{TestDir, cutrace, optional_trace, shared_trace, shared_traces, stderr, stdout};

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
    // The same report, but for where its times count from: the input has no
    // baseTimeNanoseconds, the converted trace has the same origin as its base.
    let (before, after) = (report(&input), report(&output));
    let (table_before, origin_before) = before.rsplit_once("\nTime origin: ").unwrap();
    let (table_after, origin_after) = after.rsplit_once("\nTime origin: ").unwrap();
    assert_eq!(table_after, table_before);
    assert!(
        origin_before.starts_with("the earliest event (the file has no baseTimeNanoseconds), ")
    );
    let ns = |origin: &str| {
        origin
            .split(" ns since")
            .next()
            .unwrap()
            .rsplit(' ')
            .next()
            .unwrap()
            .to_owned()
    };
    assert!(origin_after.starts_with("the file's baseTimeNanoseconds, "));
    assert_eq!(ns(origin_after), ns(origin_before));
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

fn convert(input: &std::path::Path, output: &std::path::Path) -> std::process::Output {
    cutrace([
        "convert".as_ref(),
        input.as_os_str(),
        "-o".as_ref(),
        output.as_os_str(),
    ])
}

#[test]
fn every_shared_trace_converts_to_a_trace_perfetto_imports() {
    let dir = TestDir::new();
    for input in shared_traces() {
        let output = dir.path("converted.pt.trace.json.gz");
        let run = convert(&input, &output);
        assert!(
            run.status.success(),
            "{}: {}",
            input.display(),
            stderr(&run)
        );
        let violations = validate_trace_file(&output).unwrap();
        assert!(violations.is_empty(), "{}: {violations:?}", input.display());
    }
}

#[test]
fn a_link_is_followed_and_kept() {
    let dir = TestDir::new();
    let target = dir.write("target.json", b"old");
    let link = dir.path("link.json");
    std::os::unix::fs::symlink("target.json", &link).unwrap();
    let run = convert(&shared_trace("triton_example.json.gz"), &link);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        read_trace(&target).unwrap().kernels.len(),
        read_trace(&shared_trace("triton_example.json.gz"))
            .unwrap()
            .kernels
            .len()
    );
    // A link to a file yet to be made makes it where the link points.
    let dangling = dir.path("dangling.json");
    std::os::unix::fs::symlink("made.json", &dangling).unwrap();
    let run = convert(&shared_trace("triton_example.json.gz"), &dangling);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(
        std::fs::symlink_metadata(&dangling)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(read_trace(&dir.path("made.json")).is_ok());
    let names: Vec<_> = std::fs::read_dir(dir.root()).unwrap().collect();
    assert_eq!(names.len(), 4, "no temporary file left: {names:?}");
}

#[test]
fn a_fifo_gets_a_stream_and_a_directory_is_refused() {
    let dir = TestDir::new();
    let fifo = dir.path("pipe.json");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    let run = convert(&shared_trace("triton_example.json.gz"), &fifo);
    assert!(run.status.success(), "{}", stderr(&run));
    let bytes = reader.join().unwrap();
    let streamed = dir.write("streamed.json", &bytes);
    assert!(!read_trace(&streamed).unwrap().kernels.is_empty());
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo()
    );

    let run = convert(&shared_trace("triton_example.json.gz"), dir.root());
    assert_eq!(run.status.code(), Some(1));
    assert_eq!(
        stderr(&run),
        format!(
            "cutrace: error: cannot convert {}: {}: is a directory\n",
            shared_trace("triton_example.json.gz").display(),
            dir.root().display()
        )
    );
}

#[test]
fn standard_output_gets_the_trace_and_standard_input_gives_it() {
    let input = shared_trace("triton_example.json.gz");
    let run = crate::util::cutrace_command(["convert", "-", "-o", "-"])
        .stdin(std::fs::File::open(&input).unwrap())
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", stderr(&run));
    let dir = TestDir::new();
    let out = dir.write("out.json", &run.stdout);
    assert_eq!(
        gpu_work(&read_trace(&out).unwrap()),
        gpu_work(&read_trace(&input).unwrap())
    );
    assert!(
        stderr(&run).contains("standard output: "),
        "{}",
        stderr(&run)
    );
}

#[test]
fn a_cut_that_selects_nothing_is_an_error_and_what_is_dropped_is_named() {
    let dir = TestDir::new();
    let input = shared_trace("sampled_rank-0.json.gz");
    let output = dir.path("cut.json.gz");
    let run = cutrace([
        "convert".as_ref(),
        input.as_os_str(),
        "-o".as_ref(),
        output.as_os_str(),
        "--from-us".as_ref(),
        "1".as_ref(),
        "--to-us".as_ref(),
        "2".as_ref(),
    ]);
    assert_eq!(run.status.code(), Some(1));
    let err = stderr(&run);
    assert!(
        err.starts_with(&format!(
            "cutrace: error: {}: the range selects no event: its events start from ",
            input.display()
        )),
        "{err}"
    );
    assert!(err.contains("its events start from 0.000 to "), "{err}");
    assert!(
        err.contains("counted from the earliest event (the file has no baseTimeNanoseconds)"),
        "{err}"
    );
    assert!(!output.exists());

    let run = convert(&shared_trace("simple_add.json.gz"), &output);
    assert!(run.status.success());
    let err = stderr(&run);
    assert!(
        err.starts_with(&format!(
            "cutrace: note: {}: not kept from ",
            output.display()
        )),
        "{err}"
    );
    assert!(err.contains("instant events"), "{err}");
}
