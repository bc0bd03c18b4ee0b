//! The analysis crate's figures as text, in the layout of torch's tables: the
//! report across the traces of a run, and the CUDA graph sections. Every number
//! comes from the figures as they are; nothing is computed here but percentages.

use cutrace_analysis::{Figures, GraphFigures, GraphSource, RankSource, TraceFigures};
use cutrace_exporter::{Columns, format_share, format_time, section, truncate_name, us};

/// How many of a graph's kernels its section lists.
const GRAPH_KERNELS: usize = 10;

fn time(ns: i64) -> String {
    format_time(us(ns))
}

fn share(part_ns: i64, total_ns: i64) -> String {
    format_share(us(part_ns), us(total_ns))
}

/// A table section whose first column holds `labels`.
fn table(
    out: &mut String,
    title: &str,
    labels: &[String],
    headers: &[&str],
    rows: impl Iterator<Item = Vec<String>>,
) {
    let columns = Columns::with_name_column(
        labels.iter().map(String::as_str).chain([headers[0]]),
        headers.len() - 1,
    );
    section(out, title, &columns, headers, rows);
}

/// `rank <r>`, or `rank <r> (<n>)` for the n-th of several traces of one rank.
fn labels(traces: &[TraceFigures]) -> Vec<String> {
    traces
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let same = traces.iter().filter(|o| o.rank == t.rank).count();
            if same == 1 {
                format!("rank {}", t.rank)
            } else {
                let nth = traces[..i].iter().filter(|o| o.rank == t.rank).count() + 1;
                format!("rank {} ({nth})", t.rank)
            }
        })
        .collect()
}

/// The report across `figures`' traces; the kernel table cut to `row_limit` rows
/// (`None`: all).
pub fn report(figures: &Figures, row_limit: Option<usize>) -> String {
    let traces = &figures.traces;
    let labels = labels(traces);
    let mut out = format!("{} traces\n", traces.len());
    for (t, label) in traces.iter().zip(&labels) {
        let gpus: Vec<String> = t
            .gpus
            .iter()
            .map(|g| match g.name.as_str() {
                "" => format!("GPU {}", g.device),
                name => format!("GPU {} {name}", g.device),
            })
            .collect();
        let source = match t.rank_source {
            RankSource::DistributedInfo => "",
            RankSource::FileOrder => ", rank by file order",
        };
        let gpus = if gpus.is_empty() {
            "no GPU work".to_owned()
        } else {
            gpus.join(", ")
        };
        out.push_str(&format!("  {label}: {} ({gpus}{source})\n", t.file));
    }

    table(
        &mut out,
        "GPU time by rank (time some work of each kind ran; kinds on several streams overlap)",
        &labels,
        &[
            "Rank", "Span", "Busy", "Busy %", "Compute", "Comm", "Memory", "Other", "Idle",
            "Idle %",
        ],
        traces.iter().zip(&labels).map(|(t, label)| {
            let g = &t.gpu_time;
            vec![
                label.clone(),
                time(g.span_ns),
                time(g.busy_ns),
                share(g.busy_ns, g.span_ns),
                time(g.computation_ns),
                time(g.communication_ns),
                time(g.memory_ns),
                time(g.other_ns),
                time(g.idle_ns),
                share(g.idle_ns, g.span_ns),
            ]
        }),
    );

    table(
        &mut out,
        "Temporal breakdown by rank (HolisticTraceAnalysis's get_temporal_breakdown)",
        &labels,
        &[
            "Rank",
            "Kernel time",
            "Idle",
            "Idle %",
            "Compute",
            "Compute %",
            "Non-compute",
            "Non-comp %",
        ],
        traces.iter().zip(&labels).map(|(t, label)| {
            let b = &t.temporal_breakdown;
            vec![
                label.clone(),
                time(b.kernel_time_ns),
                time(b.idle_ns),
                share(b.idle_ns, b.kernel_time_ns),
                time(b.compute_ns),
                share(b.compute_ns, b.kernel_time_ns),
                time(b.non_compute_ns),
                share(b.non_compute_ns, b.kernel_time_ns),
            ]
        }),
    );

    table(
        &mut out,
        "Communication overlapped with computation by rank (HolisticTraceAnalysis's get_comm_comp_overlap)",
        &labels,
        &["Rank", "Comm", "Overlapped", "Overlap %"],
        traces.iter().zip(&labels).map(|(t, label)| {
            let o = &t.comm_comp_overlap;
            vec![
                label.clone(),
                time(o.communication_ns),
                time(o.overlapped_ns),
                share(o.overlapped_ns, o.communication_ns),
            ]
        }),
    );

    iterations(&mut out, figures, &labels);

    if !figures.kernel_spread.is_empty() {
        let kernels = &figures.kernel_spread[..figures
            .kernel_spread
            .len()
            .min(row_limit.unwrap_or(usize::MAX))];
        let names: Vec<String> = kernels.iter().map(|k| truncate_name(&k.name)).collect();
        table(
            &mut out,
            "Kernels whose total time differs most between ranks",
            &names,
            &["Name", "Min", "Min rank", "Max", "Max rank", "Spread"],
            kernels.iter().zip(&names).map(|(k, name)| {
                vec![
                    name.clone(),
                    time(k.min.gpu_ns),
                    labels[k.min.trace].clone(),
                    time(k.max.gpu_ns),
                    labels[k.max.trace].clone(),
                    time(k.spread_ns),
                ]
            }),
        );
    }

    for (t, label) in traces.iter().zip(&labels) {
        out.push_str(&graphs(&t.graphs, &format!("CUDA graphs ({label})")));
    }
    out
}

/// Each rank's GPU time per iteration, and each iteration's straggler.
fn iterations(out: &mut String, figures: &Figures, labels: &[String]) {
    const TITLE: &str = "GPU time per iteration by rank (work launched in it)";
    if figures.iterations.is_empty() {
        out.push_str(&format!(
            "\n{TITLE}\n  none: no trace marks iterations (ProfilerStep#<n> ranges)\n"
        ));
        return;
    }
    let mut headers = vec!["Rank".to_owned()];
    headers.extend(figures.iterations.iter().map(|i| i.number.to_string()));
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    table(
        out,
        TITLE,
        labels,
        &headers,
        labels.iter().enumerate().map(|(trace, label)| {
            let mut row = vec![label.clone()];
            row.extend(figures.iterations.iter().map(|i| {
                i.ranks
                    .iter()
                    .find(|r| r.trace == trace)
                    .map_or_else(|| "-".to_owned(), |r| time(r.gpu_ns))
            }));
            row
        }),
    );
    let numbers: Vec<String> = figures
        .iterations
        .iter()
        .map(|i| i.number.to_string())
        .collect();
    table(
        out,
        "Stragglers per iteration (the rank with the most GPU time against the median rank)",
        &numbers,
        &[
            "Iteration",
            "Ranks",
            "Median",
            "Slowest",
            "Its time",
            "Excess",
            "Excess %",
        ],
        figures.iterations.iter().zip(&numbers).map(|(i, number)| {
            vec![
                number.clone(),
                i.ranks.len().to_string(),
                time(i.median_ns),
                labels[i.slowest.trace].clone(),
                time(i.slowest.gpu_ns),
                time(i.excess_ns),
                share(i.excess_ns, i.median_ns),
            ]
        }),
    );
}

/// A section per graph under `title`, or nothing without graphs.
pub fn graphs(graphs: &[GraphFigures], title: &str) -> String {
    let mut out = String::new();
    if graphs.is_empty() {
        return out;
    }
    let labels: Vec<String> = graphs.iter().map(|g| g.label.clone()).collect();
    table(
        &mut out,
        &format!("{title}: time per launch from its first node's start to its last's end"),
        &labels,
        &[
            "Graph", "Launches", "Total", "Mean", "Min", "Max", "Kernels", "Found by",
        ],
        graphs.iter().map(|g| {
            vec![
                g.label.clone(),
                g.launches.to_string(),
                time(g.total_ns),
                time(g.mean_ns),
                time(g.min_ns),
                time(g.max_ns),
                g.kernels_per_launch
                    .map_or_else(|| "-".to_owned(), |k| format!("{k:.2}")),
                match g.source {
                    GraphSource::Nodes => "nodes",
                    GraphSource::GraphLaunches => "launches",
                    GraphSource::LaunchCalls => "calls",
                }
                .to_owned(),
            ]
        }),
    );
    for g in graphs.iter().filter(|g| !g.kernels.is_empty()) {
        let kernel_total: i64 = g.kernels.iter().map(|k| k.total_ns).sum();
        let kernels = &g.kernels[..g.kernels.len().min(GRAPH_KERNELS)];
        let names: Vec<String> = kernels.iter().map(|k| truncate_name(&k.name)).collect();
        table(
            &mut out,
            &format!(
                "Top kernels of {} ({} of {} names; share of its kernel time)",
                g.label,
                kernels.len(),
                g.kernels.len()
            ),
            &names,
            &["Name", "# of Calls", "Total", "Share"],
            kernels.iter().zip(&names).map(|(k, name)| {
                vec![
                    name.clone(),
                    k.calls.to_string(),
                    time(k.total_ns),
                    share(k.total_ns, kernel_total),
                ]
            }),
        );
    }
    out
}
