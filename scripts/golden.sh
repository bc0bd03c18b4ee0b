#!/usr/bin/env bash
# Records the exact outputs of `cutrace report` and `cutrace convert` on every real
# trace (tests/data/kineto/, the shared large ones) and on the synthetic benchmark
# traces, so that a change to the reader or the writer can be checked to give the
# same bytes as before.
#
# Usage: scripts/golden.sh DIR            record into DIR (made anew)
#        scripts/golden.sh --check DIR    record afresh and compare with DIR
#
# Record DIR from the commit to compare against, then run --check after each
# change; any difference is printed and the exit status is 1. Each output is kept
# as stdout, stderr and exit status; a converted trace is kept as the SHA-256 of
# its decompressed JSON, and convert's summary without the compressed size (the
# gzip framing may change, the JSON may not).
set -euo pipefail
cd "$(dirname "$0")/.."

check=
if [ "${1:-}" = --check ]; then
  check=1
  shift
fi
[ $# -eq 1 ] || { echo "usage: scripts/golden.sh [--check] DIR" >&2; exit 2; }
target=$1
if [ -n "$check" ]; then
  [ -d "$target" ] || { echo "scripts/golden.sh: $target: no recorded outputs to compare with" >&2; exit 2; }
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
else
  rm -rf "$target"
  mkdir -p "$target"
  out=$target
fi

# GOLDEN_BIN names a directory holding another build's cutrace, export_bench and
# write_ranks (a build of the commit to compare against); by default this
# checkout's release build is made and used.
if [ -n "${GOLDEN_BIN:-}" ]; then
  bin=$GOLDEN_BIN
else
  cargo build --release --quiet -p cutrace -p cutrace-exporter -p cutrace-analysis --examples --bins
  bin=target/release/examples
fi
cutrace=${GOLDEN_BIN:-target/release}/cutrace

# The synthetic traces are written by this build; they live at one fixed place so
# that the paths in the outputs do not change between runs.
inputs=target/golden-inputs
rm -rf "$inputs"
mkdir -p "$inputs/ranks"
for n in 10000 100000 1000000; do
  "$bin/export_bench" --launches "$n" --out "$inputs/bench_$n.pt.trace.json.gz" >/dev/null
done
"$bin/write_ranks" --ranks 64 --events 100000 "$inputs/ranks" >/dev/null

large=${CUTRACE_TEST_TRACES:-../shared/traces/kineto}
traces=(tests/data/kineto/*.json.gz)
[ -d "$large" ] && traces+=("$large"/*.json.gz)
traces+=("$inputs"/bench_*.pt.trace.json.gz)
dirs=(tests/data/kineto "$inputs/ranks")
[ -d "$large" ] && dirs+=("$large")

# Runs `cutrace ARGS...`, keeping its stdout, stderr and exit status under NAME.
record() {
  local name=$1
  shift
  local rc=0
  "$cutrace" "$@" >"$out/$name.out" 2>"$out/$name.err" || rc=$?
  echo "$rc" >"$out/$name.rc"
}

for trace in "${traces[@]}"; do
  name=$(echo "$trace" | tr '/' '_')
  record "$name.report" report "$trace"
  record "$name.json" report --format json "$trace"
  record "$name.cpu5" report --sort cpu_time_total --row-limit 5 "$trace"
  record "$name.count-all" report --sort count --row-limit -1 "$trace"
  record "$name.json-selfcpu3" report --format json --sort self_cpu_time_total --row-limit 3 "$trace"
  # One fixed output path: the trace's name is its path.
  converted=$inputs/converted.pt.trace.json.gz
  record "$name.convert" convert "$trace" -o "$converted"
  # The compressed size in the summary follows the gzip framing: only the JSON counts.
  sed -i -E 's/ events, [0-9]+ bytes$/ events/' "$out/$name.convert.out"
  if [ -s "$converted" ]; then
    gzip -t "$converted"
    gzip -dc "$converted" | sha256sum >"$out/$name.convert.sha256"
  fi
  rm -f "$converted"
done
for dir in "${dirs[@]}"; do
  name=$(echo "$dir" | tr '/' '_')
  record "$name.ranks" report "$dir"
  record "$name.ranks-json" report --format json "$dir"
done

if [ -n "$check" ]; then
  if diff -r "$target" "$out"; then
    echo "scripts/golden.sh: the outputs equal those in $target"
  else
    echo "scripts/golden.sh: the outputs differ from those in $target" >&2
    exit 1
  fi
else
  echo "scripts/golden.sh: $(find "$out" -type f | wc -l) outputs recorded in $out"
fi
