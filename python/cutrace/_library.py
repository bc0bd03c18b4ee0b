"""The process's ``libcutrace.so``, found once, and the calls of its C ABI.

A process has one tracer (CUPTI takes one subscriber), and it lives in one
library. The package ships its own ``libcutrace.so``, but under ``cutrace run``
the CUDA driver loads the library that ``CUDA_INJECTION64_PATH`` names, which may
be another file (a cargo build of cutrace). Loading ours as well would make two
tracers in one process, so when that variable names a ``libcutrace.so``, the
package drives that one: the driver then finds it already loaded, and whichever
of the injection and the Python API comes first installs the tracer that the
other one uses.
"""

from __future__ import annotations

import os
import threading
import warnings
from typing import Any

import cutrace._native.cutrace as native
from cutrace._native.cutrace import ffi
from cutrace._native.cutrace import lib as _packaged

#: The variable through which the CUDA driver finds its injection library.
INJECTION_VAR = "CUDA_INJECTION64_PATH"

#: The file name of every cutrace library, packaged or built with cargo.
LIBRARY_NAME = "libcutrace.so"

#: The functions the package calls; a library lacking one is of another version.
NEEDED = (
    "cutrace_attach",
    "cutrace_check_config",
    "cutrace_last_error",
    "cutrace_range_pop",
    "cutrace_range_push",
    "cutrace_report_json",
    "cutrace_shutdown",
    "cutrace_start",
    "cutrace_step",
    "cutrace_stop",
    "cutrace_windows_json",
)


class CutraceWarning(RuntimeWarning):
    """Tracing is off or not as asked; the program runs on (see the message)."""


_lock = threading.Lock()
_loaded: Any | None = None
_usable = True


def packaged_path() -> str:
    """The path of the package's own ``libcutrace.so``."""
    return os.path.join(os.path.dirname(os.path.abspath(native.__file__)), LIBRARY_NAME)


def injected_path() -> str | None:
    """The ``libcutrace.so`` that ``CUDA_INJECTION64_PATH`` names, if it names one."""
    path = os.environ.get(INJECTION_VAR, "")
    if os.path.basename(path) == LIBRARY_NAME and os.path.isfile(path):
        return path
    return None


def load() -> Any | None:
    """The library the process's tracer lives in, loaded on first use; ``None``
    (after one warning) when the injected library is of another cutrace version,
    whose tracer then runs on as ``cutrace run`` set it up, without this API."""
    global _loaded, _usable
    with _lock:
        if _loaded is None and _usable:
            path = injected_path()
            library = _packaged if path is None else _open_injected(path)
            missing = [name for name in NEEDED if not hasattr(library, name)]
            if missing:
                _usable = False
                warnings.warn(
                    f"cutrace: {path} (from {INJECTION_VAR}) is a cutrace library of "
                    f"another version, without {', '.join(missing)}; the cutrace "
                    "package cannot drive its tracer, so its calls do nothing "
                    "(install the same cutrace for both)",
                    CutraceWarning,
                    stacklevel=3,
                )
            else:
                _loaded = library
        return _loaded


def packaged() -> Any:
    """The package's own library (a command, a check, a report need no tracer)."""
    return _packaged


def loaded() -> Any | None:
    """The library :func:`load` found, if it has run."""
    return _loaded


def _open_injected(path: str) -> Any:
    """The injected library, or the package's when it cannot be opened (the
    driver could not open it either, so the package's tracer is the only one)."""
    try:
        return ffi.dlopen(path)
    except OSError as error:
        warnings.warn(
            f"cutrace: cannot open {path} (from {INJECTION_VAR}): {error}; "
            "using the package's own library",
            CutraceWarning,
            stacklevel=4,
        )
        return _packaged


def last_error(library: Any, entry: str) -> str:
    """This thread's last failure in ``library``, without the ``entry: `` prefix."""
    message = text(library.cutrace_last_error())
    prefix = f"{entry}: "
    return message.removeprefix(prefix)


def text(pointer: Any) -> str:
    """A string the library returned, decoded."""
    raw: bytes = ffi.string(pointer)
    return raw.decode("utf-8", "replace")
