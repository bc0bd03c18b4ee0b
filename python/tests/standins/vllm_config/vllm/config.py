"""Stand-in for vLLM's ``vllm.config.ProfilerConfig`` (see ../../README.md): the
fields ``cutrace.vllm`` and the base class read, filled from the variables that
vLLM still honours."""

import os
from dataclasses import dataclass, field
from typing import Optional


def _int(name: str) -> int:
    return int(os.environ.get(name, "0"))


@dataclass
class ProfilerConfig:
    """The profiler settings of a vLLM engine."""

    delay_iterations: int = field(default_factory=lambda: _int("VLLM_PROFILER_DELAY_ITERS"))
    max_iterations: int = field(default_factory=lambda: _int("VLLM_PROFILER_MAX_ITERS"))
    torch_profiler_dir: Optional[str] = field(
        default_factory=lambda: os.environ.get("VLLM_TORCH_PROFILER_DIR")
    )
