"""The tests run the installed package, and it holds what a wheel must."""

from __future__ import annotations

import subprocess
import sysconfig
from pathlib import Path

import cutrace
from conftest import REPO, installed_cutrace


def test_the_package_is_the_installed_one_not_the_source_tree() -> None:
    package = Path(cutrace.__file__).resolve().parent
    assert package == Path(sysconfig.get_path("platlib")).resolve() / "cutrace"
    assert package != REPO / "python" / "cutrace"


def test_the_package_holds_its_library_and_its_type_marker() -> None:
    package = Path(cutrace.__file__).parent
    assert (package / "_native" / "cutrace" / "libcutrace.so").is_file()
    assert (package / "py.typed").is_file()


def test_the_command_is_on_the_path_of_the_environment_and_of_this_version() -> None:
    done = subprocess.run(
        [str(installed_cutrace()), "--version"], capture_output=True, text=True, check=True
    )
    assert done.stdout == f"cutrace {cutrace.__version__}\n"
