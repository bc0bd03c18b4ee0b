"""The ``cutrace`` command of the pip-installed package.

A wheel ships one kind of artifact, so the command is not an executable of its
own: this console script calls ``cutrace_main`` in the package's
``libcutrace.so``, which runs the code the cargo-built ``cutrace`` runs, and
``cutrace run`` injects that same library.

A Python process differs from a fresh executable in three ways that a traced
command or ``cutrace`` itself could notice; each is undone before the call:
Python handles SIGINT (it would raise ``KeyboardInterrupt`` once the command
returns, and a Ctrl-C must end ``cutrace report`` as it ends the executable);
it ignores SIGXFSZ (children inherit ignored signals); and it may set
``LC_CTYPE`` for a C locale (PEP 538; children inherit the environment).
SIGPIPE stays ignored: Rust programs ignore it too.
"""

from __future__ import annotations

import os
import signal
import sys


def main() -> int:
    """Runs the ``cutrace`` command with this process's arguments; returns its exit
    code."""
    _as_a_fresh_program()
    from cutrace._native.cutrace import ffi, lib

    args = [os.fsencode(arg) for arg in sys.argv] or [b"cutrace"]
    strings = [ffi.new("char[]", arg) for arg in args]
    argv = ffi.new("char *[]", strings)
    code: int = lib.cutrace_main(len(strings), argv)
    return code


def _as_a_fresh_program() -> None:
    for number in (signal.SIGINT, signal.SIGXFSZ):
        signal.signal(number, signal.SIG_DFL)
    original = _original_environ_value("LC_CTYPE")
    if original is None:
        os.environ.pop("LC_CTYPE", None)
    else:
        os.environ["LC_CTYPE"] = original


def _original_environ_value(name: str) -> str | None:
    """``name``'s value in the environment the process started with
    (``/proc/self/environ`` keeps it; ``os.environ`` has Python's changes)."""
    try:
        with open("/proc/self/environ", "rb") as environ:
            entries: list[bytes] = environ.read().split(b"\0")
    except OSError:
        return os.environ.get(name)
    prefix = os.fsencode(name) + b"="
    for entry in entries:
        if entry.startswith(prefix):
            return os.fsdecode(entry[len(prefix) :])
    return None
