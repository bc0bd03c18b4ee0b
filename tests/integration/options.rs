//! `cutrace run` checks its whole configuration before anything runs, with or
//! without a driver, and `cutrace run --check` checks one without running anything.

use std::process::{Command, Output};

use serde_json::Value;

use crate::util::{TestDir, cutrace_command, cutrace_with_stand_ins, stderr, stdout};

/// The two machines a check must not depend on: one without a CUDA driver, and
/// one with the stand-in driver, the CUPTI test double and the injection library.
fn machines() -> [(&'static str, Command); 2] {
    let mut without = cutrace_command(["run"]);
    without.env("CUTRACE_CUDA_LIB", "/nonexistent/libcuda.so.1");
    let mut with = cutrace_with_stand_ins();
    with.arg("run");
    [("no driver", without), ("stand-in driver", with)]
}

/// Runs `cutrace run -o DIR/out OPTIONS -- sh -c 'touch DIR/ran'` on `command`.
fn run_marker(mut command: Command, dir: &TestDir, options: &[&str]) -> Output {
    let marker = dir.path("ran");
    command
        .arg("-o")
        .arg(dir.path("out"))
        .args(options)
        .args(["--", "sh", "-c"])
        .arg(format!("touch '{}'", marker.display()))
        .output()
        .unwrap()
}

#[test]
fn combinations_that_cannot_work_are_refused_before_the_command_runs() {
    let refused: [(&[&str], &str); 4] = [
        (
            &["--repeat", "2"],
            "cutrace: error: --repeat: invalid profiler config: repeat: 2 windows need max_iters above 0",
        ),
        (
            &["--nvtx-step", "step["],
            "cutrace: error: --nvtx-step: invalid profiler config: nvtx_step: \"step[\" is not a glob pattern",
        ),
        (
            &["--delay", "2", "--delay-iters", "10"],
            "cutrace: error: --delay, --delay-iters: invalid profiler config: delay_ms 2000 and delay_iters 10 both put off the first window",
        ),
        (
            &["-c", "cudaProfilerApi", "--duration", "5"],
            "cutrace: error: --capture-range, --duration: invalid profiler config: delay_ms and duration_ms",
        ),
    ];
    for (options, expected) in refused {
        for (machine, command) in machines() {
            let dir = TestDir::new();
            let out = run_marker(command, &dir, options);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(2), "{machine} {options:?}: {err}");
            assert!(err.starts_with(expected), "{machine} {options:?}: {err}");
            assert_eq!(err.lines().count(), 1, "{machine} {options:?}: {err}");
            assert!(!dir.path("ran").exists(), "{machine} {options:?}: it ran");
            assert!(!dir.path("out").exists(), "{machine} {options:?}: DIR made");
        }
    }
}

#[test]
fn a_bad_variable_of_the_callers_is_named_and_refused() {
    for (machine, mut command) in machines() {
        let dir = TestDir::new();
        command.env("CUTRACE_CONFIG", r#"{"repeat": 3}"#);
        let out = run_marker(command, &dir, &["--max-iters", "0"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{machine}: {err}");
        assert!(
            err.starts_with(
                "cutrace: error: CUTRACE_CONFIG, --max-iters: invalid profiler config: repeat: 3 windows"
            ),
            "{machine}: {err}"
        );
        assert!(!dir.path("ran").exists(), "{machine}: it ran");
    }
}

#[test]
fn a_good_configuration_still_runs_the_command() {
    for (machine, command) in machines() {
        let dir = TestDir::new();
        let out = run_marker(command, &dir, &["--repeat", "2", "--max-iters", "3"]);
        assert_eq!(out.status.code(), Some(0), "{machine}: {}", stderr(&out));
        assert!(dir.path("ran").exists(), "{machine}: it did not run");
    }
}

/// `cutrace run --check ARGS` on `command`, from a fresh directory.
fn check(mut command: Command, dir: &TestDir, args: &[&str]) -> Output {
    command
        .current_dir(dir.root())
        .arg("--check")
        .args(args)
        .output()
        .unwrap()
}

/// The configuration `--check` printed, and the line after it.
fn checked(out: &Output) -> (Value, String) {
    let text = stdout(out);
    let json = text
        .strip_prefix("configuration ok:\n")
        .unwrap_or_else(|| panic!("{text}"));
    let end = json.find("\n}\n").unwrap_or_else(|| panic!("{text}")) + 2;
    let config = serde_json::from_str(&json[..end]).unwrap();
    let rest = json[end..].trim_start_matches('\n');
    assert_eq!(rest.lines().count(), 1, "{text}");
    (config, rest.trim_end().to_owned())
}

#[test]
fn check_shows_the_configuration_and_runs_nothing() {
    for (machine, mut command) in machines() {
        let dir = TestDir::new();
        command.env(
            "CUTRACE_CONFIG",
            r#"{"activities": ["kernel"], "repeat": 2}"#,
        );
        let marker = dir.path("ran");
        let out = check(
            command,
            &dir,
            &[
                "-o",
                "out",
                "--nvtx-step",
                "step*",
                "--max-iters",
                "5",
                "--",
                "sh",
                "-c",
                &format!("touch '{}'", marker.display()),
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{machine}: {}", stderr(&out));
        let (config, machine_line) = checked(&out);
        assert_eq!(config["activities"], serde_json::json!(["kernel"]));
        assert_eq!(
            (
                &config["repeat"],
                &config["max_iters"],
                &config["nvtx_step"]
            ),
            (&2.into(), &5.into(), &"step*".into()),
            "{machine}"
        );
        let output_dir = dir.path("out");
        assert_eq!(config["output_dir"], output_dir.to_str().unwrap());
        if machine == "no driver" {
            assert!(
                machine_line.starts_with("cannot trace: no CUDA driver")
                    && machine_line
                        .ends_with("the command would run untraced (`cutrace doctor` says why)"),
                "{machine_line}"
            );
        } else {
            assert!(
                machine_line.starts_with("this machine can trace: ")
                    && machine_line.contains("libcutrace.so"),
                "{machine_line}"
            );
        }
        assert!(!marker.exists(), "{machine}: --check ran the command");
        assert!(!output_dir.exists(), "{machine}: --check made DIR");
    }
}

#[test]
fn an_option_given_overrides_the_environment_even_with_the_default_value() {
    for (machine, mut command) in machines() {
        let dir = TestDir::new();
        command
            .env("CUTRACE_CAPTURE_RANGE", "cudaProfilerApi")
            .env("CUTRACE_CONFIG", r#"{"capture_range": "cudaProfilerApi"}"#);
        let out = check(
            command,
            &dir,
            &["-o", "out", "-c", "none", "--duration", "1"],
        );
        assert_eq!(out.status.code(), Some(0), "{machine}: {}", stderr(&out));
        let (config, _) = checked(&out);
        assert_eq!(
            (&config["capture_range"], &config["duration_ms"]),
            (&"none".into(), &1000.into()),
            "{machine}"
        );
    }
}

#[test]
fn check_refuses_what_run_refuses() {
    for (machine, command) in machines() {
        let dir = TestDir::new();
        let out = check(command, &dir, &["--warmup-iters", "1", "--repeat", "4"]);
        assert_eq!(out.status.code(), Some(2), "{machine}");
        assert!(out.stdout.is_empty(), "{machine}");
        let err = stderr(&out);
        assert!(
            err.starts_with("cutrace: error: --repeat: invalid profiler config: repeat: 4 windows"),
            "{machine}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{machine}: {err}");
    }
}
