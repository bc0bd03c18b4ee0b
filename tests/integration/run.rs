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
    // At-exit handlers do not run on death by a signal: no window was written.
    assert_eq!(
        stderr(&out),
        format!(
            "cutrace: no files were written into {}: the command was killed by SIGTERM (signal 15)\n",
            dir.root().display()
        )
    );
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

fn wait_ready(child: &mut std::process::Child) {
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
}

/// `cutrace run -o DIR -- fake_cuda_program SCRIPT`, started, with its output
/// piped, in a process group of its own as a shell starts a job. Without one, the
/// run would share the test's group, which is orphaned when the tests run in a
/// session of their own (`setsid`, many CI runners): the kernel then discards
/// the SIGTSTP a stopped-job test sends instead of stopping the command.
fn spawn_run(dir: &Path, script: &[&str]) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    cutrace_with_stand_ins()
        .process_group(0)
        .arg("run")
        .arg("-o")
        .arg(dir)
        .arg("--")
        .arg(fake_program())
        .args(script)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The fields of `/proc/<pid>/stat` after the command name: state, ppid, ...
fn stat(pid: u32) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &text[text.rfind(')')? + 2..];
    Some(after_name.split(' ').map(str::to_owned).collect())
}

/// The one child process of `parent`.
fn child_of(parent: u32) -> u32 {
    let children: Vec<u32> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&pid| stat(pid).is_some_and(|s| s[1] == parent.to_string()))
        .collect();
    assert_eq!(children.len(), 1, "children of {parent}: {children:?}");
    children[0]
}

/// Kills process `pid` when dropped, so that a failing test leaves no command
/// running behind.
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if stat(self.0).is_some() {
            let _ = Command::new("kill")
                .args(["-KILL", &self.0.to_string()])
                .status();
        }
    }
}

/// How long a test waits for a process to do what it expects.
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

/// The lines `child` prints, each within [`PATIENCE`] or a panic.
fn lines_of(child: &mut std::process::Child) -> impl FnMut() -> String + use<> {
    let (lines, received) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if lines.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    move || received.recv_timeout(PATIENCE).expect("no line in time")
}

/// Waits until `child` exited, within [`PATIENCE`] or a panic.
fn wait_exit(child: &mut std::process::Child) {
    let deadline = std::time::Instant::now() + PATIENCE;
    while child.try_wait().unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "still running");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// `child`'s output once it exited, within [`PATIENCE`] or a panic.
fn exited(mut child: std::process::Child) -> Output {
    wait_exit(&mut child);
    child.wait_with_output().unwrap()
}

/// Waits until process `pid` is stopped (`true`) or not (`false`).
fn wait_stopped(pid: u32, stopped: bool) {
    let deadline = std::time::Instant::now() + PATIENCE;
    while stat(pid).is_some_and(|s| (s[0] == "T") != stopped) {
        assert!(
            std::time::Instant::now() < deadline,
            "{pid}: {:?}",
            stat(pid)
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

fn kill(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(signal)
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_window_given_up_at_exit_leaves_no_file_and_is_named() {
    let dir = TestDir::new();
    // Far more than a millisecond's writing.
    let out = cutrace_with_stand_ins()
        .env("CUTRACE_SHUTDOWN_WAIT_MS", "1")
        .arg("run")
        .arg("-o")
        .arg(dir.root())
        .arg("--")
        .arg(fake_program())
        .args(["kernels", "k", "200000", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let left: Vec<_> = std::fs::read_dir(dir.root())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, [] as [std::ffi::OsString; 0], "{}", stderr(&out));
    let given_up = stderr(&out)
        .lines()
        .find(|l| l.starts_with("cutrace: at exit: "))
        .unwrap_or_else(|| panic!("no warning:\n{}", stderr(&out)));
    assert!(
        given_up.starts_with(
            "cutrace: at exit: gave up waiting 1ms for the trace writer; lost, their \
             unfinished files removed: window 1 ("
        ),
        "{given_up}"
    );
}

#[test]
fn every_signal_a_terminal_or_a_job_manager_sends_reaches_the_command() {
    let dir = TestDir::new();
    let signals = [
        "HUP", "INT", "QUIT", "TERM", "USR1", "USR2", "WINCH", "CONT", "TSTP", "TTIN", "TTOU",
    ];
    let count = signals.len().to_string();
    let mut run = spawn_run(dir.root(), &["log-signals", &count]);
    let mut line = lines_of(&mut run);
    assert_eq!(line(), "ready");
    let _command = KillOnDrop(child_of(run.id()));
    for signal in signals {
        kill(run.id(), &format!("-{signal}"));
        assert_eq!(line(), format!("SIG{signal}"));
    }
    let out = exited(run);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(windows(dir.root()), [Vec::<String>::new()]);
}

#[test]
fn a_stopped_command_stops_the_run_and_both_go_on_when_continued() {
    let dir = TestDir::new();
    let mut run = spawn_run(dir.root(), &["ready", "wait-signal"]);
    wait_ready(&mut run);
    let command = child_of(run.id());
    let _command = KillOnDrop(command);
    let _run = KillOnDrop(run.id());
    // As `kill -TSTP %1` would: to cutrace run alone, which passes it on.
    kill(run.id(), "-TSTP");
    wait_stopped(command, true);
    // The run stops with it, so that a shell sees the job stopped.
    wait_stopped(run.id(), true);
    kill(run.id(), "-CONT");
    wait_stopped(run.id(), false);
    wait_stopped(command, false);
    kill(run.id(), "-TERM");
    let out = exited(run);
    assert_eq!(out.status.code(), Some(128 + 15), "{}", stderr(&out));
}

#[test]
fn a_hangup_reaches_the_command_and_the_run_exits_only_after_it() {
    let dir = TestDir::new();
    let mut run = spawn_run(dir.root(), &["ready", "wait-signal"]);
    wait_ready(&mut run);
    let command = child_of(run.id());
    let _command = KillOnDrop(command);
    kill(run.id(), "-HUP");
    wait_exit(&mut run);
    // Checked first: a command left running would hold the output open.
    assert!(stat(command).is_none(), "the command outlived the run");
    let out = run.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(128 + 1), "{}", stderr(&out));
    assert!(
        stderr(&out).ends_with(": the command was killed by SIGHUP (signal 1)\n"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_missing_program_exits_127_and_one_that_cannot_run_126() {
    let dir = TestDir::new();
    let missing = dir.path("no-such-program");
    let not_executable = dir.write("not-executable", b"#!/bin/sh\n");
    for (program, code, cause) in [
        (&missing, 127, "No such file or directory (os error 2)"),
        (&not_executable, 126, "Permission denied (os error 13)"),
    ] {
        let out = cutrace_with_stand_ins()
            .arg("run")
            .arg("-o")
            .arg(dir.path("out"))
            .arg("--")
            .arg(program)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(code), "{}", stderr(&out));
        assert_eq!(
            stderr(&out),
            format!(
                "cutrace: error: cannot run {}: {cause}\n",
                program.display()
            )
        );
    }
}

#[test]
fn two_runs_into_one_directory_list_only_their_own_files() {
    let dir = TestDir::new();
    // Run A's command writes its window at exit, after all of run B.
    let mut a = spawn_run(
        dir.root(),
        &[
            "exit-on-signal",
            "0",
            "kernel",
            "first",
            "10",
            "ready",
            "wait-signal",
        ],
    );
    wait_ready(&mut a);
    let b = run(dir.root(), &[], &["kernel", "second", "10"]);
    assert_eq!(b.status.code(), Some(0), "{}", stderr(&b));
    kill(a.id(), "-INT");
    let a = a.wait_with_output().unwrap();
    assert_eq!(a.status.code(), Some(0), "{}", stderr(&a));

    let traces = traces(dir.root());
    assert_eq!(traces.len(), 2);
    let worker_of = |kernel: &str| {
        let (name, _) = traces
            .iter()
            .find(|(_, t)| kernels(t) == [kernel])
            .unwrap_or_else(|| {
                let seen: Vec<_> = traces.iter().map(|(n, t)| (n, kernels(t))).collect();
                panic!(
                    "no trace of {kernel}: {seen:?}\n{}{}",
                    stderr(&a),
                    stderr(&b)
                )
            });
        (name.clone(), name.split('.').next().unwrap().to_owned())
    };
    let (a_trace, a_worker) = worker_of("first");
    let (b_trace, b_worker) = worker_of("second");
    for (out, own, other, other_worker) in [
        (&a, &a_trace, &b_trace, &b_worker),
        (&b, &b_trace, &a_trace, &a_worker),
    ] {
        let listing = stderr(out);
        assert!(listing.contains(own.as_str()), "{listing}");
        assert!(!listing.contains(other.as_str()), "{listing}");
        assert!(!listing.contains(other_worker.as_str()), "{listing}");
        assert!(!listing.contains("warning"), "{listing}");
        assert!(
            listing.starts_with("cutrace: 2 files written into "),
            "{listing}"
        );
    }
    let left: Vec<_> = std::fs::read_dir(dir.root())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with('.'))
        .collect();
    assert_eq!(left, [] as [String; 0], "the run logs are gone");
}
