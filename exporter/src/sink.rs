//! The tracer's [`TraceSink`] that writes each finished window to an output
//! directory: the trace and, beside it, the key-averages table.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use cutrace_tracer::identity::default_worker_name;
use cutrace_tracer::{Trace, TraceSink, WarningHook};

use crate::table_file::TableFiles;
use crate::{
    ExportError, KeyAverages, RunLog, SortKey, WriteOptions, trace_file_name, write_trace_with,
};

/// Writes every finished window as `<dir>/<worker>.<unix_ns>.pt.trace.json.gz` and
/// its key-averages table as `<dir>/profiler_out_<rank>.txt` (or, when another
/// process of the run wrote that one, `profiler_out_<rank>_<pid>.txt`: see
/// [`TableFiles`]).
#[derive(Clone)]
pub struct ExportSink {
    dir: PathBuf,
    options: WriteOptions,
    sort: SortKey,
    row_limit: Option<usize>,
    run_log: Option<RunLog>,
    /// When the process began tracing: without a run log, a table file last written
    /// before then is an earlier run's.
    started: SystemTime,
    tables: Arc<TableFiles>,
    warn: WarningHook,
}

impl fmt::Debug for ExportSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExportSink")
            .field("dir", &self.dir)
            .field("options", &self.options)
            .field("sort", &self.sort)
            .field("row_limit", &self.row_limit)
            .field("run_log", &self.run_log)
            .field("tables", &self.tables)
            .finish_non_exhaustive()
    }
}

impl ExportSink {
    /// A sink writing into `dir` (created on first use when missing).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self::with_options(dir, WriteOptions::default())
    }

    /// A sink writing into `dir` with `options`, for a process that begins tracing
    /// now.
    pub fn with_options(dir: impl Into<PathBuf>, options: WriteOptions) -> Self {
        let dir = dir.into();
        let started = SystemTime::now();
        ExportSink {
            tables: Arc::new(TableFiles::new(&dir, std::process::id(), started, None)),
            dir,
            options,
            sort: SortKey::default(),
            row_limit: Some(100),
            run_log: None,
            started,
            warn: Arc::new(|message: &str| eprintln!("cutrace: warning: {message}")),
        }
    }

    /// The same sink with what it has to say (a table written under another name)
    /// going to `warn` instead of stderr.
    pub fn with_warnings(self, warn: WarningHook) -> Self {
        ExportSink { warn, ..self }
    }

    /// The same sink with the table sorted by `sort` and cut to `row_limit` rows
    /// (`None`: all); torch's defaults are `self_cuda_time_total` and 100.
    pub fn with_table(self, sort: SortKey, row_limit: Option<usize>) -> Self {
        ExportSink {
            sort,
            row_limit,
            ..self
        }
    }

    /// The same sink, noting every file it writes in `log`, the log of the run
    /// whose processes' tables its own must not replace.
    pub fn with_run_log(self, log: RunLog) -> Self {
        ExportSink {
            tables: Arc::new(TableFiles::new(
                &self.dir,
                std::process::id(),
                self.started,
                Some(log.clone()),
            )),
            run_log: Some(log),
            ..self
        }
    }

    /// The output directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes the trace and the table of one window; returns both files' paths.
    pub fn export(&self, trace: &Trace) -> Result<WindowFiles, WindowError> {
        let path = self.write_trace(trace).map_err(WindowError::Trace)?;
        self.log(&path);
        let text = KeyAverages::from_trace(trace).table(self.sort, self.row_limit);
        let written = self
            .tables
            .write(trace.info.rank, &text)
            .map_err(|source| WindowError::Table {
                trace: path.clone(),
                source,
            })?;
        if let Some(notice) = written.notice {
            (self.warn)(&notice);
        }
        // The table files note their claims in the log themselves.
        Ok(WindowFiles {
            trace: path,
            table: written.path,
        })
    }

    /// Notes `file` in the run log. A log that cannot be written costs only the
    /// run's list of files, never the file.
    fn log(&self, file: &Path) {
        if let Some(log) = &self.run_log {
            let _ = log.wrote(file);
        }
    }

    fn write_trace(&self, trace: &Trace) -> Result<PathBuf, ExportError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| ExportError::io(&self.dir, e))?;
        let worker = if trace.info.worker_name.is_empty() {
            default_worker_name(&trace.info.host_name, trace.info.pid)
        } else {
            trace.info.worker_name.clone()
        };
        let now_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = self.dir.join(trace_file_name(&worker, now_ns)?);
        write_trace_with(trace, &path, &self.options)?;
        Ok(path)
    }
}

/// The files [`ExportSink::export`] wrote for one window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowFiles {
    /// The trace, `<dir>/<worker>.<unix_ns>.pt.trace.json.gz`.
    pub trace: PathBuf,
    /// The key-averages table, `<dir>/profiler_out_<rank>.txt` (or the process's
    /// own name for it).
    pub table: PathBuf,
}

/// What [`ExportSink`] did not write of a window, with why as its source.
#[derive(Debug, thiserror::Error)]
pub enum WindowError {
    /// Neither the trace nor the table was written.
    #[error("the trace was not written")]
    Trace(#[source] ExportError),
    /// The trace was written, its table was not.
    #[error("the trace was written to {}, its table was not", trace.display())]
    Table {
        /// The trace file written.
        trace: PathBuf,
        /// Why the table was not.
        source: ExportError,
    },
}

impl TraceSink for ExportSink {
    fn window_finished(
        &self,
        trace: Trace,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.export(&trace)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutrace_tracer::model::Kernel;

    fn one_kernel_trace(worker: &str) -> Trace {
        let mut trace = Trace::default();
        trace.info.worker_name = worker.to_owned();
        trace.info.host_name = "node7".to_owned();
        trace.info.pid = 4242;
        trace.base_time_ns = 1_000_000;
        let name = trace.names.intern("k");
        trace.kernels.push(Kernel {
            start: 1_000_500,
            end: 1_002_000,
            name,
            stream: 7,
            ..Default::default()
        });
        trace
    }

    #[test]
    fn writes_one_trace_per_window_into_a_new_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        let sink = ExportSink::new(&dir);
        sink.window_finished(one_kernel_trace("w0")).unwrap();
        sink.window_finished(one_kernel_trace("w0")).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names.len(), 3, "{names:?}");
        assert_eq!(names[0], "profiler_out_0.txt");
        for n in &names[1..] {
            let middle = n
                .strip_prefix("w0.")
                .and_then(|r| r.strip_suffix(".pt.trace.json.gz"))
                .unwrap_or_else(|| panic!("{n}"));
            assert!(middle.parse::<u128>().is_ok(), "{n}");
            let violations = crate::validate::validate_trace_file(&dir.join(n)).unwrap();
            assert!(violations.is_empty(), "{violations:?}");
        }
    }

    #[test]
    fn the_table_beside_the_trace_is_sorted_and_cut_as_configured() {
        let tmp = tempfile::tempdir().unwrap();
        let mut trace = one_kernel_trace("w0");
        trace.info.rank = 3;
        let other = trace.names.intern("other");
        trace.kernels.push(Kernel {
            start: 1_003_000,
            end: 1_003_100,
            name: other,
            ..Default::default()
        });
        trace.kernels.push(Kernel {
            start: 1_004_000,
            end: 1_004_100,
            name: other,
            ..Default::default()
        });
        ExportSink::new(tmp.path())
            .with_table(SortKey::Count, Some(1))
            .export(&trace)
            .unwrap();
        let text = std::fs::read_to_string(tmp.path().join("profiler_out_3.txt")).unwrap();
        let expected = crate::KeyAverages::from_trace(&trace).table(SortKey::Count, Some(1));
        assert_eq!(text, format!("{expected}\n"));
        assert!(text.contains("other"), "{text}");
        assert!(!text.contains(" k  "), "{text}");
    }

    #[test]
    fn every_file_written_is_noted_in_the_run_log() {
        let tmp = tempfile::tempdir().unwrap();
        let log_path = tmp.path().join("run.log");
        std::fs::write(&log_path, b"").unwrap();
        let log = RunLog::new(&log_path);
        let out = tmp.path().join("out");
        let sink = ExportSink::new(&out).with_run_log(log.clone());
        let files = sink.export(&one_kernel_trace("w0")).unwrap();
        assert_eq!(log.read().unwrap().files, [files.trace, files.table]);
    }

    #[test]
    fn default_worker_name_is_host_and_pid() {
        let tmp = tempfile::tempdir().unwrap();
        let files = ExportSink::new(tmp.path())
            .export(&one_kernel_trace(""))
            .unwrap();
        assert_eq!(files.table, tmp.path().join("profiler_out_0.txt"));
        let name = files
            .trace
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(name.starts_with("node7_4242."), "{name}");
    }

    /// An error with each of its causes, as the tracer's warnings and `cutrace`'s
    /// messages say it.
    fn with_causes(error: &(dyn std::error::Error + 'static)) -> String {
        std::iter::successors(Some(error), |e| e.source())
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join(": ")
    }

    #[test]
    fn a_bad_worker_name_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let err = ExportSink::new(tmp.path())
            .window_finished(one_kernel_trace("../escape"))
            .unwrap_err();
        assert_eq!(
            with_causes(&*err),
            "the trace was not written: invalid worker name \"../escape\": it contains a path separator"
        );
    }

    #[test]
    fn a_table_that_fails_after_its_trace_says_the_trace_was_written() {
        let tmp = tempfile::tempdir().unwrap();
        let mut trace = one_kernel_trace("w0");
        trace.info.rank = 5;
        // Directories where the table goes and, the usual name being taken, where
        // the process's own goes: renaming the table onto the second fails.
        let usual = tmp.path().join("profiler_out_5.txt");
        let table = tmp
            .path()
            .join(format!("profiler_out_5_{}.txt", std::process::id()));
        for dir in [&usual, &table] {
            std::fs::create_dir(dir).unwrap();
            std::fs::write(dir.join("keep"), "x").unwrap();
        }
        let sink = ExportSink::new(tmp.path()).with_warnings(Arc::new(|_: &str| {}));
        let err = sink.export(&trace).unwrap_err();
        let WindowError::Table { trace: written, .. } = &err else {
            panic!("{err:?}");
        };
        assert!(written.exists());
        let message = with_causes(&err);
        let expected = format!(
            "the trace was written to {}, its table was not: {}: ",
            written.display(),
            table.display()
        );
        assert!(message.starts_with(&expected), "{message}");
        assert_eq!(message.matches("os error").count(), 1, "{message}");
    }

    #[test]
    fn a_table_another_process_wrote_stays_and_the_sink_says_so() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("profiler_out_0.txt"), "another's").unwrap();
        let said = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let hook = said.clone();
        let sink = ExportSink::new(tmp.path())
            .with_warnings(Arc::new(move |m: &str| hook.lock().unwrap().push(m.into())));
        sink.export(&one_kernel_trace("w0")).unwrap();
        let files = sink.export(&one_kernel_trace("w0")).unwrap();
        let own = format!("profiler_out_0_{}.txt", std::process::id());
        assert_eq!(files.table, tmp.path().join(&own));
        let said = said.lock().unwrap();
        assert_eq!(said.len(), 1, "said once: {said:?}");
        assert!(said[0].ends_with(&own), "{}", said[0]);
        let text = std::fs::read_to_string(tmp.path().join(&own)).unwrap();
        assert!(text.contains("Self CUDA time total"), "{text}");
        let theirs = std::fs::read_to_string(tmp.path().join("profiler_out_0.txt")).unwrap();
        assert_eq!(theirs, "another's");
    }

    #[test]
    fn each_cause_of_a_failed_write_is_said_once() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("gone");
        let sink = ExportSink::new(&missing);
        std::fs::write(&missing, "a file where the directory should be").unwrap();
        let message = with_causes(&sink.export(&one_kernel_trace("w0")).unwrap_err());
        assert!(
            message.starts_with(&format!(
                "the trace was not written: {}: ",
                missing.display()
            )),
            "{message}"
        );
        assert_eq!(message.matches("os error").count(), 1, "{message}");
    }
}
