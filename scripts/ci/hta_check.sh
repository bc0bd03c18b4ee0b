#!/usr/bin/env bash
# Checks the trace writer's output with HolisticTraceAnalysis 0.5.0: installs HTA
# and its pinned packages (scripts/ci/hta-requirements.txt) in a virtual
# environment (HTA_VENV, default target/hta-venv in the repository), writes sample
# traces with known kernel times, and runs scripts/ci/hta_check.py on them. Exits
# non-zero when anything fails.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
venv=${HTA_VENV:-$repo/target/hta-venv}

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/pip" install --quiet --no-deps \
    -r "$repo/scripts/ci/hta-requirements.txt"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cd "$repo"
cargo run --quiet -p cutrace-exporter --example write_sample -- "$work/traces" >"$work/expected.json"
"$venv/bin/python" scripts/ci/hta_check.py "$work/traces" "$work/expected.json"
