"""Holds the Ruby binding's moving-data figures to the Python binding's.

    python3 ci/bench-ruby-bar.py [--python PY] [--quick] [--shape S ...]

Issue 12's bar for Ruby is the Python binding's figure for the same value,
within 1.5×. The two cannot share a process, and the machine's speed
drifts by a third within a minute, sometimes within one process's run
(records of 10 KB out: 0.08 ms a call in most Ruby processes, 0.13–0.15 in
some, with as many GCs): whole runs of each, even alternated, compared
them at different speeds, and a row crossed the bar from one invocation to
the next. So one worker of each (bindings-python/bench/data_worker.py,
bindings-ruby/bench/data_worker.rb) holds a row's context, warmed, and the
two take turns in bursts of about BURST_MS of calls (at most BURST_MAX), in a new random order
each turn, until each has MAX_CALLS calls of each kind or the row's budget
is spent. A row compares the medians of all their calls; beside it, the
middle half of the turns' own ratios (Ruby's burst median ÷ Python's
neighbouring one) shows how settled that is. Bytes rows also show each
one's memcpy bar, timed in the same turns. After a burst of calls of
SLOW_MS or more the driver pauses SETTLE_MS, so the work such calls leave
running in their own process (V8's GC threads; in Ruby, the thread that
makes the next large copy's pages) ends before the other worker's turn
instead of slowing it.
PY is the interpreter with the polyracer wheel installed (ci/bench.sh
passes .venv-bench's); the Ruby extension must be in
bindings-ruby/lib/polyracer.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BAR = 1.5
BURST_MS = 20.0
# A burst is at most this many calls, so the calls of a fast row (0.05 ms)
# are spread over many turns, not a few bursts of hundreds.
BURST_MAX = 10
MAX_CALLS = 600
SLOW_MS = 5.0
SETTLE_MS = 40.0
SIZES = [10e3, 300e3, 1e6, 10e6]
BYTES = [1 << 20, 64 << 20]
SHAPES = ["records", "numbers", "strings"]


class Worker:
    """One language's worker process, spoken to a JSON line at a time."""

    def __init__(self, cmd: list[str], cwd: Path) -> None:
        self.proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def ask(self, **cmd: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            sys.exit(f"bench-ruby-bar: a worker exited ({self.proc.wait()}) on {cmd}")
        return json.loads(line)

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait()


def label(shape: str, size: float) -> str:
    if shape == "bytes":
        return f"bytes, {int(size) >> 20} MiB"
    return f"{shape}, ~{size / 1e6:g} MB JSON"


def quartiles(xs: list[float]) -> str:
    q = statistics.quantiles(xs, n=4) if len(xs) > 1 else xs * 3
    return f"{q[0]:.2f}–{q[2]:.2f}"


def row(py: Worker, rb: Worker, shape: str, size: float, budget: float) -> dict[str, Any]:
    """Each worker's calls of one row, in turns: median ms per kind of call,
    and the turns' Ruby ÷ Python ratios."""
    est = [w.ask(op="open", shape=shape, size=size)["est"] for w in (py, rb)]
    kinds = list(est[0])
    ms: dict[tuple[int, str], list[float]] = {(i, k): [] for i in (0, 1) for k in kinds}
    ratios: dict[str, list[float]] = {k: [] for k in kinds}
    end = time.perf_counter() + budget * 2 * len(kinds)

    def short() -> bool:
        return any(len(v) < 5 for v in ms.values())

    while short() or (time.perf_counter() < end and all(len(v) < MAX_CALLS for v in ms.values())):
        for kind in random.sample(kinds, len(kinds)):
            calls = min(BURST_MAX, max(1, int(BURST_MS / max(est[0][kind], est[1][kind]))))
            burst = {}
            for i in random.sample([0, 1], 2):
                burst[i] = (py, rb)[i].ask(op="time", what=kind, calls=calls)["ms"]
                ms[(i, kind)] += burst[i]
                if max(burst[i]) >= SLOW_MS:
                    time.sleep(SETTLE_MS / 1000)
            ratios[kind].append(statistics.median(burst[1]) / statistics.median(burst[0]))
    for w in (py, rb):
        w.ask(op="close")
    return {
        "median": {key: statistics.median(v) for key, v in ms.items()},
        "ratios": ratios,
        "calls": len(ms[(0, "out")]),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--quick", action="store_true")
    rows_of = [*SHAPES, "bytes"]
    parser.add_argument("--shape", action="append", choices=rows_of, help="only these rows (repeatable)")
    args = parser.parse_args()
    sizes, nbytes = (SIZES[:3], BYTES[:1]) if args.quick else (SIZES, BYTES)
    budget = 0.3 if args.quick else 1.5
    # Absolute (the worker runs from its own folder), not resolved: a
    # venv's python is a symlink that must keep its path.
    py = Worker([os.path.abspath(args.python), "data_worker.py"], ROOT / "bindings-python" / "bench")
    rb = Worker(["ruby", "-Ilib", "bench/data_worker.rb"], ROOT / "bindings-ruby")
    rows = [(shape, size) for size in sizes for shape in SHAPES] + [("bytes", n) for n in nbytes]
    rows = [r for r in rows if args.shape is None or r[0] in args.shape]
    print(
        f"Ruby against Python, polyracer alone, in turns (bursts of ≤ {BURST_MS:g} ms, ≤ {BURST_MAX} calls), median ms, out / in:"
    )
    print(
        "| value | Ruby | Python | Ruby ÷ Python | within 1.5× | turns' ratios, middle half (out / in) | calls each |"
    )
    print("|---|---|---|---|---|---|---|")
    misses = 0
    bars = []
    for shape, size in rows:
        r = row(py, rb, shape, size, budget)
        m = r["median"]
        ro, ri, po, pi = m[(1, "out")], m[(1, "in")], m[(0, "out")], m[(0, "in")]
        ok = ro <= BAR * po and ri <= BAR * pi
        misses += not ok
        print(
            f"| {label(shape, size)} | {ro:.2f} / {ri:.2f} | {po:.2f} / {pi:.2f} | {ro / po:.2f} / {ri / pi:.2f} "
            f"| {'yes' if ok else 'no'} | {quartiles(r['ratios']['out'])} / {quartiles(r['ratios']['in'])} "
            f"| {r['calls']} |",
            flush=True,
        )
        if shape == "bytes":
            bars.append((size, ro / m[(1, "memcpy")], m[(1, "memcpy")], po / m[(0, "memcpy")], m[(0, "memcpy")]))
    for size, rq, rm, pq, pm in bars:
        print(f"| {label('bytes', size)}: out ÷ own memcpy bar | {rq:.2f} (bar {rm:.2f}) | {pq:.2f} (bar {pm:.2f}) |")
    print(f"{misses} of {len(rows)} rows outside 1.5×")
    py.close()
    rb.close()


if __name__ == "__main__":
    main()
