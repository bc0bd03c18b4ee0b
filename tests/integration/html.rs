//! `cutrace report --html` end to end: the page holds the figures of `--format
//! json`, each marked with its place there; bad input writes no page. (Chromium
//! opens the pages in CI: scripts/ci/html_check.sh.)

use std::path::Path;

use serde_json::Value;

use crate::util::{TestDir, cutrace, shared_trace, stderr};

/// Every `data-path="P" data-value="V"` of `page`.
fn marked(page: &str) -> Vec<(String, String)> {
    page.split("data-path=\"")
        .skip(1)
        .filter_map(|rest| {
            let (path, rest) = rest.split_once('"')?;
            let value = rest.strip_prefix(" data-value=\"")?.split_once('"')?.0;
            Some((path.to_owned(), value.to_owned()))
        })
        .collect()
}

/// The figure at `path` (`traces.0.gpu_time.busy_ns`) of the JSON report.
fn at<'a>(json: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(json, |value, part| match part.parse::<usize>() {
            Ok(i) => value.get(i),
            Err(_) => value.get(part),
        })
}

fn json_report(inputs: &[&Path]) -> Value {
    let mut args = vec!["report".as_ref(), "--format".as_ref(), "json".as_ref()];
    args.extend(inputs.iter().map(|p| p.as_os_str()));
    let output = cutrace(args);
    assert!(output.status.success(), "{}", stderr(&output));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The rows of `trace`'s table as the page keeps them: `--format json` cut to the
/// page's 1000 rows.
fn table_rows(trace: &Path) -> Value {
    let output = cutrace([
        "report".as_ref(),
        "--format".as_ref(),
        "json".as_ref(),
        "--row-limit".as_ref(),
        "1000".as_ref(),
        trace.as_os_str(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    serde_json::from_slice(&output.stdout).unwrap()
}

fn write_page(page: &Path, traces: &[&Path]) -> String {
    let mut args = vec!["report".as_ref(), "--html".as_ref(), page.as_os_str()];
    args.extend(traces.iter().map(|p| p.as_os_str()));
    let output = cutrace(args);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(output.stdout.is_empty() && output.stderr.is_empty());
    std::fs::read_to_string(page).unwrap()
}

/// Checks that every figure `page` marks is the JSON's, and returns how many.
fn check_figures(page: &str, figures: &Value, rows: &[Value]) -> usize {
    let marks = marked(page);
    for (path, shown) in &marks {
        let value = match path.strip_prefix("rows.") {
            Some(rest) => {
                let (trace, rest) = rest.split_once('.').unwrap();
                at(&rows[trace.parse::<usize>().unwrap()], rest)
            }
            None if path.ends_with(".length") => {
                let list = at(figures, path.trim_end_matches(".length")).unwrap();
                assert_eq!(
                    shown.parse::<usize>().unwrap(),
                    list.as_array().unwrap().len()
                );
                continue;
            }
            None => at(figures, path),
        };
        let value = value.unwrap_or_else(|| panic!("{path}: not in the JSON report"));
        if let Some(bins) = value.as_array() {
            let bins: Vec<String> = bins.iter().map(Value::to_string).collect();
            assert_eq!(*shown, bins.join(" "), "{path}");
            continue;
        }
        let expected = value.as_f64().unwrap_or_else(|| panic!("{path}: {value}"));
        assert_eq!(shown.parse::<f64>().unwrap(), expected, "{path}");
    }
    marks.len()
}

#[test]
fn one_traces_page_holds_its_figures_and_table_as_the_json_gives_them() {
    let dir = TestDir::new();
    let trace = shared_trace("sampled_rank-0.json.gz");
    let page = write_page(&dir.path("report.html"), &[&trace]);
    assert!(page.starts_with("<!DOCTYPE html>"));
    // Nothing to fetch: it opens offline.
    assert!(!page.contains("src=") && !page.contains("href="));
    // A single trace's figures are those of the report across ranks of it alone.
    let alone = TestDir::new();
    std::fs::copy(&trace, alone.path("rank0.json.gz")).unwrap();
    let figures = json_report(&[alone.root()]);
    let rows = table_rows(&trace);
    let checked = check_figures(&page, &figures, std::slice::from_ref(&rows));
    let rows = rows.as_array().unwrap().len();
    assert!(checked > 5 * rows, "{checked} figures for {rows} rows");
    for path in [
        "traces.0.recording.events",
        "traces.0.gpu_time.span_ns",
        "traces.0.kinds.kernel_ns",
        "traces.0.kernels.19.total_ns",
        "traces.0.streams.0.busy_ns",
        "traces.0.streams.0.timeline",
        "traces.0.iterations.1.gpu_ns",
        &format!("rows.0.{}.self_cuda_us", rows - 1),
    ] {
        assert!(
            page.contains(&format!("data-path=\"{path}\" data-value=")),
            "{path}"
        );
    }
    // `-` is standard output, the same page.
    let output = cutrace([
        "report".as_ref(),
        "--html".as_ref(),
        "-".as_ref(),
        trace.as_os_str(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(std::str::from_utf8(&output.stdout).unwrap(), page);
    // Kernel names are templates: escaped, never markup.
    assert!(page.contains("permute_pooled_embs_kernel&lt;float&gt;"));
    assert!(!page.contains("<float>"));
    assert!(!page.contains("Per rank"));
}

#[test]
fn a_page_of_several_ranks_holds_the_report_across_them() {
    let dir = TestDir::new();
    let traces = [
        shared_trace("sampled_rank-0.json.gz"),
        shared_trace("sampled_rank-1.json.gz"),
    ];
    let traces: Vec<&Path> = traces.iter().map(|p| p.as_path()).collect();
    let page = write_page(&dir.path("ranks.html"), &traces);
    let figures = json_report(&traces);
    let rows: Vec<Value> = traces.iter().map(|t| table_rows(t)).collect();
    check_figures(&page, &figures, &rows);
    assert!(page.contains("Per rank"));
    for path in [
        "iterations.1.excess_ns",
        "kernel_spread.0.spread_ns",
        "traces.1.temporal_breakdown.idle_ns",
        "rows.1.0.self_cuda_us",
    ] {
        assert!(page.contains(&format!("data-path=\"{path}\"")), "{path}");
    }
}

#[test]
fn bad_input_writes_no_page_and_says_why_in_one_line() {
    let dir = TestDir::new();
    let trace = shared_trace("simple_add.json.gz");
    let expect_one_line = |args: &[&std::ffi::OsStr], code: i32, start: &str| {
        let output = cutrace(args);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(code), "{err}");
        assert!(err.starts_with(start), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    };
    let nowhere = dir.path("missing/report.html");
    expect_one_line(
        &[
            "report".as_ref(),
            "--html".as_ref(),
            nowhere.as_os_str(),
            trace.as_os_str(),
        ],
        1,
        &format!(
            "cutrace: error: {}: cannot write the page: {} is not a directory",
            nowhere.display(),
            dir.path("missing").display()
        ),
    );
    let bad = dir.write("bad.json", b"{\"traceEvents\": [");
    let page = dir.path("report.html");
    expect_one_line(
        &[
            "report".as_ref(),
            "--html".as_ref(),
            page.as_os_str(),
            bad.as_os_str(),
        ],
        1,
        &format!("cutrace: error: {}: ", bad.display()),
    );
    let output = cutrace([
        "report".as_ref(),
        "--html".as_ref(),
        page.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
        trace.as_os_str(),
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("cannot be used with"));
    // Nothing was written, not even a temporary file.
    let left: Vec<_> = std::fs::read_dir(dir.root())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["bad.json"]);
}

#[test]
fn a_page_goes_where_a_link_points_and_down_a_fifo_as_convert_writes() {
    use std::os::unix::fs::FileTypeExt;
    let dir = TestDir::new();
    let trace = shared_trace("simple_add.json.gz");
    let target = dir.write("target.html", b"old");
    let link = dir.path("link.html");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let page = write_page(&link, &[&trace]);
    assert!(page.starts_with("<!DOCTYPE html>"), "{}", &page[..40]);
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link is kept"
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), page);

    let fifo = dir.path("pipe.html");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let output = cutrace([
        "report".as_ref(),
        "--html".as_ref(),
        fifo.as_os_str(),
        trace.as_os_str(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(reader.join().unwrap(), page);
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo()
    );
    let names: Vec<_> = std::fs::read_dir(dir.root()).unwrap().collect();
    assert_eq!(names.len(), 3, "no temporary file left: {names:?}");
}
