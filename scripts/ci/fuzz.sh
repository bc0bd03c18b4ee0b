#!/usr/bin/env bash
# Runs the fuzz target (fuzz/fuzz_targets/read_write.rs) for SECONDS over the
# committed corpus, with a fixed seed. cargo-fuzz is installed (pinned) when
# missing. With the default toolchain (stable) it instruments for coverage
# without a sanitizer, since sanitizers need nightly; CUTRACE_FUZZ_TOOLCHAIN=nightly
# adds AddressSanitizer where a nightly toolchain is installed.
# Usage: scripts/ci/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-60}

# Installed under target/, on PATH from there: CI points cargo install's own root
# elsewhere, where cargo would not find the subcommand.
tools=$(pwd)/target/tools
export PATH=$tools/bin:$PATH
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --version 0.13.1 --locked --quiet --root "$tools"
fi

cargo=(cargo)
sanitizer=none
if [ -n "${CUTRACE_FUZZ_TOOLCHAIN:-}" ]; then
  cargo=(cargo "+$CUTRACE_FUZZ_TOOLCHAIN")
  sanitizer=address
fi

# New inputs go to a scratch directory: the committed corpus stays as it is.
scratch=fuzz/corpus-new
log=fuzz/target/fuzz.log
rm -rf "$scratch"
mkdir -p "$scratch" fuzz/target
status=0
"${cargo[@]}" fuzz run --sanitizer "$sanitizer" read_write "$scratch" fuzz/corpus/read_write -- \
  -dict=fuzz/trace.dict -max_total_time="$seconds" -seed=1 -rss_limit_mb=2048 \
  -print_final_stats=1 >"$log" 2>&1 || status=$?
rm -rf "$scratch"
if [ "$status" -ne 0 ]; then
  tail -n 60 "$log"
  echo "fuzz: the target failed (status $status); the failing input is under fuzz/artifacts/"
  exit "$status"
fi
grep -E '^(Done |stat::number_of_executed_units|stat::new_units_added)' "$log"
