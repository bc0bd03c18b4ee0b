//! Bad input: one line on stderr, a non-zero exit, never a panic.

use std::io::Read;
use std::process::{Command, ExitStatus, Output, Stdio};

use crate::util::{
    TestDir, cutrace, cutrace_command, optional_trace, shared_trace, stderr, stdout,
};

/// Checks that `output` failed with `code` and one line that starts with `start`.
fn assert_one_line_error(output: &Output, code: i32, start: &str) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(code), "{err}");
    assert!(output.stdout.is_empty());
    assert!(err.starts_with(start), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
}

#[test]
fn a_missing_file_is_named() {
    let dir = TestDir::new();
    let missing = dir.path("missing.json.gz");
    let output = cutrace(["report".as_ref(), missing.as_os_str()]);
    assert_one_line_error(
        &output,
        1,
        &format!("cutrace: error: {}: cannot open: ", missing.display()),
    );
}

#[test]
fn unreadable_contents_are_named() {
    let dir = TestDir::new();
    let mut random = Vec::new();
    let mut x: u32 = 12345;
    for _ in 0..4096 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        random.push((x >> 16) as u8);
    }
    let original = std::fs::read(shared_trace("alexnet.json.gz")).unwrap();
    let cases: [(&str, Vec<u8>, &str); 6] = [
        ("empty.json", Vec::new(), "the file is empty"),
        ("random.bin", random, "not a JSON trace"),
        (
            "nested.json",
            vec![b'['; 200_000],
            "JSON nested deeper than 128 levels",
        ),
        (
            "cut.json.gz",
            original[..original.len() / 2].to_vec(),
            "cannot decompress gzip data",
        ),
        (
            "object.json",
            br#"{"traceEvents": [{"ph": "X", "ts": 1},"#.to_vec(),
            "the data ends at byte",
        ),
        (
            "event.json",
            br#"[{"ph": "X", "ts": "noon"}]"#.to_vec(),
            "traceEvents[0] at byte 1: ts \"noon\"",
        ),
    ];
    for (name, bytes, problem) in cases {
        let path = dir.write(name, &bytes);
        let output = cutrace(["report".as_ref(), path.as_os_str()]);
        assert_one_line_error(
            &output,
            1,
            &format!("cutrace: error: {}: {problem}", path.display()),
        );
    }
    let output = cutrace(["report".as_ref(), dir.path("").as_os_str()]);
    assert_one_line_error(&output, 1, "cutrace: error: ");
}

#[test]
fn bad_options_are_usage_errors() {
    let trace = shared_trace("triton_example.json.gz");
    let sort = cutrace([
        "report".as_ref(),
        trace.as_os_str(),
        "--sort".as_ref(),
        "bogus".as_ref(),
    ]);
    assert_eq!(sort.status.code(), Some(2));
    let first = stderr(&sort).lines().next().unwrap();
    assert!(
        first.contains("'bogus'") && first.contains("unknown sort key"),
        "{first}"
    );
    for (limit, problem) in [("-5", "negative"), ("ten", "not a whole number")] {
        let output = cutrace([
            "report".as_ref(),
            trace.as_os_str(),
            "--row-limit".as_ref(),
            limit.as_ref(),
        ]);
        assert_eq!(output.status.code(), Some(2));
        let first = stderr(&output).lines().next().unwrap();
        assert!(first.contains(problem), "{first}");
    }
    assert_eq!(cutrace(["report"]).status.code(), Some(2));
    assert_eq!(cutrace(["frobnicate"]).status.code(), Some(2));
    let help = cutrace(["report", "--help"]);
    assert_eq!(help.status.code(), Some(0));
}

/// Runs `command` with its standard output a pipe closed before it writes
/// anything (so its first write meets a broken pipe); its exit status and stderr.
fn with_stdout_closed(mut command: Command) -> (ExitStatus, String) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (child.wait().unwrap(), err)
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    let Some(trace) = optional_trace("trace_diff_control.json.gz") else {
        return;
    };
    let (status, err) = with_stdout_closed(cutrace_command([
        "report".as_ref(),
        trace.as_os_str(),
        "--row-limit".as_ref(),
        "-1".as_ref(),
    ]));
    assert!(status.success(), "{status}: {err}");
    assert_eq!(err, "");
}

#[test]
fn json_that_is_not_a_trace_is_refused_by_every_command() {
    let dir = TestDir::new();
    for (name, text) in [("foo.json", &br#"{"foo": 1}"#[..]), ("empty.json", b"{}")] {
        let path = dir.write(name, text);
        let expected = format!(
            "cutrace: error: {}: not a trace: the JSON object has no \"traceEvents\"",
            path.display()
        );
        assert_one_line_error(
            &cutrace(["report".as_ref(), path.as_os_str()]),
            1,
            &expected,
        );
        let out = dir.path("out.json");
        let convert = cutrace([
            "convert".as_ref(),
            path.as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
        ]);
        assert_one_line_error(&convert, 1, &expected);
        assert!(!out.exists(), "convert wrote a trace from {name}");
    }
    // A real trace whose event list is empty stays readable.
    let empty = dir.write("no_events.json", br#"{"traceEvents": []}"#);
    let output = cutrace(["report".as_ref(), empty.as_os_str()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("holds no events"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_base_near_the_end_of_time_is_refused() {
    let dir = TestDir::new();
    let path = dir.write(
        "late.json",
        br#"{"baseTimeNanoseconds": 9223372036854775000, "traceEvents": [
            {"ph": "X", "cat": "kernel", "name": "k", "pid": 0, "tid": 7, "ts": 100, "dur": 5}]}"#,
    );
    assert_one_line_error(
        &cutrace(["report".as_ref(), path.as_os_str()]),
        1,
        &format!(
            "cutrace: error: {}: \"baseTimeNanoseconds\": 9223372036854775000 plus event time",
            path.display()
        ),
    );
}

/// A trace of `n` kernels with distinct names, as plain JSON.
fn distinct_kernels(n: usize) -> Vec<u8> {
    let events: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"ph": "X", "cat": "kernel", "name": "kernel_number_{i}", "pid": 0, "tid": 7, "ts": {i}, "dur": 1}}"#
            )
        })
        .collect();
    format!(r#"{{"traceEvents": [{}]}}"#, events.join(",\n")).into_bytes()
}

#[test]
fn past_the_memory_ceiling_every_command_stops_with_one_line() {
    let dir = TestDir::new();
    let big = dir.write("distinct.json", &distinct_kernels(400_000));
    let out = dir.path("out.json.gz");
    for args in [
        vec!["report".as_ref(), big.as_os_str()],
        vec![
            "convert".as_ref(),
            big.as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
        ],
    ] {
        // The reader's own check names the file; a ceiling below what reading
        // starts with is met by the allocator itself: one line all the same.
        for (limit, start) in [
            (
                "40MiB",
                format!(
                    "cutrace: error: {}: memory use reached the ceiling of 40.0 MiB",
                    big.display()
                ),
            ),
            ("1MiB", "cutrace: error: ".to_owned()),
        ] {
            let mut args = args.clone();
            args.extend([
                std::ffi::OsStr::new("--memory-limit"),
                std::ffi::OsStr::new(limit),
            ]);
            let output = cutrace(&args);
            assert_one_line_error(&output, 1, &start);
            let err = stderr(&output);
            assert!(
                err.contains(&format!(
                    "memory use reached the ceiling of {}.0 MiB",
                    &limit[..limit.len() - 3]
                )),
                "{err}"
            );
            assert!(err.contains("--memory-limit"), "{err}");
        }
        assert!(!out.exists());
    }
    let names: Vec<_> = std::fs::read_dir(dir.root()).unwrap().collect();
    assert_eq!(names.len(), 1, "nothing but the input: {names:?}");
    let output = cutrace([
        "report".as_ref(),
        big.as_os_str(),
        "--row-limit".as_ref(),
        "3".as_ref(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn a_huge_string_is_cut_as_it_streams_past_within_a_small_ceiling() {
    let dir = TestDir::new();
    let huge = "x".repeat(96 << 20);
    let text = format!(
        r#"{{"deviceProperties": [{{"id": 0, "name": "{huge}"}}], "traceEvents": [
            {{"ph": "X", "cat": "kernel", "name": "{huge}", "pid": 0, "tid": 7, "ts": 1, "dur": 2,
              "args": {{"unused": "{huge}"}}}}]}}"#
    );
    let path = dir.write("huge.json", text.as_bytes());
    drop(text);
    let output = cutrace([
        "report".as_ref(),
        path.as_os_str(),
        "--memory-limit".as_ref(),
        "48MiB".as_ref(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stderr(&output),
        format!(
            "cutrace: note: {}: 3 strings longer than 64 KiB were cut to their first 64 KiB\n",
            path.display()
        )
    );
    assert!(stdout(&output).contains("xxxxxxxx..."), "the kernel's row");
}

#[test]
fn a_full_or_closed_standard_output_is_handled_by_every_command() {
    let trace = shared_trace("alexnet.json.gz");
    let dir = TestDir::new();
    let out = dir.path("out.json.gz");
    let commands: [Vec<&std::ffi::OsStr>; 3] = [
        vec!["report".as_ref(), trace.as_os_str()],
        vec![
            "report".as_ref(),
            trace.as_os_str(),
            "--format".as_ref(),
            "json".as_ref(),
        ],
        vec![
            "convert".as_ref(),
            trace.as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
        ],
    ];
    for args in &commands {
        let full = cutrace_command(args)
            .stdout(
                std::fs::OpenOptions::new()
                    .write(true)
                    .open("/dev/full")
                    .unwrap(),
            )
            .output()
            .unwrap();
        let err = stderr(&full);
        assert_eq!(full.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.lines().any(|l| l
                == "cutrace: error: cannot write to standard output: No space left on device (os error 28)"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");

        let (status, err) = with_stdout_closed(cutrace_command(args));
        assert!(status.success(), "{args:?}: {status}: {err}");
        assert!(!err.contains("error"), "{args:?}: {err}");
    }
    // The converted trace was written before the summary failed.
    assert!(out.exists());

    // doctor fails with its own code, 2.
    let full = cutrace_command(["doctor"])
        .stdout(
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap(),
        )
        .output()
        .unwrap();
    assert_one_line_error_on_stderr(&full, 2);
}

/// Like [`assert_one_line_error`] for a command whose stdout was taken away.
fn assert_one_line_error_on_stderr(output: &Output, code: i32) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(code), "{err}");
    assert_eq!(
        err,
        "cutrace: error: cannot write to standard output: No space left on device (os error 28)\n"
    );
}

#[test]
fn a_cause_is_said_once() {
    let output = cutrace([
        "convert".as_ref(),
        shared_trace("triton_example.json.gz").as_os_str(),
        "-o".as_ref(),
        "/dev/full".as_ref(),
    ]);
    assert_one_line_error(&output, 1, "cutrace: error: cannot convert ");
    let err = stderr(&output);
    assert_eq!(err.matches("No space left on device").count(), 1, "{err}");
    // Written to as a device, never replaced.
    use std::os::unix::fs::FileTypeExt;
    assert!(
        std::fs::metadata("/dev/full")
            .unwrap()
            .file_type()
            .is_char_device()
    );
    assert!(
        err.trim_end()
            .ends_with("/dev/full: No space left on device (os error 28)"),
        "{err}"
    );
}

#[test]
fn a_failed_write_says_its_cause_once() {
    let dir = TestDir::new();
    let out = dir.path("missing/out.json.gz");
    let output = cutrace([
        "convert".as_ref(),
        shared_trace("alexnet.json.gz").as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    assert_one_line_error(&output, 1, "cutrace: error: cannot convert ");
    let err = stderr(&output);
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    // The temporary file it was writing is not named: the output says where.
    assert!(!err.contains("at path"), "{err}");
}
