#!/usr/bin/env bash
# Opens `cutrace report --html` pages in headless Chromium (Debian's `chromium`,
# installed when missing) and checks them with scripts/ci/html_check.py: no console
# errors, every chart drawn, the table's sorting and filter working, every number
# shown equal to `cutrace report --format json`'s. The pages and their screenshots
# stay in target/html-check: a single real trace, two real ranks, a made-up run of
# eight ranks, and the large shared trace of docs/report-html.png when it is in
# CUTRACE_TEST_TRACES or ../shared/traces/kineto beside the checkout. Exits
# non-zero when anything fails.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"

if ! command -v chromium >/dev/null; then
    apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo build --quiet -p cutrace --bin cutrace
cargo run --quiet -p cutrace-analysis --example write_ranks -- --ranks 8 --events 5000 "$work/ranks" >/dev/null
ranks=$(printf '%s,' "$work"/ranks/*.json*)
data=tests/data/kineto
cases=(
    "sampled_rank-0=$data/sampled_rank-0.json.gz"
    "two_ranks=$data/sampled_rank-0.json.gz,$data/sampled_rank-1.json.gz"
    "eight_ranks=${ranks%,}"
)
shared=${CUTRACE_TEST_TRACES:-$repo/../shared/traces/kineto}/trace_diff_control.json.gz
[ -f "$shared" ] && cases+=("trace_diff_control=$shared")
python3 scripts/ci/html_check.py target/debug/cutrace chromium target/html-check "${cases[@]}"
