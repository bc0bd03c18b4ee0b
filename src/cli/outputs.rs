//! What a traced run left in its output directory, grouped by the process that
//! wrote it, for the list `cutrace run` prints at the end.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::Path;
use std::time::SystemTime;

/// The files in `dir` and when each was last modified.
pub type Snapshot = HashMap<String, SystemTime>;

/// What `dir` holds now ([`written_since`] compares against it). A directory that
/// cannot be read holds nothing yet.
pub fn snapshot(dir: &Path) -> Snapshot {
    files(dir).unwrap_or_default().into_iter().collect()
}

/// Names of the files in `dir` that are new or were modified since `before`,
/// sorted. A file rewritten during the run (a table of the same rank) counts; one
/// left by an earlier run does not. Comparing modification times with each other,
/// never with the clock, keeps this right on file systems whose timestamps are
/// coarser than the clock.
pub fn written_since(dir: &Path, before: &Snapshot) -> io::Result<Vec<String>> {
    let mut names: Vec<String> = files(dir)?
        .into_iter()
        .filter(|(name, modified)| before.get(name) != Some(modified))
        // Writers rename complete files into place; a name still starting with a
        // dot is a temporary file of a writer that did not finish.
        .filter(|(name, _)| !name.starts_with('.'))
        .map(|(name, _)| name)
        .collect();
    names.sort();
    Ok(names)
}

fn files(dir: &Path) -> io::Result<Vec<(String, SystemTime)>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let metadata = entry.metadata()?;
        if metadata.is_file() {
            files.push((
                entry.file_name().to_string_lossy().into_owned(),
                metadata.modified()?,
            ));
        }
    }
    Ok(files)
}

/// Groups file names by who wrote them: `<worker>.<unix_ns>.<...>` files under
/// their worker, `profiler_out_<rank>.txt` and `profiler_out_<rank>_<pid>.txt`
/// under `rank <rank>`, the rest under `other`.
pub fn group_by_writer(names: &[String]) -> BTreeMap<String, Vec<String>> {
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for name in names {
        groups
            .entry(writer_of(name))
            .or_default()
            .push(name.clone());
    }
    groups
}

/// The lines `cutrace run` prints about `names`, written into `dir`.
pub fn render(dir: &Path, names: &[String]) -> String {
    if names.is_empty() {
        return format!(
            "cutrace: no files were written into {} (did the command use CUDA, and did a window open?)\n",
            dir.display()
        );
    }
    let mut out = format!(
        "cutrace: {} files written into {}:\n",
        names.len(),
        dir.display()
    );
    for (writer, files) in group_by_writer(names) {
        out.push_str(&format!("  {writer}:\n"));
        for file in files {
            out.push_str(&format!("    {file}\n"));
        }
    }
    out
}

fn writer_of(name: &str) -> String {
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(table) = name
        .strip_prefix("profiler_out_")
        .and_then(|rest| rest.strip_suffix(".txt"))
    {
        // `<rank>`, or `<rank>_<pid>` for a process whose rank's table another
        // process of the run had written.
        match table.split_once('_') {
            None if all_digits(table) => return format!("rank {table}"),
            Some((rank, pid)) if all_digits(rank) && all_digits(pid) => {
                return format!("rank {rank}");
            }
            _ => {}
        }
    }
    // The worker name may itself hold dots (a host name), so the timestamp is the
    // last all-digit part that still has a suffix after it.
    let parts: Vec<&str> = name.split('.').collect();
    let stamp = (1..parts.len().saturating_sub(1))
        .rev()
        .find(|&i| !parts[i].is_empty() && parts[i].bytes().all(|b| b.is_ascii_digit()));
    match stamp {
        Some(i) => parts[..i].join("."),
        None => "other".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn files_group_by_worker_rank_and_other() {
        let groups = group_by_writer(&names(&[
            "gpu7_11.1700000000000000001.pt.trace.json.gz",
            "gpu7_11.1700000000000000009.pt.trace.json.gz",
            "node.example.com_12.1700000000000000002.pt.trace.json.gz",
            "profiler_out_0.txt",
            "profiler_out_0_4242.txt",
            "profiler_out_x.txt",
            "profiler_out_1_x.txt",
            "notes.txt",
        ]));
        let keys: Vec<&str> = groups.keys().map(String::as_str).collect();
        assert_eq!(keys, ["gpu7_11", "node.example.com_12", "other", "rank 0"]);
        assert_eq!(groups["gpu7_11"].len(), 2);
        assert_eq!(
            groups["rank 0"],
            names(&["profiler_out_0.txt", "profiler_out_0_4242.txt"])
        );
        assert_eq!(
            groups["other"],
            names(&["profiler_out_x.txt", "profiler_out_1_x.txt", "notes.txt"])
        );
    }

    #[test]
    fn render_lists_each_writer() {
        let text = render(
            Path::new("/out"),
            &names(&["w_1.17.pt.trace.json.gz", "profiler_out_1.txt"]),
        );
        assert_eq!(
            text,
            "cutrace: 2 files written into /out:\n  rank 1:\n    profiler_out_1.txt\n  w_1:\n    w_1.17.pt.trace.json.gz\n"
        );
        assert!(render(Path::new("/out"), &[]).starts_with("cutrace: no files were written"));
    }

    #[test]
    fn only_new_or_rewritten_files_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        let hour_ago = SystemTime::now() - std::time::Duration::from_secs(3600);
        for name in ["old.txt", "rewritten.txt"] {
            std::fs::write(path(name), "x").unwrap();
            let file = std::fs::File::options()
                .write(true)
                .open(path(name))
                .unwrap();
            file.set_modified(hour_ago).unwrap();
        }
        let before = snapshot(dir.path());
        std::fs::write(path("rewritten.txt"), "y").unwrap();
        for name in ["new.txt", ".new.txt.tmp"] {
            std::fs::write(path(name), "x").unwrap();
        }
        std::fs::create_dir(path("sub")).unwrap();
        let found = written_since(dir.path(), &before).unwrap();
        assert_eq!(found, names(&["new.txt", "rewritten.txt"]));
    }
}
