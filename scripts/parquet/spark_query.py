#!/usr/bin/env python3
"""Runs docs/parquet.md's SQL recipes with Spark (pyspark, local mode) on a folder
that `cutrace convert --to parquet` wrote, and prints their results.

Usage: spark_query.py PARQUET_DIR [REPORT_JSON]

With REPORT_JSON (what `cutrace report --format json` printed for the same
traces), also checks that the per-rank kernel totals and the stragglers equal the
report's, and exits non-zero when they do not.

Needs `pip install pyspark` and a Java runtime (17 for Spark 3.5).
"""

import json
import re
import sys
import time
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs" / "parquet.md"


def main():
    if len(sys.argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    from pyspark.sql import SparkSession

    sql = dict(re.findall(r"```sql\n-- ([\w-]+)\n(.*?)```", DOCS.read_text(), re.S))
    started = time.monotonic()
    spark = (
        SparkSession.builder.master("local[*]")
        .appName("cutrace parquet")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    spark.read.parquet(sys.argv[1]).createOrReplaceTempView("events")
    results = {}
    for name in ("kernels-by-rank", "key-averages", "stragglers"):
        frame = spark.sql(sql[name])
        results[name] = [row.asDict() for row in frame.collect()]
        print(f"-- {name}: {len(results[name])} rows")
        frame.show(8, truncate=40)
    print(f"Spark {spark.version}: {time.monotonic() - started:.1f} s from start to the last result")
    spark.stop()

    if len(sys.argv) == 2:
        return 0
    figures = json.loads(Path(sys.argv[2]).read_text())
    want = {
        (t["rank"], k["name"]): (k["calls"], k["total_ns"])
        for t in figures["traces"]
        for k in t["kernels"]
    }
    got = {(r["rank"], r["name"]): (r["calls"], r["total_ns"]) for r in results["kernels-by-rank"]}
    want_stragglers = [
        (i["number"], len(i["ranks"]), i["median_ns"], i["slowest"]["gpu_ns"], i["excess_ns"])
        for i in figures["iterations"]
    ]
    got_stragglers = [
        (r["iteration"], r["ranks"], int(r["median_ns"]), r["slowest_ns"], int(r["excess_ns"]))
        for r in results["stragglers"]
    ]
    failures = []
    if got != want:
        failures.append("kernels-by-rank differs from the report's kernels")
    if got_stragglers != want_stragglers:
        failures.append(f"stragglers {got_stragglers} != the report's {want_stragglers}")
    for f in failures:
        print(f"Spark check failed: {f}", file=sys.stderr)
    if not failures:
        print("Spark's kernel totals and stragglers equal cutrace report's")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
