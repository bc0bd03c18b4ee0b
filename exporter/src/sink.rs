//! The tracer's [`TraceSink`] that writes each finished window to an output
//! directory: the trace and, beside it, the key-averages table.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use cutrace_tracer::identity::default_worker_name;
use cutrace_tracer::{Trace, TraceSink, WarningHook};

use crate::table_file::TableFiles;
use crate::{ExportError, KeyAverages, SortKey, WriteOptions, trace_file_name, write_trace_with};

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
            .field("tables", &self.tables)
            .finish_non_exhaustive()
    }
}

impl ExportSink {
    /// A sink writing into `dir` (created on first use when missing).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self::with_options(dir, WriteOptions::default())
    }

    /// A sink writing into `dir` with `options`, for a run that begins now.
    pub fn with_options(dir: impl Into<PathBuf>, options: WriteOptions) -> Self {
        let dir = dir.into();
        ExportSink {
            tables: Arc::new(TableFiles::new(&dir, std::process::id(), SystemTime::now())),
            dir,
            options,
            sort: SortKey::default(),
            row_limit: Some(100),
            warn: Arc::new(|message: &str| eprintln!("cutrace: warning: {message}")),
        }
    }

    /// The same sink for a run that began at `started`: a table file last written
    /// before then is an earlier run's, and may be replaced.
    pub fn with_run_start(self, started: SystemTime) -> Self {
        ExportSink {
            tables: Arc::new(TableFiles::new(&self.dir, std::process::id(), started)),
            ..self
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

    /// The output directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes the trace and the table of one window; returns the trace file's path.
    pub fn export(&self, trace: &Trace) -> Result<PathBuf, ExportError> {
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
        let table = KeyAverages::from_trace(trace).table(self.sort, self.row_limit);
        let written = self.tables.write(trace.info.rank, &table)?;
        if let Some(notice) = written.notice {
            (self.warn)(&notice);
        }
        Ok(path)
    }
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
    fn a_table_another_process_wrote_stays_and_the_sink_says_so() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("profiler_out_0.txt"), "another's").unwrap();
        let said = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let hook = said.clone();
        let sink = ExportSink::new(tmp.path())
            .with_run_start(SystemTime::now() - std::time::Duration::from_secs(60))
            .with_warnings(Arc::new(move |m: &str| hook.lock().unwrap().push(m.into())));
        sink.export(&one_kernel_trace("w0")).unwrap();
        sink.export(&one_kernel_trace("w0")).unwrap();
        let own = format!("profiler_out_0_{}.txt", std::process::id());
        let said = said.lock().unwrap();
        assert_eq!(said.len(), 1, "said once: {said:?}");
        assert!(said[0].ends_with(&own), "{}", said[0]);
        let text = std::fs::read_to_string(tmp.path().join(&own)).unwrap();
        assert!(text.contains("Self CUDA time total"), "{text}");
        let theirs = std::fs::read_to_string(tmp.path().join("profiler_out_0.txt")).unwrap();
        assert_eq!(theirs, "another's");
    }

    #[test]
    fn default_worker_name_is_host_and_pid() {
        let tmp = tempfile::tempdir().unwrap();
        let path = ExportSink::new(tmp.path())
            .export(&one_kernel_trace(""))
            .unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("node7_4242."), "{name}");
    }

    #[test]
    fn a_bad_worker_name_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let err = ExportSink::new(tmp.path())
            .window_finished(one_kernel_trace("../escape"))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid worker name \"../escape\": it contains a path separator"
        );
    }
}
