//! Many traces at once, for `cutrace report` and `cutrace convert --to parquet`:
//! which files a directory holds, reading them side by side on every core while
//! keeping only what is made of each, and going on past the files that cannot be
//! read.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use cutrace_analysis::{Figures, Skipped, TraceFigures};
use cutrace_tracer::Trace;
use rayon::prelude::*;

use super::input::{self, MemoryArgs};

/// The trace files `inputs` name: each file as given, and every `*.json` and
/// `*.json.gz` directly inside each directory, sorted by name.
pub fn trace_files(inputs: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for input in inputs {
        if !input.is_dir() {
            files.push(input.clone());
            continue;
        }
        let mut inside: Vec<PathBuf> = std::fs::read_dir(input)
            .with_context(|| format!("cannot list {}", input.display()))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.is_file() && is_trace_name(path))
            .collect();
        if inside.is_empty() {
            bail!(
                "{}: no trace files (*.json, *.json.gz) in it",
                input.display()
            );
        }
        inside.sort();
        files.extend(inside);
    }
    Ok(files)
}

fn is_trace_name(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    name.ends_with(".json") || name.ends_with(".json.gz")
}

/// Reads every file and measures it, the `i`-th taking rank `i` when it names none.
/// A file that cannot be read is named on stderr and skipped; none readable is one
/// error, naming the first.
pub fn figures(files: &[PathBuf], memory: &MemoryArgs) -> anyhow::Result<Figures> {
    let (traces, skipped) = each_trace(files, memory, |index, path, trace| {
        Ok(TraceFigures::from_trace(
            path.display().to_string(),
            index,
            &trace,
        ))
    })?;
    Ok(Figures::new(traces, skipped))
}

/// Reads the files side by side on every core, under the memory ceiling, and hands
/// each trace, with its place in the list, to `use_trace`, keeping what it returns.
/// Each trace is dropped as soon as it is used: memory holds a trace or two per
/// core, whatever the number of files. A file that cannot be read is named on
/// stderr and skipped; none readable is one error, naming the first. An error of
/// `use_trace` is the error.
pub fn each_trace<T: Send>(
    files: &[PathBuf],
    memory: &MemoryArgs,
    use_trace: impl Fn(usize, &Path, Trace) -> anyhow::Result<T> + Sync,
) -> anyhow::Result<(Vec<T>, Vec<Skipped>)> {
    let read: Vec<anyhow::Result<Result<T, Skipped>>> = files
        .par_iter()
        .enumerate()
        .map(|(index, path)| match input::read(path, memory) {
            Ok((trace, _)) => use_trace(index, path, trace).map(Ok),
            Err(error) => Ok(Err(Skipped {
                file: path.display().to_string(),
                error: format!("{error:#}"),
            })),
        })
        .collect();
    let (mut used, mut skipped) = (Vec::new(), Vec::new());
    for result in read {
        match result? {
            Ok(value) => used.push(value),
            Err(why) => skipped.push(why),
        }
    }
    if used.is_empty() {
        let first = skipped.first().map_or("", |s| s.error.as_str());
        match skipped.len() {
            1 => bail!("{first}"),
            n => bail!(
                "none of the {n} traces could be read: {first} (and {} more)",
                n - 1
            ),
        }
    }
    for why in &skipped {
        eprintln!("cutrace: warning: skipped {}", why.error);
    }
    if !skipped.is_empty() {
        eprintln!(
            "cutrace: skipped {} of {} traces that could not be read",
            skipped.len(),
            files.len()
        );
    }
    Ok((used, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_give_their_trace_files_in_order() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "b.pt.trace.json.gz",
            "a.json",
            "profiler_out_0.txt",
            "c.json.gz.tmp",
        ] {
            std::fs::write(dir.path().join(name), "x").unwrap();
        }
        std::fs::create_dir(dir.path().join("sub.json")).unwrap();
        let extra = dir.path().join("profiler_out_0.txt");
        let files = trace_files(&[dir.path().to_owned(), extra.clone()]).unwrap();
        assert_eq!(
            files,
            [
                dir.path().join("a.json"),
                dir.path().join("b.pt.trace.json.gz"),
                extra
            ]
        );
        let empty = tempfile::tempdir().unwrap();
        let error = trace_files(&[empty.path().to_owned()]).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "{}: no trace files (*.json, *.json.gz) in it",
                empty.path().display()
            )
        );
    }
}
