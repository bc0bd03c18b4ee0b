#!/usr/bin/env bash
# Fetches NVIDIA's libcupti.so.13 (PyPI wheel nvidia-cuda-cupti, CUDA 13.0) into a
# cache folder and prints its path, for cupti-sys's real-libcupti test:
#
#   CUTRACE_TEST_LIBCUPTI=$(scripts/ci/fetch-libcupti.sh) cargo test -p cupti-sys
#
# Usage: fetch-libcupti.sh [CACHE_DIR]  (default: target/ci-libcupti in the repository).
# A second run finds the library in the cache and downloads nothing. Needs python3
# with pip; the library is for x86_64 Linux.
set -euo pipefail

VERSION=13.0.85
WHEEL="nvidia-cuda-cupti==$VERSION"
MEMBER=nvidia/cu13/lib/libcupti.so.13

root=$(cd "$(dirname "$0")/../.." && pwd)
cache=${1:-$root/target/ci-libcupti}
lib="$cache/$VERSION/$MEMBER"

if [[ ! -f $lib ]]; then
  echo "fetch-libcupti: downloading $WHEEL into $cache" >&2
  python3 -m pip download --quiet --no-deps --only-binary=:all: \
    --platform manylinux_2_25_x86_64 -d "$cache/wheels" "$WHEEL" >&2
  # Extracted beside its final place and renamed, so an interrupted run never leaves
  # a truncated library that a later run would take for a cached one.
  python3 - "$cache/wheels" "$VERSION" "$MEMBER" "$lib" <<'PY'
import os, pathlib, sys, tempfile, zipfile
wheels, version, member, lib = sys.argv[1:]
(wheel,) = pathlib.Path(wheels).glob(f"nvidia_cuda_cupti-{version}-*.whl")
target = pathlib.Path(lib)
target.parent.mkdir(parents=True, exist_ok=True)
with tempfile.TemporaryDirectory(dir=target.parent) as work:
    extracted = zipfile.ZipFile(wheel).extract(member, work)
    os.replace(extracted, target)
PY
fi
echo "$lib"
