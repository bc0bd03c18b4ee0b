#!/usr/bin/env bash
# Builds cutrace from this repository and installs it under a prefix:
#
#   PREFIX/bin/cutrace          the command
#   PREFIX/lib/libcutrace.so    the injection library `cutrace run` hands to the driver
#
# `cutrace run` finds the library in ../lib from its own executable
# (src/cli/locate.rs), so the pair works wherever PREFIX is. `cargo install` alone
# cannot do this: it installs executables only.
#
# Usage: scripts/install.sh [PREFIX]
# PREFIX defaults to where `cargo install` puts things: $CARGO_INSTALL_ROOT, else
# $CARGO_HOME, else ~/.cargo, whose bin/ rustup has put on PATH.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
prefix=${1:-${CARGO_INSTALL_ROOT:-${CARGO_HOME:-$HOME/.cargo}}}

cd "$root"
# With every subcommand, `convert --to parquet` included, as the release build
# and the Python wheel have them.
cargo build --release --locked -p cutrace --features parquet --bin cutrace --lib
target=$(cargo metadata --format-version 1 --no-deps |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
built="$target/release"

mkdir -p "$prefix/bin" "$prefix/lib"
tmp=()
trap 'rm -f "${tmp[@]}"' EXIT
# Each file is copied beside its place and renamed over it, so an interrupted
# install never leaves a truncated library or command under the final name.
place() {
  local from=$1 to=$2 part
  part=$(mktemp "$to.XXXXXX")
  tmp+=("$part")
  cp "$from" "$part"
  chmod 755 "$part"
  mv -f "$part" "$to"
}
place "$built/libcutrace.so" "$prefix/lib/libcutrace.so"
place "$built/cutrace" "$prefix/bin/cutrace"

echo "installed $prefix/bin/cutrace and $prefix/lib/libcutrace.so"
case ":$PATH:" in
  *":$prefix/bin:"*) ;;
  *) echo "note: $prefix/bin is not on PATH; add it, or run $prefix/bin/cutrace" ;;
esac
