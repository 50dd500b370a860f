#!/usr/bin/env python3
"""Fails a test step whose runner "passed" without really testing.

A runner exits 0 when it ran zero tests (a glob that matched nothing, a
suite that failed to load) or when tests skipped themselves (a missing tool,
a guard that is always true). Neither is a pass: this reads the runner's own
result file and fails on zero tests, on skips not allowed here, and on
failures the runner somehow did not turn into an exit code.

  check-results.py junit FILE          pytest --junitxml=FILE
  check-results.py tap FILE            node --test --test-reporter=tap
  check-results.py minitest FILE       the output of `rake test`
  check-results.py nextest FILE SKIPS  the output of `cargo nextest run`;
                                       exactly SKIPS tests may be skipped
                                       (the #[ignore]d helpers run by others)
"""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def fail(msg: str) -> None:
    print(f"check-results: {msg}", file=sys.stderr)
    sys.exit(1)


def junit(path: str) -> tuple[int, int, list[str]]:
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    tests = sum(int(s.get("tests", 0)) for s in suites)
    bad = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
    skipped = [
        f"{case.get('classname')}::{case.get('name')}: {(sk.get('message') or '').strip()}"
        for case in root.iter("testcase")
        for sk in case.findall("skipped")
    ]
    return tests, bad, skipped


def tap(path: str) -> tuple[int, int, list[str]]:
    text = Path(path).read_text(encoding="utf-8")
    counts = {
        k: int(v)
        for k, v in re.findall(r"^# (tests|pass|fail|cancelled|skipped|todo) (\d+)$", text, re.MULTILINE)
    }
    if "tests" not in counts:
        fail(f"{path}: no TAP summary (did the runner crash?)")
    skipped = re.findall(r"^\s*(?:not )?ok \d+ - (.*) # (?:SKIP|TODO)\b.*$", text, re.MULTILINE)
    skipped += ["(unnamed)"] * (counts.get("skipped", 0) + counts.get("todo", 0) - len(skipped))
    return counts["tests"], counts.get("fail", 0) + counts.get("cancelled", 0), skipped


def minitest(path: str) -> tuple[int, int, list[str]]:
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    # rake runs every file in one process: one summary line.
    lines = re.findall(
        r"^(\d+) runs, \d+ assertions, (\d+) failures, (\d+) errors, (\d+) skips$", text, re.MULTILINE
    )
    if len(lines) != 1:
        fail(f"{path}: expected one minitest summary line, found {len(lines)}")
    runs, failures, errors, skips = map(int, lines[0])
    names = re.findall(r"^\s*\d+\) Skipped:\n(.*)$", text, re.MULTILINE)
    return (
        runs,
        failures + errors,
        names + ["(run rake test with TESTOPTS=-v for names)"] * (skips - len(names)),
    )


def nextest(path: str) -> tuple[int, int, list[str]]:
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    m = re.findall(r"Summary \[[^\]]*\]\s+(\d+) tests? run: (\d+) passed(.*)$", text, re.MULTILINE)
    if len(m) != 1:
        fail(f"{path}: expected one nextest summary line, found {len(m)}")
    run, passed, rest = m[0]
    skipped = re.search(r"(\d+) skipped", rest)
    names = re.findall(r"^\s*SKIP\s+\[[^\]]*\]\s+(.*)$", text, re.MULTILINE)
    n = int(skipped.group(1)) if skipped else 0
    return int(run), int(run) - int(passed), names + ["(unnamed)"] * (n - len(names))


def main() -> None:
    if len(sys.argv) < 3:
        fail(__doc__ or "usage")
    kind, path = sys.argv[1], sys.argv[2]
    allowed_skips = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    if not Path(path).is_file():
        fail(f"{path} is missing: the runner crashed or was killed before writing it")
    tests, bad, skipped = {"junit": junit, "tap": tap, "minitest": minitest, "nextest": nextest}[kind](path)
    print(
        f"check-results: {kind}: {tests} tests, {bad} failed, {len(skipped)} skipped ({allowed_skips} allowed)"
    )
    if tests == 0:
        fail(f"{path}: the runner ran no tests")
    if bad:
        fail(f"{path}: {bad} tests failed")
    if len(skipped) != allowed_skips:
        fail(
            f"{path}: {len(skipped)} tests skipped, {allowed_skips} expected; a skip hides a test that "
            "should run here (install what it needs, or fix its guard):\n  " + "\n  ".join(skipped)
        )


if __name__ == "__main__":
    main()
