#!/usr/bin/env python3
"""Per-file counts of a peer's own suite run against a compatibility layer.

  compat-report.py JUNIT_XML INTERNALS_TXT
  compat-report.py --minitest OUT_DIR INTERNALS_TXT

The second form reads minitest's verbose output (`Class#test = 0.01 s = .`),
one `<test file>.out` per file in OUT_DIR (mini_racer's suite: minitest
has no JUnit reporter without a gem).

Prints passed / failed / skipped per test file, then fails (exit 1) when a
test failed that INTERNALS_TXT does not list as checking the peer's
internals, or when the run holds no tests. Listed tests that pass are
reported, not failed.
"""

from __future__ import annotations

import re
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


def junit(path: str) -> list[tuple[str, str, str]]:
    """(file, test, outcome) per test case; outcome is pass, fail or skip."""
    out = []
    for case in ET.parse(path).getroot().iter("testcase"):
        file = (case.get("classname") or "").replace(".", "/") + ".py"
        if case.find("skipped") is not None:
            outcome = "skip"
        elif case.find("failure") is not None or case.find("error") is not None:
            outcome = "fail"
        else:
            outcome = "pass"
        out.append((file, f"{file}::{case.get('name')}", outcome))
    return out


MINITEST_LINE = re.compile(r"^(\S+#\S+) = [0-9.]+ s = ([.FES])$")


def minitest(folder: str) -> list[tuple[str, str, str]]:
    out = []
    for log in sorted(Path(folder).glob("*.out")):
        file = log.stem
        seen = 0
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
            m = MINITEST_LINE.match(line.strip())
            if m:
                seen += 1
                outcome = {".": "pass", "S": "skip"}.get(m.group(2), "fail")
                out.append((file, f"{file}::{m.group(1)}", outcome))
        if seen == 0:
            # A file that ran nothing (it crashed or hung before its first
            # test) counts as one failure, not as an empty file.
            out.append((file, f"{file}::(the file ran no tests)", "fail"))
    return out


def main() -> None:
    args = sys.argv[1:]
    if len(args) == 3 and args[0] == "--minitest":
        cases = minitest(args[1])
    elif len(args) == 2:
        cases = junit(args[0])
    else:
        sys.exit(__doc__)
    internals = listed(args[-1])
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    failed = []
    for file, test, outcome in cases:
        counts[file][("pass", "fail", "skip").index(outcome)] += 1
        if outcome == "fail":
            failed.append(test)
    if not counts:
        sys.exit("compat-report: no tests ran")
    print("| file | passed | failed | skipped |\n|---|---|---|---|")
    for file, (p, f, s) in sorted(counts.items()):
        print(f"| {file} | {p} | {f} | {s} |")
    total = [sum(c[i] for c in counts.values()) for i in range(3)]
    print(f"| all | {total[0]} | {total[1]} | {total[2]} |")
    for test in failed:
        if test in internals:
            print(f"expected (the peer's internals): {test}: {internals[test]}")
    for test in sorted(set(internals) - set(failed)):
        print(f"listed as internals but passed: {test}")
    unexpected = [t for t in failed if t not in internals]
    if unexpected:
        sys.exit("compat-report: failed:\n  " + "\n  ".join(unexpected))


if __name__ == "__main__":
    main()
