//! What `cutrace report` prints after torch's table: how kernel durations spread,
//! how busy each stream kept the GPU, and the GPU time of each iteration.

use cutrace_tracer::Trace;
use cutrace_tracer::model::{Iteration, NameId, Names};

use super::fold::Fold;

use super::format::{Columns, format_time, section, truncate_name, us};

/// Duration spread of one kernel name. Times in nanoseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelStats {
    /// Kernel name.
    pub name: String,
    /// Launches.
    pub calls: u64,
    /// Summed duration.
    pub total_ns: i64,
    /// Shortest launch.
    pub min_ns: i64,
    /// Median launch (the mean of the middle two for an even count, rounded down).
    pub median_ns: i64,
    /// Longest launch.
    pub max_ns: i64,
}

/// How long one stream had GPU work. Times in nanoseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamBusy {
    /// Device index.
    pub device: u32,
    /// CUDA stream id.
    pub stream: u32,
    /// Kernels, copies, memsets and graph launches on it.
    pub events: u64,
    /// Length of the union of their intervals.
    pub busy_ns: i64,
}

/// GPU time launched in one iteration. Times in nanoseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IterationTime {
    /// Iteration number.
    pub number: u64,
    /// Start, absolute.
    pub start_ns: i64,
    /// End, absolute.
    pub end_ns: i64,
    /// Wall time of the iteration.
    pub duration_ns: i64,
    /// Summed duration of the GPU work launched in it (its launch call is in the
    /// trace and starts inside the iteration).
    pub gpu_ns: i64,
    /// Number of those GPU events.
    pub gpu_events: u64,
    /// Summed duration of the GPU work that started in the iteration but whose
    /// launch the trace does not hold (launched before the trace began).
    pub unlaunched_gpu_ns: i64,
}

/// The figures of a trace that torch's table does not show.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TraceStats {
    /// Kernels by name, most total time first.
    pub kernels: Vec<KernelStats>,
    /// Streams by device and id.
    pub streams: Vec<StreamBusy>,
    /// From the start of the first GPU event to the end of the last, ns.
    pub gpu_span_ns: i64,
    /// Iterations in order.
    pub iterations: Vec<IterationTime>,
    /// Origin of the times shown (the trace's `baseTimeNanoseconds`), ns.
    pub base_time_ns: i64,
}

/// The spread of each kernel name's durations, given every kernel's (name,
/// duration): one sorted list rather than a list per name, as a trace may hold
/// millions of distinct names.
pub(crate) fn kernel_stats(mut durations: Vec<(NameId, i64)>, names: &Names) -> Vec<KernelStats> {
    durations.sort_unstable();
    let mut stats: Vec<KernelStats> = durations
        .chunk_by(|a, b| a.0 == b.0)
        .map(|group| {
            let d = |i: usize| group[i].1;
            let mid = group.len() / 2;
            let median = if group.len() % 2 == 0 {
                (d(mid - 1) + d(mid)).div_euclid(2)
            } else {
                d(mid)
            };
            KernelStats {
                name: names.get(group[0].0).to_owned(),
                calls: group.len() as u64,
                total_ns: group.iter().map(|g| g.1).sum(),
                min_ns: d(0),
                median_ns: median,
                max_ns: d(group.len() - 1),
            }
        })
        .collect();
    stats.sort_unstable_by(|a, b| {
        b.total_ns
            .cmp(&a.total_ns)
            .then_with(|| a.name.cmp(&b.name))
    });
    stats
}

/// Which recorded iteration a GPU event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InIteration {
    /// The iteration, by index, whose call launched it.
    Launched(usize),
    /// The iteration it started in, its launch not being in the trace (it was
    /// launched before the trace began).
    Unlaunched(usize),
}

/// The rule by which "GPU time per iteration" gives GPU work to iterations: to the
/// iteration its launch call starts in, and work whose launch the trace lacks,
/// apart, to the one it started in.
#[derive(Debug)]
pub struct IterationOf<'a> {
    /// Each launch's (correlation, start) by correlation, the last call of a
    /// correlation kept: sixteen bytes a launch, where a hash map takes about 35.
    launches: Vec<(u64, i64)>,
    iterations: &'a [Iteration],
}

impl<'a> IterationOf<'a> {
    /// The attribution of `trace`'s events to its iterations.
    pub fn new(trace: &'a Trace) -> Self {
        let launches = trace.api_calls.iter().map(|c| (c.correlation, c.start));
        IterationOf::with_launches(launches, &trace.iterations)
    }

    /// The attribution to `iterations` (in order) given each launch call's
    /// correlation and start; correlation 0 is no launch.
    pub fn with_launches(
        launches: impl IntoIterator<Item = (u64, i64)>,
        iterations: &'a [Iteration],
    ) -> Self {
        let mut launches: Vec<(u64, i64)> = launches
            .into_iter()
            .filter(|&(correlation, _)| correlation != 0)
            .collect();
        // Calls mostly come in correlation order already; a stable sort keeps the
        // order of the calls of one correlation, of which the last is kept.
        if !launches.is_sorted_by_key(|l| l.0) {
            launches.sort_by_key(|l| l.0);
        }
        launches.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                *kept = *later;
            }
            same
        });
        launches.shrink_to_fit();
        IterationOf {
            launches,
            iterations,
        }
    }

    /// The index of the iteration that holds the time `at`.
    pub fn containing(&self, at: i64) -> Option<usize> {
        containing(self.iterations, at)
    }

    /// The iteration of GPU work that started at `start`, launched by the call of
    /// `correlation`.
    pub fn of_work(&self, start: i64, correlation: u64) -> Option<InIteration> {
        match self.launches.binary_search_by_key(&correlation, |l| l.0) {
            Ok(i) => self
                .containing(self.launches[i].1)
                .map(InIteration::Launched),
            Err(_) => self.containing(start).map(InIteration::Unlaunched),
        }
    }
}

/// The index of the iteration of `iterations` (in order) that holds the time `at`.
pub(crate) fn containing(iterations: &[Iteration], at: i64) -> Option<usize> {
    let after = iterations.partition_point(|i| i.start <= at);
    after.checked_sub(1).filter(|&k| at < iterations[k].end)
}

/// Nanoseconds from `base` as microseconds with three decimals, exactly.
fn relative_us(ns: i64, base: i64) -> String {
    let rel = i128::from(ns) - i128::from(base);
    let sign = if rel < 0 { "-" } else { "" };
    let rel = rel.unsigned_abs();
    format!("{sign}{}.{:03}", rel / 1000, rel % 1000)
}

/// Title of the iteration table, saying what each GPU column counts.
const ITERATIONS_TITLE: &str = "GPU time per iteration (GPU time: work launched in it; \
    No launch: work that started in it whose launch the trace lacks; \
    Start, End: us on the --from-us/--to-us scale)";

impl TraceStats {
    /// The figures of `trace`.
    pub fn from_trace(trace: &Trace) -> Self {
        Fold::figures_of(trace)
    }

    /// The figures as text: one table each, kernels cut to `row_limit` (`None`:
    /// all); a table with nothing to show is left out.
    pub fn text(&self, row_limit: Option<usize>) -> String {
        let mut out = String::new();
        if !self.kernels.is_empty() {
            let kernels = &self.kernels[..self.kernels.len().min(row_limit.unwrap_or(usize::MAX))];
            let rows = kernels.iter().map(|k| {
                vec![
                    truncate_name(&k.name),
                    k.calls.to_string(),
                    format_time(us(k.total_ns)),
                    format_time(us(k.min_ns)),
                    format_time(us(k.median_ns)),
                    format_time(us(k.max_ns)),
                ]
            });
            let columns =
                Columns::with_name_column(self.kernels.iter().map(|k| k.name.as_str()), 5);
            section(
                &mut out,
                "Kernel durations",
                &columns,
                &["Name", "# of Calls", "Total", "Min", "Median", "Max"],
                rows,
            );
        }
        if !self.streams.is_empty() {
            let labels: Vec<String> = self
                .streams
                .iter()
                .map(|s| format!("device {} stream {}", s.device, s.stream))
                .collect();
            let rows = self.streams.iter().zip(&labels).map(|(s, label)| {
                let share = if self.gpu_span_ns > 0 {
                    format!("{:.2}%", s.busy_ns as f64 * 100.0 / self.gpu_span_ns as f64)
                } else {
                    "NaN".to_owned()
                };
                vec![
                    label.clone(),
                    s.events.to_string(),
                    format_time(us(s.busy_ns)),
                    share,
                ]
            });
            let columns = Columns::with_name_column(labels.iter().map(String::as_str), 3);
            let title = format!(
                "Stream busy time (share of the GPU span, {})",
                format_time(us(self.gpu_span_ns))
            );
            section(
                &mut out,
                &title,
                &columns,
                &["Stream", "Events", "Busy", "Busy %"],
                rows,
            );
        }
        if self.iterations.is_empty() {
            out.push_str("\nGPU time per iteration: none, the trace marks no iterations ");
            out.push_str("(torch.profiler and cutrace mark them as ProfilerStep#<n> ranges)\n");
        } else {
            let rows: Vec<Vec<String>> = self
                .iterations
                .iter()
                .map(|i| {
                    vec![
                        i.number.to_string(),
                        relative_us(i.start_ns, self.base_time_ns),
                        relative_us(i.end_ns, self.base_time_ns),
                        format_time(us(i.duration_ns)),
                        format_time(us(i.gpu_ns)),
                        i.gpu_events.to_string(),
                        format_time(us(i.unlaunched_gpu_ns)),
                    ]
                })
                .collect();
            let headers = [
                "Iteration",
                "Start",
                "End",
                "Duration",
                "GPU time",
                "GPU events",
                "No launch",
            ];
            // Columns as torch lays them out, widened where an absolute time needs it.
            let widths = headers
                .iter()
                .enumerate()
                .map(|(c, header)| {
                    let widest = rows.iter().map(|r| r[c].len()).max().unwrap_or(0);
                    let base = if c == 0 { header.len() + 4 } else { 12 };
                    widest.max(base)
                })
                .collect();
            section(
                &mut out,
                ITERATIONS_TITLE,
                &Columns::with_widths(widths),
                &headers,
                rows.into_iter(),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use cutrace_tracer::model::{Iteration, Memset};

    use super::*;
    use crate::table::aggregate::tests::TraceBuilder;

    fn example() -> Trace {
        let mut b = TraceBuilder::default();
        b.api("cudaLaunchKernel", 1, 100, 110, 1)
            .api("cudaLaunchKernel", 1, 200, 210, 2)
            .api("cudaLaunchKernel", 1, 1500, 1510, 3)
            .kernel("gemm", 7, 1000, 1400, 1)
            .kernel("gemm", 7, 1400, 1500, 2)
            .kernel("gemm", 8, 1200, 1300, 3)
            .kernel("relu", 8, 1250, 1280, 0)
            .kernel("gemm", 7, 3000, 3100, 0);
        b.trace.memsets.push(Memset {
            start: 1600,
            end: 1700,
            stream: 7,
            ..Default::default()
        });
        b.trace.iterations = vec![
            Iteration {
                number: 1,
                start: 0,
                end: 1000,
            },
            Iteration {
                number: 2,
                start: 1000,
                end: 2000,
            },
        ];
        b.trace
    }

    #[test]
    fn kernel_durations_spread() {
        let stats = TraceStats::from_trace(&example());
        let gemm = &stats.kernels[0];
        assert_eq!(gemm.name, "gemm");
        assert_eq!(
            (gemm.calls, gemm.total_ns, gemm.min_ns, gemm.max_ns),
            (4, 700, 100, 400)
        );
        assert_eq!(gemm.median_ns, 100);
        let relu = &stats.kernels[1];
        assert_eq!((relu.calls, relu.median_ns), (1, 30));

        let mut b = TraceBuilder::default();
        b.kernel("k", 0, 0, 1, 0).kernel("k", 0, 0, 4, 0);
        assert_eq!(TraceStats::from_trace(&b.trace).kernels[0].median_ns, 2);
    }

    #[test]
    fn stream_busy_time_is_the_union_of_intervals() {
        let stats = TraceStats::from_trace(&example());
        assert_eq!(stats.gpu_span_ns, 3100 - 1000);
        let busy: Vec<_> = stats
            .streams
            .iter()
            .map(|s| (s.stream, s.events, s.busy_ns))
            .collect();
        // Stream 8: [1200, 1300) holds [1250, 1280).
        assert_eq!(busy, [(7, 4, 400 + 100 + 100 + 100), (8, 2, 100)]);
    }

    #[test]
    fn iterations_own_the_work_launched_in_them() {
        let stats = TraceStats::from_trace(&example());
        let times: Vec<_> = stats
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
        // Iteration 1 launched kernels 1 and 2; iteration 2 launched kernel 3, and
        // relu and the memset, whose launches the trace lacks, started in it: they
        // are counted apart. The last gemm ran after both.
        assert_eq!(times, [(1, 1000, 500, 2, 0), (2, 1000, 100, 1, 30 + 100)]);
    }

    #[test]
    fn work_goes_to_the_iteration_of_the_last_call_of_its_correlation() {
        let iterations: Vec<Iteration> = (0..3)
            .map(|k| Iteration {
                number: k,
                start: 1000 * k as i64,
                end: 1000 * (k as i64 + 1),
            })
            .collect();
        // Out of correlation order, correlation 7 launched twice (the later call
        // counts, as with a map filled in order), correlation 0 no launch at all.
        let launches = [(9, 2500), (7, 100), (0, 2900), (7, 1200), (3, 2100)];
        let of = IterationOf::with_launches(launches, &iterations);
        assert_eq!(of.of_work(50, 7), Some(InIteration::Launched(1)));
        assert_eq!(of.of_work(50, 9), Some(InIteration::Launched(2)));
        assert_eq!(of.of_work(50, 3), Some(InIteration::Launched(2)));
        assert_eq!(of.of_work(1500, 0), Some(InIteration::Unlaunched(1)));
        assert_eq!(of.of_work(2500, 4), Some(InIteration::Unlaunched(2)));
        assert_eq!(of.of_work(5000, 4), None);
    }

    #[test]
    fn text_has_one_table_per_figure() {
        let text = TraceStats::from_trace(&example()).text(Some(1));
        let expected = "
Kernel durations
--------  ------------  ------------  ------------  ------------  ------------  
    Name    # of Calls         Total           Min        Median           Max  
--------  ------------  ------------  ------------  ------------  ------------  
    gemm             4       0.700us       0.100us       0.100us       0.400us  
--------  ------------  ------------  ------------  ------------  ------------  

Stream busy time (share of the GPU span, 2.100us)
---------------------  ------------  ------------  ------------  
               Stream        Events          Busy        Busy %  
---------------------  ------------  ------------  ------------  
    device 0 stream 7             4       0.700us        33.33%  
    device 0 stream 8             2       0.100us         4.76%  
---------------------  ------------  ------------  ------------  

GPU time per iteration (GPU time: work launched in it; No launch: work that started in it whose launch the trace lacks; Start, End: us on the --from-us/--to-us scale)
-------------  ------------  ------------  ------------  ------------  ------------  ------------  
    Iteration         Start           End      Duration      GPU time    GPU events     No launch  
-------------  ------------  ------------  ------------  ------------  ------------  ------------  
            1         0.000         1.000       1.000us       0.500us             2       0.000us  
            2         1.000         2.000       1.000us       0.100us             1       0.130us  
-------------  ------------  ------------  ------------  ------------  ------------  ------------  
";
        assert_eq!(text, expected);
        assert_eq!(
            TraceStats::from_trace(&Trace::default()).text(None),
            "\nGPU time per iteration: none, the trace marks no iterations \
             (torch.profiler and cutrace mark them as ProfilerStep#<n> ranges)\n"
        );
    }

    #[test]
    fn iteration_times_count_from_the_base_and_widen_their_columns() {
        let mut trace = example();
        trace.base_time_ns = -1_712_195_495_519_695_800;
        let text = TraceStats::from_trace(&trace).text(None);
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with("1 "))
            .unwrap();
        assert!(
            line.contains(" 1712195495519695.800  1712195495519696.800  "),
            "{line}"
        );
        assert_eq!(relative_us(1_500, 0), "1.500");
        assert_eq!(relative_us(-1_500, 0), "-1.500");
        assert_eq!(relative_us(7, 8), "-0.001");
    }
}
