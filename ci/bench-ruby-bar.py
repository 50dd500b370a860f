"""Holds the Ruby binding's moving-data figures to the Python binding's.

    python3 ci/bench-ruby-bar.py [--python PY] [--rounds N] [--quick]

Issue 12's bar for Ruby is the Python binding's figure for the same value,
within 1.5×. Both benches time polyracer alone here
(`bench_data.py --polyracer-json`, `POLYRACER_JSON=1 bench_data.rb`), the
same way: each call warmed, then median ms of up to 300 calls. The machine's
speed drifts by a third within minutes, so one run of each, minutes apart,
compared the two at different speeds (a row passed in one run and failed
in the next). Here the two run in turns, `--rounds` times each (Python
first in odd rounds, Ruby first in even ones), and each row compares the
medians of their rounds. Bytes rows also show each one's memcpy bar (a
copy into memory already touched, timed in turns with the copy out).
PY is the interpreter with the polyracer wheel installed (ci/bench.sh
passes .venv-bench's); the Ruby extension must be in
bindings-ruby/lib/polyracer.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BAR = 1.5


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> dict[tuple[str, float], dict[str, float]]:
    """One bench run: its rows by (shape, size)."""
    out = subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout
    rows = {}
    for line in out.splitlines():
        if line.startswith("{"):
            row = json.loads(line)
            rows[(row["shape"], float(row["size"]))] = row
    return rows


def label(shape: str, size: float) -> str:
    if shape == "bytes":
        return f"bytes, {int(size) >> 20} MiB"
    return f"{shape}, ~{size / 1e6:g} MB JSON"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    env = dict(os.environ)
    # Absolute (the benches run from their own folders), not resolved: a
    # venv's python is a symlink that must keep its path.
    py_cmd = [os.path.abspath(args.python), "bench_data.py", "--polyracer-json"] + (
        ["--quick"] if args.quick else []
    )
    rb_cmd = ["ruby", "-Ilib", "bench/bench_data.rb"]
    rb_env = {**env, "POLYRACER_JSON": "1", "QUICK": "1" if args.quick else "0"}
    py_runs, rb_runs = [], []
    for r in range(args.rounds):
        steps = [
            (py_runs, py_cmd, ROOT / "bindings-python" / "bench", env),
            (rb_runs, rb_cmd, ROOT / "bindings-ruby", rb_env),
        ]
        for runs, cmd, cwd, e in steps if r % 2 == 0 else reversed(steps):
            runs.append(run(cmd, cwd, e))
        print(f"(round {r + 1} of {args.rounds} done)", file=sys.stderr, flush=True)

    def med(runs: list[dict], key: tuple[str, float], field: str) -> float:
        return statistics.median(rows[key][field] for rows in runs)

    print(f"Ruby against Python, polyracer alone, median ms of {args.rounds} runs each, out / in:")
    print("| value | Ruby | Python | Ruby ÷ Python | within 1.5× | each run's ratio |")
    print("|---|---|---|---|---|---|")
    misses = 0
    for key in py_runs[0]:
        ro, ri = med(rb_runs, key, "out"), med(rb_runs, key, "in")
        po, pi = med(py_runs, key, "out"), med(py_runs, key, "in")
        ok = ro <= BAR * po and ri <= BAR * pi
        misses += not ok
        # Run i of Ruby against run i of Python (neighbours in time).
        each = ", ".join(
            f"{rb[key]['out'] / py[key]['out']:.2f} / {rb[key]['in'] / py[key]['in']:.2f}"
            for rb, py in zip(rb_runs, py_runs, strict=True)
        )
        print(
            f"| {label(*key)} | {ro:.2f} / {ri:.2f} | {po:.2f} / {pi:.2f} "
            f"| {ro / po:.2f} / {ri / pi:.2f} | {'yes' if ok else 'no'} | {each} |"
        )
    for key in (k for k in py_runs[0] if k[0] == "bytes"):
        rm, pm = med(rb_runs, key, "memcpy"), med(py_runs, key, "memcpy")
        print(
            f"| {label(*key)}: out ÷ own memcpy bar | {med(rb_runs, key, 'out') / rm:.2f} (bar {rm:.2f}) "
            f"| {med(py_runs, key, 'out') / pm:.2f} (bar {pm:.2f}) | | | |"
        )
    print(f"{misses} of {len(py_runs[0])} rows outside 1.5×")


if __name__ == "__main__":
    main()
