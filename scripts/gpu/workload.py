#!/usr/bin/env python3
"""PyTorch workloads for the real-GPU check (scripts/gpu/run); needs a CUDA GPU.

Usage:
  workload.py plain                      the transformer-like loop, untraced or
                                         under `cutrace run`
  workload.py torch-profiler OUTDIR      the same loop under torch.profiler; trace
                                         and key-averages table into OUTDIR
  workload.py launch-bound N [OUTDIR]    N tiny kernels in a loop, timed; with
                                         OUTDIR under torch.profiler
  workload.py flush N OUTDIR [torch]     N tiny kernels in one window, then the
                                         time from stop until the trace is written
                                         (cutrace: files appear in OUTDIR; torch:
                                         stop and export)

The loop: WARMUP iterations, then MEASURED ones between
torch.cuda.profiler.start() and stop() (what `cutrace run -c cudaProfilerApi`
records). Each iteration is one NVTX range named `step` (what `cutrace run
--nvtx-step step --delay-iters WARMUP --max-iters MEASURED` records) holding an
H2D copy from pinned memory, a few transformer-like layers, a CUDA graph replay and
a D2H copy, and ends synchronized, so every window holds exactly the measured
iterations' GPU work. Under torch.profiler the profiler wraps the same iterations.

Each mode prints one JSON object of its figures on the last line of stdout.
"""

import json
import os
import sys
import time
from pathlib import Path

import torch

# scripts/gpu/run passes the same numbers to `cutrace run --delay-iters/--max-iters`.
WARMUP = int(os.environ.get("WORKLOAD_WARMUP", "3"))
MEASURED = int(os.environ.get("WORKLOAD_MEASURED", "5"))
BATCH, SEQ, HIDDEN, FFN = 8, 256, 1024, 4096
TRACE_SUFFIX = ".pt.trace.json.gz"


class Layer(torch.nn.Module):
    """Attention-free transformer block: layer norm, matmuls, softmax, GELU."""

    def __init__(self):
        super().__init__()
        self.norm = torch.nn.LayerNorm(HIDDEN)
        self.mix = torch.nn.Linear(HIDDEN, HIDDEN)
        self.up = torch.nn.Linear(HIDDEN, FFN)
        self.down = torch.nn.Linear(FFN, HIDDEN)

    def forward(self, x):
        h = self.norm(x)
        h = torch.softmax(self.mix(h), dim=-1) * h
        return x + self.down(torch.nn.functional.gelu(self.up(h)))


def build():
    """The model, a pinned input, and a CUDA graph of one more layer, captured."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(Layer(), Layer()).cuda().eval()
    host_input = torch.randn(BATCH, SEQ, HIDDEN).pin_memory()
    graphed = Layer().cuda().eval()
    static_input = torch.randn(BATCH, SEQ, HIDDEN, device="cuda")
    with torch.no_grad():
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            graphed(static_input)  # warm up on a side stream, as torch asks
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_output = graphed(static_input)
    torch.cuda.synchronize()
    return model, host_input, graph, static_input, static_output


def iteration(model, host_input, graph, static_input, static_output):
    """One step: H2D, layers, graph replay, D2H; synchronized inside the range."""
    torch.cuda.nvtx.range_push("step")
    with torch.no_grad():
        x = host_input.to("cuda", non_blocking=True)
        y = model(x)
        static_input.copy_(y)
        graph.replay()
        result = static_output.sum().to("cpu")
    torch.cuda.synchronize()
    torch.cuda.nvtx.range_pop()
    return float(result)


def loop(profiler=None):
    """WARMUP iterations, then MEASURED inside profiler.start()/stop() and, when
    given, inside `profiler` (a torch.profiler.profile); returns figures."""
    state = build()
    for _ in range(WARMUP):
        iteration(*state)
    if profiler is not None:
        profiler.start()
    torch.cuda.profiler.start()
    begin = time.perf_counter()
    for _ in range(MEASURED):
        iteration(*state)
    seconds = time.perf_counter() - begin
    torch.cuda.profiler.stop()
    if profiler is not None:
        profiler.stop()
    return {"iterations": MEASURED, "ms_per_iteration": seconds * 1e3 / MEASURED}


def torch_profiler(outdir, worker):
    """A torch.profiler recording CPU and CUDA activity into `outdir` as gzip."""
    from torch.profiler import ProfilerActivity, profile, tensorboard_trace_handler

    return profile(
        activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA],
        on_trace_ready=tensorboard_trace_handler(str(outdir), worker_name=worker, use_gzip=True),
    )


def tiny_launches(x, n):
    """n launches of a one-element in-place add: launch-bound, GPU nearly idle."""
    for _ in range(n):
        x.add_(1.0)


def launch_bound(n, outdir=None):
    x = torch.zeros(1, device="cuda")
    tiny_launches(x, 10_000)  # warm up: first launches, caching allocator
    torch.cuda.synchronize()
    profiler = torch_profiler(outdir, "launch_bound") if outdir else None
    if profiler is not None:
        profiler.start()
    torch.cuda.profiler.start()
    begin = time.perf_counter()
    tiny_launches(x, n)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - begin
    torch.cuda.profiler.stop()
    if profiler is not None:
        profiler.stop()
    return {"launches": n, "us_per_launch": seconds * 1e6 / n}


def traces_in(outdir):
    return set(Path(outdir).glob(f"*{TRACE_SUFFIX}"))


def flush(n, outdir, torch_side):
    """n launches in one window; seconds from the window's stop until its trace
    file is complete. cutrace writes `<name>.pt.trace.json.gz` through a temporary
    file renamed into place, so the file's appearance is its completion."""
    x = torch.zeros(1, device="cuda")
    tiny_launches(x, 10_000)
    torch.cuda.synchronize()
    before = traces_in(outdir)
    profiler = torch_profiler(outdir, "flush") if torch_side else None
    if profiler is not None:
        profiler.start()
    torch.cuda.profiler.start()
    begin = time.perf_counter()
    tiny_launches(x, n)
    torch.cuda.synchronize()
    launched = time.perf_counter()
    torch.cuda.profiler.stop()
    if profiler is not None:
        profiler.stop()  # stop, then on_trace_ready: the export
    while not traces_in(outdir) - before:
        if time.perf_counter() - launched > 600:
            raise SystemExit(f"no trace in {outdir} 600 s after stop")
        time.sleep(0.005)
    done = time.perf_counter()
    return {
        "launches": n,
        "launch_seconds": launched - begin,
        "stop_to_trace_seconds": done - launched,
    }


def main(argv):
    if not torch.cuda.is_available():
        raise SystemExit("workload.py: no CUDA device")
    mode, args = (argv[1], argv[2:]) if len(argv) > 1 else ("", [])
    if mode == "plain" and not args:
        figures = loop()
    elif mode == "torch-profiler" and len(args) == 1:
        outdir = Path(args[0])
        outdir.mkdir(parents=True, exist_ok=True)
        profiler = torch_profiler(outdir, "torch")
        figures = loop(profiler)
        table = profiler.key_averages().table(sort_by="self_cuda_time_total", row_limit=-1)
        (outdir / "torch_table.txt").write_text(table + "\n")
    elif mode == "launch-bound" and len(args) in (1, 2):
        figures = launch_bound(int(args[0]), args[1] if len(args) == 2 else None)
    elif mode == "flush" and (len(args) == 2 or (len(args) == 3 and args[2] == "torch")):
        Path(args[1]).mkdir(parents=True, exist_ok=True)
        figures = flush(int(args[0]), args[1], len(args) == 3)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    figures["mode"] = mode
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
