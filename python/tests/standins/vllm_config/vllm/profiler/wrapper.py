"""Stand-in for vLLM's ``vllm.profiler.wrapper`` (see ../../../README.md)."""

from abc import ABC, abstractmethod
from contextlib import nullcontext


class WorkerProfiler(ABC):
    """A worker profiler whose base class counts steps from its config."""

    _propagate_errors = False

    def __init__(self, profiler_config) -> None:
        self._delay_iters = profiler_config.delay_iterations
        self._max_iters = profiler_config.max_iterations
        self._active_iteration_count = 0
        self._active = False
        self._profiling_for_iters = 0
        self._running = False

    @property
    def is_running(self) -> bool:
        return self._running

    @abstractmethod
    def _start(self) -> None: ...

    @abstractmethod
    def _stop(self) -> None: ...

    def _call_start(self) -> None:
        try:
            self._start()
            self._running = True
        except Exception:
            if self._propagate_errors:
                raise

    def _call_stop(self) -> None:
        try:
            self._stop()
        except Exception:
            if self._propagate_errors:
                raise
        finally:
            self._running = False

    def start(self) -> None:
        if self._active:
            return
        self._active = True
        if self._delay_iters == 0:
            self._call_start()

    def step(self) -> None:
        if not self._active:
            return
        self._active_iteration_count += 1
        if (
            not self._running
            and self._delay_iters > 0
            and self._active_iteration_count == self._delay_iters
        ):
            self._call_start()
        if self._running and self._profiler_step():
            self._profiling_for_iters += 1
        if self._max_iters > 0 and self._running and self._profiling_for_iters > self._max_iters:
            self._call_stop()

    def _profiler_step(self) -> bool:
        return True

    def stop(self) -> None:
        if not self._active:
            return
        self._active = False
        self._active_iteration_count = 0
        self._profiling_for_iters = 0
        if self._running:
            self._call_stop()

    def shutdown(self) -> None:
        if self._running:
            self.stop()

    def annotate_context_manager(self, name, metrics=None):
        return nullcontext()
