//! `cutrace doctor`.

use crate::util::{cutrace_with_stand_ins, fake_libcuda};

fn doctor(configure: impl FnOnce(&mut std::process::Command)) -> (i32, String) {
    let mut command = cutrace_with_stand_ins();
    command.arg("doctor");
    configure(&mut command);
    let out = command.output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
    )
}

#[test]
fn all_found_means_exit_0_and_the_gpus_are_listed() {
    let (code, report) = doctor(|_| {});
    assert_eq!(code, 0, "{report}");
    let driver = report
        .lines()
        .find(|l| l.starts_with("CUDA driver"))
        .unwrap();
    assert!(driver.contains(" ok "), "{report}");
    assert!(
        driver.ends_with(&format!("{}, CUDA 13.0", fake_libcuda().display())),
        "{report}"
    );
    assert!(report.contains("Fake GPU 0 (sm_90, 80.0 GiB)"), "{report}");
    assert!(report.contains("exports InitializeInjection"), "{report}");
    assert!(
        report.ends_with("tracing will work: cutrace run -o DIR -- <command>\n"),
        "{report}"
    );
}

#[test]
fn no_driver_fails_with_a_fix() {
    let (code, report) = doctor(|c| {
        c.env("CUTRACE_CUDA_LIB", "/nonexistent/libcuda.so.1");
    });
    assert_eq!(code, 1, "{report}");
    assert!(
        report.contains("FAIL  no CUDA driver: cannot open /nonexistent/libcuda.so.1"),
        "{report}"
    );
    assert!(
        report.contains("fix: install the NVIDIA driver"),
        "{report}"
    );
    assert!(
        report.ends_with("until the problems above are fixed\n"),
        "{report}"
    );
}

#[test]
fn a_driver_without_gpus_fails_with_its_message() {
    let (code, report) = doctor(|c| {
        c.env("FAKE_CUDA_DEVICES", "0");
    });
    assert_eq!(code, 1, "{report}");
    assert!(
        report.contains("cuInit failed: no CUDA-capable device is detected (CUresult 100)"),
        "{report}"
    );
}

#[test]
fn a_missing_injection_library_fails() {
    let (code, report) = doctor(|c| {
        c.env("CUTRACE_LIB", "/nonexistent/libcutrace.so");
    });
    assert_eq!(code, 1, "{report}");
    let line = report.lines().find(|l| l.starts_with("injection")).unwrap();
    assert!(
        line.contains("FAIL  CUTRACE_LIB=/nonexistent/libcutrace.so is not a file"),
        "{report}"
    );
}
