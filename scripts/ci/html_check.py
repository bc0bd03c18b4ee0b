#!/usr/bin/env python3
"""Opens the pages of `cutrace report --html` in headless Chromium, as a user would.

Usage: html_check.py CUTRACE CHROMIUM OUT_DIR NAME=TRACE[,TRACE...]...

For each NAME=TRACES case, writes OUT_DIR/NAME.html with `CUTRACE report --html`
and checks, in Chromium:

- the page loads with no console message and no script error, and asks for
  nothing outside itself (no src or href to fetch);
- every chart is drawn: each `svg.chart` has a non-zero size on screen, and the
  charts hold drawn bars;
- the page's script works: clicking a heading of the key-averages table sorts its
  rows by that column, and typing in the filter hides the rows whose name lacks it;
- every number shown is the JSON report's: each element with a `data-path` holds
  in `data-value` exactly the figure at that path of `CUTRACE report --format json`
  (over the case's traces, as one directory for a single trace) or, for
  `rows.<trace>.<row>.<field>`, of `--format json --row-limit 1000` on that trace,
  and its text is that figure rounded as shown; the header, the kinds, kernels,
  streams, timeline, iterations and the table are among them; the one sum the
  page makes (`data-sum`, the kernels a chart leaves out) is the JSON's sum;
- and saves a screenshot of the page as OUT_DIR/NAME.png.

Exits non-zero, listing every failure, when a check fails.
"""

import json
import re
import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path

ROWS = 1000
VOID = {
    "meta",
    "input",
    "br",
    "img",
    "link",
    "hr",
    "source",
    "wbr",
    "area",
    "col",
    "embed",
    "param",
    "track",
}

# Runs before the page's own script: every error and console message is kept.
PROBE_HEAD = """<script>
window.__probe = {errors: []};
window.addEventListener("error", (e) => window.__probe.errors.push(String(e.message)));
for (const level of ["error", "warn", "log", "info"]) {
  const original = console[level];
  console[level] = (...args) => {
    window.__probe.errors.push(level + ": " + args.join(" "));
    original(...args);
  };
}
</script>"""

# Runs after it: measures the charts, then uses the table as a user would.
PROBE_TAIL = """<script>
(() => {
  const p = window.__probe;
  p.charts = Array.from(document.querySelectorAll("svg.chart")).map((svg) => {
    const box = svg.getBoundingClientRect();
    const drawn = Array.from(svg.querySelectorAll("rect, path")).filter((r) => {
      const b = r.getBoundingClientRect();
      return b.width > 0 && b.height > 0;
    }).length;
    return {cls: svg.getAttribute("class"), width: box.width, height: box.height, drawn};
  });
  const table = document.querySelector("table.averages");
  if (table) {
    const heading = Array.from(table.tHead.rows[0].cells)
      .find((th) => th.textContent.trim() === "Self CPU");
    const column = heading.cellIndex;
    const values = () => Array.from(table.tBodies[0].rows)
      .map((r) => Number(r.cells[column].dataset.value));
    heading.click();
    p.descending = values();
    heading.click();
    p.ascending = values();
    const filter = document.querySelector("input.filter");
    filter.value = "aten::";
    filter.dispatchEvent(new Event("input"));
    p.shown = Array.from(table.tBodies[0].rows)
      .filter((r) => getComputedStyle(r).display !== "none")
      .map((r) => r.cells[0].textContent);
    p.rows = table.tBodies[0].rows.length;
  }
  document.body.setAttribute("data-probe", JSON.stringify(p));
})();
</script>"""


class Marked(HTMLParser):
    """Every element with a data-path: its attributes and its text; and the
    probe's results."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack = []
        self.marked = []
        self.probe = None
        # A tooltip's text is not what the element shows.
        self.in_title = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.in_title += tag == "title"
        if "data-probe" in attrs:
            self.probe = json.loads(attrs["data-probe"])
        if tag in VOID:
            return
        entry = None
        if "data-path" in attrs or "data-sum" in attrs:
            entry = {"attrs": attrs, "text": ""}
            self.marked.append(entry)
        self.stack.append(entry)

    def handle_endtag(self, tag):
        self.in_title -= tag == "title"
        if tag not in VOID and self.stack:
            self.stack.pop()

    def handle_data(self, data):
        if self.in_title:
            return
        for entry in self.stack:
            if entry is not None:
                entry["text"] += data


def lookup(path, figures, rows):
    parts = path.split(".")
    value = rows if parts[0] == "rows" else figures
    for part in parts[1:] if parts[0] == "rows" else parts:
        if part == "length":
            return len(value)
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


UNITS = {"s": 1e6, "ms": 1e3, "us": 1.0}


def shown_matches(path, text, value):
    """Whether `text` is `value` as the page rounds it."""
    text = " ".join(text.split())
    if m := re.fullmatch(r"(-?\d+\.\d{3})(s|ms|us)", text):
        us = value / 1000 if path.endswith("_ns") else value
        return abs(float(m[1]) * UNITS[m[2]] - us) <= 0.0005 * UNITS[m[2]] * 1.0001
    if m := re.fullmatch(r"(-?\d+\.\d)%", text):
        return abs(float(m[1]) - value * 100) <= 0.05 + 1e-9
    if re.fullmatch(r"-?\d+", text):
        return int(text) == value
    if re.fullmatch(r"-?\d+\.\d", text):
        return abs(float(text) - value) <= 0.05 + 1e-9
    return text == value


def check_marks(marked, figures, rows, failures):
    for entry in marked:
        if "data-sum" in entry["attrs"]:
            check_sum(entry, figures, failures)
            continue
        path, text = entry["attrs"]["data-path"], entry["text"]
        try:
            value = lookup(path, figures, rows)
        except (KeyError, IndexError, ValueError, TypeError):
            failures.append(f"{path}: no such figure in the JSON report")
            continue
        if isinstance(value, list):
            # A timeline: its bins, drawn as shades, are the figure's.
            if entry["attrs"].get("data-value", "").split() != [str(v) for v in value]:
                failures.append(f"{path}: the bins drawn are not the JSON's")
            continue
        shown = entry["attrs"].get("data-value")
        if shown is not None and not isinstance(value, str) and float(shown) != float(value):
            failures.append(f"{path}: data-value {shown}, the JSON has {value}")
        if text.strip() and not shown_matches(path, text, value):
            failures.append(f"{path}: shows {text.strip()!r}, the JSON has {value!r}")


def check_sum(entry, figures, failures):
    """A sum of the kernels a chart leaves out: the JSON's, from `data-from` on."""
    attrs = entry["attrs"]
    rest = lookup(attrs["data-sum"], figures, [])[int(attrs["data-from"]) :]
    total = sum(k["total_ns"] for k in rest)
    if int(attrs["data-value"]) != total:
        failures.append(f"{attrs['data-sum']}: sum {attrs['data-value']}, the JSON's is {total}")
    if not shown_matches("_ns", entry["text"], total):
        failures.append(
            f"{attrs['data-sum']}: sum shown as {entry['text']!r}, the JSON's is {total}"
        )


def run(*args):
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(map(str, args))} failed: {done.stderr.strip()}")
    return done


def check_case(cutrace, chromium, out, name, traces):
    failures = []
    page = out / f"{name}.html"
    run(cutrace, "report", "--html", page, *traces)
    html = page.read_text()
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        if len(traces) == 1:
            # One trace alone prints its rows; a directory of it, its figures.
            (work / "one").mkdir()
            shutil.copy(traces[0], work / "one" / Path(traces[0]).name)
            figures = json.loads(run(cutrace, "report", "--format", "json", work / "one").stdout)
        else:
            figures = json.loads(run(cutrace, "report", "--format", "json", *traces).stdout)
        rows = [
            json.loads(
                run(cutrace, "report", "--format", "json", "--row-limit", str(ROWS), t).stdout
            )
            for t in traces
        ]
        probe = work / "probe.html"
        probe.write_text(
            html.replace("<head>", "<head>" + PROBE_HEAD, 1).replace(
                "</body>", PROBE_TAIL + "</body>", 1
            )
        )
        flags = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1280,2400",
        ]
        dumped = run(
            chromium,
            *flags,
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
            "--dump-dom",
            probe.as_uri(),
        )
    shot = out / f"{name}.png"
    run(chromium, *flags, f"--screenshot={shot}", page.as_uri())
    if not shot.is_file() or shot.stat().st_size == 0:
        failures.append("no screenshot was saved")

    for line in dumped.stderr.splitlines():
        if "CONSOLE" in line:
            failures.append(f"console: {line.strip()}")
    if re.search(r"""\b(src|href)\s*=""", html):
        failures.append("the page asks for something outside itself (src or href)")
    parser = Marked()
    parser.feed(dumped.stdout)
    probe = parser.probe
    if probe is None:
        return [*failures, "the probe did not run: the page's scripts stopped it"]
    failures += [f"script error: {e}" for e in probe["errors"]]

    charts = probe["charts"]
    for chart in charts:
        if chart["width"] <= 0 or chart["height"] <= 0 or chart["drawn"] == 0:
            failures.append(f"chart {chart['cls']} is not drawn: {chart}")
    wanted = 5 * len(traces) + (2 if len(traces) > 1 else 0)
    if len(charts) < wanted:
        failures.append(f"{len(charts)} charts, {wanted} expected")

    check_marks(parser.marked, figures, rows, failures)
    paths = {m["attrs"].get("data-path") for m in parser.marked}
    for i, trace in enumerate(figures["traces"]):
        must = [
            "recording.events",
            "recording.dropped_records",
            "gpu_time.span_ns",
            "gpu_time.busy_ns",
            "kinds.kernel_ns",
            "kernels.0.total_ns",
            "streams.0.busy_ns",
            "timeline.busy_ns",
        ]
        if trace["iterations"]:
            must.append(f"iterations.{len(trace['iterations']) - 1}.gpu_ns")
        if trace["graphs"]:
            must.append("graphs.0.total_ns")
        missing = [f"traces.{i}.{m}" for m in must if f"traces.{i}.{m}" not in paths]
        last = len(rows[i]) - 1
        missing += [
            p
            for p in (f"rows.{i}.0.self_cuda_us", f"rows.{i}.{last}.cpu_total_us")
            if p not in paths
        ]
        if len(traces) > 1:
            missing += [
                p
                for p in (
                    "iterations.0.median_ns",
                    "kernel_spread.0.spread_ns",
                    f"traces.{i}.temporal_breakdown.idle_ns",
                )
                if p not in paths
            ]
        failures += [f"{p}: not shown" for p in missing]

    if "descending" in probe:
        if probe["descending"] != sorted(probe["descending"], reverse=True):
            failures.append("clicking Self CPU did not sort the table, most first")
        if probe["ascending"] != sorted(probe["ascending"]):
            failures.append("clicking Self CPU again did not sort the table, least first")
        if probe["rows"] != len(rows[0]):
            failures.append(f"the table has {probe['rows']} rows, the JSON {len(rows[0])}")
        expected = sum("aten::" in r["name"] for r in rows[0])
        if len(probe["shown"]) != expected or not all("aten::" in n for n in probe["shown"]):
            failures.append(
                f"the filter shows {len(probe['shown'])} rows, {expected} have aten:: in their name"
            )
    else:
        failures.append("the page has no key-averages table")
    size = page.stat().st_size
    print(
        f"{name}: {size} bytes, {len(charts)} charts, {len(parser.marked)} figures checked, "
        f"{len(failures)} failures; screenshot {shot}"
    )
    return failures


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    cutrace, chromium, out = sys.argv[1], sys.argv[2], Path(sys.argv[3]).resolve()
    out.mkdir(parents=True, exist_ok=True)
    failures = []
    for case in sys.argv[4:]:
        name, _, traces = case.partition("=")
        failures += [
            f"{name}: {f}" for f in check_case(cutrace, chromium, out, name, traces.split(","))
        ]
    for failure in failures:
        print(failure, file=sys.stderr)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
