//! The log the processes of one `cutrace run` keep of what they did, so that the
//! run lists exactly the files its own processes wrote, even when other runs
//! write into the same directory at the same time.
//!
//! `cutrace run` creates the log and names it in [`RUN_LOG_VAR`], which every
//! process of the command inherits. Each traced process notes that it is traced,
//! and its [`ExportSink`](crate::ExportSink) every file it finished writing.
//! Records are appended with one write each to a file opened for appending, so
//! processes writing at once do not mix them; each is `<kind> <text>` ended by a
//! NUL, which no path holds.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The environment variable naming the log of the run a process belongs to.
pub const RUN_LOG_VAR: &str = "CUTRACE_RUN_LOG";

/// The log of one `cutrace run`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunLog {
    path: PathBuf,
}

/// What a run's processes logged.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RunRecord {
    /// The processes that were traced.
    pub traced: BTreeSet<u32>,
    /// The files they wrote, absolute, each once, in the order first written.
    pub files: Vec<PathBuf>,
}

const TRACED: &[u8] = b"traced";
const FILE: &[u8] = b"file";

impl RunLog {
    /// The log at `path` (created by the run).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        RunLog { path: path.into() }
    }

    /// The log of the run this process belongs to, if any.
    pub fn from_env() -> Option<Self> {
        std::env::var_os(RUN_LOG_VAR)
            .filter(|path| !path.is_empty())
            .map(RunLog::new)
    }

    /// Where the log is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Notes that process `pid` is traced.
    pub fn traced(&self, pid: u32) -> io::Result<()> {
        self.append(TRACED, pid.to_string().as_bytes())
    }

    /// Notes that `file` was written.
    pub fn wrote(&self, file: &Path) -> io::Result<()> {
        let file = std::path::absolute(file)?;
        self.append(FILE, file.as_os_str().as_bytes())
    }

    fn append(&self, kind: &[u8], text: &[u8]) -> io::Result<()> {
        let mut record = Vec::with_capacity(kind.len() + text.len() + 2);
        record.extend_from_slice(kind);
        record.push(b' ');
        record.extend_from_slice(text);
        record.push(0);
        // Not created here: a log that is gone belongs to a run that is over.
        let mut log = std::fs::OpenOptions::new().append(true).open(&self.path)?;
        log.write_all(&record)
    }

    /// Reads what was logged; records it does not know are skipped.
    pub fn read(&self) -> io::Result<RunRecord> {
        let bytes = std::fs::read(&self.path)?;
        let mut record = RunRecord::default();
        for entry in bytes.split(|&b| b == 0).filter(|e| !e.is_empty()) {
            let Some(space) = entry.iter().position(|&b| b == b' ') else {
                continue;
            };
            let (kind, text) = (&entry[..space], &entry[space + 1..]);
            match kind {
                TRACED => {
                    if let Some(pid) = std::str::from_utf8(text).ok().and_then(|t| t.parse().ok()) {
                        record.traced.insert(pid);
                    }
                }
                FILE => {
                    let file = PathBuf::from(OsStr::from_bytes(text));
                    if !record.files.contains(&file) {
                        record.files.push(file);
                    }
                }
                _ => {}
            }
        }
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_logged_reads_back_each_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.log");
        std::fs::write(&path, b"").unwrap();
        let log = RunLog::new(&path);
        log.traced(41).unwrap();
        log.wrote(&dir.path().join("w_41.1.pt.trace.json.gz"))
            .unwrap();
        log.wrote(&dir.path().join("profiler_out_0.txt")).unwrap();
        log.traced(42).unwrap();
        // A table rewritten by a later window, and a name with a newline in it.
        log.wrote(&dir.path().join("profiler_out_0.txt")).unwrap();
        log.wrote(&dir.path().join("odd\nname")).unwrap();
        let record = log.read().unwrap();
        assert_eq!(record.traced, BTreeSet::from([41, 42]));
        assert_eq!(
            record.files,
            [
                dir.path().join("w_41.1.pt.trace.json.gz"),
                dir.path().join("profiler_out_0.txt"),
                dir.path().join("odd\nname"),
            ]
        );
    }

    #[test]
    fn a_log_that_is_gone_is_not_made_again() {
        let dir = tempfile::tempdir().unwrap();
        let log = RunLog::new(dir.path().join("over.log"));
        assert!(log.traced(1).is_err());
        assert!(!log.path().exists());
    }
}
