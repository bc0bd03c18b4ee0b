#!/usr/bin/env python3
"""Runs the README's Python example as it is written, in the current directory,
with the package installed: its `train_step` is the only thing this script
gives it (a kernel launch on the CUPTI test double that CUTRACE_CUPTI_LIB
names). Fails unless the example printed a table with that kernel and left one
trace in its output directory.

    python readme_python.py README.md
"""

import contextlib
import ctypes
import io
import os
import pathlib
import re
import sys


def example(readme: str) -> str:
    """The first ```python block after the README's `pip install .`."""
    text = pathlib.Path(readme).read_text()
    after = text[text.index("pip install .") :]
    match = re.search(r"```python\n(.*?)```", after, re.DOTALL)
    if match is None:
        raise SystemExit(f"{readme}: no Python example after `pip install .`")
    return match.group(1)


def main() -> None:
    code = example(sys.argv[1])
    double = ctypes.CDLL(os.environ["CUTRACE_CUPTI_LIB"])
    double.cupti_double_launch_kernel.argtypes = [ctypes.c_char_p, ctypes.c_uint64]

    def train_step(*_args: object) -> None:
        double.cupti_double_launch_kernel(b"train_kernel", 50)

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "README.md example", "exec"), {"train_step": train_step})
    output = printed.getvalue()
    print(output, end="")
    traces = sorted(pathlib.Path("traces").glob("*.pt.trace.json.gz"))
    if "train_kernel" not in output or len(traces) != 1:
        raise SystemExit(f"the README example printed no table of train_kernel, traces: {traces}")
    print(f"README example: ok, {traces[0]}")


if __name__ == "__main__":
    main()
