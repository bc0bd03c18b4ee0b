//! `cutrace report` over several traces (the report across ranks) and the CUDA graph
//! figures, on the shared PyTorch traces and on traces cutrace writes.

use std::path::{Path, PathBuf};

use cutrace_exporter::write_trace;
use cutrace_tracer::Trace;
use cutrace_tracer::model::{ApiCall, GraphLaunch, HostRange, Iteration, Kernel, RangeKind};
use serde_json::Value;

use crate::util::{TestDir, cutrace, optional_trace, shared_trace, shared_traces, stderr, stdout};

fn report(args: &[&Path], extra: &[&str]) -> std::process::Output {
    let mut command = crate::util::cutrace_command(["report"]);
    command.args(args).args(extra);
    command.output().unwrap()
}

/// `cutrace report --format json PATHS...`, which must succeed.
fn report_json(paths: &[&Path]) -> Value {
    let out = report(paths, &["--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(stdout(&out)).unwrap()
}

fn sampled() -> [PathBuf; 2] {
    [
        shared_trace("sampled_rank-0.json.gz"),
        shared_trace("sampled_rank-1.json.gz"),
    ]
}

#[test]
fn each_ranks_iterations_and_kernels_are_the_single_trace_reports() {
    for path in shared_traces() {
        let trace = cutrace_exporter::read_trace(&path).unwrap();
        let figures = cutrace_analysis::TraceFigures::from_trace(String::new(), 0, &trace);
        let stats = cutrace_exporter::TraceStats::from_trace(&trace);
        let kernels: Vec<(&str, u64, i64)> = figures
            .kernels
            .iter()
            .map(|k| (k.name.as_str(), k.calls, k.total_ns))
            .collect();
        let expected: Vec<(&str, u64, i64)> = stats
            .kernels
            .iter()
            .map(|k| (k.name.as_str(), k.calls, k.total_ns))
            .collect();
        assert_eq!(kernels, expected, "{}", path.display());
        let iterations: Vec<(u64, i64, i64, u64, i64)> = figures
            .iterations
            .iter()
            .map(|i| {
                (
                    i.number,
                    i.duration_ns,
                    i.gpu_ns,
                    i.gpu_events,
                    i.unlaunched_gpu_ns,
                )
            })
            .collect();
        let expected: Vec<(u64, i64, i64, u64, i64)> = stats
            .iterations
            .iter()
            .map(|i| {
                (
                    i.number,
                    i.duration_ns,
                    i.gpu_ns,
                    i.gpu_events,
                    i.unlaunched_gpu_ns,
                )
            })
            .collect();
        assert_eq!(iterations, expected, "{}", path.display());
    }
}

#[test]
fn two_ranks_give_hta_s_temporal_breakdown_and_overlap() {
    let [a, b] = sampled();
    let figures = report_json(&[&a, &b]);
    let traces = figures["traces"].as_array().unwrap();
    let ranks: Vec<u64> = traces.iter().map(|t| t["rank"].as_u64().unwrap()).collect();
    assert_eq!(ranks, [0, 1]);
    // HolisticTraceAnalysis 0.5.0 on these two files (include_last_profiler_step=True):
    // get_temporal_breakdown gives idle, compute, non-compute and kernel time in µs,
    // get_comm_comp_overlap 14.95% and 19.93%. scripts/ci/hta_check.py reruns HTA.
    let hta = [
        (675_191, 210_320, 337_336, 1_222_847, 14.95),
        (651_136, 271_973, 308_077, 1_231_186, 19.93),
    ];
    for (trace, (idle, compute, non_compute, kernel_time, overlap_pct)) in traces.iter().zip(hta) {
        let b = &trace["temporal_breakdown"];
        let us = |key: &str| b[key].as_i64().unwrap() / 1000;
        assert_eq!(
            (
                us("idle_ns"),
                us("compute_ns"),
                us("non_compute_ns"),
                us("kernel_time_ns")
            ),
            (idle, compute, non_compute, kernel_time)
        );
        let ratio = trace["comm_comp_overlap"]["ratio"].as_f64().unwrap();
        assert_eq!((ratio * 10_000.0).round() / 100.0, overlap_pct);
    }
}

#[test]
fn stragglers_and_kernel_spread_follow_each_ranks_figures() {
    let [a, b] = sampled();
    let figures = report_json(&[&a, &b]);
    let traces = figures["traces"].as_array().unwrap();
    for iteration in figures["iterations"].as_array().unwrap() {
        let number = iteration["number"].as_u64().unwrap();
        let times: Vec<i64> = traces
            .iter()
            .map(|t| {
                t["iterations"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|i| i["number"] == number)
                    .unwrap()["gpu_ns"]
                    .as_i64()
                    .unwrap()
            })
            .collect();
        let slowest = times.iter().copied().max().unwrap();
        let median = (times[0] + times[1]).div_euclid(2);
        assert_eq!(iteration["median_ns"].as_i64(), Some(median));
        assert_eq!(iteration["slowest"]["gpu_ns"].as_i64(), Some(slowest));
        assert_eq!(iteration["excess_ns"].as_i64(), Some(slowest - median));
    }
    let spread = figures["kernel_spread"].as_array().unwrap();
    let widest = &spread[0];
    let totals: Vec<i64> = widest["totals_ns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_i64().unwrap())
        .collect();
    for (trace, total) in traces.iter().zip(&totals) {
        let own = trace["kernels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == widest["name"])
            .map_or(0, |k| k["total_ns"].as_i64().unwrap());
        assert_eq!(own, *total);
    }
    let widths: Vec<i64> = spread
        .iter()
        .map(|k| k["spread_ns"].as_i64().unwrap())
        .collect();
    assert!(widths.windows(2).all(|w| w[0] >= w[1]), "{widths:?}");
}

#[test]
fn the_text_report_prints_every_section_from_the_same_figures() {
    let [a, b] = sampled();
    let out = report(&[&a, &b], &["--row-limit", "3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for title in [
        "GPU time by rank",
        "Temporal breakdown by rank (HolisticTraceAnalysis's get_temporal_breakdown)",
        "Communication overlapped with computation by rank",
        "GPU time per iteration by rank",
        "Stragglers per iteration",
        "Kernels whose total time differs most between ranks",
    ] {
        assert!(text.contains(&format!("\n{title}")), "{title}:\n{text}");
    }
    let breakdown_row = text
        .lines()
        .skip_while(|l| !l.starts_with("Temporal breakdown"))
        .find(|l| l.trim_start().starts_with("rank 0"))
        .unwrap();
    let cells: Vec<&str> = breakdown_row.split_whitespace().collect();
    assert_eq!(
        cells,
        [
            "rank",
            "0",
            "1.223s",
            "675.191ms",
            "55.21%",
            "210.320ms",
            "17.20%",
            "337.336ms",
            "27.59%"
        ]
    );
    let kernels = text
        .split("Kernels whose total time differs most between ranks\n")
        .nth(1)
        .unwrap();
    // Separator, header, separator, three rows, separator.
    assert_eq!(
        kernels.lines().take_while(|l| !l.is_empty()).count(),
        7,
        "{kernels}"
    );
}

#[test]
fn a_directory_is_every_trace_in_it_and_an_unreadable_one_is_skipped() {
    let dir = TestDir::new();
    for path in sampled() {
        std::fs::copy(&path, dir.path(path.file_name().unwrap().to_str().unwrap())).unwrap();
    }
    let broken = dir.write("sampled_rank-2.json.gz", b"\x1f\x8b not really gzip");
    dir.write("profiler_out_0.txt", b"a table, not a trace\n");
    let out = report(&[dir.root()], &["--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let figures: Value = serde_json::from_str(stdout(&out)).unwrap();
    assert_eq!(figures["traces"].as_array().unwrap().len(), 2);
    let skipped = figures["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0]["file"], broken.display().to_string());
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(
        lines[0].starts_with(&format!("cutrace: warning: skipped {}: ", broken.display())),
        "{err}"
    );
    assert_eq!(
        lines[1],
        "cutrace: skipped 1 of 3 traces that could not be read"
    );
}

#[test]
fn no_trace_at_all_is_an_error() {
    let dir = TestDir::new();
    let out = report(&[dir.root()], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!(
            "cutrace: error: {}: no trace files (*.json, *.json.gz) in it\n",
            dir.root().display()
        )
    );
    let a = dir.write("a.json", b"not json");
    let b = dir.write("b.json", b"[{");
    let out = report(&[&a, &b], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    assert_eq!(
        stderr(&out),
        format!(
            "cutrace: error: none of the 2 traces could be read: {}: not a JSON trace: it starts with 'n', not '{{' or '[' (and 1 more)\n",
            a.display()
        )
    );
}

#[test]
fn traces_without_a_rank_take_their_place_in_the_list() {
    let unnamed = shared_trace("no_distributed_info.json.gz");
    let [rank0, _] = sampled();
    let figures = report_json(&[&rank0, &unnamed]);
    let ranks: Vec<(u64, &str)> = figures["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["rank"].as_u64().unwrap(),
                t["rank_source"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(ranks, [(0, "distributed_info"), (1, "file_order")]);
}

/// A trace of two launches of CUDA graph 5 in node mode (two kernels each, from
/// `cudaGraphLaunch` calls) and a kernel outside any graph, as cutrace records it.
fn node_mode_trace() -> Trace {
    let mut t = Trace {
        base_time_ns: 1_700_000_000_000_000_000,
        ..Trace::default()
    };
    t.info.rank = 2;
    t.info.world_size = 4;
    t.info.worker_name = "node_1".into();
    let base = t.base_time_ns;
    let launch = t.names.intern("cudaGraphLaunch");
    let (attn, mlp, eager) = (
        t.names.intern("attention_decode"),
        t.names.intern("mlp_decode"),
        t.names.intern("sampler"),
    );
    for (i, start) in [(0u64, 10_000i64), (1, 50_000)] {
        let correlation = 10 + i;
        t.api_calls.push(ApiCall {
            start: base + start - 5_000,
            end: base + start - 4_000,
            correlation,
            name: launch,
            pid: 1,
            tid: 1,
            ..Default::default()
        });
        for (node, (name, offset, duration)) in
            [(attn, 0, 3_000), (mlp, 4_000 + 1_000 * i as i64, 2_000)]
                .into_iter()
                .enumerate()
        {
            t.kernels.push(Kernel {
                start: base + start + offset,
                end: base + start + offset + duration,
                correlation,
                name,
                stream: 7,
                graph_id: 5,
                graph_node_id: node as u64 + 1,
                ..Default::default()
            });
        }
    }
    t.kernels.push(Kernel {
        start: base + 90_000,
        end: base + 91_000,
        correlation: 20,
        name: eager,
        stream: 7,
        ..Default::default()
    });
    t
}

fn written(dir: &TestDir, name: &str, trace: &Trace) -> PathBuf {
    let path = dir.path(name);
    write_trace(trace, &path).unwrap();
    path
}

#[test]
fn our_node_mode_graphs_have_their_section() {
    let dir = TestDir::new();
    let path = written(&dir, "node.pt.trace.json.gz", &node_mode_trace());
    let out = cutrace(["report".as_ref(), path.as_os_str()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let graphs = text
        .split("\nCUDA graphs: ")
        .nth(1)
        .unwrap_or_else(|| panic!("{text}"));
    let row: Vec<&str> = graphs
        .lines()
        .find(|l| l.trim_start().starts_with("graph 5"))
        .unwrap()
        .split_whitespace()
        .collect();
    // Launches span 6 µs and 7 µs: total 13, mean 6.5, two kernels each.
    assert_eq!(
        row,
        [
            "graph", "5", "2", "13.000us", "6.500us", "6.000us", "7.000us", "2.00", "nodes"
        ]
    );
    let top = graphs.split("Top kernels of graph 5").nth(1).unwrap();
    let names: Vec<&str> = top
        .lines()
        .skip(4)
        .take_while(|l| !l.starts_with('-'))
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(names, ["attention_decode", "mlp_decode"]);
    assert!(!top.contains("sampler"), "{top}");
}

#[test]
fn our_graph_mode_launches_have_their_section() {
    let dir = TestDir::new();
    let mut t = node_mode_trace();
    t.kernels.retain(|k| k.graph_id == 0);
    for (start, end) in [(10_000, 18_000), (50_000, 54_000), (60_000, 66_000)] {
        t.graph_launches.push(GraphLaunch {
            start: t.base_time_ns + start,
            end: t.base_time_ns + end,
            correlation: 30,
            graph_id: 8,
            stream: 7,
            ..Default::default()
        });
    }
    let path = written(&dir, "graph.pt.trace.json.gz", &t);
    let figures = report_json(&[&path, &path]);
    let graphs = figures["traces"][0]["graphs"].as_array().unwrap();
    assert_eq!(graphs.len(), 1, "{graphs:?}");
    let g = &graphs[0];
    assert_eq!(g["id"], 8);
    assert_eq!(g["source"], "graph_launches");
    assert_eq!(
        (
            g["launches"].as_u64(),
            g["total_ns"].as_i64(),
            g["max_ns"].as_i64()
        ),
        (Some(3), Some(18_000), Some(8_000))
    );
    assert!(g["kernels_per_launch"].is_null());
    // The same file twice: two traces of rank 2, told apart in the text.
    let out = report(&[&path, &path], &[]);
    let text = stdout(&out);
    assert!(text.contains("\nCUDA graphs (rank 2 (1)): "), "{text}");
    assert!(text.contains("\nCUDA graphs (rank 2 (2)): "), "{text}");
}

#[test]
fn torch_graph_launches_are_grouped_by_the_kernels_they_ran() {
    let Some(path) = optional_trace("negative_queue_rank0.json.gz") else {
        return;
    };
    let figures = report_json(&[&path, &path]);
    let graphs = figures["traces"][0]["graphs"].as_array().unwrap();
    // 70 cudaGraphLaunch calls: 14 graphs of 5 launches each.
    assert_eq!(graphs.len(), 14);
    assert!(
        graphs
            .iter()
            .all(|g| g["launches"] == 5 && g["source"] == "launch_calls")
    );
    assert!(graphs.iter().all(|g| g["id"].is_null()));
    let text = stdout(&cutrace(["report".as_ref(), path.as_os_str()])).to_owned();
    assert!(text.contains("\nCUDA graphs: time per launch"), "{text}");
}

#[test]
fn a_single_trace_without_graphs_has_no_graph_section() {
    let mut t = node_mode_trace();
    t.kernels.retain(|k| k.graph_id == 0);
    t.iterations.push(Iteration {
        number: 1,
        start: t.base_time_ns,
        end: t.base_time_ns + 100_000,
    });
    let step = t.names.intern("ProfilerStep#1");
    t.ranges.push(HostRange {
        start: t.base_time_ns,
        end: t.base_time_ns + 100_000,
        name: step,
        kind: RangeKind::Annotation,
        pid: 1,
        tid: 1,
        ..Default::default()
    });
    let dir = TestDir::new();
    let path = written(&dir, "plain.pt.trace.json.gz", &t);
    let text = stdout(&cutrace(["report".as_ref(), path.as_os_str()])).to_owned();
    assert!(text.contains("GPU time per iteration"), "{text}");
    assert!(!text.contains("CUDA graphs"), "{text}");
}
