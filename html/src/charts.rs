//! The page's charts, drawn here as SVG: the page shows them with scripts off, in
//! any browser, and a chart is plain markup a test can measure.
//!
//! Every chart is laid out on a fixed grid (`viewBox`) and scaled to the page's
//! width by the browser. The numbers a chart shows carry the `data-path` of the
//! figure in `cutrace report --format json` (see `page`).

use maud::{Markup, PreEscaped, html};

/// Width of every chart's grid.
const WIDTH: f64 = 960.0;
/// Room for a bar's label, left of the bars.
const LABEL_WIDTH: f64 = 390.0;
/// Room for a bar's value, right of the bars.
const VALUE_WIDTH: f64 = 190.0;
/// Height of one bar's row.
const ROW: f64 = 20.0;
/// Characters of a label shown; the whole label is the bar's tooltip.
const LABEL_CHARS: usize = 50;

/// One bar of a horizontal bar chart.
pub(crate) struct Bar {
    /// What it measures (a kernel name, a kind, a stream).
    pub(crate) label: String,
    /// Its length, in any unit shared by the chart's bars.
    pub(crate) value: i64,
    /// The value as shown right of the bar.
    pub(crate) shown: Markup,
    /// CSS class of the bar (its colour).
    pub(crate) class: &'static str,
}

/// `label` cut to what fits beside a bar.
fn shorten(label: &str) -> String {
    if label.chars().count() <= LABEL_CHARS {
        return label.to_owned();
    }
    let head: String = label.chars().take(LABEL_CHARS - 1).collect();
    head + "…"
}

/// A coordinate as SVG takes it: two decimals are finer than any screen.
fn at(x: f64) -> String {
    format!("{:.2}", x)
}

/// Horizontal bars, one row each, longest value filling the bar area.
pub(crate) fn bars(bars: &[Bar]) -> Markup {
    let height = ROW * bars.len() as f64 + 4.0;
    let longest = bars.iter().map(|b| b.value).max().unwrap_or(0).max(1) as f64;
    let area = WIDTH - LABEL_WIDTH - VALUE_WIDTH;
    html! {
        svg.chart.bars viewBox={"0 0 " (WIDTH) " " (height)} role="img" {
            @for (i, bar) in bars.iter().enumerate() {
                @let y = ROW * i as f64 + 2.0;
                @let length = (bar.value.max(0) as f64 / longest * area).max(1.0);
                g {
                    title { (bar.label) }
                    text.label x=(at(LABEL_WIDTH - 8.0)) y=(at(y + 14.0)) { (shorten(&bar.label)) }
                    rect class=(bar.class) x=(at(LABEL_WIDTH)) y=(at(y + 3.0)) width=(at(length))
                        height=(at(ROW - 6.0)) {}
                    text.value x=(at(LABEL_WIDTH + length + 6.0)) y=(at(y + 14.0)) { (bar.shown) }
                }
            }
        }
    }
}

/// One strip of a timeline: how busy something was in each bin of its span.
pub(crate) struct Strip<'a> {
    /// What it shows (a stream, a rank).
    pub(crate) label: String,
    /// Start of its first bin, ns.
    pub(crate) start_ns: i64,
    /// Width of each bin, ns.
    pub(crate) bin_ns: i64,
    /// Busy time in each bin, ns.
    pub(crate) busy_ns: &'a [i64],
    /// The `data-path` of `busy_ns` in the JSON report.
    pub(crate) path: String,
}

/// Shades of a timeline: a bin's busy share is rounded up to the next of these
/// steps, so that any work shows and a strip is a few paths, not a shape per bin.
const SHADES: i64 = 8;

/// The runs of equal shade in `busy_ns` (bins of `bin_ns`): (shade, first bin,
/// bins), idle runs left out.
fn shade_runs(busy_ns: &[i64], bin_ns: i64) -> Vec<(i64, usize, usize)> {
    let mut runs: Vec<(i64, usize, usize)> = Vec::new();
    for (bin, &busy) in busy_ns.iter().enumerate() {
        // Rounded up: a bin with any work in it is never blank.
        let shade = ((busy * SHADES + bin_ns - 1) / bin_ns.max(1)).min(SHADES);
        match runs.last_mut() {
            Some(last) if last.0 == shade && last.1 + last.2 == bin => last.2 += 1,
            _ if shade > 0 => runs.push((shade, bin, 1)),
            _ => {}
        }
    }
    runs
}

/// Strips on one time axis from `from_ns` to `to_ns`: a bin's shade is the share
/// of it that was busy; the grey behind the strip is idle time. Each strip's
/// element holds its bins' busy times in `data-value`, separated by spaces.
pub(crate) fn strips(strips: &[Strip], from_ns: i64, to_ns: i64) -> Markup {
    let height = ROW * strips.len() as f64 + 22.0;
    let left = 150.0;
    let area = WIDTH - left - 10.0;
    let span = (to_ns - from_ns).max(1) as f64;
    let x = |ns: i64| left + (ns - from_ns) as f64 / span * area;
    let bar = ROW - 4.0;
    html! {
        svg.chart.timeline viewBox={"0 0 " (WIDTH) " " (height)} role="img" {
            @for (i, strip) in strips.iter().enumerate() {
                @let y = ROW * i as f64 + 4.0;
                @let end = strip.start_ns + strip.bin_ns * strip.busy_ns.len() as i64;
                @let bins: Vec<String> = strip.busy_ns.iter().map(i64::to_string).collect();
                g data-path=(strip.path) data-value=(bins.join(" ")) {
                    text.label x=(at(left - 8.0)) y=(at(y + 12.0)) { (strip.label) }
                    rect.idle x=(at(x(strip.start_ns))) y=(at(y))
                        width=(at((x(end) - x(strip.start_ns)).max(1.0))) height=(at(bar)) {}
                    @let runs = shade_runs(strip.busy_ns, strip.bin_ns);
                    @for shade in 1..=SHADES {
                        @let d: String = runs.iter().filter(|r| r.0 == shade).map(|&(_, first, bins)| {
                            let from = x(strip.start_ns + strip.bin_ns * first as i64);
                            let to = x(strip.start_ns + strip.bin_ns * (first + bins) as i64);
                            format!("M{}h{}v{}h-{}z", at2(from, y), at(to - from), at(bar), at(to - from))
                        }).collect();
                        @if !d.is_empty() {
                            path.busy fill-opacity=(format!("{:.3}", shade as f64 / SHADES as f64)) d=(d) {}
                        }
                    }
                }
            }
            @let axis = ROW * strips.len() as f64 + 16.0;
            text.axis x=(at(left)) y=(at(axis)) { "0" }
            text.axis.end x=(at(left + area)) y=(at(axis)) {
                (crate::page::shown_time(to_ns - from_ns))
            }
        }
    }
}

/// A point as a path takes it.
fn at2(x: f64, y: f64) -> String {
    format!("{} {}", at(x), at(y))
}

/// Widest column of a column chart.
const MAX_COLUMN: f64 = 48.0;
/// Most columns whose values are written above them.
const VALUED_COLUMNS: usize = 16;

/// One column of a column chart.
pub(crate) struct Column {
    /// Its height, in any unit shared by the chart's columns.
    pub(crate) value: i64,
    /// Its tooltip.
    pub(crate) title: String,
    /// Whether it is the one to look at (the slowest).
    pub(crate) highlight: bool,
    /// The `data-path` of its value in the JSON report.
    pub(crate) path: String,
}

/// Groups of columns side by side (one group per iteration, one column per rank),
/// each group named below it; the tallest column fills the height.
pub(crate) fn columns(groups: &[(String, Vec<Column>)]) -> Markup {
    let height = 180.0;
    let (top, bottom, left) = (20.0, 22.0, 10.0);
    let count: usize = groups.iter().map(|(_, c)| c.len()).sum();
    let gaps = groups.len().saturating_sub(1) as f64;
    let area = WIDTH - 2.0 * left;
    // A gap between groups is as wide as two columns; a few columns stay narrow.
    let width = (area / (count as f64 + 2.0 * gaps).max(1.0)).min(MAX_COLUMN);
    // Values side by side would overlap: only lone columns are labelled.
    let values = count <= VALUED_COLUMNS && groups.iter().all(|(_, c)| c.len() == 1);
    let tallest = groups
        .iter()
        .flat_map(|(_, c)| c.iter().map(|c| c.value))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let mut x = left;
    let mut placed = Vec::with_capacity(groups.len());
    for (label, columns) in groups {
        placed.push((x, label, columns));
        x += width * (columns.len() as f64 + 2.0);
    }
    let label_every = (groups.len() / 24).max(1);
    html! {
        svg.chart.columns viewBox={"0 0 " (WIDTH) " " (height)} role="img" {
            @for (g, (x, label, columns)) in placed.into_iter().enumerate() {
                g {
                    @for (i, column) in columns.iter().enumerate() {
                        @let h = (column.value.max(0) as f64 / tallest * (height - top - bottom)).max(1.0);
                        rect class=(if column.highlight { "slowest" } else { "kernel" })
                            x=(at(x + width * i as f64)) y=(at(height - bottom - h))
                            width=(at((width * 0.9).max(0.5))) height=(at(h))
                            data-path=(column.path) data-value=(column.value) {
                            title { (column.title) }
                        }
                        @if values {
                            text.axis x=(at(x + width * i as f64)) y=(at(height - bottom - h - 3.0))
                                data-path=(column.path) data-value=(column.value) {
                                (crate::page::shown_time(column.value))
                            }
                        }
                    }
                    @if g % label_every == 0 {
                        text.axis x=(at(x)) y=(at(height - 6.0)) { (label) }
                    }
                }
            }
        }
    }
}

/// A legend entry: a swatch of `class`'s colour and its meaning.
pub(crate) fn swatch(class: &str, meaning: &str) -> Markup {
    html! {
        span.swatch {
            svg width="12" height="12" { rect class=(class) width="12" height="12" {} }
            (PreEscaped("&nbsp;")) (meaning)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_labels_are_cut_and_names_escaped() {
        let name = format!("void gemm<float, {}>(T&)", "x".repeat(80));
        let chart = bars(&[Bar {
            label: name.clone(),
            value: 10,
            shown: html! { "10" },
            class: "kernel",
        }])
        .into_string();
        // The whole name in the tooltip, escaped; a shortened one beside the bar.
        assert!(chart.contains("void gemm&lt;float, xxx"));
        assert!(chart.contains("(T&amp;)</title>"));
        assert!(chart.contains("…</text>"));
        assert!(!chart.contains("<float"));
    }

    #[test]
    fn strips_shade_busy_bins_and_skip_idle_ones() {
        let chart = strips(
            &[Strip {
                label: "stream 7".into(),
                start_ns: 0,
                bin_ns: 10,
                busy_ns: &[10, 10, 0, 5, 1],
                path: "traces.0.timeline.busy_ns".into(),
            }],
            0,
            50,
        )
        .into_string();
        assert!(chart.contains("data-value=\"10 10 0 5 1\""));
        // Two full bins are one run; half a bin is half the shade; a tenth, the
        // lightest shade rather than none.
        assert_eq!(chart.matches("<path").count(), 3);
        assert!(chart.contains("fill-opacity=\"1.000\""));
        assert!(chart.contains("fill-opacity=\"0.500\""));
        assert!(chart.contains("fill-opacity=\"0.125\""));
        assert_eq!(
            shade_runs(&[10, 10, 0, 5, 1], 10),
            [(8, 0, 2), (4, 3, 1), (1, 4, 1)]
        );
        assert!(shade_runs(&[0, 0], 0).is_empty());
    }

    #[test]
    fn the_tallest_column_fills_the_chart_and_the_slowest_stands_out() {
        let column = |value, highlight| Column {
            value,
            title: String::new(),
            highlight,
            path: "p".into(),
        };
        let chart = columns(&[
            ("1".into(), vec![column(50, false), column(100, true)]),
            ("2".into(), vec![column(0, false)]),
        ])
        .into_string();
        assert_eq!(chart.matches("class=\"slowest\"").count(), 1);
        // 180 high, 20 above and 22 below: the tallest is 138, half of it 69.
        assert!(chart.contains("height=\"138.00\""));
        assert!(chart.contains("height=\"69.00\""));
    }
}
