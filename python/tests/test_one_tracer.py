"""A process injected by ``cutrace run`` that also imports ``cutrace`` has one
tracer, in whichever order CUDA initialises and the Profiler is made, and
whether the injected library is the package's own or another cutrace build."""

from __future__ import annotations

import sysconfig
from pathlib import Path

import pytest
from conftest import StandIns, scenario
from test_profiler import names, result


def packaged_library() -> Path:
    return Path(sysconfig.get_path("platlib")) / "cutrace" / "_native" / "cutrace" / "libcutrace.so"


@pytest.fixture(params=["packaged", "cargo"])
def injected(request: pytest.FixtureRequest, stand_ins: StandIns) -> Path:
    """The library CUDA_INJECTION64_PATH names: the package's own (the pip
    ``cutrace run``), or another file (a cargo build)."""
    return packaged_library() if request.param == "packaged" else stand_ins.cargo_library


def injected_env(env: dict[str, str], library: Path, output_dir: Path) -> dict[str, str]:
    """What ``cutrace run -o OUTPUT_DIR`` sets for the traced command."""
    return dict(env, CUDA_INJECTION64_PATH=str(library), CUTRACE_OUTPUT_DIR=str(output_dir))


def traces(directory: Path) -> list:
    return sorted(str(p) for p in directory.glob("*.pt.trace.json.gz"))


def test_a_profiler_made_after_the_injection_drives_its_tracer(
    tmp_path: Path, traced_env: dict, injected: Path
) -> None:
    out = tmp_path / "run"
    env = injected_env(traced_env, injected, out)
    process = scenario("injected_then_profiler", str(tmp_path / "mine"), env=env)
    facts = result(process)
    [warning] = facts["warnings"]
    assert "already has a tracer" in warning, warning
    assert facts["traced"] is True
    assert "untraced" not in process.stderr and "tracing off" not in process.stderr
    # The injected tracer's window (cutrace run's settings: the whole run, into
    # its output directory), holding the Profiler's steps and ranges.
    assert not (tmp_path / "mine").exists()
    [trace] = traces(out)
    assert names(trace, "kernel") == ["k1", "k2"]
    ranges = names(trace, "user_annotation")
    assert {"ProfilerStep#1", "ProfilerStep#2"} <= set(ranges), ranges
    assert ranges.count("forward") == 2, ranges


def test_an_injection_after_a_profiler_leaves_its_tracer_alone(
    tmp_path: Path, traced_env: dict, injected: Path
) -> None:
    env = injected_env(traced_env, injected, tmp_path / "run")
    process = scenario("profiler_then_injected", str(tmp_path / "mine"), env=env)
    facts = result(process)
    assert facts["warnings"] == []
    notes = [line for line in process.stderr.splitlines() if "already has a tracer" in line]
    assert len(notes) == 1, process.stderr
    assert "untraced" not in process.stderr
    # The Profiler's window: its directory, name and max_iters.
    [window] = facts["windows"]
    assert Path(window["trace"]).parent == tmp_path / "mine"
    assert Path(window["trace"]).name.startswith("first.")
    assert names(window["trace"], "kernel") == ["k1", "k2"]
    assert traces(tmp_path / "run") == []


def test_ranges_reach_the_injected_tracer_without_a_profiler(
    tmp_path: Path, traced_env: dict, injected: Path
) -> None:
    out = tmp_path / "run"
    result(scenario("annotate_under_injection", env=injected_env(traced_env, injected, out)))
    [trace] = traces(out)
    assert names(trace, "user_annotation").count("phase") == 2
    assert names(trace, "kernel") == ["k0", "k1"]


def test_an_injected_library_that_cannot_be_opened_leaves_the_package_its_own(
    tmp_path: Path, traced_env: dict
) -> None:
    broken = tmp_path / "libcutrace.so"
    broken.write_text("not a library")
    env = injected_env(traced_env, broken, tmp_path / "run")
    facts = result(scenario("profiler_made", str(tmp_path / "mine"), env=env))
    [warning] = facts["warnings"]
    assert f"cannot open {broken}" in warning, warning
    assert facts["traced"] is True
