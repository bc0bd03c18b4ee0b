//! Bad input: one line on stderr, a non-zero exit, never a panic.

use std::io::Read;
use std::process::{Output, Stdio};

use crate::util::{TestDir, cutrace, cutrace_command, shared_trace, stderr};

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

#[test]
fn a_closed_pipe_is_not_an_error() {
    let trace = shared_trace("trace_diff_control.json.gz");
    let mut child = cutrace_command([
        "report".as_ref(),
        trace.as_os_str(),
        "--row-limit".as_ref(),
        "-1".as_ref(),
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // Closed before the trace is read, so the first write meets a broken pipe.
    drop(child.stdout.take());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}: {err}");
    assert_eq!(err, "");
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
    assert_eq!(err.matches("at path").count(), 1, "{err}");
}
