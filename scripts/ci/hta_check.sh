#!/usr/bin/env bash
# Checks the trace writer's output with HolisticTraceAnalysis 0.5.0: installs HTA
# and its pinned packages (scripts/ci/hta-requirements.txt) in a virtual
# environment (HTA_VENV, default target/hta-venv in the repository), writes sample
# traces with known kernel times, and runs scripts/ci/hta_check.py on them. Then
# compares the report across ranks with HTA's temporal breakdown and overlap on the
# two bundled sampled ranks (tests/data/kineto), on those samples, and on a made-up
# run of four ranks. Exits non-zero when anything fails.
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

cargo build --quiet -p cutrace --bin cutrace
cargo run --quiet -p cutrace-analysis --example write_ranks -- --ranks 4 --events 5000 "$work/ranks_ns" >/dev/null
mkdir "$work/sampled"
cp tests/data/kineto/sampled_rank-*.json.gz "$work/sampled/"
"$venv/bin/python" scripts/ci/hta_check.py report target/debug/cutrace \
    "$work/sampled" "$work/traces/us" "$work/traces/ns" "$work/ranks_ns"
