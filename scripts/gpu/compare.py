#!/usr/bin/env python3
"""Compares the traces of a GPU run and writes its dated record (scripts/gpu/check).

Usage: compare.py CUTRACE DOCS_DIR RUN_DIR... [--hta HTA_JSON]

RUN_DIR are folders `bundle/run` wrote (several when the run was split into
several commands; later folders win). CUTRACE is the `cutrace` executable used to
read the traces (`cutrace report --format json`). For the workload's window, as
recorded by cutrace (`cutrace.pt.trace.json.gz`, and `cutrace_nvtx...` when
present) and by torch.profiler (`torch.pt.trace.json.gz`), it checks:
- the same kernel names with the same call counts;
- each kernel's total GPU time within 5% of torch's;
- the same memcpy and memset names, counts and bytes.
It writes DOCS_DIR/gpu-validation-<date of the run>.md from figures.json, the
comparison and, with --hta, the HTA check's result (hta_trace.py's JSON), and exits
1 when a comparison fails. Every figure in the record comes from the run's files.
"""

import gzip
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

TOLERANCE = 0.05
TRACES = {
    "cutrace": "cutrace.pt.trace.json.gz",
    "cutrace_nvtx": "cutrace_nvtx.pt.trace.json.gz",
    "torch": "torch.pt.trace.json.gz",
}


def merge(into, new):
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = value


def report_rows(cutrace, trace):
    out = subprocess.run(
        [cutrace, "report", "--format", "json", "--row-limit", "-1", str(trace)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)


def copy_bytes(trace):
    """Per memcpy/memset name: (count, bytes), read from the trace's events."""
    with gzip.open(trace, "rt") as f:
        events = json.load(f)["traceEvents"]
    totals = defaultdict(lambda: [0, 0])
    for e in events:
        if e.get("cat") in ("gpu_memcpy", "gpu_memset") and e.get("ph") == "X":
            totals[e["name"]][0] += 1
            totals[e["name"]][1] += int(e.get("args", {}).get("bytes", 0))
    return {name: tuple(v) for name, v in totals.items()}


def compare(cutrace_rows, torch_rows, cutrace_copies, torch_copies):
    """Lines of a markdown table and the failures."""
    failures = []
    lines = [
        "| kernel | calls cutrace / torch | GPU µs cutrace / torch | difference |",
        "|---|---|---|---|",
    ]

    def kernels(rows):
        return {r["name"]: r for r in rows if r["kind"] == "kernel"}

    ours, theirs = kernels(cutrace_rows), kernels(torch_rows)
    for name in sorted(ours.keys() | theirs.keys(), key=lambda n: -theirs.get(n, ours.get(n))["self_cuda_us"]):
        a, b = ours.get(name), theirs.get(name)
        if a is None or b is None:
            failures.append(f"kernel only in {'torch' if a is None else 'cutrace'}: {name}")
            lines.append(f"| `{name}` | {a and a['calls']} / {b and b['calls']} | — | missing |")
            continue
        diff = (a["self_cuda_us"] - b["self_cuda_us"]) / b["self_cuda_us"] if b["self_cuda_us"] else 0.0
        ok = a["calls"] == b["calls"] and abs(diff) <= TOLERANCE
        if not ok:
            failures.append(
                f"kernel {name}: calls {a['calls']} / {b['calls']}, GPU µs {a['self_cuda_us']:.3f} / {b['self_cuda_us']:.3f}"
            )
        lines.append(
            f"| `{name}` | {a['calls']} / {b['calls']} | {a['self_cuda_us']:.3f} / {b['self_cuda_us']:.3f} | {diff:+.1%}{'' if ok else ' ✗'} |"
        )
    lines += ["", "| copy or memset | count cutrace / torch | bytes cutrace / torch |", "|---|---|---|"]
    for name in sorted(cutrace_copies.keys() | torch_copies.keys()):
        a, b = cutrace_copies.get(name, (0, 0)), torch_copies.get(name, (0, 0))
        if a != b:
            failures.append(f"{name}: count/bytes {a} / {b}")
        lines.append(f"| {name} | {a[0]} / {b[0]} | {a[1]} / {b[1]}{'' if a == b else ' ✗'} |")
    return lines, failures


def figure(figures, *path, unit=""):
    node = figures
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return "not measured"
        node = node[key]
    return f"{node:.3f}{unit}" if isinstance(node, float) else f"{node}{unit}"


def record(figures, sections, hta):
    date = figures.get("date", "unknown-date")
    versions = figures.get("versions", {})
    tests = figures.get("tests", {})
    lines = [
        f"# GPU validation, {date}",
        "",
        "Written by `scripts/gpu/check` from the files `scripts/gpu/run` returned; see",
        "`docs/gpu-check.md`. Every figure below was measured in that run.",
        "",
        f"- GPU: {', '.join(figures.get('gpus', [])) or 'unknown'}",
        f"- Driver (name, version, memory): {figures.get('driver', 'unknown')}",
        f"- PyTorch {versions.get('torch', '?')}, CUDA {versions.get('cuda', '?')}; libcupti: `{figures.get('libcupti', '?')}`",
        f"- Bundle commit: {figures.get('commit', 'unknown')}",
        "",
        "## Steps",
        "",
        "| step | status | seconds |",
        "|---|---|---|",
    ]
    for name, step in sorted(figures.get("steps", {}).items()):
        lines.append(f"| {name} | {step.get('status', '?')} | {step.get('seconds', '?')} |")
    lines += [
        "",
        "## Real-GPU tests",
        "",
        f"{tests.get('passed', 0)} passed, {tests.get('failed', 0)} failed, "
        f"{tests.get('ignored', 0)} ignored over {tests.get('binaries', 0)} test executables; "
        f"{tests.get('skipped', 0)} reported themselves skipped (counted as passed; see log.txt).",
        "",
        "## Workload (ms per iteration, measured iterations only)",
        "",
        "| untraced | cutrace (cudaProfilerApi) | cutrace (NVTX steps) | torch.profiler |",
        "|---|---|---|---|",
        "| " + " | ".join(figure(figures, "workload", k, "ms_per_iteration") for k in ("untraced", "cutrace", "cutrace_nvtx", "torch")) + " |",
        "",
        "## Launch overhead (µs per launch of a one-element kernel)",
        "",
        "| untraced | cutrace | torch.profiler |",
        "|---|---|---|",
        "| " + " | ".join(figure(figures, "overhead", k, "us_per_launch") for k in ("untraced", "cutrace", "torch")) + " |",
        "",
        "## Flush: launches in one window, seconds from stop until the trace file is complete",
        "",
        "| | launches | kernels in trace | launch s | stop → trace s |",
        "|---|---|---|---|---|",
    ]
    for tool in ("cutrace", "torch"):
        lines.append(
            f"| {tool} | {figure(figures, 'flush', tool, 'launches')} | {figure(figures, 'flush', tool, 'kernels_in_trace')} "
            f"| {figure(figures, 'flush', tool, 'launch_seconds')} | {figure(figures, 'flush', tool, 'stop_to_trace_seconds')} |"
        )
    for title, body in sections:
        lines += ["", f"## {title}", ""] + body
    lines += ["", "## HolisticTraceAnalysis on the cutrace trace", ""]
    if hta is None:
        lines.append("Not run.")
    else:
        lines.append(("passed" if hta["ok"] else "FAILED") + f": {hta['summary']}")
        lines += [f"- {p}" for p in hta.get("problems", [])]
    return date, "\n".join(lines) + "\n"


def main(argv):
    args = argv[1:]
    hta = None
    if "--hta" in args:
        i = args.index("--hta")
        hta = json.loads(Path(args[i + 1]).read_text())
        del args[i : i + 2]
    if len(args) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    cutrace, docs, runs = args[0], Path(args[1]), [Path(a) for a in args[2:]]
    figures = {}
    files = {}
    for run in runs:
        if (run / "figures.json").exists():
            merge(figures, json.loads((run / "figures.json").read_text()))
        for key, name in TRACES.items():
            if (run / name).exists():
                files[key] = run / name

    sections, failures = [], []
    if "torch" in files:
        torch_rows = report_rows(cutrace, files["torch"])
        torch_copies = copy_bytes(files["torch"])
        for key, title in (("cutrace", "cudaProfilerApi window"), ("cutrace_nvtx", "NVTX-step window")):
            if key not in files:
                failures.append(f"no {TRACES[key]}")
                continue
            lines, found = compare(report_rows(cutrace, files[key]), torch_rows, copy_bytes(files[key]), torch_copies)
            sections.append((f"cutrace ({title}) against torch.profiler, same workload", lines))
            failures += [f"{key}: {f}" for f in found]
    else:
        failures.append("no torch.pt.trace.json.gz: nothing to compare")
    if hta is not None and not hta["ok"]:
        failures.append("HTA check failed")
    if failures:
        sections.append(("Failures", [f"- {f}" for f in failures]))

    date, text = record(figures, sections, hta)
    docs.mkdir(parents=True, exist_ok=True)
    path = docs / f"gpu-validation-{date}.md"
    path.write_text(text)
    print(f"wrote {path}")
    for f in failures:
        print(f"check: {f}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
