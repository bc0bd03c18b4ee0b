"""Programs the tests run, one process each: ``python scenarios.py NAME ARGS``.

Each plays a GPU program through the CUPTI test double that
``CUTRACE_CUPTI_LIB`` names (``cupti_double_launch_kernel`` stands for a kernel
launch) and, where CUDA initialises, through the stand-in driver that
``CUTRACE_CUDA_LIB`` names. What a test checks is printed on stdout as one JSON
object.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
import warnings
from typing import Any, Callable


def double() -> ctypes.CDLL:
    """The CUPTI test double, shared with the tracer (same path, same handle)."""
    library = ctypes.CDLL(os.environ["CUTRACE_CUPTI_LIB"])
    library.cupti_double_launch_kernel.argtypes = [ctypes.c_char_p, ctypes.c_uint64]
    library.cupti_double_subscribed.restype = ctypes.c_bool
    return library


def launch(name: str, micros: int = 10) -> None:
    double().cupti_double_launch_kernel(name.encode(), micros)


def init_cuda() -> None:
    """``cuInit(0)`` of the stand-in driver, which injects ``CUDA_INJECTION64_PATH``."""
    driver = ctypes.CDLL(os.environ["CUTRACE_CUDA_LIB"])
    if driver.cuInit(0) != 0:
        raise RuntimeError("cuInit failed")


def report_out(**facts: Any) -> None:
    print(json.dumps(facts))


def windows_of(profiler: Any) -> list[dict[str, str]]:
    return [
        {"trace": str(w.trace), "table_file": str(w.table_file), "table": w.table}
        for w in profiler.windows
    ]


def caught(run: Callable[[], Any]) -> list[str]:
    """The warnings ``run`` gave, as Python's default filter would show them."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("default")
        run()
    return [f"{w.category.__name__}: {w.message}" for w in seen]


def window(output_dir: str) -> None:
    """Five iterations, the 2nd and 3rd recorded, each with a `forward` range
    around a kernel and a decorated `loss`."""
    import cutrace

    @cutrace.annotate("loss")
    def loss(i: int) -> int:
        launch(f"loss_{i}", 5)
        return i

    profiler = cutrace.Profiler(output_dir=output_dir, delay_iters=1, max_iters=2, worker_name="py")
    traced = profiler.traced
    profiler.start()
    for i in range(1, 6):
        with profiler.annotate("forward"):
            launch(f"gemm_{i}", 100)
        assert loss(i) == i
        profiler.step()
    profiler.stop()
    profiler.shutdown()
    report_out(
        traced=traced,
        traced_after_shutdown=profiler.traced,
        windows=windows_of(profiler),
        rows=[cutrace.report(w.trace, row_limit=None) for w in profiler.windows],
    )


def context_manager(output_dir: str) -> None:
    """``with cutrace.Profiler(...) as p``: the window is on disk after the block."""
    import cutrace

    # "-": no output_dir given, so the environment's (CUTRACE_OUTPUT_DIR) or the default.
    keys = {} if output_dir == "-" else {"output_dir": output_dir}
    with cutrace.Profiler(worker_name="ctx", **keys) as profiler:
        for i in range(3):
            launch(f"k{i}")
            profiler.step()
    report_out(windows=windows_of(profiler), subscribed=double().cupti_double_subscribed())


def bad_config() -> None:
    """Wrong keys and values, each refused before CUPTI is touched."""
    import cutrace

    messages = []
    for keys in (
        {"max_iter": 3},
        {"max_iters": "three"},
        {"repeat": 2},
        {"output_dir": object()},
        {"activities": ["kernel", "gpu"]},
    ):
        try:
            cutrace.Profiler(**keys)
            messages.append(None)
        except ValueError as error:
            messages.append(str(error))
    report_out(messages=messages, subscribed=double().cupti_double_subscribed())


def untraced(output_dir: str) -> None:
    """Tracing impossible: one warning, then every call does nothing."""
    import cutrace

    made: list[Any] = []
    warned = caught(lambda: made.append(cutrace.Profiler(output_dir=output_dir)))
    profiler = made[0]

    def hot_loop() -> None:
        profiler.start()
        for _ in range(1000):
            with cutrace.annotate("forward"):
                pass
            profiler.step()
        profiler.stop()
        profiler.shutdown()

    later = caught(hot_loop)
    report_out(
        warnings=warned, later_warnings=later, traced=profiler.traced, windows=profiler.windows
    )


def profiler_made(output_dir: str) -> None:
    """A Profiler made, and what it said."""
    import cutrace

    made: list[Any] = []
    warned = caught(lambda: made.append(cutrace.Profiler(output_dir=output_dir)))
    report_out(warnings=warned, traced=made[0].traced)


def injected_then_profiler(output_dir: str) -> None:
    """CUDA initialises first (the injection makes the tracer), then a Profiler."""
    init_cuda()
    import cutrace

    made: list[Any] = []
    warned = caught(lambda: made.append(cutrace.Profiler(output_dir=output_dir, max_iters=9)))
    profiler = made[0]
    profiler.start()
    for i in range(1, 3):
        with cutrace.annotate("forward"):
            launch(f"k{i}")
        profiler.step()
    # No shutdown: the injection's own exit handler writes the window.
    report_out(warnings=warned, traced=profiler.traced)


def profiler_then_injected(output_dir: str) -> None:
    """A Profiler first, then CUDA initialises (the injection finds the tracer)."""
    import cutrace

    warned: list[str] = []
    made: list[Any] = []
    warned += caught(
        lambda: made.append(
            cutrace.Profiler(output_dir=output_dir, max_iters=2, worker_name="first")
        )
    )
    profiler = made[0]
    warned += caught(init_cuda)
    profiler.start()
    for i in range(1, 4):
        with cutrace.annotate("forward"):
            launch(f"k{i}")
        profiler.step()
    profiler.shutdown()
    report_out(warnings=warned, windows=windows_of(profiler))


def annotate_under_injection() -> None:
    """No Profiler at all: ranges reach the injected tracer."""
    init_cuda()
    import cutrace

    for i in range(2):
        with cutrace.annotate("phase"):
            launch(f"k{i}")
    report_out(done=True)


def vllm_worker() -> None:
    """A vLLM worker's calls: /start_profile, a step and an annotated execute per
    batch, /stop_profile, twice; then shutdown. Kernels are named after the
    execute they belong to (cycle c, batch b: ``c<c>_b<b>``)."""
    from cutrace.vllm import CutraceProfilerWrapper, WorkerProfiler

    wrapper = CutraceProfilerWrapper(worker_name="engine-rank-1", local_rank=1)
    for cycle in (1, 2):
        wrapper.start()
        for batch in range(1, 9):
            wrapper.step()
            with wrapper.annotate_context_manager(f"execute_{cycle}_{batch}"):
                launch(f"c{cycle}_b{batch}")
        wrapper.stop()
    wrapper.shutdown()
    report_out(
        base=f"{WorkerProfiler.__module__}.{WorkerProfiler.__qualname__}",
        windows=windows_of(wrapper._profiler),
    )


if __name__ == "__main__":
    globals()[sys.argv[1]](*sys.argv[2:])
