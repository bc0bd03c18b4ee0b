#!/usr/bin/env python3
"""Keeps the figures of a GPU run in one JSON file (scripts/gpu/run).

Usage:
  figures.py set FILE KEY VALUE      figures[KEY] = VALUE (JSON if it parses, else text)
  figures.py take FILE KEY           figures[KEY] = the last line of stdin that is a
                                     JSON object (what the workloads print)
  figures.py tests FILE KEY          figures[KEY] = passed/failed/ignored counts summed
                                     over the libtest result lines on stdin, and the
                                     number of lines saying `skipped:`
  figures.py kernels FILE KEY        figures[KEY] = number of kernel calls in the
                                     `cutrace report --format json` rows on stdin

KEY may be dotted (`steps.tests`) to set a value inside an object. The file is
rewritten through a temporary file renamed into place, so a run killed at any time
leaves a readable file.
"""

import json
import os
import re
import sys
import tempfile


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def store(path, figures):
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".figures.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(figures, f, indent=2, sort_keys=True)
        f.write("\n")
    os.chmod(tmp, 0o644)  # mkstemp's file is private; the figures are not
    os.replace(tmp, path)


def put(figures, key, value):
    *parents, last = key.split(".")
    node = figures
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


def last_json_object(text):
    for line in reversed(text.splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    raise SystemExit("figures.py: no JSON object on stdin")


RESULT = re.compile(r"test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored")


def test_counts(text):
    counts = {"passed": 0, "failed": 0, "ignored": 0, "binaries": 0}
    for match in RESULT.finditer(text):
        counts["binaries"] += 1
        for name, number in zip(("passed", "failed", "ignored"), match.groups()):
            counts[name] += int(number)
    counts["skipped"] = sum(1 for line in text.splitlines() if "skipped:" in line)
    return counts


def kernel_calls(text):
    return sum(row["calls"] for row in json.loads(text) if row["kind"] == "kernel")


def main(argv):
    if len(argv) not in (4, 5):
        print(__doc__, file=sys.stderr)
        return 2
    command, path, key = argv[1:4]
    if command == "set" and len(argv) == 5:
        try:
            value = json.loads(argv[4])
        except ValueError:
            value = argv[4]
    elif command == "take" and len(argv) == 4:
        value = last_json_object(sys.stdin.read())
    elif command == "tests" and len(argv) == 4:
        value = test_counts(sys.stdin.read())
    elif command == "kernels" and len(argv) == 4:
        value = kernel_calls(sys.stdin.read())
    else:
        print(__doc__, file=sys.stderr)
        return 2
    figures = load(path)
    put(figures, key, value)
    store(path, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
