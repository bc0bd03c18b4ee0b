//! `cutrace convert --to parquet`: traces as Parquet, one row per event, one file per
//! trace, in a folder partitioned by rank (`OUTPUT/rank=<n>/<trace>.parquet`, the
//! Hive layout DuckDB and Spark read the rank from). The schema is the exporter's
//! (`docs/parquet.md`). Built only with the `parquet` feature: the `parquet` crate is
//! a large build, so a plain `cargo build` leaves it out.

use std::path::{Path, PathBuf};

#[cfg(not(feature = "parquet"))]
use anyhow::bail;

use super::input::MemoryArgs;

/// Converts the traces `inputs` name (files, or directories of them) into `output`,
/// reading under the ceiling of `memory`.
#[cfg(feature = "parquet")]
pub fn run(inputs: &[PathBuf], output: &Path, memory: &MemoryArgs) -> anyhow::Result<u8> {
    use anyhow::{Context, bail};
    use cutrace_exporter::write_parquet;

    let files = super::ranks::trace_files(inputs)?;
    let mut stems: Vec<(String, &PathBuf)> = files.iter().map(|f| (stem(f), f)).collect();
    stems.sort();
    if let Some(pair) = stems.windows(2).find(|pair| pair[0].0 == pair[1].0) {
        bail!(
            "{} and {} have the same name, and {} would hold only one of them",
            pair[0].1.display(),
            pair[1].1.display(),
            output.display()
        );
    }
    let (written, _) = super::ranks::each_trace(&files, memory, |index, path, trace| {
        let (rank, _) = cutrace_analysis::rank_of(&trace, index);
        let dir = output.join(format!("rank={rank}"));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let file = dir.join(format!("{}.parquet", stem(path)));
        let stats = write_parquet(&trace, &file)?;
        Ok((file, stats))
    })?;
    for (file, stats) in written {
        println!(
            "{}: {} rows, {} bytes",
            file.display(),
            stats.rows,
            stats.bytes
        );
    }
    Ok(0)
}

/// Without the `parquet` feature: says how to get it.
#[cfg(not(feature = "parquet"))]
pub fn run(_inputs: &[PathBuf], _output: &Path, _memory: &MemoryArgs) -> anyhow::Result<u8> {
    bail!(
        "this cutrace was built without Parquet output: build it with `cargo build --release --features parquet`"
    )
}

/// A trace file's name without `.json` or `.json.gz`.
#[cfg(feature = "parquet")]
fn stem(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    name.strip_suffix(".json").unwrap_or(name).to_owned()
}

#[cfg(all(test, feature = "parquet"))]
mod tests {
    use super::*;

    #[test]
    fn stems_lose_only_the_json_suffixes() {
        assert_eq!(
            stem(Path::new("d/w_1.17.pt.trace.json.gz")),
            "w_1.17.pt.trace"
        );
        assert_eq!(stem(Path::new("a.json")), "a");
        assert_eq!(stem(Path::new("trace.gz")), "trace");
    }
}
