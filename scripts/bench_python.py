#!/usr/bin/env python3
"""What the Python API costs a host loop outside a window: ``step()`` and an
``annotate()`` enter/exit, each called 1,000,000 times, with the tracer
installed but off-window (started, in a delay that does not end) and with
tracing off (no CUPTI). A benchmark, not a test: it prints nanoseconds per call
(the median of --runs runs), next to an empty loop and a no-op method.

    CUTRACE_CUPTI_LIB=target/release/libcupti_test_double.so \\
        python3 scripts/bench_python.py --runs 5

With CUTRACE_CUPTI_LIB naming CUPTI (or its test double) the "traced" figures
are measured; each case runs in a process of its own, as the tracer is
process-global. Run it with the interpreter of a venv where cutrace is
installed.

Times vary with the machine's load; --instructions gives figures that do not:
each loop runs under valgrind's callgrind for N and 3N calls, and the
difference divided by 2N is the instructions one call costs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

CALLS = 1_000_000


def per_call_ns(loop, calls: int = CALLS) -> float:
    start = time.perf_counter_ns()
    loop(calls)
    return (time.perf_counter_ns() - start) / calls


def measure(case: str, only: str = "", calls: int = CALLS) -> dict:
    """One process's figures for ``case``, ``traced`` or ``untraced``: every
    loop, or the loop named ``only``, of ``calls`` calls."""
    import cutrace

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        profiler = cutrace.Profiler(
            output_dir=tempfile.mkdtemp(prefix="cutrace-bench-"), delay_iters=10**12
        )
    if (case == "traced") != profiler.traced:
        raise SystemExit(f"asked for {case}, but traced is {profiler.traced}")
    profiler.start()
    step = profiler.step
    forward = cutrace.annotate("forward")

    class Host:
        def nothing(self) -> None:
            pass

    host = Host()

    def empty(calls: int) -> None:
        for _ in range(calls):
            pass

    def method(calls: int) -> None:
        for _ in range(calls):
            host.nothing()

    def steps(calls: int) -> None:
        for _ in range(calls):
            step()

    def annotations(calls: int) -> None:
        for _ in range(calls):
            with forward:
                pass

    def fresh_annotations(calls: int) -> None:
        for _ in range(calls):
            with cutrace.annotate("forward"):
                pass

    loops = {
        "empty loop": empty,
        "no-op method": method,
        "step()": steps,
        "with annotate (one object)": annotations,
        'with cutrace.annotate("forward")': fresh_annotations,
    }
    figures = {name: per_call_ns(loop, calls) for name, loop in loops.items() if only in ("", name)}
    profiler.shutdown()
    return figures


LOOPS = [
    "empty loop",
    "no-op method",
    "step()",
    "with annotate (one object)",
    'with cutrace.annotate("forward")',
]


def instructions(case: str, env: dict, loop: str, calls: int) -> float:
    """Instructions per call of ``loop``, from callgrind runs of N and 3N calls."""
    totals = []
    for n in (calls, 3 * calls):
        out = tempfile.mktemp(prefix="cutrace-callgrind-")
        run = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                __file__,
                "--case",
                case,
                "--loop",
                loop,
                "--calls",
                str(n),
            ],
            env=dict(env, PYTHONHASHSEED="0"),
            capture_output=True,
            text=True,
            check=True,
        )
        os.unlink(out)
        line = next(text for text in run.stderr.splitlines() if "Collected" in text)
        totals.append(int(line.split()[-1]))
    return (totals[1] - totals[0]) / (2 * calls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--instructions", action="store_true")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--loop", default="", help=argparse.SUPPRESS)
    parser.add_argument("--calls", type=int, default=CALLS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(measure(args.case, args.loop, args.calls)))
        return
    cases = {"untraced": dict(os.environ, CUTRACE_CUPTI_LIB="/nonexistent/libcupti.so")}
    if os.environ.get("CUTRACE_CUPTI_LIB"):
        cases["traced"] = dict(os.environ)
    if args.instructions:
        for case, env in cases.items():
            print(f"{case}: instructions per call (callgrind, N=20,000 and 60,000 calls)")
            for loop in LOOPS:
                print(f"  {loop:34} {instructions(case, env, loop, 20_000):7.0f}")
        return
    for case, env in cases.items():
        runs = []
        for _ in range(args.runs):
            out = subprocess.run(
                [sys.executable, __file__, "--case", case],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            runs.append(json.loads(out.stdout))
        print(f"{case}: ns per call, median of {args.runs} runs of {CALLS:,} calls")
        for name in runs[0]:
            values = sorted(run[name] for run in runs)
            print(
                f"  {name:34} {statistics.median(values):7.1f}"
                f"   (min {values[0]:.1f}, max {values[-1]:.1f})"
            )


if __name__ == "__main__":
    main()
