"""The package's ``cutrace`` command behaves as the cargo-built executable: the
same output and exit codes for every subcommand, ``cutrace run`` finding the
package's library without ``CUTRACE_LIB``, forwarding signals, and handing the
traced command the same environment and signal dispositions."""

from __future__ import annotations

import os
import signal
import subprocess
import sysconfig
from collections.abc import Sequence
from pathlib import Path

import pytest
from conftest import StandIns, clean_environment, installed_cutrace, scenario
from test_profiler import names, result


def run(program: Path, args: Sequence[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(program), *args], env=env, capture_output=True, text=True, timeout=120
    )


def both(
    stand_ins: StandIns, args: Sequence[str], env: dict[str, str]
) -> list[subprocess.CompletedProcess]:
    """``cutrace ARGS`` from the package and from cargo."""
    return [run(installed_cutrace(), args, env), run(stand_ins.cargo_cutrace, args, env)]


@pytest.fixture(scope="module")
def a_trace(stand_ins: StandIns, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A trace written through the Python API on the test double."""
    out = tmp_path_factory.mktemp("window")
    env = clean_environment(CUTRACE_CUPTI_LIB=str(stand_ins.cupti))
    trace: str = result(scenario("window", str(out), env=env))["windows"][0]["trace"]
    return trace


@pytest.mark.parametrize(
    "args",
    [
        ["--version"],
        ["--help"],
        ["run", "--help"],
        ["report", "--help"],
        ["bogus"],
        ["report"],
        ["report", "/nonexistent/trace.json.gz"],
        ["report", "--sort", "bogus", "TRACE"],
        ["report", "TRACE"],
        ["report", "--format", "json", "--row-limit", "3", "TRACE"],
        ["convert", "TRACE", "--from-us", "5", "--to-us", "1"],
    ],
)
def test_every_subcommand_answers_as_the_cargo_build(
    stand_ins: StandIns, a_trace: str, args: list[str], traced_env: dict
) -> None:
    args = [a_trace if arg == "TRACE" else arg for arg in args]
    package, cargo = both(stand_ins, args, traced_env)
    assert (package.returncode, package.stdout, package.stderr) == (
        cargo.returncode,
        cargo.stdout,
        cargo.stderr,
    )


def test_convert_writes_the_same_file(
    stand_ins: StandIns, a_trace: str, tmp_path: Path, traced_env: dict
) -> None:
    outputs = [tmp_path / "package.json", tmp_path / "cargo.json"]
    for program, output in zip([installed_cutrace(), stand_ins.cargo_cutrace], outputs):
        done = run(program, ["convert", a_trace, "-o", str(output)], traced_env)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"{output}: ")
    # The file names itself (traceName); all else is the same.
    written = [o.read_text().replace(str(o), "OUTPUT") for o in outputs]
    assert written[0] == written[1]


def test_doctor_finds_the_package_library(stand_ins: StandIns, traced_env: dict) -> None:
    package, cargo = both(stand_ins, ["doctor"], traced_env)
    assert package.returncode == cargo.returncode == 0, package.stdout
    library = (
        Path(sysconfig.get_path("platlib")) / "cutrace" / "_native" / "cutrace" / "libcutrace.so"
    )
    [line] = [line for line in package.stdout.splitlines() if line.startswith("injection")]
    assert f"{library} exports InitializeInjection" in line, package.stdout
    others = [line for line in package.stdout.splitlines() if not line.startswith("injection")]
    expected = [line for line in cargo.stdout.splitlines() if not line.startswith("injection")]
    assert others == expected


def test_run_traces_with_the_package_library_and_passes_the_exit_code_on(
    stand_ins: StandIns, tmp_path: Path, traced_env: dict
) -> None:
    assert "CUTRACE_LIB" not in traced_env
    args = ["run", "-o", str(tmp_path), "--", str(stand_ins.program)]
    args += ["kernel", "gemm", "100", "kernel", "relu", "20", "exit", "3"]
    done = run(installed_cutrace(), args, traced_env)
    assert done.returncode == 3, done.stderr
    [trace] = sorted(tmp_path.glob("*.pt.trace.json.gz"))
    assert names(str(trace), "kernel") == ["gemm", "relu"]
    assert f"    {trace.name}\n" in done.stderr
    assert (tmp_path / "profiler_out_0.txt").is_file()


def running(stand_ins: StandIns, out: Path, script: Sequence[str], env: dict) -> subprocess.Popen:
    """``cutrace run`` of the stand-in program, once it printed ``ready``."""
    child = subprocess.Popen(
        [str(installed_cutrace()), "run", "-o", str(out), "--", str(stand_ins.program), *script],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline() == "ready\n"
    return child


def test_a_forwarded_signal_lets_the_program_finish_its_trace(
    stand_ins: StandIns, tmp_path: Path, traced_env: dict
) -> None:
    script = ["exit-on-signal", "7", "kernel", "k", "10", "ready", "wait-signal"]
    child = running(stand_ins, tmp_path, script, traced_env)
    os.kill(child.pid, signal.SIGINT)
    _, stderr = child.communicate(timeout=60)
    assert child.returncode == 7, stderr
    [trace] = sorted(tmp_path.glob("*.pt.trace.json.gz"))
    assert names(str(trace), "kernel") == ["k"]


def test_death_by_a_forwarded_signal_is_128_plus_the_signal(
    stand_ins: StandIns, tmp_path: Path, traced_env: dict
) -> None:
    child = running(stand_ins, tmp_path, ["ready", "wait-signal"], traced_env)
    os.kill(child.pid, signal.SIGTERM)
    _, stderr = child.communicate(timeout=60)
    assert child.returncode == 128 + signal.SIGTERM, stderr


def test_the_traced_command_gets_what_the_cargo_build_gives_it(
    stand_ins: StandIns, tmp_path: Path
) -> None:
    # A bare environment, as a container's: no locale, which Python would set.
    env = {
        "PATH": os.environ["PATH"],
        "CUTRACE_CUPTI_LIB": str(stand_ins.cupti),
        "CUTRACE_CUDA_LIB": str(stand_ins.libcuda),
    }
    # (SigBlk is left out: the shell blocks signals while it forks grep.)
    show = "env | sort; grep -E '^Sig(Ign|Cgt)' /proc/$$/status"
    seen = []
    for program in (installed_cutrace(), stand_ins.cargo_cutrace):
        done = run(program, ["run", "-o", str(tmp_path), "--", "sh", "-c", show], env)
        assert done.returncode == 0, done.stderr
        # The two differ only in the library injected and the run's own log file.
        own = ("CUDA_INJECTION64_PATH=", "CUTRACE_RUN_LOG=")
        seen.append([line for line in done.stdout.splitlines() if not line.startswith(own)])
    assert seen[0] == seen[1]
    assert not any(line.startswith("LC_CTYPE=") for line in seen[0]), seen[0]
