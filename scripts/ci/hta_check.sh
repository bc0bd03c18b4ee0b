#!/usr/bin/env bash
# Checks the trace writer's output with HolisticTraceAnalysis 0.5.0: installs HTA
# in a virtual environment (HTA_VENV, default /tmp/htavenv), writes sample traces
# with known kernel times, and runs scripts/ci/hta_check.py on them. Then compares
# the report across ranks with HTA's temporal breakdown and overlap on the two
# sampled ranks of ../shared, on those samples, and on a made-up run of four ranks.
# Exits non-zero when anything fails.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
venv=${HTA_VENV:-/tmp/htavenv}

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --no-deps HolisticTraceAnalysis==0.5.0
# HTA 0.5.0 needs pandas 2: with pandas 3 it fails on traces whose correlation ids
# fit in int8 (it writes row indices into the downcast column, which pandas 3
# refuses instead of upcasting).
"$venv/bin/pip" install --quiet "pandas<3" numpy plotly psutil networkx pyyaml

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cd "$repo"
cargo run --quiet -p cutrace-exporter --example write_sample -- "$work/traces" >"$work/expected.json"
"$venv/bin/python" scripts/ci/hta_check.py "$work/traces" "$work/expected.json"

cargo build --quiet -p cutrace --bin cutrace
cargo run --quiet -p cutrace-analysis --example write_ranks -- --ranks 4 --events 5000 "$work/ranks_ns" >/dev/null
mkdir "$work/sampled"
cp ../shared/traces/kineto/sampled_rank-*.json.gz "$work/sampled/"
"$venv/bin/python" scripts/ci/hta_check.py report target/debug/cutrace \
    "$work/sampled" "$work/traces/us" "$work/traces/ns" "$work/ranks_ns"
