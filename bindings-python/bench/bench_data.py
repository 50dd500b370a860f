"""Moving data between Python and JS: polyracer vs its peers, side by side in one run.

    python bench/bench_data.py [--quick]

Shapes: nested records, a wide list of floats, a wide list of strings, at
about 10 KB, 300 KB, 1 MB and 10 MB of JSON (``--quick``: up to 1 MB), each
way: JS → Python ("out") and Python → JS ("in"); then bytes of 1 MiB and
64 MiB, copied (polyracer only: the peers have no way to pass bytes in) and
shared out (polyracer's ``share_buffers=True`` beside mini-racer's
memoryview, both without a copy), beside a plain memcpy of as many bytes
into memory already touched (the bar) and a copy into new memory
(``bytearray(b)``, which pays a page fault per 4 KiB). Peers whose objects come
back as proxies are measured copying through JSON, as their users do (see
bench.py's engine classes). Median ms, each call warmed for 0.2 s first;
lower is better. Within a row the engines take turns, call by call.

ci/bench-ruby-bar.py holds the Ruby binding to this one's figures with
data_worker.py, which times polyracer's calls in bursts, in turns with the
Ruby binding's.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from bench import ENGINES


def records(n: int) -> dict[str, Any]:
    return {
        "items": [
            {"id": i, "name": f"item {i}", "tags": ["a", "b"], "score": i * 1.5, "ok": i % 2 == 0}
            for i in range(n)
        ]
    }


SHAPES: dict[str, Callable[[int], Any]] = {
    "records": records,
    "numbers": lambda n: [i * 1.25 for i in range(n)],
    "strings": lambda n: [f"string number {i}" for i in range(n)],
}


def compact_len(value: Any) -> int:
    """Length of `value` as compact JSON (as JSON.stringify and Ruby's
    JSON.generate write it), so a row holds as many items as the Node and
    Ruby benchmarks' row of the same size."""
    return len(json.dumps(value, separators=(",", ":")))


def sized(shape: str, size: float) -> Any:
    per = compact_len(SHAPES[shape](100)) / 100
    return SHAPES[shape](max(1, round(size / per)))


# Up to this many timed calls of each engine, within the budget: a few
# hundred settle a median that 50 left moving by a third (a call's place
# between collections differs from run to run).
MAX_RUNS = 300


def warmed(fns: list[Callable[[], Any]]) -> None:
    # Each call warmed for a fifth of a second first (as bench_data.js and
    # bench_data.rb do): a program that moves data call after call runs
    # with its heap and caches settled. The same for every engine.
    for fn in fns:
        warm = time.perf_counter() + 0.2
        fn()
        while time.perf_counter() < warm:
            fn()


def in_turns(fns: list[Callable[[], Any]], budget: float) -> list[float]:
    """Median ms of each of `fns`, timed in turns (one call of each, then
    again), after each was warmed: on a shared machine whose speed drifts
    by a third within a minute, engines timed one after the other were
    compared at different speeds (a row moved past its peer between runs);
    in turns, in a new random order each round, the drift falls on all
    of them alike (as bench_data.js does)."""
    warmed(fns)
    runs: list[list[float]] = [[] for _ in fns]
    end = time.perf_counter() + budget * len(fns)
    while len(runs[0]) < 5 or (time.perf_counter() < end and len(runs[0]) < MAX_RUNS):
        # A new random order each round (as bench_data.js): in a fixed one,
        # the work a call leaves for the next (a collection, freed memory)
        # falls on the same engine round after round.
        for i in random.sample(range(len(fns)), len(fns)):
            t = time.perf_counter()
            fns[i]()
            runs[i].append((time.perf_counter() - t) * 1000)
    return [statistics.median(r) for r in runs]


def median_ms(fn: Callable[[], Any], budget: float) -> float:
    return in_turns([fn], budget)[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    quick = args.quick
    sizes = [10e3, 300e3, 1e6] if quick else [10e3, 300e3, 1e6, 10e6]
    budget = 0.3 if quick else 1.5
    engines = [e for e in ENGINES if e.available() and e.name != "v8-python"]
    print("Moving data, median ms, out (JS → Python) / in (Python → JS):")
    print("| value | " + " | ".join(e.name for e in engines) + " |")
    print("|---" * (len(engines) + 1) + "|")
    for size in sizes:
        for shape in SHAPES:
            value = sized(shape, size)
            # Every engine's context holds the value at once, so their
            # calls can take turns; an engine that fails is reported and
            # left out of the row.
            ready = []
            for eng in engines:
                try:
                    ctx = eng.new()
                    eng.eval(ctx, f"var v = {json.dumps(value)}")
                    sink = eng.function(ctx, "(x) => 0")
                    eng.to_python(ctx, "v")
                    eng.from_python(ctx, sink, value)
                    ready.append((eng, ctx, sink))
                except Exception as e:  # noqa: BLE001 - a peer's failure is reported, not fatal
                    print(f"({eng.name}: {shape}: {type(e).__name__}: {str(e)[:80]})", file=sys.stderr)
            outs = in_turns([lambda e=e, c=c: e.to_python(c, "v") for e, c, _ in ready], budget)
            ins = in_turns([lambda e=e, c=c, f=f: e.from_python(c, f, value) for e, c, f in ready], budget)  # noqa: B023
            timed = {e.name: (o, i) for (e, _, _), o, i in zip(ready, outs, ins, strict=True)}
            for e, c, _ in ready:
                e.close(c)
            cells = [
                f"{timed[e.name][0]:.2f} / {timed[e.name][1]:.2f}" if e.name in timed else "n/a"
                for e in engines
            ]
            mb = compact_len(value) / 1e6
            print(f"| {shape}, {mb:.2f} MB JSON | " + " | ".join(cells) + " |")
    import polyracer

    for n in [1 << 20] if quick else [1 << 20, 64 << 20]:
        data = b"\x07" * n
        with polyracer.Context() as ctx:
            ctx.eval(f"var v = new Uint8Array({n}).fill(7)")
            sink = ctx.eval("(x) => 0")
            view = memoryview(bytearray(n))
            # The copy out timed in turns with its bar and a copy into new
            # memory; the copy in with the view shared out.
            out, memcpy, fresh = in_turns(
                [
                    lambda: ctx.eval("v"),  # noqa: B023
                    lambda: view.__setitem__(slice(None), data),  # noqa: B023
                    lambda: bytearray(data),  # noqa: B023
                ],
                budget,
            )
            inn, shared = in_turns(
                [lambda: sink(data), lambda: ctx.eval("v", share_buffers=True)],  # noqa: B023
                budget,
            )
        rest = " | ".join("n/a" for _ in engines[1:])
        print(f"| bytes, {n >> 20} MiB | {out:.2f} / {inn:.2f} | {rest} |")
        cells = [f"{shared:.3f} / n/a"]
        for eng in engines[1:]:
            if eng.name != "mini-racer":
                cells.append("n/a")
                continue
            ctx = eng.new()
            eng.eval(ctx, f"var v = new Uint8Array({n}).fill(7)")
            cells.append(f"{median_ms(lambda: eng.eval(ctx, 'v'), budget):.3f} / n/a")  # noqa: B023
            eng.close(ctx)
        print(f"| bytes shared out, {n >> 20} MiB | " + " | ".join(cells) + " |")
        print(f"| memcpy of {n >> 20} MiB into touched memory (the bar) | {memcpy:.2f} |")
        print(f"| copy of {n >> 20} MiB into new memory (`bytearray(b)`) | {fresh:.2f} |")


if __name__ == "__main__":
    main()
