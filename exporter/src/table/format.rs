//! Rows to text, character for character as torch's `_build_table`
//! (`torch/autograd/profiler_util.py`) prints them: users diff and grep
//! `profiler_out_<rank>.txt`, so the layout is a format, not a style.

use std::fmt::Write;

use super::aggregate::Row;

/// Widest name column torch prints (`max_name_column_width`).
const MAX_NAME_WIDTH: usize = 55;
/// Width of every column but the name.
const COLUMN_WIDTH: usize = 12;
/// Blanks after every cell.
const SPACING: usize = 2;

const NS_PER_US: f64 = 1000.0;

/// A time in microseconds in the largest unit that fits (`_format_time`).
pub fn format_time(us: f64) -> String {
    const US_IN_SECOND: f64 = 1000.0 * 1000.0;
    const US_IN_MS: f64 = 1000.0;
    if us >= US_IN_SECOND {
        format!("{:.3}s", us / US_IN_SECOND)
    } else if us >= US_IN_MS {
        format!("{:.3}ms", us / US_IN_MS)
    } else {
        format!("{us:.3}us")
    }
}

/// `part` as a percentage of `total`, `NaN` when the total is 0 (`_format_time_share`).
pub fn format_share(part_us: f64, total_us: f64) -> String {
    if total_us == 0.0 {
        "NaN".to_owned()
    } else {
        format!("{:.2}%", part_us * 100.0 / total_us)
    }
}

/// Nanoseconds as the float microseconds torch computes with.
pub fn us(ns: i64) -> f64 {
    ns as f64 / NS_PER_US
}

/// Right-aligned columns of fixed widths, each cell followed by two blanks.
pub struct Columns {
    widths: Vec<usize>,
}

impl Columns {
    /// A name column as wide as the longest name plus 4 (at most 55), then `others`
    /// columns of 12.
    pub fn with_name_column<'a>(names: impl IntoIterator<Item = &'a str>, others: usize) -> Self {
        let longest = names
            .into_iter()
            .map(|n| n.chars().count())
            .max()
            .unwrap_or(0);
        let mut widths = vec![(longest + 4).min(MAX_NAME_WIDTH)];
        widths.extend(std::iter::repeat_n(COLUMN_WIDTH, others));
        Columns { widths }
    }

    /// Columns of the given widths.
    pub(crate) fn with_widths(widths: Vec<usize>) -> Self {
        Columns { widths }
    }

    /// The `----  ----  ` line.
    pub fn separator(&self) -> String {
        let mut line = String::new();
        for &w in &self.widths {
            line.extend(std::iter::repeat_n('-', w));
            line.extend(std::iter::repeat_n(' ', SPACING));
        }
        line
    }

    /// One line of `cells`, each right-aligned to its column.
    pub fn line<S: AsRef<str>>(&self, cells: &[S]) -> String {
        let mut line = String::new();
        for (cell, &width) in cells.iter().zip(&self.widths) {
            // Writing to a String cannot fail.
            let _ = write!(
                line,
                "{:>width$}{:spacing$}",
                cell.as_ref(),
                "",
                spacing = SPACING
            );
        }
        line
    }
}

/// Appends a blank line, `title`, and a table of `rows` under `headers` in
/// torch's layout.
pub fn section(
    out: &mut String,
    title: &str,
    columns: &Columns,
    headers: &[&str],
    rows: impl Iterator<Item = Vec<String>>,
) {
    let separator = columns.separator();
    out.push('\n');
    out.push_str(title);
    out.push('\n');
    for line in [&separator, &columns.line(headers), &separator] {
        out.push_str(line);
        out.push('\n');
    }
    for row in rows {
        out.push_str(&columns.line(&row));
        out.push('\n');
    }
    out.push_str(&separator);
    out.push('\n');
}

/// A name cut as torch cuts it: 52 characters and `...` once it reaches 52.
pub fn truncate_name(name: &str) -> String {
    let keep = MAX_NAME_WIDTH - 3;
    if name.chars().count() >= keep {
        let mut cut: String = name.chars().take(keep).collect();
        cut.push_str("...");
        cut
    } else {
        name.to_owned()
    }
}

/// The table of `rows` (already sorted), printing the first `row_limit` of them
/// (all with `None`); empty when there are no rows, as torch's.
pub(crate) fn torch_table(rows: &[&Row], row_limit: Option<usize>) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let has_device_time = rows.iter().any(|r| r.self_cuda_ns > 0);
    let mut headers = vec![
        "Name",
        "Self CPU %",
        "Self CPU",
        "CPU total %",
        "CPU total",
        "CPU time avg",
    ];
    if has_device_time {
        headers.extend(["Self CUDA", "Self CUDA %", "CUDA total", "CUDA time avg"]);
    }
    headers.push("# of Calls");
    let columns =
        Columns::with_name_column(rows.iter().map(|r| r.name.as_str()), headers.len() - 1);

    let self_cpu_total = us(rows.iter().map(|r| r.self_cpu_ns).sum());
    let self_cuda_total = us(rows
        .iter()
        .filter(|r| r.kind.is_device())
        .map(|r| r.self_cuda_ns)
        .sum());

    let separator = columns.separator();
    let mut out = String::new();
    let mut push = |line: &str| {
        out.push_str(line);
        out.push('\n');
    };
    push(&separator);
    push(&columns.line(&headers));
    push(&separator);
    for row in rows.iter().take(row_limit.unwrap_or(usize::MAX)) {
        let calls = row.calls as f64;
        let mut cells = vec![
            truncate_name(&row.name),
            format_share(us(row.self_cpu_ns), self_cpu_total),
            format_time(us(row.self_cpu_ns)),
            format_share(us(row.cpu_total_ns), self_cpu_total),
            format_time(us(row.cpu_total_ns)),
            format_time(us(row.cpu_total_ns) / calls),
        ];
        if has_device_time {
            cells.extend([
                format_time(us(row.self_cuda_ns)),
                format_share(us(row.self_cuda_ns), self_cuda_total),
                format_time(us(row.cuda_total_ns)),
                format_time(us(row.cuda_total_ns) / calls),
            ]);
        }
        cells.push(row.calls.to_string());
        push(&columns.line(&cells));
    }
    push(&separator);
    push(&format!(
        "Self CPU time total: {}",
        format_time(self_cpu_total)
    ));
    if has_device_time {
        push(&format!(
            "Self CUDA time total: {}",
            format_time(self_cuda_total)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_take_the_largest_unit_that_fits() {
        let cases = [
            (0.0, "0.000us"),
            (0.0004, "0.000us"),
            (0.0005, "0.001us"),
            (999.999, "999.999us"),
            (999.9996, "1000.000us"),
            (1000.0, "1.000ms"),
            (1234.5678, "1.235ms"),
            (999_999.999, "1000.000ms"),
            (1_000_000.0, "1.000s"),
            (3_723_000_000.0, "3723.000s"),
        ];
        for (value, text) in cases {
            assert_eq!(format_time(value), text, "{value}");
        }
    }

    #[test]
    fn shares_are_percentages_or_nan() {
        assert_eq!(format_share(1.0, 3.0), "33.33%");
        assert_eq!(format_share(2.0, 3.0), "66.67%");
        assert_eq!(format_share(3.0, 3.0), "100.00%");
        assert_eq!(format_share(0.0, 0.0), "NaN");
        assert_eq!(format_share(12.0, 1.0), "1200.00%");
    }

    #[test]
    fn names_are_cut_at_52_characters() {
        let short = "a".repeat(51);
        assert_eq!(truncate_name(&short), short);
        assert_eq!(
            truncate_name(&"b".repeat(52)),
            format!("{}...", "b".repeat(52))
        );
        assert_eq!(
            truncate_name(&"c".repeat(80)),
            format!("{}...", "c".repeat(52))
        );
        // Characters, not bytes.
        let wide = "é".repeat(51);
        assert_eq!(truncate_name(&wide), wide);
        assert_eq!(truncate_name(&"é".repeat(53)).chars().count(), 55);
    }

    #[test]
    fn columns_pad_right_aligned_with_two_blanks() {
        let columns = Columns::with_name_column(["ab", "abcdef"], 2);
        assert_eq!(
            columns.separator(),
            "----------  ------------  ------------  "
        );
        assert_eq!(
            columns.line(&["Name", "x", "1.000ms"]),
            "      Name             x       1.000ms  "
        );
        // Too long a cell overflows rather than being cut.
        assert_eq!(columns.line(&["0123456789AB"]), "0123456789AB  ");
        let wide = Columns::with_name_column([&*"n".repeat(70)], 0);
        assert_eq!(wide.separator().len(), 55 + 2);
        let unicode = Columns::with_name_column(["ü"], 0);
        assert_eq!(unicode.line(&["ü"]), "    ü  ");
    }

    #[test]
    fn no_rows_print_nothing() {
        assert_eq!(torch_table(&[], None), "");
    }
}
