//! `cutrace report --html PAGE`: the report as one self-contained HTML page. The
//! traces are read as for the report across ranks (one trace is a report of one
//! rank), the figures are the ones `--format json` prints, and `page` renders
//! them (`cutrace-html`); this module reads and writes.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use cutrace_analysis::Figures;
use cutrace_exporter::SortKey;

use super::input::MemoryArgs;
use super::ranks;

/// Rows of each key-averages table when no `--row-limit` is given: enough to find
/// any op by name, few enough for a small page.
pub const PAGE_ROWS: usize = 1000;

/// Reads `inputs` (files or directories of them) and writes their report to
/// `path` (`-`: standard output) as one HTML page, each table sorted by `sort`
/// and cut to `row_limit` rows (`None`: all).
pub fn run(
    inputs: &[PathBuf],
    path: &Path,
    sort: SortKey,
    row_limit: Option<usize>,
    memory: &MemoryArgs,
) -> anyhow::Result<()> {
    // Before the reading, which may take minutes: a page that cannot be written
    // says so at once.
    let to_stdout = path == Path::new("-");
    let dir = parent(path);
    if !to_stdout && !dir.is_dir() {
        anyhow::bail!(
            "{}: cannot write the page: {} is not a directory",
            path.display(),
            dir.display()
        );
    }
    let files = ranks::trace_files(inputs)?;
    let (read, skipped) = ranks::each_trace(&files, memory, |index, file, trace| {
        Ok(cutrace_html::of_trace(
            file.display().to_string(),
            index,
            &trace,
            sort,
            row_limit,
        ))
    })?;
    let (traces, tables): (Vec<_>, Vec<_>) = read.into_iter().unzip();
    let html = cutrace_html::render(&Figures::new(traces, skipped), &tables);
    if to_stdout {
        let mut stdout = std::io::stdout().lock();
        return stdout
            .write_all(html.as_bytes())
            .and_then(|()| stdout.flush())
            .context("cannot write to standard output");
    }
    // As `convert` writes: whole or not at all, through a link, or as a stream.
    Ok(cutrace_exporter::write_output(path, |file| {
        file.write_all(html.as_bytes())
    })?)
}

/// The directory `path` is written into.
fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}
