#!/usr/bin/env python3
"""Per-file counts of a peer's own suite run against a compatibility layer.

  compat-report.py JUNIT_XML INTERNALS_TXT

Prints passed / failed / skipped per test file, then fails (exit 1) when a
test failed that INTERNALS_TXT does not list as checking the peer's
internals, or when the run holds no tests. Listed tests that pass are
reported, not failed.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path


def listed(path: str) -> dict[str, str]:
    out = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            test, _, why = line.partition("|")
            out[test.strip()] = why.strip()
    return out


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    internals = listed(sys.argv[2])
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    failed = []
    for case in ET.parse(sys.argv[1]).getroot().iter("testcase"):
        file = (case.get("classname") or "").replace(".", "/") + ".py"
        test = f"{file}::{case.get('name')}"
        if case.find("skipped") is not None:
            counts[file][2] += 1
        elif case.find("failure") is not None or case.find("error") is not None:
            counts[file][1] += 1
            failed.append(test)
        else:
            counts[file][0] += 1
    if not counts:
        sys.exit("compat-report: no tests ran")
    print("| file | passed | failed | skipped |\n|---|---|---|---|")
    for file, (p, f, s) in sorted(counts.items()):
        print(f"| {file} | {p} | {f} | {s} |")
    total = [sum(c[i] for c in counts.values()) for i in range(3)]
    print(f"| all | {total[0]} | {total[1]} | {total[2]} |")
    for test in failed:
        if test in internals:
            print(f"expected (PyMiniRacer internals): {test}: {internals[test]}")
    for test in sorted(set(internals) - set(failed)):
        print(f"listed as internals but passed: {test}")
    unexpected = [t for t in failed if t not in internals]
    if unexpected:
        sys.exit("compat-report: failed:\n  " + "\n  ".join(unexpected))


if __name__ == "__main__":
    main()
