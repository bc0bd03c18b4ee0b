"""``Profiler``, ``annotate`` and ``Window``: the tracer driven from Python."""

from __future__ import annotations

import atexit
import dataclasses
import functools
import json
import os
import threading
import warnings
from pathlib import Path
from typing import Any, Callable, TypeVar, Union

from cutrace import _library
from cutrace._library import CutraceWarning
from cutrace._report import ReportRow, report

F = TypeVar("F", bound=Callable[..., Any])

PathLike = Union[str, "os.PathLike[str]"]


def _nothing(*_args: Any) -> None:
    """What every call does when there is no tracer to drive."""


@dataclasses.dataclass(frozen=True)
class Window:
    """One recorded window, once its files are written.

    Attributes:
        trace: The trace, ``<output_dir>/<worker>.<unix_ns>.pt.trace.json.gz``
            (open it in ui.perfetto.dev or HolisticTraceAnalysis).
        table_file: The key-averages table's file, ``profiler_out_<rank>.txt``,
            which the rank's next window overwrites.
        table: The table as this window wrote it, laid out as torch's
            ``key_averages().table(sort_by="self_cuda_time_total")``.
    """

    trace: Path
    table_file: Path
    table: str

    def key_averages(
        self, sort_by: str = "self_cuda_time_total", row_limit: int | None = 100
    ) -> list[ReportRow]:
        """The table's rows, read back from the trace (see :func:`cutrace.report`)."""
        return report(self.trace, sort_by=sort_by, row_limit=row_limit)


# The range calls of `annotate`: the library's once a tracer may be there to
# receive them, nothing until then. Resolved at the first range when no Profiler
# has been made, so that under `cutrace run` ranges reach the injected tracer.
_push: Callable[[bytes], None]
_pop: Callable[[], None]


def _drive(library: Any) -> None:
    """Sends the ranges of every ``annotate`` to ``library``."""
    global _push, _pop
    _push, _pop = library.cutrace_range_push, library.cutrace_range_pop


def _first_push(name: bytes) -> None:
    global _push, _pop
    if _library.injected_path() is not None:
        library = _library.load()
        if library is not None:
            _drive(library)
            _push(name)
            return
    if _push is _first_push:
        _push, _pop = _nothing, _nothing


_push, _pop = _first_push, _nothing


class Range:
    """A named range on the calling thread, in the trace as a ``user_annotation``
    and in the table as a row; the GPU work launched inside it is attributed to
    it. A context manager and a decorator; :func:`annotate` gives one."""

    __slots__ = ("_encoded", "name")

    def __init__(self, name: str) -> None:
        #: The range's name.
        self.name = name
        try:
            self._encoded = name.encode()
        except (AttributeError, UnicodeEncodeError):
            self._encoded = str(name).encode("utf-8", "surrogateescape")

    def __enter__(self) -> Range:
        _push(self._encoded)
        return self

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> None:
        # Named parameters rather than *exc_info: no tuple to make at every exit.
        _pop()

    def __call__(self, function: F) -> F:
        """Wraps ``function`` so that each call of it is a range of this name."""

        @functools.wraps(function)
        def annotated(*args: Any, **kwargs: Any) -> Any:
            with self:
                return function(*args, **kwargs)

        return annotated  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"cutrace.annotate({self.name!r})"


#: Ranges by name: a Range holds only its name, so one serves every thread and
#: every use, and `with cutrace.annotate("forward")` in a loop makes no object.
#: Names made afresh each time (a batch size in the name) stop being kept here
#: past this many.
_RANGES: dict[str, Range] = {}
_RANGES_KEPT = 4096


def annotate(name: str) -> Range:
    """A named range on the calling thread, in the trace as a
    ``user_annotation`` and in the table as a row; the GPU work launched inside
    it is attributed to it. Like ``torch.profiler.record_function``, a context
    manager::

        with cutrace.annotate("forward"):
            model(batch)

    and a decorator::

        @cutrace.annotate("forward")
        def forward(batch): ...

    It drives the process's tracer (see :class:`Profiler`), or the one
    ``cutrace run`` injected. Outside a window, or with no tracer, it records
    nothing and costs a function call; it never raises.
    """
    try:
        cached = _RANGES.get(name)
    except TypeError:  # a name that cannot be a key is still a name
        return Range(name)
    if cached is None:
        cached = Range(name)
        if len(_RANGES) < _RANGES_KEPT:
            _RANGES[name] = cached
    return cached


# The library whose tracer a Profiler made, to release at exit if no one did.
_owned: Any | None = None
_owned_lock = threading.Lock()


@atexit.register
def _shutdown_at_exit() -> None:
    global _owned
    with _owned_lock:
        library, _owned = _owned, None
    if library is not None:
        library.cutrace_shutdown()


class Profiler:
    """The process's GPU tracer, as ``torch.profiler.profile`` is driven: it records
    the CUDA kernels, copies, memsets and runtime calls of chosen iterations and
    writes each window as a Kineto trace and torch's key-averages table.

    Call :meth:`start` once, :meth:`step` once per iteration, and :meth:`stop` (or
    use it as a context manager: ``with cutrace.Profiler(...) as p:``). Iteration
    ``k`` is the span between the ``(k-1)``-th and ``k``-th ``step()`` after
    ``start()``; with ``delay_iters=D`` and ``max_iters=M``, iterations
    ``D+1 ... D+M`` make the window. Each recorded iteration shows in the trace as
    ``ProfilerStep#<k>``, as torch marks them.

    The keyword arguments are the keys of the ``CUTRACE_CONFIG`` variable (the
    same names, values and checks, in ``docs/config.md``): ``output_dir``
    (``cutrace_traces``), ``delay_iters`` (0), ``max_iters`` (0: until ``stop()``),
    ``warmup_iters`` (0), ``repeat`` (1; 0: until ``stop()``), and the others
    (``activities``, ``worker_name``, ``rank``, ``sort_by``, ``row_limit``, ...).
    Keys left out come from the environment (``CUTRACE_CONFIG``, ``CUTRACE_*``),
    so under ``cutrace run`` files go where its ``-o`` says. A wrong key or value
    raises ``ValueError`` naming it, here, before any CUDA work.

    **One tracer per process.** CUPTI takes one subscriber, so a process has one
    tracer, in one ``libcutrace.so``. The first Profiler makes it; under
    ``cutrace run`` the package drives the library the CUDA driver injects. If the
    tracer already exists when a Profiler is made (``cutrace run`` injected it
    when CUDA initialised, or another Profiler made it), the Profiler drives that
    tracer and its own settings are checked but not used; a
    :class:`CutraceWarning` says so. If the Profiler comes first, the injected
    library finds its tracer when CUDA initialises and leaves it as it is.

    Without a GPU, a driver or CUPTI (or with another CUPTI client such as
    ``torch.profiler`` or nsys in the process), one :class:`CutraceWarning` says
    why, and every call does nothing: the program runs on, untraced.
    """

    def __init__(
        self,
        output_dir: PathLike | None = None,
        delay_iters: int | None = None,
        max_iters: int | None = None,
        warmup_iters: int | None = None,
        repeat: int | None = None,
        **config: Any,
    ) -> None:
        named = {
            "output_dir": output_dir,
            "delay_iters": delay_iters,
            "max_iters": max_iters,
            "warmup_iters": warmup_iters,
            "repeat": repeat,
        }
        keys = {key: value for key, value in named.items() if value is not None}
        keys.update(config)
        text = _config_json(keys).encode()
        self._start: Callable[[], None] = _nothing
        self._stop: Callable[[], None] = _nothing
        self._library: Any | None = None
        self._owner = False
        self._next_window = 0
        self._windows: list[Window] = []
        # The package's own library checks the configuration: it runs this
        # package's rules, whichever library holds the tracer.
        packaged = _library.packaged()
        if packaged.cutrace_check_config(text) != 0:
            raise ValueError(_library.last_error(packaged, "cutrace_check_config"))
        library = _library.load()
        if library is None:
            return
        status = library.cutrace_attach(text)
        if status < 0:
            warnings.warn(
                "cutrace: tracing off, the program runs untraced: "
                + _library.last_error(library, "cutrace_attach"),
                CutraceWarning,
                stacklevel=2,
            )
            return
        if status == 1:
            warnings.warn(
                "cutrace: this process already has a tracer (injected by cutrace run, "
                "or made by another Profiler); this Profiler drives it, and the "
                "settings given here are not used",
                CutraceWarning,
                stacklevel=2,
            )
        self._library = library
        self._owner = status == 0
        self._start = library.cutrace_start
        self._stop = library.cutrace_stop
        # Host loops call step() once per iteration: the instance's own
        # attribute, the C function itself, saves a Python call on each.
        self.step = library.cutrace_step  # type: ignore[method-assign]
        self._next_window = _next_window_number(library)
        _drive(library)
        if self._owner:
            global _owned
            with _owned_lock:
                _owned = library

    @property
    def traced(self) -> bool:
        """Whether this Profiler drives a tracer (false when tracing is off)."""
        return self._library is not None

    def start(self) -> None:
        """Arms the tracer: iteration 1 begins. Ignored while started."""
        self._start()

    def step(self) -> None:
        """Ends the iteration in progress; call once per iteration. Never raises.
        (A traced Profiler answers this with the C function itself.)"""

    def stop(self) -> None:
        """Ends the iteration in progress and the window being recorded, which is
        then written in the background; returns at once."""
        self._stop()

    def shutdown(self) -> None:
        """Stops, waits (a bounded time) until every window is written, and releases
        CUPTI; a Profiler that drives a tracer it did not make only stops. Later
        calls of this Profiler do nothing."""
        global _owned
        library: Any = self._library
        if library is None:
            return
        if self._owner:
            with _owned_lock:
                if _owned is library:
                    _owned = None
            library.cutrace_shutdown()
        else:
            library.cutrace_stop()
        self._start = self._stop = self.step = _nothing  # type: ignore[method-assign]
        self._library = None

    def annotate(self, name: str) -> Range:
        """A named range, as :func:`cutrace.annotate` gives (a context manager and
        a decorator)."""
        return annotate(name)

    @property
    def windows(self) -> list[Window]:
        """The windows written since this Profiler was made, oldest first. A window
        appears once its files are written (in the background after it ends;
        :meth:`shutdown` waits for them)."""
        library = self._library if self._library is not None else _library.loaded()
        if library is not None:
            for entry in _windows_since(library, self._next_window):
                self._windows.append(
                    Window(
                        trace=Path(entry["trace"]),
                        table_file=Path(entry["table"]),
                        table=entry["table_text"],
                    )
                )
                self._next_window = entry["number"] + 1
        return list(self._windows)

    def __enter__(self) -> Profiler:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()


def _windows_since(library: Any, number: int) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads(_library.text(library.cutrace_windows_json(number)))
    return entries


def _next_window_number(library: Any) -> int:
    entries = _windows_since(library, 0)
    return int(entries[-1]["number"]) + 1 if entries else 0


def _config_json(keys: dict[str, Any]) -> str:
    """``keys`` as the JSON object the library reads; ``ValueError`` naming a key
    whose value JSON cannot hold."""
    values = {}
    for key, value in keys.items():
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        elif isinstance(value, (set, frozenset, tuple)):
            value = list(value)
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            raise ValueError(
                f"invalid profiler config: {key}: {value!r} is not a value a "
                "configuration can hold (a number, a string, true/false, null or a list)"
            ) from None
        values[key] = value
    return json.dumps(values)
