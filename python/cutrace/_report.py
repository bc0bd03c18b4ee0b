"""``report``: a trace file's key-averages rows, for notebooks."""

from __future__ import annotations

import errno
import json
import os
from typing import TypedDict

from cutrace import _library


class ReportRow(TypedDict):
    """One row of the key-averages table, as ``cutrace report --format json``
    prints it; times in microseconds."""

    name: str
    kind: str
    calls: int
    self_cuda_us: float
    cuda_total_us: float
    self_cpu_us: float
    cpu_total_us: float


def report(
    path: str | os.PathLike[str],
    sort_by: str = "self_cuda_time_total",
    row_limit: int | None = 100,
) -> list[ReportRow]:
    """Reads any trace file, cutrace's or torch.profiler's (Kineto/Chrome JSON,
    gzip or plain), and returns its key-averages rows: what ``cutrace report
    --format json`` prints, as Python objects.

    Args:
        path: The trace file.
        sort_by: The column to sort by, descending: ``self_cuda_time_total``,
            ``cuda_time_total``, ``self_cpu_time_total``, ``cpu_time_total`` or
            ``count``.
        row_limit: How many rows; ``None`` (or -1) for all.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is not a trace, or ``sort_by``/``row_limit`` is not
            one of the values above.
    """
    library = _library.packaged()
    limit = -1 if row_limit is None else row_limit
    pointer = library.cutrace_report_json(os.fsencode(path), sort_by.encode(), limit)
    text = _library.text(pointer)
    if not text:
        message = _library.last_error(library, "cutrace_report_json")
        if not os.path.exists(path):
            raise FileNotFoundError(errno.ENOENT, message, os.fspath(path))
        raise ValueError(message)
    rows: list[ReportRow] = json.loads(text)
    return rows
