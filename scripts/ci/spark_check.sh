#!/usr/bin/env bash
# Runs docs/parquet.md's SQL recipes with Spark (pyspark 3.5 in local mode) on what
# `cutrace convert --to parquet` writes for a made-up run of four ranks, and checks
# the kernel totals and stragglers against `cutrace report` (scripts/parquet/
# spark_query.py). Installs pyspark in a virtual environment under target/
# (SPARK_VENV, default target/spark-venv) and, when there is no Java, Debian's JRE.
# About two minutes: most of it pyspark's download and Spark's start.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
venv=${SPARK_VENV:-target/spark-venv}

if ! command -v java >/dev/null; then
    apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless >/dev/null
fi
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet pyspark==3.5.7

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo build --quiet -p cutrace --features parquet --bin cutrace
cargo run --quiet -p cutrace-analysis --example write_ranks -- --ranks 4 --events 5000 "$work/traces" >/dev/null
target/debug/cutrace convert --to parquet -o "$work/traces.parquet" "$work/traces" >/dev/null
target/debug/cutrace report --format json "$work/traces" >"$work/report.json"
"$venv/bin/python" scripts/parquet/spark_query.py "$work/traces.parquet" "$work/report.json" 2>/dev/null
