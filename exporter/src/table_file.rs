//! Where a process's key-averages tables go: `profiler_out_<rank>.txt`, as vLLM names
//! them, claimed once per process and rank so that no process of a run replaces the
//! table of another.
//!
//! A process's first table of a rank claims `profiler_out_<rank>.txt` while it holds
//! an exclusive lock on the directory (`flock`), so that looking at the name,
//! writing it and noting it in the run's log are one step for every cutrace process
//! writing there. The name is
//! - free: the table is created under it (create-exclusive, never over a file that
//!   appeared meanwhile);
//! - taken by another process of this run that has the same rank: that file stays,
//!   this process's table goes to `profiler_out_<rank>_<pid>.txt`, and
//!   [`TableFiles::write`] says so (once: the claim is made once). Under `cutrace
//!   run` the run's log ([`RunLog`]) says which files the run's processes wrote;
//!   without one, a file last written since this process began tracing is taken
//!   for another process's;
//! - taken by any other file (an earlier run's, another run's): the table replaces
//!   it, as torch's tables replace each other from run to run.
//!
//! Later tables of the same rank replace the claimed file, as vLLM's replace each
//! other window after window. Every file appears whole: it is written to a temporary
//! file and renamed into place.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tempfile::NamedTempFile;

use crate::unfinished::{self, Listed};
use crate::{ExportError, RunLog};

/// Without a run log, how much older than this process's start a file must be to
/// count as an earlier run's: file systems that keep coarse timestamps (whole
/// seconds, or two) may date a file written just after the start before it.
const CLOCK_SLACK: Duration = Duration::from_secs(2);

/// The table files of one process in one directory.
#[derive(Debug)]
pub struct TableFiles {
    dir: PathBuf,
    pid: u32,
    started: SystemTime,
    run_log: Option<RunLog>,
    claimed: Mutex<HashMap<u32, PathBuf>>,
}

/// A table written: where, and what to tell the user about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenTable {
    /// The file written.
    pub path: PathBuf,
    /// Why the table is not where it usually goes, the first time that happens.
    pub notice: Option<String>,
}

impl TableFiles {
    /// The tables process `pid`, which began tracing at `started`, writes into
    /// `dir`, noting them in `run_log`, the log of the `cutrace run` it belongs to.
    pub fn new(
        dir: impl Into<PathBuf>,
        pid: u32,
        started: SystemTime,
        run_log: Option<RunLog>,
    ) -> Self {
        TableFiles {
            dir: dir.into(),
            pid,
            started,
            run_log,
            claimed: Mutex::default(),
        }
    }

    /// Writes `text` as the table of `rank`, as vLLM's `print(table, file=f)` does
    /// (so with one more newline).
    pub fn write(&self, rank: u32, text: &str) -> Result<WrittenTable, ExportError> {
        let usual = self.dir.join(format!("profiler_out_{rank}.txt"));
        let fail = |path: &Path, source| ExportError::io(path, source);
        // Listed until renamed: a process exiting without waiting for its writer
        // removes it (see `unfinished`).
        let (table, _listed) = self.temporary(text).map_err(|e| fail(&usual, e))?;
        let mut claimed = self.claimed.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(path) = claimed.get(&rank) {
            table.persist(path).map_err(|e| fail(path, e.error))?;
            return Ok(WrittenTable {
                path: path.clone(),
                notice: None,
            });
        }
        let written = self.claim(rank, &usual, table)?;
        claimed.insert(rank, written.path.clone());
        Ok(written)
    }

    /// Writes the first table of `rank`, deciding its name (see the module's doc).
    fn claim(
        &self,
        rank: u32,
        usual: &Path,
        table: NamedTempFile,
    ) -> Result<WrittenTable, ExportError> {
        // Without the lock (a file system that has none) the claim is still
        // create-exclusive; only replacing another run's file could then race.
        let _lock = DirectoryLock::exclusive(&self.dir).ok();
        let table = match table.persist_noclobber(usual) {
            Ok(_) => return Ok(self.claimed(usual, None)),
            Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => e.file,
            Err(e) => return Err(ExportError::io(usual, e.error)),
        };
        if !self.written_by_this_run(usual) {
            table
                .persist(usual)
                .map_err(|e| ExportError::io(usual, e.error))?;
            return Ok(self.claimed(usual, None));
        }
        // A pid is one process's alone among the processes of a run.
        let own = self
            .dir
            .join(format!("profiler_out_{rank}_{}.txt", self.pid));
        table
            .persist(&own)
            .map_err(|e| ExportError::io(&own, e.error))?;
        let notice = format!(
            "{} holds the table of another process of this run that also ran as rank {rank}; this process's (pid {}) is {}",
            usual.display(),
            self.pid,
            own.display()
        );
        Ok(self.claimed(&own, Some(notice)))
    }

    /// The table claimed at `path`, noted in the run's log while the directory is
    /// still locked, so that the run's next process to look sees it as taken.
    fn claimed(&self, path: &Path, notice: Option<String>) -> WrittenTable {
        if let Some(log) = &self.run_log {
            // A log that cannot be written costs the run its list, never the table.
            let _ = log.wrote(path);
        }
        self.written(path, notice)
    }

    fn written(&self, path: &Path, notice: Option<String>) -> WrittenTable {
        WrittenTable {
            path: path.to_owned(),
            notice,
        }
    }

    /// Whether a process of this run wrote the file at `path`: the run's log says
    /// so, or, without one, the file was last written since this process began.
    fn written_by_this_run(&self, path: &Path) -> bool {
        if let Some(log) = &self.run_log {
            let Ok(absolute) = std::path::absolute(path) else {
                return true;
            };
            return match log.read() {
                Ok(record) => record.files.contains(&absolute),
                // A log that cannot be read leaves the file alone.
                Err(_) => true,
            };
        }
        let Ok(modified) = std::fs::metadata(path).and_then(|m| m.modified()) else {
            // Gone or unreadable: not provably another run's, so left alone.
            return true;
        };
        modified
            .checked_add(CLOCK_SLACK)
            .is_none_or(|m| m >= self.started)
    }

    /// `text` and a newline in a complete temporary file in the directory.
    fn temporary(&self, text: &str) -> io::Result<(NamedTempFile, Listed<'static>)> {
        let mut builder = tempfile::Builder::new();
        builder.prefix(".profiler_out_").suffix(".tmp");
        // A temporary file is private by default; the table is not.
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
        let (mut file, listed) = unfinished::create_temp(&builder, &self.dir)?;
        file.write_all(text.as_bytes())?;
        file.write_all(b"\n")?;
        file.as_file().sync_all()?;
        Ok((file, listed))
    }
}

/// An exclusive `flock` on a directory, released when dropped (the file closes).
struct DirectoryLock {
    _open: File,
}

impl DirectoryLock {
    fn exclusive(dir: &Path) -> io::Result<DirectoryLock> {
        use std::os::fd::AsRawFd;
        let file = File::open(dir)?;
        loop {
            // SAFETY: the descriptor belongs to `file`, which is open for the call.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
            if rc == 0 {
                return Ok(DirectoryLock { _open: file });
            }
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::Interrupted {
                return Err(error);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::names;

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn the_first_table_takes_the_usual_name_and_later_ones_replace_it() {
        let dir = tempfile::tempdir().unwrap();
        let tables = TableFiles::new(dir.path(), 42, SystemTime::now(), None);
        let first = tables.write(3, "one").unwrap();
        assert_eq!(
            first,
            WrittenTable {
                path: dir.path().join("profiler_out_3.txt"),
                notice: None
            }
        );
        assert_eq!(read(&first.path), "one\n");
        let second = tables.write(3, "two").unwrap();
        assert_eq!(second, first);
        assert_eq!(read(&first.path), "two\n");
        assert_eq!(
            names(dir.path()),
            ["profiler_out_3.txt"],
            "no temporary left"
        );
    }

    #[test]
    fn another_process_of_the_run_keeps_its_table() {
        let dir = tempfile::tempdir().unwrap();
        let started = SystemTime::now() - Duration::from_secs(60);
        let first = TableFiles::new(dir.path(), 10, started, None);
        let second = TableFiles::new(dir.path(), 11, started, None);
        first.write(0, "first's").unwrap();
        let written = second.write(0, "second's").unwrap();
        assert_eq!(written.path, dir.path().join("profiler_out_0_11.txt"));
        let notice = written.notice.unwrap();
        assert!(
            notice.ends_with(&format!(
                "profiler_out_0.txt holds the table of another process of this run that also ran as rank 0; this process's (pid 11) is {}",
                written.path.display()
            )),
            "{notice}"
        );
        assert_eq!(read(&dir.path().join("profiler_out_0.txt")), "first's\n");
        assert_eq!(read(&written.path), "second's\n");
        // Said once: the next window goes to the same file without a word.
        let again = second.write(0, "second's, again").unwrap();
        assert_eq!((again.path, again.notice), (written.path.clone(), None));
        assert_eq!(read(&written.path), "second's, again\n");
        assert_eq!(read(&dir.path().join("profiler_out_0.txt")), "first's\n");
    }

    #[test]
    fn an_earlier_runs_table_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("profiler_out_1.txt");
        std::fs::write(&old, "last run's").unwrap();
        let hour_ago = SystemTime::now() - Duration::from_secs(3600);
        File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
        let tables = TableFiles::new(dir.path(), 7, SystemTime::now(), None);
        let written = tables.write(1, "this run's").unwrap();
        assert_eq!((written.path, written.notice), (old.clone(), None));
        assert_eq!(read(&old), "this run's\n");
    }

    /// A run's log in `dir`, as `cutrace run` makes one.
    fn run_log(dir: &Path, name: &str) -> RunLog {
        let path = dir.join(name);
        std::fs::write(&path, b"").unwrap();
        RunLog::new(path)
    }

    #[test]
    fn under_a_run_log_another_run_s_table_is_replaced_and_this_run_s_kept() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let ours = run_log(dir.path(), "ours.log");
        let theirs = run_log(dir.path(), "theirs.log");
        // Written just now, by a process of another run: replaced.
        let other_run = TableFiles::new(&out, 1, SystemTime::now(), Some(theirs.clone()));
        other_run.write(0, "other run's").unwrap();
        let first = TableFiles::new(&out, 2, SystemTime::now(), Some(ours.clone()));
        let written = first.write(0, "first's").unwrap();
        assert_eq!(
            (written.path.clone(), written.notice),
            (out.join("profiler_out_0.txt"), None)
        );
        assert_eq!(read(&written.path), "first's\n");
        // The claim is in this run's log: this run's next process keeps off it.
        let usual = std::path::absolute(out.join("profiler_out_0.txt")).unwrap();
        assert_eq!(ours.read().unwrap().files, [usual]);
        let second = TableFiles::new(&out, 3, SystemTime::now(), Some(ours.clone()));
        let written = second.write(0, "second's").unwrap();
        assert_eq!(written.path, out.join("profiler_out_0_3.txt"));
        assert!(written.notice.is_some());
        assert_eq!(read(&out.join("profiler_out_0.txt")), "first's\n");
        assert_eq!(ours.read().unwrap().files.len(), 2);
    }

    #[test]
    fn a_file_written_just_before_the_start_counts_as_this_runs() {
        // Within the clock slack: left alone, in case its time was rounded down.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("profiler_out_0.txt"), "x").unwrap();
        let tables = TableFiles::new(
            dir.path(),
            5,
            SystemTime::now() + Duration::from_secs(1),
            None,
        );
        let written = tables.write(0, "y").unwrap();
        assert_eq!(written.path, dir.path().join("profiler_out_0_5.txt"));
    }

    #[test]
    fn many_writers_at_once_each_keep_their_table() {
        let dir = tempfile::tempdir().unwrap();
        let started = SystemTime::now();
        std::thread::scope(|scope| {
            for pid in 0..8 {
                let dir = dir.path();
                scope.spawn(move || {
                    TableFiles::new(dir, pid, started, None)
                        .write(0, &format!("table of {pid}"))
                        .unwrap()
                });
            }
        });
        let names = names(dir.path());
        assert_eq!(names.len(), 8, "{names:?}");
        let mut tables: Vec<String> = names.iter().map(|n| read(&dir.path().join(n))).collect();
        tables.sort();
        let mut expected: Vec<String> = (0..8).map(|pid| format!("table of {pid}\n")).collect();
        expected.sort();
        assert_eq!(tables, expected);
        assert!(names.contains(&"profiler_out_0.txt".to_owned()));
    }

    #[test]
    fn a_missing_directory_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let error = TableFiles::new(&missing, 1, SystemTime::now(), None)
            .write(3, "x")
            .unwrap_err();
        let target = missing.join("profiler_out_3.txt");
        // The path, then its cause once, as every I/O error of the exporter says.
        assert_eq!(error.to_string(), target.display().to_string());
        let cause = std::error::Error::source(&error).unwrap().to_string();
        assert!(cause.contains("No such file or directory"), "{cause}");
    }
}
