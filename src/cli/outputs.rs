//! What a traced run's processes wrote, grouped by the process that wrote it,
//! for the list `cutrace run` prints at the end.
//!
//! The run learns it from its own run log (`cutrace_exporter::RunLog`), which only
//! its own processes write to: another run writing into the same directory at the
//! same time is not mistaken for one of them, and a file rewritten during the run
//! (a table of the same rank) counts as written.

use std::collections::BTreeMap;
use std::path::Path;

use cutrace_exporter::RunRecord;

/// The files the run's processes wrote that are still there, sorted: by name
/// when they are in `dir`, by their full path when elsewhere.
pub fn written(dir: &Path, record: &RunRecord) -> Vec<String> {
    let mut names: Vec<String> = record
        .files
        .iter()
        .filter(|file| file.is_file())
        .map(|file| match file.strip_prefix(dir) {
            Ok(name) => name.to_string_lossy().into_owned(),
            Err(_) => file.to_string_lossy().into_owned(),
        })
        .collect();
    names.sort();
    names
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

/// The lines `cutrace run` prints about `names`, written into `dir` by the
/// `traced` processes of a command that signal `killed_by` ended, if one did.
pub fn render(dir: &Path, names: &[String], traced: usize, killed_by: Option<i32>) -> String {
    if names.is_empty() {
        let why = match (killed_by, traced) {
            (Some(signal), _) => format!(
                "the command was killed by {}",
                signal_hook::low_level::signal_name(signal)
                    .map_or_else(|| format!("signal {signal}"), |name| format!("{name} (signal {signal})"))
            ),
            (None, 0) => "no process of the command was traced (a process is traced once it initialises CUDA)".to_owned(),
            (None, 1) => "the traced process wrote no window".to_owned(),
            (None, n) => format!("none of the {n} traced processes wrote a window"),
        };
        return format!(
            "cutrace: no files were written into {}: {why}\n",
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
            1,
            None,
        );
        assert_eq!(
            text,
            "cutrace: 2 files written into /out:\n  rank 1:\n    profiler_out_1.txt\n  w_1:\n    w_1.17.pt.trace.json.gz\n"
        );
    }

    #[test]
    fn an_empty_list_says_why_once() {
        let none = |traced, killed_by| render(Path::new("/out"), &[], traced, killed_by);
        let start = "cutrace: no files were written into /out: ";
        assert_eq!(
            none(0, None),
            format!(
                "{start}no process of the command was traced (a process is traced once it initialises CUDA)\n"
            )
        );
        assert_eq!(
            none(1, None),
            format!("{start}the traced process wrote no window\n")
        );
        assert_eq!(
            none(3, None),
            format!("{start}none of the 3 traced processes wrote a window\n")
        );
        assert_eq!(
            none(1, Some(9)),
            format!("{start}the command was killed by SIGKILL (signal 9)\n")
        );
    }

    #[test]
    fn only_files_the_log_names_and_that_are_still_there_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        for name in ["mine.pt.trace.json.gz", "profiler_out_0.txt", "theirs.txt"] {
            std::fs::write(path(name), "x").unwrap();
        }
        let elsewhere = tempfile::NamedTempFile::new().unwrap();
        let record = RunRecord {
            files: vec![
                path("profiler_out_0.txt"),
                path("mine.pt.trace.json.gz"),
                path("removed.txt"),
                elsewhere.path().to_path_buf(),
            ],
            ..RunRecord::default()
        };
        assert_eq!(
            written(dir.path(), &record),
            names(&[
                &elsewhere.path().to_string_lossy(),
                "mine.pt.trace.json.gz",
                "profiler_out_0.txt"
            ])
        );
    }
}
