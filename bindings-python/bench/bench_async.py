"""Async JS from asyncio: polyracer vs PyMiniRacer, side by side in one run.

    python bench/bench_async.py [--quick]

Rows:
- polyracer: ``await ctx.eval_async(...)`` (no thread per await).
- polyracer via executor: the same context awaited the way polyracer 0.1 did
  it (``loop.run_in_executor(None, lambda: ctx.eval(..., await_promise=True))``),
  the "before" of the async redesign, measured in the same run.
- PyMiniRacer 0.14: ``await mr.eval_cancelable(...)`` (its asyncio API),
  then ``await`` on the JSPromise it returns for a promise.

Round trips are timed one by one with host busy-work between them (0, 50
and 1000 µs), p50 and p99; then 1,000 awaits run concurrently on one
context (total time and the most threads seen while they were pending).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import polyracer

GAPS_US = (0, 50, 1000)
# PyMiniRacer's setTimeout(0) rejects (its timers use Atomics.waitAsync,
# which settles a 0 ms wait synchronously), so the timer case waits 1 ms.
CASES = {
    "1 + 1": "1 + 1",
    "a resolved promise": "Promise.resolve(1)",
    "a 1 ms timer's promise": "new Promise((r) => setTimeout(() => r(1), 1))",
}
CONCURRENT = 1000
CONCURRENT_CODE = "new Promise((r) => setTimeout(() => r(1), 1))"


def busy(micros: int) -> None:
    end = time.perf_counter_ns() + micros * 1000
    while time.perf_counter_ns() < end:
        pass


def threads() -> int:
    return len(os.listdir("/proc/self/task"))


async def percentiles(call: Callable[[], Awaitable[Any]], gap: int, n: int) -> tuple[float, float]:
    for _ in range(20):
        await call()
    samples = []
    for _ in range(n):
        busy(gap)
        t = time.perf_counter_ns()
        await call()
        samples.append((time.perf_counter_ns() - t) / 1000)
    samples.sort()
    return samples[len(samples) // 2], samples[min(len(samples) - 1, int(len(samples) * 0.99))]


async def concurrent(call: Callable[[], Awaitable[Any]]) -> tuple[float, int]:
    peak = threads()

    async def watch() -> None:
        nonlocal peak
        while True:
            peak = max(peak, threads())
            await asyncio.sleep(0.001)

    watcher = asyncio.ensure_future(watch())
    t = time.perf_counter()
    got = await asyncio.gather(*(call() for _ in range(CONCURRENT)))
    elapsed = time.perf_counter() - t
    watcher.cancel()
    assert got == [1] * CONCURRENT, got[:3]
    return elapsed * 1000, peak


def engines() -> list[tuple[str, Callable[[str], Callable[[], Awaitable[Any]]], Callable[[], None]]]:
    ctx = polyracer.Context()
    ex = polyracer.Context()

    def executor(code: str) -> Callable[[], Awaitable[Any]]:
        def blocking() -> Any:
            return ex.eval(code, await_promise=True)

        return lambda: asyncio.get_running_loop().run_in_executor(None, blocking)

    out = [
        ("polyracer", lambda code: lambda: ctx.eval_async(code), ctx.dispose),
        ("polyracer via executor (0.1 design)", executor, ex.dispose),
    ]
    try:
        from py_mini_racer import JSPromise, MiniRacer

        mr = MiniRacer()

        async def mr_await(code: str) -> Any:
            # Its eval gives a promise back as a JSPromise; awaiting it is
            # the second step its users take.
            v = await mr.eval_cancelable(code)
            return (await v) if isinstance(v, JSPromise) else v

        out.append(("PyMiniRacer 0.14", lambda code: lambda: mr_await(code), mr.close))
    except ImportError:
        print("(PyMiniRacer not installed: pip install -r requirements-bench.txt)")
    return out


async def main(quick: bool) -> None:
    n = 300 if quick else 2000
    rows = []
    conc = []
    for name, make, close in engines():
        for case, code in CASES.items():
            cells = [await percentiles(make(code), gap, n) for gap in GAPS_US]
            rows.append((case, name, cells))
        conc.append((name, *(await concurrent(make(CONCURRENT_CODE)))))
        close()
    print("Async round trip from asyncio, p50 / p99 µs (each await timed alone, host busy-work between):")
    print("| case | engine | " + " | ".join(f"gap {g} µs" for g in GAPS_US) + " |")
    print("|---" * (len(GAPS_US) + 2) + "|")
    for case, name, cells in sorted(rows, key=lambda r: r[0]):
        print(f"| {case} | {name} | " + " | ".join(f"{a:.1f} / {b:.1f}" for a, b in cells) + " |")
    print()
    print(f"{CONCURRENT:,} concurrent awaits on one context (each a 1 ms sandbox timer):")
    print("| engine | total ms | most threads in the process |")
    print("|---|---|---|")
    for name, ms, peak in conc:
        print(f"| {name} | {ms:.1f} | {peak} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    asyncio.run(main(parser.parse_args().quick))
