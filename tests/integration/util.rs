//! What every test needs: the shared traces, an independent plain reading of trace
//! files, a fresh directory, a way to run `cutrace`, and the built programs and
//! libraries with the test stand-ins for the CUDA driver and CUPTI.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

/// Variables of the test's own environment that would change what cutrace does.
pub const INHERITED: [&str; 15] = [
    "CUDA_INJECTION64_PATH",
    "NVTX_INJECTION64_PATH",
    "CUTRACE_CONFIG",
    "CUTRACE_CUPTI_LIB",
    "CUTRACE_CUDA_LIB",
    "CUTRACE_LIB",
    "RANK",
    "LOCAL_RANK",
    "SLURM_PROCID",
    "OMPI_COMM_WORLD_RANK",
    "PMI_RANK",
    "WORLD_SIZE",
    "SLURM_NTASKS",
    "OMPI_COMM_WORLD_SIZE",
    "PMI_SIZE",
];

/// The real traces every reader test runs on; their absence is a failure, not a skip.
pub fn shared_traces() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/traces/kineto");
    let mut traces: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the shared traces are missing at {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".json.gz"))
        .collect();
    traces.sort();
    assert!(
        traces.len() >= 10,
        "only {} traces in {}",
        traces.len(),
        dir.display()
    );
    traces
}

/// One shared trace by file name.
pub fn shared_trace(name: &str) -> PathBuf {
    shared_traces()
        .into_iter()
        .find(|p| p.file_name() == Some(OsStr::new(name)))
        .unwrap_or_else(|| panic!("no shared trace {name}"))
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
/// of Perfetto's importer (FORMATS.md §1).
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

/// `cutrace` with `args` and a clean environment (none of the variables above),
/// backtraces on so that a panic could not hide.
pub fn cutrace_command<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new(env!("CARGO_BIN_EXE_cutrace"));
    for var in INHERITED {
        command.env_remove(var);
    }
    command.args(args).env("RUST_BACKTRACE", "1");
    command
}

/// `cutrace` as [`cutrace_command`] gives it, with the fake driver, the CUPTI test
/// double and the injection library in place.
pub fn cutrace_with_stand_ins() -> Command {
    let mut command = cutrace_command(std::iter::empty::<&OsStr>());
    command
        .env("CUTRACE_CUDA_LIB", fake_libcuda())
        .env("CUTRACE_CUPTI_LIB", cupti_double())
        .env("CUTRACE_LIB", injection_library());
    command
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
