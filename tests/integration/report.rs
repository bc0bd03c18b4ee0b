//! `cutrace report` on the real traces: the JSON rows against plain sums over the
//! files, and the table's layout.

use std::collections::HashMap;

use serde_json::Value;

use crate::util::{
    PlainTrace, TestDir, cutrace, optional_trace, shared_trace, shared_traces, stderr, stdout,
};

/// CUPTI's memory kinds, as Kineto names them.
const MEMORY_KINDS: [&str; 7] = [
    "Pageable",
    "Pinned",
    "Device",
    "Array",
    "Managed",
    "Device Static",
    "Managed Static",
];

/// The row name a memcpy gets: a memory kind CUPTI does not have (ROCm writes
/// `Host`) cannot be kept by the model and reads as `Unknown`.
fn memcpy_row_name(name: &str) -> String {
    let Some((head, kinds)) = name.split_once(" (") else {
        return name.to_owned();
    };
    let kinds = kinds.trim_end_matches(')');
    let known = |k: &str| {
        let k = k.trim();
        if MEMORY_KINDS.contains(&k) {
            k.to_owned()
        } else {
            "Unknown".to_owned()
        }
    };
    match kinds.split_once("->") {
        Some((src, dst)) => format!("{head} ({} -> {})", known(src), known(dst)),
        None => name.to_owned(),
    }
}

fn report_json(path: &std::path::Path) -> Vec<Value> {
    let output = cutrace([
        "report".as_ref(),
        path.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
        "--row-limit".as_ref(),
        "-1".as_ref(),
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
            for (name, (calls, us)) in plain.sums(cat) {
                let name = if kind == "kernel" {
                    name
                } else {
                    memcpy_row_name(&name)
                };
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
    assert!(text.contains("\nGPU time per iteration (work launched in it)\n"));
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
        .position(|l| *l == "GPU time per iteration (work launched in it)")
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
