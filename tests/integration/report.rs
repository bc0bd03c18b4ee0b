//! `cutrace report` on the real traces: the JSON rows against plain sums over the
//! files, and the table's layout.

use std::collections::HashMap;

use serde_json::Value;

use cutrace_exporter::read_trace;

use crate::util::{
    PlainTrace, TestDir, cutrace, optional_trace, shared_trace, shared_traces, stderr, stdout,
};

/// Every row of the report of `path`: JSON gives them all unless a limit is asked.
fn report_json(path: &std::path::Path) -> Vec<Value> {
    let output = cutrace([
        "report".as_ref(),
        path.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
    ]);
    assert!(
        output.status.success(),
        "{}: {}",
        path.display(),
        stderr(&output)
    );
    serde_json::from_str::<Value>(stdout(&output))
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn json_gpu_rows_match_plain_sums_over_each_trace() {
    let mut gpu_traces = 0;
    for path in shared_traces() {
        let plain = PlainTrace::load(&path);
        let mut expected: HashMap<(&str, String), (u64, f64)> = HashMap::new();
        for (cat, kind) in [
            ("kernel", "kernel"),
            ("gpu_memcpy", "memcpy"),
            ("gpu_memset", "memset"),
        ] {
            // Names as written: ROCm's `Memcpy HtoD (Host -> Device)` too.
            for (name, (calls, us)) in plain.sums(cat) {
                let entry = expected.entry((kind, name)).or_default();
                entry.0 += calls;
                entry.1 += us;
            }
        }
        if expected.is_empty() {
            continue;
        }
        gpu_traces += 1;
        let rows = report_json(&path);
        let gpu_rows: Vec<&Value> = rows
            .iter()
            .filter(|r| {
                ["kernel", "memcpy", "memset"]
                    .iter()
                    .any(|k| r["kind"] == *k)
            })
            .collect();
        assert_eq!(gpu_rows.len(), expected.len(), "{}", path.display());
        for row in gpu_rows {
            let key = (
                row["kind"].as_str().unwrap(),
                row["name"].as_str().unwrap().to_owned(),
            );
            let (kind, name) = (&key.0, &key.1);
            let &(calls, total_us) = expected
                .get(&(*kind, name.clone()))
                .unwrap_or_else(|| panic!("{}: unexpected row {kind} {name}", path.display()));
            assert_eq!(
                row["calls"].as_u64(),
                Some(calls),
                "{}: {name}",
                path.display()
            );
            let cuda = row["cuda_total_us"].as_f64().unwrap();
            assert!(
                (cuda - total_us).abs() <= 1e-3 * calls as f64,
                "{}: {name}: {cuda} us against {total_us} us",
                path.display()
            );
            assert_eq!(row["self_cuda_us"], row["cuda_total_us"], "{name}");
            assert_eq!(row["self_cpu_us"].as_f64(), Some(0.0), "{name}");
            assert_eq!(row["cpu_total_us"].as_f64(), Some(0.0), "{name}");
        }
        let self_cuda: Vec<f64> = rows
            .iter()
            .map(|r| r["self_cuda_us"].as_f64().unwrap())
            .collect();
        assert!(
            self_cuda.windows(2).all(|w| w[0] >= w[1]),
            "{}: not sorted",
            path.display()
        );
    }
    // Nine of the bundled traces have GPU events.
    assert!(gpu_traces >= 9, "only {gpu_traces} traces with GPU events");
}

#[test]
fn the_table_has_torch_layout_then_the_figures() {
    let output = cutrace([
        "report".as_ref(),
        shared_trace("alexnet.json.gz").as_os_str(),
        "--row-limit".as_ref(),
        "5".as_ref(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    let separator = lines[0];
    assert!(separator.starts_with(&"-".repeat(55)) && separator.ends_with("------------  "));
    assert_eq!(separator.len(), 55 + 2 + 10 * 14);
    assert_eq!(lines[2], separator);
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>().join(" "),
        "Name Self CPU % Self CPU CPU total % CPU total CPU time avg Self CUDA Self CUDA % CUDA total CUDA time avg # of Calls"
    );
    for row in &lines[3..8] {
        assert_eq!(row.len(), separator.len(), "{row}");
        assert!(row.ends_with("  "));
    }
    assert_eq!(lines[8], separator);
    assert!(lines[9].starts_with("Self CPU time total: "));
    assert!(lines[10].starts_with("Self CUDA time total: "));
    assert_eq!(&lines[11..13], ["", "Kernel durations"]);
    assert!(text.contains("\nStream busy time (share of the GPU span, "));
}

/// torch's `_format_time`, restated.
fn format_time(us: f64) -> String {
    if us >= 1e6 {
        format!("{:.3}s", us / 1e6)
    } else if us >= 1e3 {
        format!("{:.3}ms", us / 1e3)
    } else {
        format!("{us:.3}us")
    }
}

#[test]
fn footer_totals_sum_the_rows() {
    let Some(trace) = optional_trace("trace_diff_control.json.gz") else {
        return;
    };
    let rows = report_json(&trace);
    let gpu_self: f64 = rows
        .iter()
        .filter(|r| {
            ["kernel", "memcpy", "memset"]
                .iter()
                .any(|k| r["kind"] == *k)
        })
        .map(|r| r["self_cuda_us"].as_f64().unwrap())
        .sum();
    let cpu_self: f64 = rows
        .iter()
        .map(|r| r["self_cpu_us"].as_f64().unwrap())
        .sum();
    let output = cutrace(["report".as_ref(), trace.as_os_str()]);
    let text = stdout(&output);
    assert!(
        text.contains(&format!(
            "\nSelf CPU time total: {}\n",
            format_time(cpu_self)
        )),
        "{cpu_self}"
    );
    assert!(
        text.contains(&format!(
            "\nSelf CUDA time total: {}\n",
            format_time(gpu_self)
        )),
        "{gpu_self}"
    );
}

#[test]
fn cpu_only_traces_have_no_cuda_columns() {
    let output = cutrace([
        "report".as_ref(),
        shared_trace("cpu_only.pt.trace.json.gz").as_os_str(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(!text.contains("CUDA"), "{text}");
    assert!(!text.contains("Kernel durations"));
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[1].trim_end().ends_with("CPU time avg    # of Calls"));
    assert!(text.contains("\nGPU time per iteration (GPU time: work launched in it; "));
}

#[test]
fn a_trace_without_iterations_says_why_its_section_is_empty() {
    let output = cutrace([
        "report".as_ref(),
        shared_trace("simple_add.json.gz").as_os_str(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains(
            "\nGPU time per iteration: none, the trace marks no iterations \
             (torch.profiler and cutrace mark them as ProfilerStep#<n> ranges)\n"
        ),
        "{}",
        stdout(&output)
    );
}

#[test]
fn iterations_are_shown_on_the_scale_convert_cuts_on() {
    let trace = shared_trace("sampled_rank-0.json.gz");
    let output = cutrace(["report".as_ref(), trace.as_os_str()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let plain = PlainTrace::load(&trace);
    // The file has no baseTimeNanoseconds: its times are absolute, and the origin
    // is its earliest event.
    assert!(plain.json.get("baseTimeNanoseconds").is_none());
    let origin_ns = read_trace(&trace).unwrap().base_time_ns;
    assert!(
        text.contains(&format!(
            "\nTime origin: the earliest event (the file has no baseTimeNanoseconds), \
             {origin_ns} ns since the epoch. Iteration starts and ends, and the \
             --from-us/--to-us of cutrace convert, count microseconds from it.\n"
        )),
        "{text}"
    );
    // The first iteration's start and end, as printed, are its ProfilerStep's ts
    // and ts + dur in the file.
    let step = plain
        .complete("user_annotation")
        .filter(|e| e["name"].as_str().unwrap().starts_with("ProfilerStep#"))
        .min_by(|a, b| {
            a["ts"]
                .as_f64()
                .unwrap()
                .total_cmp(&b["ts"].as_f64().unwrap())
        })
        .unwrap();
    let ts = step["ts"].as_f64().unwrap() - origin_ns as f64 / 1000.0;
    let dur = step["dur"].as_f64().unwrap();
    let number = step["name"]
        .as_str()
        .unwrap()
        .trim_start_matches("ProfilerStep#");
    let row = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some(number))
        .unwrap();
    let cells: Vec<f64> = row
        .split_whitespace()
        .skip(1)
        .take(2)
        .map(|c| c.parse().unwrap())
        .collect();
    assert!(
        (cells[0] - ts).abs() < 1e-3 && (cells[1] - (ts + dur)).abs() < 1e-3,
        "{row}"
    );
}

#[test]
fn json_gives_every_row_unless_a_limit_is_asked() {
    let trace = shared_trace("sampled_rank-0.json.gz");
    let all = report_json(&trace);
    assert!(all.len() > 100, "{} rows", all.len());
    let limited = cutrace([
        "report".as_ref(),
        trace.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
        "--row-limit".as_ref(),
        "7".as_ref(),
    ]);
    let rows: Value = serde_json::from_str(stdout(&limited)).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 7);
    // The table still prints torch's 100.
    let table = cutrace(["report".as_ref(), trace.as_os_str()]);
    let lines: Vec<&str> = stdout(&table).lines().collect();
    assert_eq!(lines[103], lines[0], "100 rows, then the separator");
}

#[test]
fn standard_input_reads_like_the_file() {
    let trace = shared_trace("alexnet.json.gz");
    let from_file = cutrace(["report".as_ref(), trace.as_os_str()]);
    let from_stdin = crate::util::cutrace_command(["report", "-"])
        .stdin(std::fs::File::open(&trace).unwrap())
        .output()
        .unwrap();
    assert!(from_stdin.status.success(), "{}", stderr(&from_stdin));
    assert_eq!(stdout(&from_stdin), stdout(&from_file));
    let empty = crate::util::cutrace_command(["report", "-"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(empty.status.code(), Some(1));
    assert_eq!(
        stderr(&empty),
        "cutrace: error: standard input: the file is empty\n"
    );
}

#[test]
fn a_file_cutrace_wrote_reports_as_it_reads_whole() {
    // Standard input is always read whole; a file cutrace wrote is folded as it
    // is read, or read whole where it cannot be.
    let dir = TestDir::new();
    for trace in shared_traces() {
        let name = trace.file_name().unwrap().to_string_lossy().into_owned();
        let written = dir.path(&name);
        let convert = cutrace([
            "convert".as_ref(),
            trace.as_os_str(),
            "-o".as_ref(),
            written.as_os_str(),
        ]);
        assert!(convert.status.success(), "{}", stderr(&convert));
        for format in ["table", "json"] {
            let args = [
                "report".as_ref(),
                written.as_os_str(),
                "--format".as_ref(),
                format.as_ref(),
            ];
            let from_file = cutrace(args);
            let from_stdin = crate::util::cutrace_command(["report", "-", "--format", format])
                .stdin(std::fs::File::open(&written).unwrap())
                .output()
                .unwrap();
            assert!(from_file.status.success(), "{}", stderr(&from_file));
            let shown = |out: &std::process::Output| {
                (
                    stdout(out).to_owned(),
                    stderr(out).replace("standard input", &written.display().to_string()),
                )
            };
            assert_eq!(
                shown(&from_file),
                shown(&from_stdin),
                "{name} --format {format}"
            );
        }
    }
}

#[test]
fn rocm_copies_keep_their_names() {
    let output = cutrace([
        "report".as_ref(),
        shared_trace("rocm_mi250_minitoy.json.gz").as_os_str(),
    ]);
    let text = stdout(&output);
    let plain = PlainTrace::load(&shared_trace("rocm_mi250_minitoy.json.gz"));
    let names: Vec<String> = plain.sums("gpu_memcpy").into_keys().collect();
    assert!(names.iter().any(|n| n.contains("Host")), "{names:?}");
    for name in &names {
        assert!(text.contains(name.as_str()), "{name} missing from\n{text}");
    }
    assert!(!text.contains("Unknown"), "{text}");
}

#[test]
fn sorting_and_limits_apply() {
    let Some(trace) = optional_trace("negative_queue_rank0.json.gz") else {
        return;
    };
    let output = cutrace([
        "report".as_ref(),
        trace.as_os_str(),
        "--sort".as_ref(),
        "count".as_ref(),
        "--row-limit".as_ref(),
        "12".as_ref(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let lines: Vec<&str> = stdout(&output).lines().collect();
    let calls: Vec<u64> = lines[3..15]
        .iter()
        .map(|l| l.split_whitespace().last().unwrap().parse().unwrap())
        .collect();
    assert!(calls.windows(2).all(|w| w[0] >= w[1]), "{calls:?}");
    assert_eq!(lines[15], lines[0], "12 rows, then the separator");
    let iterations = lines
        .iter()
        .position(|l| l.starts_with("GPU time per iteration (GPU time: work launched in it; "))
        .unwrap();
    assert_eq!(lines[iterations + 9], lines[iterations + 1], "5 iterations");

    let json: Value = serde_json::from_str(stdout(&cutrace([
        "report".as_ref(),
        trace.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
        "--sort".as_ref(),
        "cpu_time_total".as_ref(),
        "--row-limit".as_ref(),
        "3".as_ref(),
    ])))
    .unwrap();
    let cpu: Vec<f64> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["cpu_total_us"].as_f64().unwrap())
        .collect();
    assert_eq!(cpu.len(), 3);
    assert!(cpu.windows(2).all(|w| w[0] >= w[1]), "{cpu:?}");
}

#[test]
fn plain_and_unterminated_array_files_report_like_the_original() {
    let dir = TestDir::new();
    let original = shared_trace("simple_add.json.gz");
    let plain = PlainTrace::load(&original);
    let events: Vec<String> = plain.events().iter().map(Value::to_string).collect();
    // A crashed tracer's file: an array whose `]` never came.
    let crashed = dir.write(
        "crashed.json",
        format!("[\n{},\n", events.join(",\n")).as_bytes(),
    );
    let object = dir.write("plain.json", plain.json.to_string().as_bytes());
    let reference = report_json(&original);
    assert!(!reference.is_empty());
    assert_eq!(report_json(&object), reference);
    let crashed_rows = report_json(&crashed);
    assert_eq!(crashed_rows.len(), reference.len());
    for (a, b) in crashed_rows.iter().zip(&reference) {
        assert_eq!(
            (&a["name"], &a["calls"], &a["self_cuda_us"]),
            (&b["name"], &b["calls"], &b["self_cuda_us"])
        );
    }
}
