//! `cutrace run` over the stand-in CUDA program: traces per process, windows from
//! the profiler API and from NVTX ranges, exit codes, signals, and no CUPTI.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::util::{
    TestDir, cutrace_with_stand_ins, fake_program, kernels_and_ranges, stderr, stdout, traces,
};

/// `cutrace run -o DIR OPTIONS -- fake_cuda_program SCRIPT`.
fn run(dir: &Path, options: &[&str], script: &[&str]) -> Output {
    let mut command = cutrace_with_stand_ins();
    command
        .arg("run")
        .arg("-o")
        .arg(dir)
        .args(options)
        .arg("--")
        .arg(fake_program());
    command.args(script).output().unwrap()
}

/// `cutrace run -o DIR -- sh -c 'A & B & ... wait'`: stand-in programs side by
/// side, each with its environment prefix (`RANK=1 ...`) and its script.
fn run_side_by_side(dir: &Path, programs: &[(&str, &str)]) -> Output {
    let program = fake_program();
    let mut script: String = programs
        .iter()
        .map(|(env, steps)| format!("{env} '{}' {steps} & ", program.display()))
        .collect();
    script.push_str("wait");
    cutrace_with_stand_ins()
        .arg("run")
        .arg("-o")
        .arg(dir)
        .args(["--", "sh", "-c", &script])
        .output()
        .unwrap()
}

/// Each trace's rank, world size, pid (from its worker name) and kernels, by rank
/// and pid.
fn ranks(dir: &Path) -> Vec<(u64, u64, u32, Vec<String>)> {
    let mut ranks: Vec<_> = traces(dir)
        .iter()
        .map(|(name, t)| {
            let worker = name.split('.').next().unwrap();
            let pid = worker.rsplit('_').next().unwrap().parse().unwrap();
            let info = &t["distributedInfo"];
            (
                info["rank"].as_u64().unwrap(),
                info["world_size"].as_u64().unwrap(),
                pid,
                kernels(t),
            )
        })
        .collect();
    ranks.sort();
    ranks
}

/// The key-averages tables in `dir` by name, each with the names of its rows but
/// the iterations'.
fn tables(dir: &Path) -> Vec<(String, Vec<String>)> {
    let mut tables: Vec<(String, Vec<String>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("profiler_out_"))
        .map(|name| {
            let text = std::fs::read_to_string(dir.join(&name)).unwrap();
            let rows = text
                .lines()
                .skip(3)
                .take_while(|l| !l.starts_with('-'))
                .map(|l| l.split_whitespace().next().unwrap().to_owned())
                .filter(|row| !row.starts_with("ProfilerStep#"))
                .collect();
            (name, rows)
        })
        .collect();
    tables.sort();
    tables
}

/// The kernel names of one trace, in time order.
fn kernels(trace: &Value) -> Vec<String> {
    kernels_and_ranges(trace).0
}

/// Kernel names of every trace, ordered by the first kernel's time.
fn windows(dir: &Path) -> Vec<Vec<String>> {
    traces(dir).iter().map(|(_, t)| kernels(t)).collect()
}

#[test]
fn a_whole_run_is_one_window_and_the_exit_code_passes_through() {
    let dir = TestDir::new();
    let out = run(
        dir.root(),
        &[],
        &["kernel", "gemm", "100", "kernel", "relu", "20", "exit", "3"],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let traces = traces(dir.root());
    assert_eq!(traces.len(), 1, "{}", stderr(&out));
    let (name, trace) = &traces[0];
    assert_eq!(kernels(trace), ["gemm", "relu"]);
    // `<hostname>_<pid>`, as torch names workers.
    let worker = name.split('.').next().unwrap();
    let pid: u32 = worker.rsplit('_').next().unwrap().parse().unwrap();
    assert_ne!(pid, std::process::id());
    assert_eq!(trace["distributedInfo"]["rank"], 0);
    let listing = stderr(&out);
    assert!(
        listing.contains(&format!("  {worker}:\n    {name}\n")),
        "{listing}"
    );
}

#[test]
fn processes_without_a_rank_take_their_devices_and_keep_each_others_tables() {
    let dir = TestDir::new();
    let out = run_side_by_side(
        dir.root(),
        &[
            ("", "context 1 kernel on1 10"),
            ("", "context 2 kernel on2 10"),
            ("", "context 0 kernel a0 10"),
            ("", "context 0 kernel b0 10"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let ranks = ranks(dir.root());
    let mut summary: Vec<(u64, u64, Vec<String>)> = ranks
        .iter()
        .map(|(rank, world, _, kernels)| (*rank, *world, kernels.clone()))
        .collect();
    summary.sort();
    let strings = |names: &[&str]| -> Vec<String> { names.iter().map(|n| n.to_string()).collect() };
    assert_eq!(
        summary,
        [
            (0, 1, strings(&["a0"])),
            (0, 1, strings(&["b0"])),
            (1, 2, strings(&["on1"])),
            (2, 3, strings(&["on2"])),
        ],
        "{}",
        stderr(&out)
    );
    // One of the two rank-0 processes claimed profiler_out_0.txt; the other's table
    // is named by its pid, and neither replaced the other.
    let tables = tables(dir.root());
    let (usual, pid_named): (Vec<_>, Vec<_>) = tables
        .iter()
        .filter(|(name, _)| name.starts_with("profiler_out_0"))
        .partition(|(name, _)| name == "profiler_out_0.txt");
    assert_eq!((usual.len(), pid_named.len()), (1, 1), "{tables:?}");
    let (second_name, second_rows) = pid_named[0];
    let second = ranks
        .iter()
        .find(|(_, _, pid, _)| *second_name == format!("profiler_out_0_{pid}.txt"))
        .unwrap_or_else(|| panic!("{second_name} names no rank-0 process: {ranks:?}"));
    assert_eq!(*second_rows, second.3, "{tables:?}");
    assert_ne!(usual[0].1, second.3, "{tables:?}");
    assert!(tables.contains(&("profiler_out_1.txt".into(), strings(&["on1"]))));
    assert!(tables.contains(&("profiler_out_2.txt".into(), strings(&["on2"]))));
    let notices: Vec<&str> = stderr(&out)
        .lines()
        .filter(|l| l.starts_with("cutrace: warning: "))
        .collect();
    assert_eq!(notices.len(), 1, "{}", stderr(&out));
    assert!(
        notices[0].ends_with(&format!("is {}", dir.path(second_name).display())),
        "{}",
        notices[0]
    );
    assert!(
        stderr(&out).contains(&format!(
            "  rank 0:\n    profiler_out_0.txt\n    {second_name}\n"
        )),
        "{}",
        stderr(&out)
    );
}

#[test]
fn launchers_variables_give_the_rank() {
    let dir = TestDir::new();
    let out = run_side_by_side(
        dir.root(),
        &[
            ("SLURM_PROCID=3 SLURM_NTASKS=8", "context 0 kernel slurm 10"),
            (
                "OMPI_COMM_WORLD_RANK=4 OMPI_COMM_WORLD_SIZE=8",
                "context 0 kernel ompi 10",
            ),
            ("PMI_RANK=5 PMI_SIZE=8", "context 0 kernel pmi 10"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let summary: Vec<(u64, u64, Vec<String>)> = ranks(dir.root())
        .into_iter()
        .map(|(rank, world, _, kernels)| (rank, world, kernels))
        .collect();
    assert_eq!(
        summary,
        [
            (3, 8, vec!["slurm".to_owned()]),
            (4, 8, vec!["ompi".to_owned()]),
            (5, 8, vec!["pmi".to_owned()]),
        ]
    );
    let names: Vec<String> = tables(dir.root()).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "profiler_out_3.txt",
            "profiler_out_4.txt",
            "profiler_out_5.txt"
        ]
    );
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
}

#[test]
fn a_table_left_by_an_earlier_run_is_replaced() {
    let dir = TestDir::new();
    let old = dir.write("profiler_out_0.txt", b"an earlier run's table\n");
    let day_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(86_400);
    std::fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(day_ago)
        .unwrap();
    let out = run(dir.root(), &[], &["kernel", "fresh", "10"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        tables(dir.root()),
        [("profiler_out_0.txt".to_owned(), vec!["fresh".to_owned()])]
    );
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
}

#[test]
fn two_processes_with_their_own_ranks_get_no_warning() {
    let dir = TestDir::new();
    let out = run_side_by_side(
        dir.root(),
        &[
            ("RANK=0 WORLD_SIZE=2", "kernel a 10"),
            ("RANK=1 WORLD_SIZE=2", "kernel b 10"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
}

#[test]
fn two_processes_write_their_own_files_with_their_ranks() {
    let dir = TestDir::new();
    let out = run_side_by_side(
        dir.root(),
        &[
            ("RANK=0 WORLD_SIZE=2", "kernel rank0 10"),
            ("RANK=1 WORLD_SIZE=2", "kernel rank1 10"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let traces = traces(dir.root());
    assert_eq!(traces.len(), 2, "{}", stderr(&out));
    let mut by_rank: Vec<(u64, Vec<String>, String)> = traces
        .iter()
        .map(|(name, t)| {
            let rank = t["distributedInfo"]["rank"].as_u64().unwrap();
            (rank, kernels(t), name.split('.').next().unwrap().to_owned())
        })
        .collect();
    by_rank.sort();
    assert_eq!(by_rank[0].0, 0);
    assert_eq!(by_rank[0].1, ["rank0"]);
    assert_eq!(by_rank[1].0, 1);
    assert_eq!(by_rank[1].1, ["rank1"]);
    assert_ne!(
        by_rank[0].2, by_rank[1].2,
        "each process has its own worker name"
    );
    let listing = stderr(&out);
    for (_, _, worker) in &by_rank {
        assert!(listing.contains(&format!("  {worker}:\n")), "{listing}");
    }
    for (rank, kernel) in [(0, "rank0"), (1, "rank1")] {
        let table = std::fs::read_to_string(dir.root().join(format!("profiler_out_{rank}.txt")))
            .unwrap_or_else(|e| panic!("table of rank {rank}: {e}\n{listing}"));
        let row = table
            .lines()
            .find(|l| l.trim_start().starts_with(kernel))
            .unwrap_or_else(|| panic!("no {kernel} row:\n{table}"));
        assert!(row.ends_with(" 1  "), "one call of {kernel}: {row}");
        assert!(table.contains("Self CUDA time total:"), "{table}");
    }
}

#[test]
fn cuda_profiler_start_and_stop_open_and_close_windows() {
    let dir = TestDir::new();
    let out = run(
        dir.root(),
        &["-c", "cudaProfilerApi"],
        &[
            "kernel",
            "before",
            "10",
            "profiler-start",
            "kernel",
            "first",
            "10",
            "profiler-stop",
            "kernel",
            "between",
            "10",
            "cu-profiler-start",
            "kernel",
            "second",
            "10",
            "cu-profiler-stop",
            "kernel",
            "after",
            "10",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        windows(dir.root()),
        [vec!["first"], vec!["second"]],
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_window_left_open_by_the_program_is_written_at_exit() {
    let dir = TestDir::new();
    let out = run(
        dir.root(),
        &["-c", "cudaProfilerApi"],
        &[
            "kernel",
            "before",
            "10",
            "profiler-start",
            "kernel",
            "open",
            "10",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(windows(dir.root()), [vec!["open"]]);
}

#[test]
fn nvtx_range_ends_are_iterations() {
    let dir = TestDir::new();
    let out = run(
        dir.root(),
        &[
            "--nvtx-step",
            "step*",
            "--delay-iters",
            "1",
            "--max-iters",
            "2",
        ],
        &[
            "kernel", "k1", "10", "nvtx", "step", "kernel", "k2", "10", "nvtx", "forward",
            "kernel", "k2b", "10", "nvtx", "step", "kernel", "k3", "10", "nvtx", "step_3",
            "kernel", "k4", "10", "nvtx", "step",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Iteration 1 (k1) is the delay; 2 and 3 are recorded; "forward" is no step.
    assert_eq!(
        windows(dir.root()),
        [vec!["k2", "k2b", "k3"]],
        "{}",
        stderr(&out)
    );
}

#[test]
fn domain_ranges_with_registered_names_are_iterations() {
    let dir = TestDir::new();
    let out = run(
        dir.root(),
        &["--nvtx-step", "step*", "--max-iters", "2"],
        &[
            "kernel",
            "k1",
            "10",
            "nvtx-domain",
            "step",
            "kernel",
            "k2",
            "10",
            "nvtx-domain",
            "forward",
            "kernel",
            "k2b",
            "10",
            "nvtx-domain",
            "step",
            "kernel",
            "k3",
            "10",
            "nvtx-domain",
            "step",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // "forward" is no step: iteration 2 holds k2 and k2b; k3 is past max-iters.
    assert_eq!(
        windows(dir.root()),
        [vec!["k1", "k2", "k2b"]],
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_forwarded_signal_lets_the_program_finish_its_trace() {
    let dir = TestDir::new();
    let mut child = cutrace_with_stand_ins()
        .arg("run")
        .arg("-o")
        .arg(dir.root())
        .arg("--")
        .arg(fake_program())
        .args([
            "exit-on-signal",
            "7",
            "kernel",
            "k",
            "10",
            "ready",
            "wait-signal",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_ready(&mut child);
    kill(child.id(), "-INT");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert_eq!(windows(dir.root()), [vec!["k"]]);
}

#[test]
fn death_by_a_forwarded_signal_is_128_plus_the_signal() {
    let dir = TestDir::new();
    let mut child = cutrace_with_stand_ins()
        .arg("run")
        .arg("-o")
        .arg(dir.root())
        .arg("--")
        .arg(fake_program())
        .args(["ready", "wait-signal"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_ready(&mut child);
    kill(child.id(), "-TERM");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(128 + 15), "{}", stderr(&out));
}

#[test]
fn without_cupti_the_command_runs_untraced() {
    let dir = TestDir::new();
    let out = cutrace_with_stand_ins()
        .env("CUTRACE_CUPTI_LIB", "/nonexistent/libcupti.so")
        .arg("run")
        .arg("-o")
        .arg(dir.root())
        .args(["--", "sh", "-c", "echo hello; exit 4"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(stdout(&out), "hello\n");
    let warning = stderr(&out);
    assert!(warning.lines().count() <= 2, "{warning}");
    assert!(warning.contains("/nonexistent/libcupti.so"), "{warning}");
    assert!(
        warning.contains("running the command untraced"),
        "{warning}"
    );
    assert!(traces(dir.root()).is_empty());
}

#[test]
fn without_a_driver_the_command_runs_untraced() {
    let dir = TestDir::new();
    let out = cutrace_with_stand_ins()
        .env("CUTRACE_CUDA_LIB", "/nonexistent/libcuda.so.1")
        .arg("run")
        .arg("-o")
        .arg(dir.root())
        .args(["--", "sh", "-c", "exit 0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let warning = stderr(&out);
    assert!(warning.lines().count() <= 2, "{warning}");
    assert!(warning.contains("no CUDA driver"), "{warning}");
}

#[test]
fn a_process_that_cannot_be_traced_warns_once_and_runs_on() {
    let dir = TestDir::new();
    let mut command = cutrace_with_stand_ins();
    command.env("RANK", "first");
    let out = command
        .arg("run")
        .arg("-o")
        .arg(dir.root())
        .arg("--")
        .arg(fake_program())
        .args(["kernel", "k", "10", "exit", "5"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let warnings: Vec<String> = stderr(&out)
        .lines()
        .filter(|l| l.contains("untraced"))
        .map(str::to_owned)
        .collect();
    assert_eq!(
        warnings,
        [
            "cutrace: InitializeInjection: environment variable RANK=\"first\" is not a non-negative integer; this process runs untraced"
        ]
    );
    assert!(traces(dir.root()).is_empty());
}

#[test]
fn bad_options_are_refused_before_the_command_runs() {
    let dir = TestDir::new();
    let marker = dir.root().join("ran");
    let out = cutrace_with_stand_ins()
        .arg("run")
        .arg("-o")
        .arg(dir.root())
        .args(["--nvtx-step", "step[", "--", "touch"])
        .arg(&marker)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("nvtx_step: \"step[\" is not a glob pattern"),
        "{}",
        stderr(&out)
    );
    assert!(!marker.exists());
}

fn wait_ready(child: &mut std::process::Child) {
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
}

fn kill(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(signal)
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}
