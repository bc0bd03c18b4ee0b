#!/usr/bin/env bash
# CI for the Python package, run by .ci/run after the cargo tests (which built
# the test stand-ins the Python tests use):
#
# 1. ruff and mypy check the Python code, `maturin build --release` gives the wheel;
# 2. the wheel goes into a fresh venv with no Rust on PATH and binary wheels
#    only (nothing compiled), and pytest runs python/tests against it, from
#    outside the source tree;
# 3. the README's pip path: `pip install .` into another fresh venv, then the
#    README's Python example, with the CUPTI test double standing in for CUPTI.
#
# The pytest log goes to target/ci-python.log for the summary.
set -euo pipefail
cd "$(dirname "$0")/../.."

MATURIN=1.16.0
CFFI=2.1.1
PYTEST=9.2.0
RUFF=0.17.6
MYPY=2.4.1
ROOT=target/ci-python

repo=$(pwd)
rm -rf "$ROOT"
mkdir -p "$ROOT"
root=$(realpath "$ROOT")

echo "-- wheel (maturin $MATURIN)"
python3 -m venv "$root/build"
"$root/build/bin/pip" install -q "maturin==$MATURIN" "cffi==$CFFI" "ruff==$RUFF" "mypy==$MYPY"
python=(python scripts/bench_python.py scripts/ci/readme_python.py)
"$root/build/bin/ruff" check "${python[@]}"
"$root/build/bin/ruff" format --check "${python[@]}"
(cd python && "$root/build/bin/mypy" --strict --ignore-missing-imports cutrace)
"$root/build/bin/maturin" build --release -o "$root/wheels"
wheel=$(ls "$root"/wheels/cutrace-*.whl)
case "$(basename "$wheel")" in
  cutrace-*-py3-none-manylinux_*.whl) echo "$(basename "$wheel")" ;;
  *) echo "not one py3 manylinux wheel: $wheel" >&2; exit 1 ;;
esac

echo "-- the wheel in a fresh venv, no Rust, nothing compiled"
python3 -m venv "$root/test"
env PATH=/usr/bin:/bin "$root/test/bin/pip" install -q --only-binary=:all: \
  "$wheel" "pytest==$PYTEST"
(cd "$root" && test/bin/python -m pytest -p no:cacheprovider -q -rs "$repo/python/tests") 2>&1 |
  tee target/ci-python.log

echo "-- README: pip install . and the Python example"
python3 -m venv "$root/readme"
"$root/readme/bin/pip" install -q .
(cd "$root" && CUTRACE_CUPTI_LIB="$repo/target/debug/libcupti_test_double.so" \
  readme/bin/python "$repo/scripts/ci/readme_python.py" "$repo/README.md")
