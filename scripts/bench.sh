#!/usr/bin/env bash
# The CPU-side benchmarks behind docs/benchmarks.md: record decoding, trace
# writing (against pigz on the same JSON, and as Parquet), `cutrace report` on real
# traces and across 64 ranks, `cutrace report --html`, and `cutrace convert --to
# parquet`.
# Usage: scripts/bench.sh [RUNS]   (needs pigz for the comparison)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo build --release --quiet -p cutrace -p cutrace-tracer -p cutrace-exporter -p cutrace-analysis -p cutrace-html \
  --features parquet --examples --bins
bin=target/release

echo "# $(date -u +%F) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"

echo "## decode (one core)"
for _ in $(seq "$runs"); do "$bin/examples/decode_bench" | grep 'records/s'; done

echo "## write 1,000,000 launches (gzip JSON, then Parquet)"
for _ in $(seq "$runs"); do
  "$bin/examples/export_bench" --launches 1000000 --out "$work/w.json.gz" --parquet "$work/w.parquet"
done
if command -v pigz >/dev/null; then
  "$bin/examples/export_bench" --launches 1000000 --out "$work/w.json.gz" --dump-json "$work/w.json" >/dev/null
  for _ in $(seq "$runs"); do
    /usr/bin/time -f "pigz -1 -p 2 on the same JSON: %e s wall" pigz -1 -p 2 -c "$work/w.json" 2>&1 >/dev/null
  done
  rm -f "$work/w.json"
fi

echo "## cutrace report"
# The three large traces are optional (tests/data/kineto/README.md says where they
# come from); a missing one is left out.
large=${CUTRACE_TEST_TRACES:-../shared/traces/kineto}
for f in "$large"/{trace_diff_control,negative_queue_rank0,ns_resolution.pt.trace}.json.gz \
  tests/data/kineto/nccl_data.json.gz; do
  [ -f "$f" ] || continue
  for _ in $(seq "$runs"); do
    /usr/bin/time -f "$(basename "$f"): %e s wall, %M KiB peak" "$bin/cutrace" report "$f" 2>&1 >/dev/null
  done
done

echo "## cutrace report beside gzip -dc of the same file, 10,000 to 1,000,000 launches"
for n in 10000 100000 1000000; do
  "$bin/examples/export_bench" --launches "$n" --out "$work/r$n.json.gz" >/dev/null
  for _ in $(seq "$runs"); do
    /usr/bin/time -f "$n launches, gzip -dc: %e s wall, %U s user, %S s sys" gzip -dc "$work/r$n.json.gz" 2>&1 >/dev/null
    /usr/bin/time -f "$n launches, report: %e s wall, %U s user, %S s sys, %M KiB peak" \
      "$bin/cutrace" report "$work/r$n.json.gz" 2>&1 >/dev/null
  done
done

echo "## cutrace report across 64 ranks of 100,000 events each"
"$bin/examples/write_ranks" --ranks 64 --events 100000 "$work/ranks" >/dev/null
du -sh "$work/ranks"
for _ in $(seq "$runs"); do
  /usr/bin/time -f "report of 64 traces: %e s wall, %U s user, %S s sys, %M KiB peak" "$bin/cutrace" report "$work/ranks" 2>&1 >/dev/null
done

echo "## cutrace report --html"
# The time after reading (figures, table, page, writing it) and the page's size.
"$bin/examples/html_bench" --runs "$runs" --out "$work/w.html" "$work/w.json.gz"
for _ in $(seq "$runs"); do
  /usr/bin/time -f "page of 1,000,000 launches: %e s wall, %U s user, %S s sys, %M KiB peak" "$bin/cutrace" report --html "$work/w.html" "$work/w.json.gz" 2>&1
  /usr/bin/time -f "page of 64 traces: %e s wall, %U s user, %S s sys, %M KiB peak" "$bin/cutrace" report --html "$work/r.html" "$work/ranks" 2>&1
done
du -b "$work/w.html" "$work/r.html"

echo "## cutrace convert --to parquet"
for _ in $(seq "$runs"); do
  rm -rf "$work/p"
  /usr/bin/time -f "1,000,000 launches: %e s wall, %U s user, %M KiB peak" "$bin/cutrace" convert --to parquet -o "$work/p" "$work/w.json.gz" 2>&1 >/dev/null
done
du -b "$work/w.json.gz" "$work"/p/*/*.parquet
for _ in $(seq "$runs"); do
  rm -rf "$work/p"
  /usr/bin/time -f "64 traces: %e s wall, %U s user, %M KiB peak" "$bin/cutrace" convert --to parquet -o "$work/p" "$work/ranks" 2>&1 >/dev/null
done
