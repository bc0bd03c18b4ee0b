//! The windows this process's tracer has written, for `cutrace_windows_json`: each
//! one's trace file, table file and table text.
//!
//! The tracer writes through [`LoggingSink`], the exporter's sink that also notes
//! what each window left behind. The table's text is kept, not only its path,
//! because the next window of the same rank overwrites `profiler_out_<rank>.txt`.
//! The log keeps the last [`KEPT`] windows, so a server that traces for weeks
//! does not grow it without bound; entries keep their number in the process's
//! life, so a reader that asks for "from window n on" never sees one twice.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use cutrace_exporter::ExportSink;
use cutrace_tracer::{Trace, TraceSink};

/// Windows the log keeps.
const KEPT: usize = 64;

/// What one window left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Written {
    /// Its number, from 0, among the windows written in the process's life; set
    /// by [`Log::push`].
    pub(crate) number: usize,
    /// The trace file.
    pub(crate) trace: PathBuf,
    /// The key-averages table file.
    pub(crate) table: PathBuf,
    /// The table as it was written.
    pub(crate) table_text: String,
}

/// The last windows written, oldest first.
#[derive(Debug)]
pub(crate) struct Log {
    /// Number of the first kept window, counted from 0 over the process's life.
    first: usize,
    windows: VecDeque<Written>,
}

impl Log {
    /// An empty log.
    pub(crate) const fn new() -> Log {
        Log {
            first: 0,
            windows: VecDeque::new(),
        }
    }

    /// Adds a window, numbering it and forgetting the oldest beyond [`KEPT`].
    pub(crate) fn push(&mut self, mut window: Written) {
        window.number = self.first + self.windows.len();
        self.windows.push_back(window);
        if self.windows.len() > KEPT {
            self.windows.pop_front();
            self.first += 1;
        }
    }

    /// The kept windows numbered `from` and later.
    pub(crate) fn since(&self, from: usize) -> Vec<Written> {
        let skip = from.saturating_sub(self.first);
        self.windows.iter().skip(skip).cloned().collect()
    }
}

/// The process's log.
pub(crate) static LOG: Mutex<Log> = Mutex::new(Log::new());

/// The windows numbered `from` and later that the log still keeps.
pub(crate) fn since(from: usize) -> Vec<Written> {
    // A panic while the lock was held left at worst a log without its last entry.
    LOG.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .since(from)
}

/// The exporter's sink, noting in [`LOG`] what each window wrote.
pub(crate) struct LoggingSink {
    /// Writes the files.
    pub(crate) export: ExportSink,
}

impl TraceSink for LoggingSink {
    fn window_finished(
        &self,
        trace: Trace,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let files = self.export.export(&trace)?;
        // The table was written just now on this thread, and the next window's
        // comes after this returns: reading it back gives this window's table.
        let text = std::fs::read_to_string(&files.table)?;
        let table_text = text.strip_suffix('\n').unwrap_or(&text).to_owned();
        LOG.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Written {
                number: 0,
                trace: files.trace,
                table: files.table,
                table_text,
            });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(n: usize) -> Written {
        Written {
            number: 0,
            trace: format!("w.{n}.pt.trace.json.gz").into(),
            table: "profiler_out_0.txt".into(),
            table_text: format!("table {n}"),
        }
    }

    fn numbers(windows: &[Written]) -> Vec<String> {
        windows.iter().map(|w| w.table_text.clone()).collect()
    }

    #[test]
    fn windows_are_numbered_over_the_process_life() {
        let mut log = Log::new();
        assert!(log.since(0).is_empty());
        log.push(window(0));
        log.push(window(1));
        assert_eq!(numbers(&log.since(0)), ["table 0", "table 1"]);
        assert_eq!(numbers(&log.since(1)), ["table 1"]);
        assert_eq!(log.since(1)[0].number, 1);
        assert!(log.since(2).is_empty());
        assert!(log.since(usize::MAX).is_empty());
    }

    #[test]
    fn the_log_keeps_only_the_last_windows() {
        let mut log = Log::new();
        for n in 0..KEPT + 3 {
            log.push(window(n));
        }
        let all = log.since(0);
        assert_eq!(all.len(), KEPT);
        assert_eq!(all[0].table_text, "table 3");
        assert_eq!(all[0].number, 3);
        assert_eq!(
            numbers(&log.since(KEPT + 2)),
            [format!("table {}", KEPT + 2)]
        );
    }

    #[test]
    fn the_sink_notes_the_files_and_the_table_of_each_window() {
        let dir = tempfile::tempdir().unwrap();
        let sink = LoggingSink {
            export: ExportSink::new(dir.path()),
        };
        let mut trace = Trace::default();
        trace.info.worker_name = "logged".into();
        let name = trace.names.intern("gemm");
        trace.kernels.push(cutrace_tracer::model::Kernel {
            start: 500,
            end: 2000,
            name,
            ..Default::default()
        });
        let expected = cutrace_exporter::KeyAverages::from_trace(&trace)
            .table(cutrace_exporter::SortKey::default(), Some(100));
        let before = since(0).len();
        sink.window_finished(trace).unwrap();
        let written = since(0);
        let last = written.last().unwrap();
        assert!(written.len() > before || written.len() == KEPT);
        assert_eq!(last.table, dir.path().join("profiler_out_0.txt"));
        assert!(last.trace.starts_with(dir.path()), "{last:?}");
        assert!(last.table_text.contains("gemm"), "{last:?}");
        assert_eq!(last.table_text, expected);
    }
}
