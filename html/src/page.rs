//! The page itself: one HTML string made from the figures `cutrace report
//! --format json` prints and the key-averages rows, with its style, its script and
//! its charts inside, so that it opens offline anywhere.
//!
//! Every number the page shows is a figure of the JSON report, and says which
//! (the only ones made here are read beside them: shares of the span, and the sum
//! of the kernels a chart leaves out): its element carries `data-path`, the
//! figure's place in the JSON (`traces.0.gpu_time.busy_ns` in the object of
//! `cutrace report --format json` over the traces, `rows.0.3.self_cuda_us` for the
//! fourth row of the first trace's table in `--format json` on that trace alone),
//! and `data-value`, the exact figure the text rounds; the sum of the kernels a
//! chart leaves out has `data-sum`, the list it sums, and `data-from`, the first
//! it takes. A test compares them with the JSON.

use cutrace_analysis::{Figures, GraphFigures, TraceFigures};
use cutrace_exporter::{Row, format_time, us};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::charts::{self, Bar, Column, Strip};

/// Kernels shown by name in a trace's chart; the rest are summed as one bar.
const TOP_KERNELS: usize = 20;
/// Kernels of the table of kernels whose time differs most between ranks.
const TOP_SPREAD: usize = 20;

/// One trace's key-averages table, as `--format json` gives its rows.
pub struct Table {
    /// The rows, sorted and cut as asked.
    pub rows: Vec<Row>,
    /// How many rows the table has in all.
    pub all_rows: usize,
    /// The column the rows are sorted by (torch's name for it).
    pub sort: &'static str,
}

/// A time as the report prints it (torch's units), for a figure in ns.
pub(crate) fn shown_time(ns: i64) -> String {
    format_time(us(ns))
}

/// A time in ns, shown, marked with its place in the JSON.
fn time(path: &str, ns: i64) -> Markup {
    html! { span.n data-path=(path) data-value=(ns) { (shown_time(ns)) } }
}

/// A time in ns, shown inside a chart's text, marked with its place in the JSON.
fn chart_time(path: &str, ns: i64) -> Markup {
    html! { tspan data-path=(path) data-value=(ns) { (shown_time(ns)) } }
}

/// A count, marked with its place in the JSON.
fn count(path: &str, n: u64) -> Markup {
    html! { span.n data-path=(path) data-value=(n) { (n) } }
}

/// `part` of `whole` as a percentage, for reading beside the figures.
fn share(part: i64, whole: i64) -> String {
    if whole > 0 {
        format!("{:.1}%", part as f64 * 100.0 / whole as f64)
    } else {
        "–".to_owned()
    }
}

/// A CUDA version (`1000 * major + 10 * minor`) as `major.minor`.
fn cuda_version(v: u32) -> String {
    format!("{}.{}", v / 1000, v % 1000 / 10)
}

/// The whole page for `figures`, with `tables[i]` the table of `figures.traces[i]`.
pub fn render(figures: &Figures, tables: &[Table]) -> String {
    let title = match &figures.traces[..] {
        [one] => format!("cutrace report: {}", one.file),
        traces => format!("cutrace report: {} ranks", traces.len()),
    };
    let several = figures.traces.len() > 1;
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(include_str!("page.css"))) }
            }
            body {
                h1 { (title) }
                @if several { (across_ranks(figures)) }
                @for (i, trace) in figures.traces.iter().enumerate() {
                    @let table = tables.get(i);
                    @if several {
                        details.rank open[i == 0] {
                            summary { h2 { "Rank " (trace.rank) ": " (trace.file) } }
                            (one_trace(i, trace, table))
                        }
                    } @else {
                        (one_trace(i, trace, table))
                    }
                }
                footer {
                    "Written by cutrace " (env!("CARGO_PKG_VERSION"))
                    ". Times are GPU time unless named otherwise; hover a bar for its whole name."
                }
                script { (PreEscaped(include_str!("page.js"))) }
            }
        }
    }
    .into_string()
}

/// The report across ranks: each rank's breakdown, its busy time over the run,
/// its GPU time per iteration with the stragglers, and the kernels that differ.
fn across_ranks(figures: &Figures) -> Markup {
    let from = figures.traces.iter().map(|t| t.start_ns).min().unwrap_or(0);
    let to = figures
        .traces
        .iter()
        .map(|t| t.start_ns + t.gpu_time.span_ns)
        .max()
        .unwrap_or(0);
    let strips: Vec<Strip> = figures
        .traces
        .iter()
        .enumerate()
        .map(|(i, t)| Strip {
            label: format!("rank {}", t.rank),
            start_ns: t.timeline.start_ns,
            bin_ns: t.timeline.bin_ns,
            busy_ns: &t.timeline.busy_ns,
            path: format!("traces.{i}.timeline.busy_ns"),
        })
        .collect();
    let groups: Vec<(String, Vec<Column>)> = figures
        .iterations
        .iter()
        .enumerate()
        .map(|(k, iteration)| {
            let columns = iteration
                .ranks
                .iter()
                .enumerate()
                .map(|(j, r)| Column {
                    value: r.gpu_ns,
                    title: format!(
                        "iteration {}, rank {}: {}",
                        iteration.number,
                        r.rank,
                        shown_time(r.gpu_ns)
                    ),
                    highlight: r.trace == iteration.slowest.trace && iteration.ranks.len() > 1,
                    path: format!("iterations.{k}.ranks.{j}.gpu_ns"),
                })
                .collect();
            (iteration.number.to_string(), columns)
        })
        .collect();
    html! {
        section.summary {
            p {
                (count("traces.length", figures.traces.len() as u64)) " ranks read"
                @if !figures.skipped.is_empty() {
                    "; " span.alert { (figures.skipped.len()) " skipped" }
                }
            }
            @if !figures.skipped.is_empty() {
                ul.alert {
                    @for (i, s) in figures.skipped.iter().enumerate() {
                        li { span data-path={"skipped." (i) ".error"} { (s.error) } }
                    }
                }
            }
        }
        h2 { "Per rank" }
        (per_rank_table(figures))
        h2 { "Busy and idle over the run" }
        p.note { "Each rank's GPU work on one clock; darker is busier, grey is idle." }
        (charts::strips(&strips, from, to))
        @if !figures.iterations.is_empty() {
            h2 { "GPU time per iteration and rank" }
            p.note {
                (charts::swatch("kernel", "rank")) " " (charts::swatch("slowest", "slowest rank of the iteration"))
            }
            (charts::columns(&groups))
            table {
                thead { tr { th { "Iteration" } th { "Ranks" } th { "Median" } th { "Slowest rank" } th { "Its GPU time" } th { "Over the median" } } }
                tbody {
                    @for (k, i) in figures.iterations.iter().enumerate() {
                        tr {
                            td { (count(&format!("iterations.{k}.number"), i.number)) }
                            td { (i.ranks.len()) }
                            td { (time(&format!("iterations.{k}.median_ns"), i.median_ns)) }
                            td { (count(&format!("iterations.{k}.slowest.rank"), u64::from(i.slowest.rank))) }
                            td { (time(&format!("iterations.{k}.slowest.gpu_ns"), i.slowest.gpu_ns)) }
                            td.excess[i.excess_ns > 0] { (time(&format!("iterations.{k}.excess_ns"), i.excess_ns)) }
                        }
                    }
                }
            }
        }
        @if !figures.kernel_spread.is_empty() {
            h2 { "Kernels whose time differs most between ranks" }
            table {
                thead { tr {
                    th { "Kernel" } th { "Least (rank)" } th { "Most (rank)" } th { "Difference" }
                } }
                tbody {
                    @for (k, s) in figures.kernel_spread.iter().take(TOP_SPREAD).enumerate() {
                        tr {
                            td.name title=(s.name) { span data-path={"kernel_spread." (k) ".name"} { (s.name) } }
                            td { (time(&format!("kernel_spread.{k}.min.gpu_ns"), s.min.gpu_ns)) " (" (s.min.rank) ")" }
                            td { (time(&format!("kernel_spread.{k}.max.gpu_ns"), s.max.gpu_ns)) " (" (s.max.rank) ")" }
                            td { (time(&format!("kernel_spread.{k}.spread_ns"), s.spread_ns)) }
                        }
                    }
                }
            }
        }
    }
}

/// One row per rank: what its GPUs did and HTA's two breakdowns.
fn per_rank_table(figures: &Figures) -> Markup {
    html! {
        div.wide { table.sortable {
            thead { tr {
                th data-sort="num" { "Rank" } th data-sort="num" { "Span" } th data-sort="num" { "Busy" }
                th data-sort="num" { "Computation" } th data-sort="num" { "Communication" }
                th data-sort="num" { "Memory" } th data-sort="num" { "Idle" }
                th data-sort="num" title="HolisticTraceAnalysis's temporal breakdown: idle" { "HTA idle" }
                th data-sort="num" title="HolisticTraceAnalysis's temporal breakdown: compute" { "HTA compute" }
                th data-sort="num" title="HolisticTraceAnalysis's temporal breakdown: non-compute" { "HTA non-compute" }
                th data-sort="num" title="HolisticTraceAnalysis's communication-computation overlap" { "Comm. overlapped" }
            } }
            tbody {
                @for (i, t) in figures.traces.iter().enumerate() {
                    @let g = &t.gpu_time;
                    @let p = |field: &str| format!("traces.{i}.gpu_time.{field}");
                    tr {
                        td data-value=(t.rank) { (count(&format!("traces.{i}.rank"), u64::from(t.rank))) }
                        td data-value=(g.span_ns) { (time(&p("span_ns"), g.span_ns)) }
                        td data-value=(g.busy_ns) { (time(&p("busy_ns"), g.busy_ns)) " " small { (share(g.busy_ns, g.span_ns)) } }
                        td data-value=(g.computation_ns) { (time(&p("computation_ns"), g.computation_ns)) }
                        td data-value=(g.communication_ns) { (time(&p("communication_ns"), g.communication_ns)) }
                        td data-value=(g.memory_ns) { (time(&p("memory_ns"), g.memory_ns)) }
                        td data-value=(g.idle_ns) { (time(&p("idle_ns"), g.idle_ns)) }
                        @let hta = &t.temporal_breakdown;
                        @let h = |field: &str| format!("traces.{i}.temporal_breakdown.{field}");
                        td data-value=(hta.idle_ns) { (time(&h("idle_ns"), hta.idle_ns)) }
                        td data-value=(hta.compute_ns) { (time(&h("compute_ns"), hta.compute_ns)) }
                        td data-value=(hta.non_compute_ns) { (time(&h("non_compute_ns"), hta.non_compute_ns)) }
                        @let ratio = t.comm_comp_overlap.ratio;
                        td data-value=(ratio.unwrap_or(-1.0)) {
                            @match ratio {
                                Some(r) => span.n data-path={"traces." (i) ".comm_comp_overlap.ratio"} data-value=(r) {
                                    (format!("{:.1}%", r * 100.0))
                                },
                                None => "no communication",
                            }
                        }
                    }
                }
            }
        } }
    }
}

/// Everything about one trace, the `i`-th.
fn one_trace(i: usize, t: &TraceFigures, table: Option<&Table>) -> Markup {
    let p = |field: &str| format!("traces.{i}.{field}");
    let r = &t.recording;
    let k = &t.kinds;
    let kinds = [
        ("kernel", "kinds.kernel_ns", k.kernel_ns, k.kernels),
        ("memcpy", "kinds.memcpy_ns", k.memcpy_ns, k.memcpys),
        ("memset", "kinds.memset_ns", k.memset_ns, k.memsets),
        ("graph", "kinds.graph_ns", k.graph_ns, k.graphs),
    ];
    let kind_bars: Vec<Bar> = kinds
        .iter()
        .map(|&(kind, path, ns, n)| Bar {
            label: format!("{kind} ({n})"),
            value: ns,
            shown: chart_time(&p(path), ns),
            class: kind,
        })
        .collect();
    let mut kernel_bars: Vec<Bar> = t
        .kernels
        .iter()
        .take(TOP_KERNELS)
        .enumerate()
        .map(|(j, kernel)| Bar {
            label: kernel.name.clone(),
            value: kernel.total_ns,
            shown: html! {
                (chart_time(&p(&format!("kernels.{j}.total_ns")), kernel.total_ns))
                ", " tspan data-path=(p(&format!("kernels.{j}.calls"))) data-value=(kernel.calls) { (kernel.calls) }
                @if kernel.calls == 1 { " call" } @else { " calls" }
            },
            class: "kernel",
        })
        .collect();
    if t.kernels.len() > TOP_KERNELS {
        let rest = &t.kernels[TOP_KERNELS..];
        let ns: i64 = rest.iter().map(|k| k.total_ns).sum();
        kernel_bars.push(Bar {
            label: format!("other ({} kernels)", rest.len()),
            value: ns,
            // Not a figure of the JSON but the sum of some: it says which.
            shown: html! {
                tspan data-sum=(p("kernels")) data-from=(TOP_KERNELS) data-value=(ns) { (shown_time(ns)) }
            },
            class: "other",
        });
    }
    let stream_bars: Vec<Bar> = t
        .streams
        .iter()
        .enumerate()
        .map(|(j, s)| Bar {
            label: format!(
                "device {} stream {} ({} events)",
                s.device, s.stream, s.events
            ),
            value: s.busy_ns,
            shown: html! {
                (chart_time(&p(&format!("streams.{j}.busy_ns")), s.busy_ns))
                " " tspan.dim { (share(s.busy_ns, t.gpu_time.span_ns)) " of the span" }
            },
            class: "kernel",
        })
        .collect();
    let mut strips: Vec<Strip> = vec![Strip {
        label: "all streams".into(),
        start_ns: t.timeline.start_ns,
        bin_ns: t.timeline.bin_ns,
        busy_ns: &t.timeline.busy_ns,
        path: p("timeline.busy_ns"),
    }];
    strips.extend(t.streams.iter().enumerate().map(|(j, s)| Strip {
        label: format!("dev {} stream {}", s.device, s.stream),
        start_ns: t.timeline.start_ns,
        bin_ns: t.timeline.bin_ns,
        busy_ns: &s.timeline,
        path: p(&format!("streams.{j}.timeline")),
    }));
    let slowest = t
        .iterations
        .iter()
        .enumerate()
        .reduce(|a, b| if b.1.gpu_ns > a.1.gpu_ns { b } else { a })
        .map(|(j, _)| j);
    let iteration_columns: Vec<(String, Vec<Column>)> = t
        .iterations
        .iter()
        .enumerate()
        .map(|(j, it)| {
            let column = Column {
                value: it.gpu_ns,
                title: format!("iteration {}: {}", it.number, shown_time(it.gpu_ns)),
                highlight: Some(j) == slowest && t.iterations.len() > 1,
                path: p(&format!("iterations.{j}.gpu_ns")),
            };
            (it.number.to_string(), vec![column])
        })
        .collect();
    html! {
        section.header {
            dl {
                dt { "Rank" } dd { (count(&p("rank"), u64::from(t.rank))) }
                @if !t.worker.is_empty() { dt { "Worker" } dd { (t.worker) } }
                @if !t.host.is_empty() { dt { "Host" } dd { (t.host) } }
                dt { "GPUs" }
                dd {
                    @if t.gpus.is_empty() { "none named" }
                    @for (j, gpu) in t.gpus.iter().enumerate() {
                        @if j > 0 { ", " }
                        (gpu.device) ": " @if gpu.name.is_empty() { "unnamed" } @else { (gpu.name) }
                    }
                }
                @if r.cuda_driver_version > 0 { dt { "CUDA driver" } dd { (cuda_version(r.cuda_driver_version)) } }
                @if r.cuda_runtime_version > 0 { dt { "CUDA runtime" } dd { (cuda_version(r.cuda_runtime_version)) } }
                @if r.cupti_version > 0 { dt { "CUPTI API" } dd { (count(&p("recording.cupti_version"), u64::from(r.cupti_version))) } }
                dt { "Window span" } dd { (time(&p("gpu_time.span_ns"), t.gpu_time.span_ns)) }
                dt { "GPU busy" } dd {
                    (time(&p("gpu_time.busy_ns"), t.gpu_time.busy_ns)) " " small { (share(t.gpu_time.busy_ns, t.gpu_time.span_ns)) }
                }
                dt { "Iterations" } dd { (count(&p("iterations.length"), t.iterations.len() as u64)) }
                dt { "Events" } dd { (count(&p("recording.events"), r.events)) }
                dt { "Dropped records" }
                dd.alert[r.dropped_records > 0] { (count(&p("recording.dropped_records"), r.dropped_records)) }
                @if r.refused_buffers > 0 {
                    dt { "Refused buffers" } dd.alert { (count(&p("recording.refused_buffers"), r.refused_buffers)) }
                }
            }
            @if t.streams.is_empty() {
                p.banner { "The trace holds no GPU work (kernels, copies, memsets, graph launches): a host-only profile." }
            }
            @if r.dropped_records > 0 {
                p.alert.banner {
                    "CUPTI dropped " (r.dropped_records) " records: the figures below miss that work. "
                    "A larger max_buffer_mb keeps them."
                }
            }
        }
        section {
            h3 { "GPU time by kind" }
            (charts::bars(&kind_bars))
        }
        section {
            h3 { "GPU time by stream" }
            @if stream_bars.is_empty() { p.note { "No GPU work." } } @else { (charts::bars(&stream_bars)) }
        }
        section {
            h3 { "GPU time by kernel (top " (TOP_KERNELS) ")" }
            @if kernel_bars.is_empty() { p.note { "No kernels." } } @else { (charts::bars(&kernel_bars)) }
        }
        section {
            h3 { "Busy and idle over the window" }
            p.note { "Darker is busier; grey is idle. Each strip is cut into " (t.timeline.busy_ns.len()) " bins of "
                (shown_time(t.timeline.bin_ns)) "." }
            (charts::strips(&strips, t.timeline.start_ns, t.timeline.start_ns + t.gpu_time.span_ns))
        }
        section {
            h3 { "GPU time per iteration" }
            @if iteration_columns.is_empty() {
                p.note { "The trace marks no iterations (torch.profiler and cutrace mark them as ProfilerStep#<n> ranges)." }
            } @else {
                @if iteration_columns.len() > 1 {
                    p.note { (charts::swatch("slowest", "the iteration with the most GPU time")) }
                }
                (charts::columns(&iteration_columns))
            }
        }
        @if !t.graphs.is_empty() { (graphs(i, &t.graphs)) }
        @if let Some(table) = table { (key_averages(i, table)) }
    }
}

/// The CUDA graphs of the `i`-th trace.
fn graphs(i: usize, graphs: &[GraphFigures]) -> Markup {
    html! {
        section {
            h3 { "CUDA graphs" }
            table.sortable {
                thead { tr {
                    th { "Graph" } th data-sort="num" { "Launches" } th data-sort="num" { "Total" }
                    th data-sort="num" { "Mean" } th data-sort="num" { "Min" } th data-sort="num" { "Max" }
                    th data-sort="num" { "Kernels per launch" } th { "Top kernel" }
                } }
                tbody {
                    @for (j, g) in graphs.iter().enumerate() {
                        @let p = |field: &str| format!("traces.{i}.graphs.{j}.{field}");
                        tr {
                            td { span data-path=(p("label")) { (g.label) } }
                            td data-value=(g.launches) { (count(&p("launches"), g.launches)) }
                            td data-value=(g.total_ns) { (time(&p("total_ns"), g.total_ns)) }
                            td data-value=(g.mean_ns) { (time(&p("mean_ns"), g.mean_ns)) }
                            td data-value=(g.min_ns) { (time(&p("min_ns"), g.min_ns)) }
                            td data-value=(g.max_ns) { (time(&p("max_ns"), g.max_ns)) }
                            td data-value=(g.kernels_per_launch.unwrap_or(-1.0)) {
                                @match g.kernels_per_launch {
                                    Some(n) => span.n data-path=(p("kernels_per_launch")) data-value=(n) { (format!("{n:.1}")) },
                                    None => "unknown",
                                }
                            }
                            td.name {
                                @if let Some(k) = g.kernels.first() { span title=(k.name) { (k.name) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The key-averages table of the `i`-th trace, sortable and filterable.
fn key_averages(i: usize, table: &Table) -> Markup {
    let columns = [
        ("Self CUDA", "self_cuda_us"),
        ("CUDA total", "cuda_total_us"),
        ("Self CPU", "self_cpu_us"),
        ("CPU total", "cpu_total_us"),
    ];
    html! {
        section {
            h3 { "Key averages" }
            p.note {
                "torch's key_averages() table, sorted by " (table.sort) "; "
                @if table.rows.len() < table.all_rows {
                    "the first " (table.rows.len()) " of " (table.all_rows) " rows (--row-limit shows more). "
                } @else {
                    "all " (table.all_rows) " rows. "
                }
                "Click a heading to sort."
            }
            input.filter type="search" placeholder="Filter by name" aria-label="Filter by name";
            table.sortable.averages {
                thead { tr {
                    th { "Name" } th { "Kind" } th data-sort="num" { "# of Calls" }
                    @for (heading, _) in columns { th data-sort="num" { (heading) } }
                } }
                tbody {
                    @for (j, row) in table.rows.iter().enumerate() {
                        @let p = |field: &str| format!("rows.{i}.{j}.{field}");
                        @let values = [row.self_cuda_ns, row.cuda_total_ns, row.self_cpu_ns, row.cpu_total_ns];
                        tr {
                            td.name title=(row.name) { span data-path=(p("name")) { (row.name) } }
                            td { span data-path=(p("kind")) { (row.kind.as_str()) } }
                            td data-value=(row.calls) { (count(&p("calls"), row.calls)) }
                            @for ((_, field), ns) in columns.iter().zip(values) {
                                td data-value=(ns) {
                                    span.n data-path=(p(field)) data-value=(us(ns)) { (format_time(us(ns))) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutrace_analysis::TraceFigures;
    use cutrace_tracer::Trace;
    use cutrace_tracer::model::Kernel;

    fn trace_with(names: &[&str]) -> Trace {
        let mut trace = Trace::default();
        for (i, name) in names.iter().enumerate() {
            let name = trace.names.intern(name);
            let start = i as i64 * 1_000;
            trace.kernels.push(Kernel {
                start,
                end: start + 500 + i as i64,
                name,
                stream: 7,
                ..Default::default()
            });
        }
        trace
    }

    #[test]
    fn names_are_escaped_and_figures_marked_with_their_place() {
        let trace = trace_with(&["void f<int, &g>()", "<script>alert(1)</script>"]);
        let figures = Figures::new(
            vec![TraceFigures::from_trace("<t>.json".into(), 0, &trace)],
            Vec::new(),
        );
        let page = render(&figures, &[]);
        assert!(!page.contains("<script>alert"));
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("void f&lt;int, &amp;g&gt;()"));
        assert!(page.contains("cutrace report: &lt;t&gt;.json"));
        // The second kernel ran 501 ns, the longest: first in the chart.
        assert!(page.contains(
            r#"data-path="traces.0.kernels.0.total_ns" data-value="501">0.501us</tspan>"#
        ));
        assert!(page.contains(r#"data-path="traces.0.recording.events" data-value="2">2</span>"#));
        // One trace: no report across ranks.
        assert!(!page.contains("Per rank"));
    }

    #[test]
    fn more_kernels_than_the_chart_shows_are_summed_as_other() {
        let names: Vec<String> = (0..TOP_KERNELS + 3).map(|i| format!("k{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let trace = trace_with(&names);
        let figures = Figures::new(
            vec![TraceFigures::from_trace("t".into(), 0, &trace)],
            Vec::new(),
        );
        let page = render(&figures, &[]);
        // The three shortest: 500, 501 and 502 ns.
        assert!(page.contains("other (3 kernels)"));
        assert!(page.contains(
            r#"data-sum="traces.0.kernels" data-from="20" data-value="1503">1.503us</tspan>"#
        ));
        assert!(!page.contains("traces.0.kernels.20.total_ns"));
    }

    #[test]
    fn dropped_records_stand_out_and_a_host_only_trace_says_so() {
        let mut trace = trace_with(&["gemm"]);
        trace.info.dropped_records = 12;
        let figures = Figures::new(
            vec![TraceFigures::from_trace("t".into(), 0, &trace)],
            Vec::new(),
        );
        let page = render(&figures, &[]);
        assert!(page.contains(r#"<dd class="alert"><span class="n" data-path="traces.0.recording.dropped_records" data-value="12">12</span>"#));
        assert!(page.contains("CUPTI dropped 12 records"));
        assert!(!page.contains("no GPU work"));
        let figures = Figures::new(
            vec![TraceFigures::from_trace("t".into(), 0, &Trace::default())],
            Vec::new(),
        );
        let page = render(&figures, &[]);
        assert!(page.contains("The trace holds no GPU work"));
        assert!(!page.contains("CUPTI dropped"));
    }

    #[test]
    fn several_ranks_show_the_straggler_and_each_rank_apart() {
        let a = TraceFigures::from_trace("a".into(), 0, &trace_with(&["gemm"]));
        let b = TraceFigures::from_trace("b".into(), 1, &trace_with(&["gemm", "gemm"]));
        let page = render(&Figures::new(vec![a, b], Vec::new()), &[]);
        assert!(page.contains("Per rank"));
        assert_eq!(page.matches("<details class=\"rank\"").count(), 2);
        assert!(page.contains("data-path=\"kernel_spread.0.spread_ns\""));
    }
}
