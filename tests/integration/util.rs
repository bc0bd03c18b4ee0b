//! What every test needs: the shared traces, an independent plain reading of them,
//! a fresh directory, and a way to run `cutrace`.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

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
            dir: tempfile::tempdir().unwrap(),
        }
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

/// `cutrace` with `args`, backtraces on so that a panic could not hide.
pub fn cutrace_command<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new(env!("CARGO_BIN_EXE_cutrace"));
    command.args(args).env("RUST_BACKTRACE", "1");
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
