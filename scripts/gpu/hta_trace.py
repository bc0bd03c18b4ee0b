#!/usr/bin/env python3
"""HolisticTraceAnalysis (HTA 0.5.0) on one trace cutrace wrote on a GPU.

Usage: hta_trace.py TRACE ROWS_JSON

ROWS_JSON is `cutrace report --format json --row-limit -1 TRACE`. The trace must
pass hta.utils.validate_trace.validate_trace_format(TRACE, "standard"), HTA must
load it (TraceAnalysis on a folder holding only it) and find one rank, and HTA's
GPU kernel breakdown (memory kernels included, nanosecond times kept) must name
the same kernels, copies and memsets as cutrace's table (and the syncs HTA lists),
with the same total times to 0.1%. Prints {"ok", "summary", "problems"} as JSON; exits 1 when not ok.
"""

import json
import logging
import math
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

sys.dont_write_bytecode = True  # keep scripts/ci free of __pycache__
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ci"))
from hta_check import kernel_totals  # noqa: E402  (the sample check's reading of HTA)

GPU_KINDS = ("kernel", "memcpy", "memset")
# HTA's breakdown also lists `cuda_sync` waits such as `Stream Wait Event`; cutrace's
# table keeps them as sync rows, their time in the CPU columns.
SYNC_KIND = "sync"


def check(trace, rows):
    from hta.utils.validate_trace import validate_trace_format

    problems = []
    ok, errors = validate_trace_format(str(trace), "standard")
    if not ok:
        problems.append(f"validate_trace_format: {errors}")
    os.environ["HTA_DISABLE_NS_ROUNDING"] = "1"
    with tempfile.TemporaryDirectory() as folder:
        shutil.copy(trace, folder)
        ranks, totals = kernel_totals(folder, include_last_step=True)
    if len(ranks) != 1:
        return problems + [f"HTA found ranks {ranks}, expected one"], 0
    hta = next(iter(totals.values()), {})
    ours = {r["name"]: r["self_cuda_us"] for r in rows if r["kind"] in GPU_KINDS}
    syncs = {r["name"]: r["self_cpu_us"] for r in rows if r["kind"] == SYNC_KIND}
    ours.update({name: us for name, us in syncs.items() if name in hta})
    for name in sorted(ours.keys() | hta.keys()):
        if name not in hta or name not in ours:
            problems.append(f"{name!r} only in {'cutrace' if name in ours else 'HTA'}")
        elif not math.isclose(hta[name], ours[name], rel_tol=1e-3, abs_tol=1e-3):
            problems.append(f"{name!r}: HTA {hta[name]:.3f} µs, cutrace {ours[name]:.3f} µs")
    return problems, len(hta)


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    logging.getLogger().setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    trace, rows = Path(argv[1]), json.loads(Path(argv[2]).read_text())
    try:
        problems, names = check(trace, rows)
    except Exception as e:  # HTA failing to load the trace is the finding
        problems, names = [f"HTA raised {type(e).__name__}: {e}"], 0
    result = {
        "ok": not problems,
        "summary": f"{trace.name}: validate_trace_format, load, {names} GPU event names compared with cutrace's table",
        "problems": problems,
    }
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
