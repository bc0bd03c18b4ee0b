"""``cutrace.vllm.CutraceProfilerWrapper``: its windows follow vLLM's own
delay/max-iteration counting, and it writes where vLLM's torch wrapper would.

It runs against vLLM's real ``WorkerProfiler`` when vLLM is installed, and
against the stand-ins of ``standins/`` (one per generation of vLLM's base class)
everywhere: vLLM needs torch, which CI does not install (standins/README.md)."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest
from conftest import HERE, StandIns, installed_cutrace, scenario
from test_profiler import names, result

STANDINS = HERE / "standins"


def vllm_installed() -> bool:
    return importlib.util.find_spec("vllm") is not None


BASES = [
    pytest.param(STANDINS / "vllm_env", "vllm.profiler.gpu_profiler.WorkerProfiler", id="env"),
    pytest.param(STANDINS / "vllm_config", "vllm.profiler.wrapper.WorkerProfiler", id="config"),
    pytest.param(
        None,
        None,
        id="installed-vllm",
        marks=pytest.mark.skipif(not vllm_installed(), reason="vLLM is not installed"),
    ),
]


def worker(base_path: Path | None, env: dict[str, str], out: Path, delay: int, most: int) -> dict:
    env = dict(
        env,
        VLLM_TORCH_PROFILER_DIR=str(out),
        VLLM_PROFILER_DELAY_ITERS=str(delay),
        VLLM_PROFILER_MAX_ITERS=str(most),
    )
    paths = [base_path] if base_path is not None else None
    return result(scenario("vllm_worker", env=env, pythonpath=paths))


def kernels_of(windows: list[dict]) -> list[list[str]]:
    return [names(w["trace"], "kernel") for w in windows]


@pytest.mark.parametrize("base_path, base", BASES)
def test_windows_follow_vllms_delay_and_max_iterations(
    base_path: Path | None, base: str | None, tmp_path: Path, traced_env: dict
) -> None:
    facts = worker(base_path, traced_env, tmp_path, delay=2, most=3)
    assert facts["base"] == base if base is not None else facts["base"].startswith("vllm.")
    # vLLM starts at the 2nd step of each /start_profile (before batch 2) and
    # stops at the step that passes 3 profiled ones (before batch 5).
    assert kernels_of(facts["windows"]) == [
        ["c1_b2", "c1_b3", "c1_b4"],
        ["c2_b2", "c2_b3", "c2_b4"],
    ]
    for window in facts["windows"]:
        ranges = names(window["trace"], "user_annotation")
        steps = sorted(r for r in ranges if r.startswith("ProfilerStep#"))
        assert steps == ["ProfilerStep#1", "ProfilerStep#2", "ProfilerStep#3"], ranges
        assert len([r for r in ranges if r.startswith("execute_")]) == 3, ranges


@pytest.mark.parametrize("base_path, base", BASES)
def test_without_limits_a_window_runs_from_start_to_stop_profile(
    base_path: Path | None, base: str | None, tmp_path: Path, traced_env: dict
) -> None:
    facts = worker(base_path, traced_env, tmp_path, delay=0, most=0)
    assert kernels_of(facts["windows"]) == [
        [f"c{cycle}_b{batch}" for batch in range(1, 9)] for cycle in (1, 2)
    ]


@pytest.mark.parametrize("base_path, base", BASES)
def test_files_go_where_vllms_torch_wrapper_writes_them(
    base_path: Path | None, base: str | None, tmp_path: Path, traced_env: dict
) -> None:
    facts = worker(base_path, traced_env, tmp_path, delay=1, most=2)
    for window in facts["windows"]:
        trace = Path(window["trace"])
        assert trace.parent == tmp_path
        assert trace.name.startswith("engine-rank-1.") and trace.name.endswith(".pt.trace.json.gz")
        assert Path(window["table_file"]) == tmp_path / "profiler_out_1.txt"
    assert (tmp_path / "profiler_out_1.txt").read_text() == facts["windows"][-1]["table"] + "\n"


def test_without_vllm_the_module_says_what_it_needs(traced_env: dict) -> None:
    if vllm_installed():
        pytest.skip("vLLM is installed here")
    process = scenario("vllm_worker", env=traced_env)
    assert process.returncode != 0
    assert "cutrace.vllm needs vLLM" in process.stderr, process.stderr


def zero_code_run(stand_ins: StandIns, out: Path, env: dict[str, str], options: list[str]) -> list:
    """docs/vllm.md's zero-code path: vLLM's variables set, `cutrace run -c
    cudaProfilerApi`, and a program whose cudaProfilerStart/Stop stand for the
    calls of vLLM's CUDA profiler (made when vLLM's counting says)."""
    env = dict(env, VLLM_PROFILER_DELAY_ITERS="10", VLLM_PROFILER_MAX_ITERS="5")
    script = ["kernel", "before", "10", "profiler-start", "kernel", "counted", "10"]
    script += ["profiler-stop", "kernel", "after", "10"]
    args = ["run", "-o", str(out), "-c", "cudaProfilerApi", *options, "--"]
    done = subprocess.run(
        [str(installed_cutrace()), *args, str(stand_ins.program), *script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return [names(str(t), "kernel") for t in sorted(out.glob("*.pt.trace.json.gz"))]


def test_the_zero_code_path_records_between_vllms_profiler_calls(
    stand_ins: StandIns, tmp_path: Path, traced_env: dict
) -> None:
    # vLLM's variables do not count again: it counted before cudaProfilerStart.
    assert zero_code_run(stand_ins, tmp_path, traced_env, []) == [["counted"]]


def test_cutraces_own_counts_still_apply_between_the_profiler_calls(
    stand_ins: StandIns, tmp_path: Path, traced_env: dict
) -> None:
    # No steps come, so a delay given to cutrace itself never ends.
    assert zero_code_run(stand_ins, tmp_path, traced_env, ["--delay-iters", "10"]) == []
