//! The Rust embedding API (`cutrace::profiler`), through `examples/embed.rs`.

use crate::util::{
    TestDir, clean_command, cupti_double, embed_example, kernels_and_ranges, stderr, traces,
};

fn embed(dir: &TestDir, cupti: &std::path::Path) -> std::process::Output {
    clean_command(embed_example())
        .arg(dir.root())
        .env("CUTRACE_CUPTI_LIB", cupti)
        .output()
        .unwrap()
}

#[test]
fn an_embedded_profiler_writes_the_iterations_it_was_asked_for() {
    let dir = TestDir::new();
    let out = embed(&dir, &cupti_double());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stderr(&out), "", "no warning when tracing works");
    let traces = traces(dir.root());
    assert_eq!(traces.len(), 1, "one window");
    let (_, ranges) = kernels_and_ranges(&traces[0].1);
    let mut steps: Vec<&str> = ranges
        .iter()
        .map(String::as_str)
        .filter(|r| r.starts_with("ProfilerStep#"))
        .collect();
    steps.sort();
    assert_eq!(
        steps,
        ["ProfilerStep#2", "ProfilerStep#3", "ProfilerStep#4"]
    );
    let forwards = ranges.iter().filter(|r| *r == "forward").count();
    assert_eq!(
        forwards, 3,
        "one annotation per recorded iteration: {ranges:?}"
    );
    let table = std::fs::read_to_string(dir.path("profiler_out_0.txt")).unwrap();
    let forward_row = table
        .lines()
        .find(|l| l.trim_start().starts_with("forward "))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(forward_row.ends_with(" 3  "), "{forward_row}");
}

#[test]
fn without_cupti_an_embedded_profiler_warns_and_the_program_runs_on() {
    let dir = TestDir::new();
    let out = embed(&dir, &dir.path("no-such-libcupti.so"));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let warnings: Vec<&str> = stderr(&out).lines().collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("cutrace: warning: "),
        "{warnings:?}"
    );
    assert!(warnings[0].contains("no-such-libcupti.so"), "{warnings:?}");
    assert!(traces(dir.root()).is_empty());
}
