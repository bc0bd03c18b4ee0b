//! What every test needs: the real traces, an independent plain reading of trace
//! files, a fresh directory, a way to run `cutrace`, and the built programs and
//! libraries with the test stand-ins for the CUDA driver and CUPTI.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

/// Variables of the test's own environment that would change what cutrace does,
/// besides every `CUTRACE_*` and `VLLM_*` one ([`inherited`]).
const INHERITED: [&str; 12] = [
    "CUDA_INJECTION64_PATH",
    "NVTX_INJECTION64_PATH",
    "RANK",
    "LOCAL_RANK",
    "SLURM_PROCID",
    "OMPI_COMM_WORLD_RANK",
    "PMI_RANK",
    "WORLD_SIZE",
    "SLURM_NTASKS",
    "OMPI_COMM_WORLD_SIZE",
    "PMI_SIZE",
    "PYTHONPATH",
];

/// The variables of this process's environment that a child started by a test
/// must not inherit: a configuration key (`CUTRACE_MAX_ITERS`...), the run log of a
/// `cutrace run` the tests themselves run under, vLLM's profiler settings, ranks.
fn inherited() -> impl Iterator<Item = OsString> {
    std::env::vars_os().map(|(name, _)| name).filter(|name| {
        let name = name.to_string_lossy();
        name.starts_with("CUTRACE_") || name.starts_with("VLLM_") || INHERITED.contains(&&*name)
    })
}

/// The variable naming a directory that holds the optional large traces.
pub const TRACES_VAR: &str = "CUTRACE_TEST_TRACES";

/// Real traces over 1 MB that the repository does not carry. Tests that need one
/// take it from [`optional_trace`], which finds it in the directory [`TRACES_VAR`]
/// names or in `../shared/traces/kineto` beside the repository, and skip without it.
pub const OPTIONAL_TRACES: [&str; 3] = [
    "negative_queue_rank0.json.gz",
    "ns_resolution.pt.trace.json.gz",
    "trace_diff_control.json.gz",
];

/// The real PyTorch traces the repository carries (`tests/data/kineto`, see its
/// README).
fn bundled_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/kineto")
}

/// Where an optional trace named `name` is, if anywhere.
fn find_optional(name: &str) -> Option<PathBuf> {
    let from_var = std::env::var_os(TRACES_VAR)
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from);
    let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/traces/kineto");
    from_var
        .into_iter()
        .chain([beside])
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

/// The real traces every reader test runs on: every bundled one (their absence is a
/// failure, not a skip), then each optional one that is present.
pub fn shared_traces() -> Vec<PathBuf> {
    let dir = bundled_dir();
    let mut traces: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the bundled traces are missing at {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".json.gz"))
        .collect();
    assert!(
        traces.len() >= 12,
        "only {} traces in {}",
        traces.len(),
        dir.display()
    );
    traces.extend(
        OPTIONAL_TRACES
            .iter()
            .filter_map(|name| find_optional(name)),
    );
    traces.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    traces
}

/// One real trace by file name: the bundled copy, or an optional trace that is
/// present. A test that needs an optional trace asks [`optional_trace`] instead,
/// so that it skips rather than fails where the trace is absent.
pub fn shared_trace(name: &str) -> PathBuf {
    let bundled = bundled_dir().join(name);
    if bundled.is_file() {
        return bundled;
    }
    find_optional(name).unwrap_or_else(|| {
        if OPTIONAL_TRACES.contains(&name) {
            panic!("{name} is optional and absent: take it from optional_trace, which skips")
        }
        panic!("no trace {name} in {}", bundled_dir().display())
    })
}

/// An optional large trace, or `None` after saying on stderr why the calling test
/// skips: `skipped: <test>: <why>`, which `.ci/run` counts. The line goes to the
/// process's stderr directly, past the test harness's capture, so that
/// `cargo test` shows it.
pub fn optional_trace(name: &str) -> Option<PathBuf> {
    let found = find_optional(name);
    if found.is_none() {
        let test = std::thread::current()
            .name()
            .filter(|n| *n != "main")
            .map(|n| format!("{n}: "))
            .unwrap_or_default();
        let _ = writeln!(
            std::io::stderr().lock(),
            "skipped: {test}needs {name}, a large trace the repository does not carry \
             (set {TRACES_VAR} to a directory holding it)"
        );
    }
    found
}

/// A trace file parsed the plain way, with serde_json's `Value`.
pub struct PlainTrace {
    pub json: Value,
}

impl PlainTrace {
    pub fn load(path: &Path) -> Self {
        let mut text = Vec::new();
        flate2::read::MultiGzDecoder::new(File::open(path).unwrap())
            .read_to_end(&mut text)
            .unwrap();
        PlainTrace {
            json: serde_json::from_slice(&text).unwrap(),
        }
    }

    pub fn events(&self) -> &[Value] {
        self.json["traceEvents"].as_array().unwrap()
    }

    /// Complete (`X`) events of category `cat`.
    pub fn complete(&self, cat: &str) -> impl Iterator<Item = &Value> {
        self.events()
            .iter()
            .filter(move |e| e["ph"] == "X" && e["cat"] == cat)
    }

    pub fn count(&self, cat: &str) -> usize {
        self.complete(cat).count()
    }

    /// Per name: number of `cat` events and their summed `dur` in µs.
    pub fn sums(&self, cat: &str) -> HashMap<String, (u64, f64)> {
        let mut sums: HashMap<String, (u64, f64)> = HashMap::new();
        for e in self.complete(cat) {
            let entry = sums
                .entry(e["name"].as_str().unwrap().to_owned())
                .or_default();
            entry.0 += 1;
            entry.1 += e["dur"].as_f64().unwrap();
        }
        sums
    }

    /// pids that Kineto labels `GPU <n>` or that hold GPU events.
    pub fn device_pids(&self) -> Vec<i64> {
        let mut pids = Vec::new();
        for e in self.events() {
            let gpu_label = e["ph"] == "M"
                && e["name"] == "process_labels"
                && e["args"]["labels"]
                    .as_str()
                    .is_some_and(|l| l.starts_with("GPU"));
            let gpu_event = e["ph"] == "X"
                && ["kernel", "gpu_memcpy", "gpu_memset"]
                    .iter()
                    .any(|c| e["cat"] == *c);
            if gpu_label || gpu_event {
                if let Some(pid) = e["pid"].as_i64() {
                    pids.push(pid);
                }
            }
        }
        pids
    }
}

/// A fresh directory for one test, removed when dropped.
pub struct TestDir {
    dir: tempfile::TempDir,
}

impl TestDir {
    pub fn new() -> Self {
        TestDir {
            dir: tempfile::Builder::new()
                .prefix("cutrace-test-")
                .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
                .unwrap(),
        }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `bytes` to the file `name` and returns its path.
    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

/// The trace files in `dir`, sorted by name, read back; each must keep every rule
/// of Perfetto's importer (`docs/formats.md`, the trace file).
pub fn traces(dir: &Path) -> Vec<(String, Value)> {
    let mut files: Vec<(String, Value)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".pt.trace.json.gz"))
        .map(|path| {
            let violations = cutrace_exporter::validate::validate_trace_file(&path).unwrap();
            assert!(violations.is_empty(), "{}: {violations:?}", path.display());
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, PlainTrace::load(&path).json)
        })
        .collect();
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files
}

/// The names of one trace's kernels and of its host ranges, each in time order.
pub fn kernels_and_ranges(trace: &Value) -> (Vec<String>, Vec<String>) {
    let named = |category: &str| {
        let mut events: Vec<(f64, String)> = trace["traceEvents"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["cat"] == category && e["ph"] == "X")
            .map(|e| {
                let ts = e["ts"]
                    .as_f64()
                    .or_else(|| e["ts"].as_str()?.parse().ok())
                    .unwrap();
                (ts, e["name"].as_str().unwrap().to_owned())
            })
            .collect();
        events.sort_by(|a, b| a.0.total_cmp(&b.0));
        events.into_iter().map(|(_, name)| name).collect()
    };
    (named("kernel"), named("user_annotation"))
}

/// `cutrace` with `args` and a clean environment; see [`clean_command`].
pub fn cutrace_command<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = clean_command(env!("CARGO_BIN_EXE_cutrace"));
    command.args(args);
    command
}

/// `program` with a clean environment (none of the variables above), backtraces
/// on so that a panic could not hide.
pub fn clean_command(program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new(program);
    for var in inherited() {
        command.env_remove(var);
    }
    command.env("RUST_BACKTRACE", "1");
    command
}

/// `cutrace` as [`cutrace_command`] gives it, with the fake driver, the CUPTI test
/// double and the injection library in place.
pub fn cutrace_with_stand_ins() -> Command {
    let mut command = cutrace_command(std::iter::empty::<&OsStr>());
    with_stand_ins(&mut command).env("CUTRACE_LIB", injection_library());
    command
}

/// Points `command` at the fake driver and the CUPTI test double.
pub fn with_stand_ins(command: &mut Command) -> &mut Command {
    command
        .env("CUTRACE_CUDA_LIB", fake_libcuda())
        .env("CUTRACE_CUPTI_LIB", cupti_double())
}

/// Runs `cutrace` with `args` to completion.
pub fn cutrace<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    cutrace_command(args).output().unwrap()
}

/// Standard output, which must be UTF-8.
pub fn stdout(output: &Output) -> &str {
    std::str::from_utf8(&output.stdout).unwrap()
}

/// Standard error, which must be UTF-8.
pub fn stderr(output: &Output) -> &str {
    std::str::from_utf8(&output.stderr).unwrap()
}

/// The directory cargo builds into for this profile (`target/debug`).
pub fn build_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_cutrace"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The stand-in for libcuda.so.1, compiled from `tests/support/fake_libcuda.c`.
pub fn fake_libcuda() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fake-driver/libcuda.so.1");
        compile_c(
            &[support("fake_libcuda.c")],
            &out,
            &["-shared", "-fPIC", "-ldl"],
        );
        out
    })
}

/// libcutrace.so, the injection library.
pub fn injection_library() -> PathBuf {
    built_artifacts();
    build_dir().join("libcutrace.so")
}

/// The CUPTI test double.
pub fn cupti_double() -> PathBuf {
    built_artifacts();
    build_dir().join("libcupti_test_double.so")
}

/// The stand-in CUDA program (`examples/fake_cuda_program.rs`).
pub fn fake_program() -> PathBuf {
    built_artifacts();
    build_dir().join("examples/fake_cuda_program")
}

/// The embedding example (`examples/embed.rs`).
pub fn embed_example() -> PathBuf {
    built_artifacts();
    build_dir().join("examples/embed")
}

/// Compiles C `sources` into `out` with the system `cc`.
pub fn compile_c(sources: &[PathBuf], out: &Path, flags: &[&str]) {
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let status = Command::new("cc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(out)
        .args(sources)
        .args(flags)
        .status()
        .expect("cannot run cc");
    assert!(status.success(), "cc failed for {sources:?}");
}

/// A file of `tests/support`.
pub fn support(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support")
        .join(name)
}

/// Builds what the tests run but `cargo test` does not always build: the two
/// shared libraries and the example (cargo releases its build lock while tests
/// run, so a nested build is safe).
fn built_artifacts() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args([
                "build",
                "--quiet",
                "-p",
                "cutrace",
                "-p",
                "cupti-test-double",
            ])
            .args([
                "--lib",
                "--example",
                "fake_cuda_program",
                "--example",
                "embed",
            ]);
        if !cfg!(debug_assertions) {
            cargo.arg("--release");
        }
        let status = cargo.status().expect("cannot run cargo");
        assert!(status.success(), "building the test artifacts failed");
    });
}
