#!/usr/bin/env python3
"""Checks `cutrace convert --to parquet` with DuckDB, an independent reader.

Usage: parquet_check.py CUTRACE WORK_DIR TRACE_DIR...

For each TRACE_DIR (a folder of traces of distinct ranks), converts it into
WORK_DIR/<name>.parquet and runs, with DuckDB, the SQL recipes of docs/parquet.md
exactly as written there (each ```sql block whose first line is `-- <recipe>`) over
a view `events` of that folder. Then checks their results against cutrace report:

- kernels-by-rank: each rank's kernels (calls, total ns) equal the `kernels` of its
  trace in `cutrace report --format json TRACE_DIR`;
- key-averages: each rank's GPU rows (kind, name, calls, self CUDA time) equal the
  kernel/memcpy/memset/graph rows of `cutrace report --format json --row-limit -1`
  on its trace file, to the nanosecond;
- stragglers: per iteration, the number of ranks, the median, the slowest rank's
  time and its excess equal the report's `iterations`.

Exits non-zero, listing every mismatch, when a check fails.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs" / "parquet.md"
GPU_KINDS = ("kernel", "memcpy", "memset", "graph")


def recipes():
    """The SQL recipes of docs/parquet.md by name."""
    text = DOCS.read_text()
    return {
        m.group(1): m.group(2)
        for m in re.finditer(r"```sql\n-- ([\w-]+)\n(.*?)```", text, re.S)
    }


def cutrace_json(cutrace, *args):
    out = subprocess.run(
        [cutrace, "report", "--format", "json", *map(str, args)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)


def check(cutrace, work, trace_dir, sql, failures):
    import duckdb

    label = Path(trace_dir).name
    out = Path(work) / f"{label}.parquet"
    subprocess.run(
        [cutrace, "convert", "--to", "parquet", "-o", str(out), str(trace_dir)],
        check=True,
        capture_output=True,
    )
    db = duckdb.connect()
    db.execute(
        f"CREATE VIEW events AS SELECT * FROM read_parquet('{out}/*/*.parquet', hive_partitioning = true)"
    )
    figures = cutrace_json(cutrace, trace_dir)
    traces = {t["rank"]: t for t in figures["traces"]}

    got = {}
    for rank, name, calls, total in db.sql(sql["kernels-by-rank"]).fetchall():
        got.setdefault(rank, {})[name] = (calls, total)
    want = {
        rank: {k["name"]: (k["calls"], k["total_ns"]) for k in t["kernels"]}
        for rank, t in traces.items()
    }
    if got != want:
        failures.append(f"{label}: kernels-by-rank differs from cutrace report's kernels")

    got = {}
    for rank, kind, name, calls, self_ns, _pct, _avg in db.sql(sql["key-averages"]).fetchall():
        got.setdefault(rank, set()).add((kind, name, calls, self_ns))
    for rank, trace in traces.items():
        rows = cutrace_json(cutrace, "--row-limit", "-1", trace["file"])
        want = {
            (r["kind"], r["name"], r["calls"], round(r["self_cuda_us"] * 1000))
            for r in rows
            if r["kind"] in GPU_KINDS
        }
        if got.get(rank, set()) != want:
            failures.append(f"{label} rank {rank}: key-averages differ from the table's GPU rows")

    got = [
        (iteration, ranks, int(median), slowest_ns, int(excess))
        for iteration, ranks, median, _slowest_rank, slowest_ns, excess in db.sql(
            sql["stragglers"]
        ).fetchall()
    ]
    want = [
        (i["number"], len(i["ranks"]), i["median_ns"], i["slowest"]["gpu_ns"], i["excess_ns"])
        for i in figures["iterations"]
    ]
    if got != want:
        failures.append(f"{label}: stragglers {got} != cutrace report's {want}")
    rows = db.sql("SELECT count(*) FROM events").fetchone()[0]
    print(f"{label}: {len(traces)} ranks, {rows} rows; DuckDB's recipes equal cutrace report's figures")


def main():
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    cutrace, work, dirs = sys.argv[1], sys.argv[2], sys.argv[3:]
    sql = recipes()
    missing = {"kernels-by-rank", "key-averages", "stragglers"} - sql.keys()
    if missing:
        print(f"docs/parquet.md lacks the recipes {sorted(missing)}", file=sys.stderr)
        return 1
    failures = []
    for trace_dir in dirs:
        check(cutrace, work, trace_dir, sql, failures)
    if failures:
        print("Parquet check failed:", file=sys.stderr)
        for f in failures:
            print(f"  {f}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
