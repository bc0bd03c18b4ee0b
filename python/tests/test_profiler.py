"""The Python API on the CUPTI test double: windows, annotations, tables, bad
configurations and a process that cannot be traced."""

from __future__ import annotations

import gzip
import json
import subprocess
from pathlib import Path
from typing import Any

from conftest import installed_cutrace, scenario


def result(process: subprocess.CompletedProcess) -> dict[str, Any]:
    assert process.returncode == 0, process.stderr
    facts: dict[str, Any] = json.loads(process.stdout.splitlines()[-1])
    return facts


def events(trace: str) -> list[dict[str, Any]]:
    with gzip.open(trace, "rt") as file:
        loaded: list[dict[str, Any]] = json.load(file)["traceEvents"]
    return loaded


def names(trace: str, category: str) -> list[str]:
    """The names of the trace's complete events of ``category``, in time order."""
    chosen: list[tuple[float, str]] = [
        (float(e["ts"]), e["name"])
        for e in events(trace)
        if e.get("ph") == "X" and e.get("cat") == category
    ]
    return [name for _, name in sorted(chosen)]


def test_a_window_holds_the_iterations_asked_for(tmp_path: Path, traced_env: dict) -> None:
    facts = result(scenario("window", str(tmp_path), env=traced_env))
    assert facts["traced"] is True
    assert facts["traced_after_shutdown"] is False
    [window] = facts["windows"]
    trace = window["trace"]
    assert Path(trace).parent == tmp_path
    assert Path(trace).name.startswith("py.") and trace.endswith(".pt.trace.json.gz")
    # delay_iters=1, max_iters=2: iterations 2 and 3, and their kernels only.
    assert names(trace, "kernel") == ["gemm_2", "loss_2", "gemm_3", "loss_3"]
    ranges = names(trace, "user_annotation")
    assert sorted(r for r in ranges if r.startswith("ProfilerStep#")) == [
        "ProfilerStep#2",
        "ProfilerStep#3",
    ]
    assert ranges.count("forward") == 2, ranges
    assert ranges.count("loss") == 2, ranges


def test_annotations_own_the_kernels_launched_inside(tmp_path: Path, traced_env: dict) -> None:
    facts = result(scenario("window", str(tmp_path), env=traced_env))
    [rows] = facts["rows"]
    by_name = {row["name"]: row for row in rows}
    assert by_name["forward"]["kind"] == "user_annotation"
    assert by_name["forward"]["calls"] == 2
    assert by_name["forward"]["cuda_total_us"] == 200.0
    assert by_name["loss"]["cuda_total_us"] == 10.0
    assert by_name["gemm_2"]["kind"] == "kernel"


def test_the_table_is_the_file_and_its_rows_are_cutrace_reports(
    tmp_path: Path, traced_env: dict
) -> None:
    facts = result(scenario("window", str(tmp_path), env=traced_env))
    [window] = facts["windows"]
    assert Path(window["table_file"]) == tmp_path / "profiler_out_0.txt"
    assert Path(window["table_file"]).read_text() == window["table"] + "\n"
    assert "gemm_2" in window["table"]
    command = subprocess.run(
        [
            str(installed_cutrace()),
            "report",
            "--format",
            "json",
            "--row-limit",
            "-1",
            window["trace"],
        ],
        capture_output=True,
        text=True,
        env=traced_env,
    )
    assert command.returncode == 0, command.stderr
    assert facts["rows"] == [json.loads(command.stdout)]


def test_as_a_context_manager_the_window_is_written_when_the_block_ends(
    tmp_path: Path, traced_env: dict
) -> None:
    facts = result(scenario("context_manager", str(tmp_path), env=traced_env))
    [window] = facts["windows"]
    assert names(window["trace"], "kernel") == ["k0", "k1", "k2"]
    # shutdown() released CUPTI.
    assert facts["subscribed"] is False


def test_keys_left_out_come_from_the_environment_as_under_cutrace_run(
    tmp_path: Path, traced_env: dict
) -> None:
    env = dict(traced_env, CUTRACE_OUTPUT_DIR=str(tmp_path / "run"))
    facts = result(scenario("context_manager", "-", env=env))
    [window] = facts["windows"]
    assert Path(window["trace"]).parent == tmp_path / "run"
    # A key given wins over the environment's.
    facts = result(scenario("context_manager", str(tmp_path / "mine"), env=env))
    assert Path(facts["windows"][0]["trace"]).parent == tmp_path / "mine"


def test_a_wrong_key_or_value_is_a_value_error_naming_it(traced_env: dict) -> None:
    facts = result(scenario("bad_config", env=traced_env))
    unknown, wrong_type, incompatible, not_json, bad_item = facts["messages"]
    assert "max_iter" in unknown and "unknown field" in unknown
    assert "max_iters" in wrong_type and "three" in wrong_type
    assert "repeat" in incompatible and "max_iters" in incompatible
    assert "output_dir" in not_json
    assert "activities" in bad_item and "gpu" in bad_item
    # Refused before any CUDA (here: CUPTI) work.
    assert facts["subscribed"] is False


def test_without_cupti_one_warning_and_every_call_does_nothing(
    tmp_path: Path, traced_env: dict
) -> None:
    env = dict(traced_env, CUTRACE_CUPTI_LIB=str(tmp_path / "no-such-libcupti.so"))
    facts = result(scenario("untraced", str(tmp_path / "out"), env=env))
    [warning] = facts["warnings"]
    assert warning.startswith("CutraceWarning: cutrace: tracing off"), warning
    assert "no-such-libcupti.so" in warning
    assert facts["later_warnings"] == []
    assert facts["traced"] is False
    assert facts["windows"] == []
    assert not (tmp_path / "out").exists()


def test_with_another_cupti_client_one_warning_and_the_program_runs_on(
    tmp_path: Path, traced_env: dict
) -> None:
    # A first subscriber (what nsys or torch.profiler would be) takes CUPTI.
    first = (
        "import ctypes, os, runpy, sys\n"
        "d = ctypes.CDLL(os.environ['CUTRACE_CUPTI_LIB'])\n"
        "d.cupti_double_report_multiple_subscribers(True)\n"
        "sys.argv = sys.argv[1:]\n"
        "runpy.run_path(sys.argv[0], run_name='__main__')\n"
    )
    scenarios = str(Path(__file__).parent / "scenarios.py")
    process = subprocess.run(
        [__import__("sys").executable, "-c", first, scenarios, "untraced", str(tmp_path)],
        env=traced_env,
        capture_output=True,
        text=True,
    )
    facts = result(process)
    [warning] = facts["warnings"]
    assert "another CUPTI client" in warning, warning
    assert facts["traced"] is False
