"""A cutrace profiler for vLLM workers: :class:`CutraceProfilerWrapper`.

It is a subclass of vLLM's own ``WorkerProfiler``, as vLLM's
``TorchProfilerWrapper`` is, so vLLM's base class does what it does for torch:
it counts the worker's steps after ``/start_profile``, starts the profiler after
``VLLM_PROFILER_DELAY_ITERS`` of them, stops it after
``VLLM_PROFILER_MAX_ITERS`` more (or at ``/stop_profile``), and calls the
subclass's ``_start`` and ``_stop``. Each ``_start``/``_stop`` pair is one cutrace
window: a trace named after the worker and ``profiler_out_<local_rank>.txt``,
written where vLLM's torch wrapper writes them (``VLLM_TORCH_PROFILER_DIR``, or
the ``torch_profiler_dir`` of the profiler config in vLLM versions that have
one). The trace and table are written in the background; unlike torch's
wrapper, ``_stop`` does not print the table (read the file, or run
``cutrace report`` on the trace).

Both generations of vLLM's base class are served: the one of
``vllm.profiler.gpu_profiler``, whose ``__init__()`` reads the
``VLLM_PROFILER_*`` variables, and the one of ``vllm.profiler.wrapper``, whose
``__init__(profiler_config)`` takes vLLM's ``ProfilerConfig`` (pass it as
``profiler_config``). ``docs/vllm.md`` shows how to put the wrapper in a worker.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

from cutrace._profiler import Profiler, Range

try:  # vLLM with a profiler config
    from vllm.profiler.wrapper import WorkerProfiler
except ImportError:
    try:  # vLLM whose profilers read the environment
        from vllm.profiler.gpu_profiler import WorkerProfiler
    except ImportError as error:
        raise ImportError(
            "cutrace.vllm needs vLLM: neither vllm.profiler.wrapper nor "
            f"vllm.profiler.gpu_profiler can be imported ({error})"
        ) from error

#: Where vLLM's torch wrapper writes, in the vLLM versions that read the environment.
DIR_VAR = "VLLM_TORCH_PROFILER_DIR"

_TAKES_CONFIG = "profiler_config" in inspect.signature(WorkerProfiler.__init__).parameters


class CutraceProfilerWrapper(WorkerProfiler):  # type: ignore[misc]
    """vLLM's worker profiler interface (``start``, ``step``, ``stop``,
    ``shutdown``, ``annotate_context_manager``), recording with cutrace.

    Args:
        worker_name: The first part of the trace file names (vLLM passes e.g.
            ``<instance_id>-rank-<rank>``).
        local_rank: The worker's local rank: the table is
            ``profiler_out_<local_rank>.txt``.
        profiler_config: vLLM's ``ProfilerConfig``, for vLLM versions whose
            ``WorkerProfiler`` takes one; left out, one is made from the
            environment.
    """

    def __init__(
        self, worker_name: str, local_rank: int, profiler_config: Any | None = None
    ) -> None:
        if _TAKES_CONFIG:
            if profiler_config is None:
                from vllm.config import ProfilerConfig

                profiler_config = ProfilerConfig()
            super().__init__(profiler_config)
            output_dir = getattr(profiler_config, "torch_profiler_dir", None)
        else:
            super().__init__()
            output_dir = os.environ.get(DIR_VAR)
        self.local_rank = local_rank
        # vLLM's base class counts the delay and the iterations, and calls _start
        # and _stop: cutrace records exactly from one to the other.
        self._profiler = Profiler(
            output_dir=output_dir or None,
            worker_name=worker_name,
            rank=local_rank,
            delay_iters=0,
            max_iters=0,
            warmup_iters=0,
            repeat=1,
        )

    def step(self) -> None:
        """vLLM's step, called before each model execution; while recording, it
        also ends the cutrace iteration in progress, so that each execution is a
        ``ProfilerStep#<n>`` (with no delay, ``ProfilerStep#1`` is the time from
        ``/start_profile`` to the first step)."""
        was_running = self._running
        super().step()
        if was_running and self._running:
            self._profiler.step()

    def _start(self) -> None:
        self._profiler.start()

    def _stop(self) -> None:
        self._profiler.stop()

    def annotate_context_manager(self, name: str, metrics: dict[str, float] | None = None) -> Range:
        """A cutrace range named ``name`` (``metrics`` are not recorded)."""
        return self._profiler.annotate(name)

    def shutdown(self) -> None:
        """Stops a window in progress, writes it and releases the tracer."""
        super().shutdown()
        self._profiler.shutdown()
