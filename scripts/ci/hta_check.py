#!/usr/bin/env python3
"""Checks trace files written by cutrace with HolisticTraceAnalysis (HTA) 0.5.0,
and cutrace's report across ranks against HTA's figures.

Usage: hta_check.py SAMPLE_DIR EXPECTED_JSON
       hta_check.py report CUTRACE TRACE_DIR...

SAMPLE_DIR and EXPECTED_JSON are what
`cargo run -p cutrace-exporter --example write_sample -- SAMPLE_DIR` writes and
prints: two ranks of three ProfilerStep iterations, once with whole-microsecond
times (SAMPLE_DIR/us) and once with nanosecond times (SAMPLE_DIR/ns), and the
total GPU time of each kernel/memcpy/memset name per rank.

For every file, hta.utils.validate_trace.validate_trace_format(path, "standard")
must pass. Then HTA loads each directory (TraceAnalysis(trace_dir=...)) and must
find both ranks, and its GPU kernel breakdown must equal the writer's input:
- us: HTA's default nanosecond rounding leaves whole microseconds alone, so the
  totals must match exactly, both with every iteration and with HTA's default of
  leaving the last iteration out (which needs the CPU launch and the GPU event
  linked by their `correlation` args);
- ns: with HTA_DISABLE_NS_ROUNDING=1 (HTA otherwise rounds each event inwards to
  whole microseconds), the totals must match to floating-point precision.

`report` runs `CUTRACE report --format json TRACE_DIR` on each directory and
compares, rank by rank, its temporal breakdown and communication-computation
overlap with HTA's get_temporal_breakdown and get_comm_comp_overlap on the same
directory (every iteration included: include_last_profiler_step=True). A
directory whose name ends in `ns` holds nanosecond times: HTA reads it with
HTA_DISABLE_NS_ROUNDING=1, and times must match to floating-point precision;
elsewhere exactly. Overlap percentages must match HTA's, which rounds them to two
decimals.

Exits non-zero, listing every mismatch, when a check fails.
"""

import json
import logging
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path


def kernel_totals(trace_dir, include_last_step):
    """Per rank (str), per GPU event name, HTA's total duration in us."""
    from hta.trace_analysis import TraceAnalysis

    analyzer = TraceAnalysis(
        trace_dir=str(trace_dir), include_last_profiler_step=include_last_step
    )
    ranks = sorted(analyzer.t.traces.keys())
    _, kernels = analyzer.get_gpu_kernel_breakdown(
        visualize=False,
        duration_ratio=1.0,
        num_kernels=1_000_000,
        include_memory_kernels=True,
    )
    totals = {}
    for row in kernels.to_dict("records"):
        rank = str(int(row["rank"]))
        totals.setdefault(rank, {})[row["name"]] = float(row["sum (us)"])
    return ranks, totals


def compare(label, expected, got, exact, failures):
    if sorted(expected) != sorted(got):
        failures.append(f"{label}: ranks {sorted(got)} != expected {sorted(expected)}")
        return
    for rank, names in expected.items():
        if sorted(names) != sorted(got[rank]):
            failures.append(
                f"{label} rank {rank}: names {sorted(got[rank])} != {sorted(names)}"
            )
            continue
        for name, want in names.items():
            have = got[rank][name]
            ok = have == want if exact else math.isclose(have, want, rel_tol=1e-9, abs_tol=1e-6)
            if not ok:
                failures.append(f"{label} rank {rank} {name!r}: HTA {have} != {want}")


def hta_figures(trace_dir):
    """Per rank: HTA's (idle, compute, non-compute, kernel time) in us and overlap %."""
    from hta.trace_analysis import TraceAnalysis

    analyzer = TraceAnalysis(trace_dir=str(trace_dir), include_last_profiler_step=True)
    breakdown = analyzer.get_temporal_breakdown(visualize=False)
    overlap = analyzer.get_comm_comp_overlap(visualize=False)
    figures = {}
    for row in breakdown.to_dict("records"):
        figures[int(row["rank"])] = [
            float(row[key])
            for key in ("idle_time(us)", "compute_time(us)", "non_compute_time(us)", "kernel_time(us)")
        ]
    for row in overlap.to_dict("records"):
        figures[int(row["rank"])].append(float(row["comp_comm_overlap_pctg"]))
    return figures


def cutrace_figures(cutrace, trace_dir):
    """Per rank: the same figures from `cutrace report --format json`."""
    out = subprocess.run(
        [cutrace, "report", "--format", "json", str(trace_dir)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    figures = {}
    for trace in json.loads(out)["traces"]:
        b = trace["temporal_breakdown"]
        ratio = trace["comm_comp_overlap"]["ratio"]
        figures[trace["rank"]] = [
            b[key] / 1000
            for key in ("idle_ns", "compute_ns", "non_compute_ns", "kernel_time_ns")
        ] + [math.nan if ratio is None else round(100 * ratio, 2)]
    return figures


def check_report(cutrace, dirs):
    failures = []
    names = ("idle", "compute", "non-compute", "kernel time", "overlap %")
    for trace_dir in dirs:
        ns = Path(trace_dir).name.endswith("ns")
        os.environ["HTA_DISABLE_NS_ROUNDING"] = "1" if ns else "0"
        hta, ours = hta_figures(trace_dir), cutrace_figures(cutrace, trace_dir)
        if sorted(hta) != sorted(ours):
            failures.append(f"{trace_dir}: ranks {sorted(ours)} != HTA's {sorted(hta)}")
            continue
        for rank in sorted(hta):
            for name, want, have in zip(names, hta[rank], ours[rank]):
                same = (math.isnan(want) and math.isnan(have)) or (
                    math.isclose(have, want, rel_tol=1e-9, abs_tol=1e-6)
                    if ns
                    else have == want
                )
                if not same:
                    failures.append(f"{trace_dir} rank {rank} {name}: cutrace {have} != HTA {want}")
        print(f"{trace_dir}: {len(hta)} ranks, temporal breakdown and overlap equal HTA's")
    if failures:
        print("HTA report check failed:", file=sys.stderr)
        for f in failures:
            print(f"  {f}", file=sys.stderr)
        return 1
    return 0


def main():
    logging.getLogger().setLevel(logging.ERROR)
    # HTA 0.5.0 on pandas 2.x warns about its own dtype handling at every load.
    warnings.filterwarnings("ignore")
    if len(sys.argv) >= 4 and sys.argv[1] == "report":
        return check_report(sys.argv[2], sys.argv[3:])
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    sample_dir = Path(sys.argv[1])
    expected = json.loads(Path(sys.argv[2]).read_text())

    from hta.utils.validate_trace import validate_trace_format

    failures = []
    files = sorted(sample_dir.glob("*/*.pt.trace.json.gz"))
    if len(files) != 4:
        failures.append(f"expected 4 trace files under {sample_dir}, found {len(files)}")
    for path in files:
        ok, errors = validate_trace_format(str(path), "standard")
        if not ok:
            failures.append(f"validate_trace_format({path}): {errors}")

    for subset, exact in (("us", True), ("ns", False)):
        if subset == "ns":
            os.environ["HTA_DISABLE_NS_ROUNDING"] = "1"
        for key, include_last in (("all", True), ("before_last", False)):
            ranks, got = kernel_totals(sample_dir / subset, include_last)
            if ranks != [0, 1]:
                failures.append(f"{subset}: HTA found ranks {ranks}, expected [0, 1]")
            compare(f"{subset}/{key}", expected[subset][key], got, exact, failures)

    if failures:
        print("HTA check failed:", file=sys.stderr)
        for f in failures:
            print(f"  {f}", file=sys.stderr)
        return 1
    print(f"HTA check passed: {len(files)} files validated, kernel times match")
    return 0


if __name__ == "__main__":
    sys.exit(main())
