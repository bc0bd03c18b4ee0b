#!/usr/bin/env bash
# Checks the trace writer's output with HolisticTraceAnalysis 0.5.0: installs HTA
# in a virtual environment (HTA_VENV, default /tmp/htavenv), writes sample traces
# with known kernel times, and runs scripts/ci/hta_check.py on them. Exits non-zero
# when anything fails.
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
