"""cutrace: a CUDA GPU tracer for Python programs, driven as ``torch.profiler`` is.

It records what the GPU did (kernels, copies, memsets, runtime calls) through
NVIDIA's CUPTI during chosen iterations, and writes each window as a Kineto
trace (``<worker>.<unix_ns>.pt.trace.json.gz``: ui.perfetto.dev,
HolisticTraceAnalysis, TensorBoard) and torch's key-averages table
(``profiler_out_<rank>.txt``)::

    import cutrace

    with cutrace.Profiler(output_dir="traces", delay_iters=10, max_iters=5) as p:
        for batch in loader:
            with cutrace.annotate("forward"):
                model(batch)
            p.step()
    print(p.windows[0].table)

- :class:`Profiler`: ``start()``, ``step()``, ``stop()``, ``shutdown()``; the
  keys of ``CUTRACE_CONFIG`` as keyword arguments.
- :func:`annotate`: a named range (a :class:`Range`), as a context manager or a
  decorator.
- :func:`report`: any trace file's key-averages rows, for notebooks.
- :mod:`cutrace.vllm`: ``CutraceProfilerWrapper``, a vLLM worker profiler.
- The ``cutrace`` command (``run``, ``report``, ``convert``, ``doctor``), the
  same as the one cargo builds.

The tracer lives in ``libcutrace.so``, inside this package; a process has one
(see :class:`Profiler` for how it is shared with ``cutrace run``'s injection).
"""

from __future__ import annotations

from importlib import metadata as _metadata

from cutrace._library import CutraceWarning
from cutrace._profiler import Profiler, Range, Window, annotate
from cutrace._report import ReportRow, report

__all__ = ["CutraceWarning", "Profiler", "Range", "ReportRow", "Window", "annotate", "report"]

try:
    __version__ = _metadata.version("cutrace")
except _metadata.PackageNotFoundError:  # run from a source tree, not installed
    __version__ = "0+unknown"
