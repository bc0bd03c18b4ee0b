"""What every test of the Python package needs: the installed package (never the
source tree), the test stand-ins for the CUDA driver and CUPTI built as the
Rust end-to-end tests build them (``tests/integration/util.rs``), and a way to
run a scenario of ``scenarios.py`` in a process of its own.

CUPTI's subscription and the tracer are process-global, so each scenario runs
in a fresh interpreter, as each Rust end-to-end test runs a fresh program.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

#: The repository, which holds the stand-ins' sources.
REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent

#: Variables of the test's own environment that would change what cutrace does,
#: besides every ``CUTRACE_*`` and ``VLLM_*`` one (see ``clean_environment``).
INHERITED = (
    "CUDA_INJECTION64_PATH",
    "NVTX_INJECTION64_PATH",
    "RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "PYTHONPATH",
)


@dataclass(frozen=True)
class StandIns:
    """The built programs and libraries the tests run with."""

    #: The CUPTI test double, ``libcupti_test_double.so``.
    cupti: Path
    #: The stand-in for ``libcuda.so.1``: its ``cuInit`` injects
    #: ``CUDA_INJECTION64_PATH`` as the real driver does.
    libcuda: Path
    #: ``examples/fake_cuda_program.rs``: plays a CUDA program's CUPTI records.
    program: Path
    #: ``libcutrace.so`` built by cargo: another file than the package's.
    cargo_library: Path
    #: The ``cutrace`` executable built by cargo, to compare the package's with.
    cargo_cutrace: Path


@pytest.fixture(scope="session")
def stand_ins(tmp_path_factory: pytest.TempPathFactory) -> StandIns:
    """Builds the stand-ins with cargo and cc (quick when CI built them already)."""
    subprocess.run(
        [
            "cargo",
            "build",
            "--quiet",
            "-p",
            "cutrace",
            "-p",
            "cupti-test-double",
            "--lib",
            "--bin",
            "cutrace",
            "--example",
            "fake_cuda_program",
        ],
        cwd=REPO,
        check=True,
    )
    build = REPO / "target" / "debug"
    libcuda = tmp_path_factory.mktemp("fake-driver") / "libcuda.so.1"
    subprocess.run(
        [
            "cc",
            "-std=c11",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-shared",
            "-fPIC",
            "-o",
            str(libcuda),
            str(REPO / "tests" / "support" / "fake_libcuda.c"),
            "-ldl",
        ],
        check=True,
    )
    return StandIns(
        cupti=build / "libcupti_test_double.so",
        libcuda=libcuda,
        program=build / "examples" / "fake_cuda_program",
        cargo_library=build / "libcutrace.so",
        cargo_cutrace=build / "cutrace",
    )


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without the variables that change cutrace, plus
    ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in INHERITED and not k.startswith(("CUTRACE_", "VLLM_"))
    }
    env.update(extra)
    return env


@pytest.fixture
def traced_env(stand_ins: StandIns) -> dict[str, str]:
    """An environment with the fake driver and the CUPTI test double in place."""
    return clean_environment(
        CUTRACE_CUPTI_LIB=str(stand_ins.cupti), CUTRACE_CUDA_LIB=str(stand_ins.libcuda)
    )


def installed_cutrace() -> Path:
    """The package's ``cutrace`` console script, beside this interpreter."""
    return Path(sysconfig.get_path("scripts")) / "cutrace"


def scenario(
    name: str,
    *args: str,
    env: dict[str, str],
    pythonpath: Sequence[Path] | None = None,
) -> subprocess.CompletedProcess:
    """Runs ``scenarios.py NAME ARGS`` in a fresh interpreter of this venv."""
    env = dict(env)
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(str(p) for p in pythonpath)
    return subprocess.run(
        [sys.executable, str(HERE / "scenarios.py"), name, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
