#!/usr/bin/env bash
# Checks `cutrace convert --to parquet` with DuckDB: installs DuckDB in a virtual
# environment under target/ (PARQUET_VENV, default target/parquet-venv), converts
# the two bundled sampled ranks (tests/data/kineto) and a made-up run of four
# ranks, and runs scripts/ci/parquet_check.py, which runs docs/parquet.md's SQL
# recipes on them and compares the results with `cutrace report`. Exits non-zero when anything fails.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
venv=${PARQUET_VENV:-target/parquet-venv}

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet duckdb==1.4.2

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo build --quiet -p cutrace --features parquet --bin cutrace
cargo run --quiet -p cutrace-analysis --example write_ranks -- --ranks 4 --events 5000 "$work/made_up" >/dev/null
mkdir "$work/sampled" "$work/parquet"
cp tests/data/kineto/sampled_rank-*.json.gz "$work/sampled/"
"$venv/bin/python" scripts/ci/parquet_check.py target/debug/cutrace "$work/parquet" \
    "$work/sampled" "$work/made_up"
