"""polyracer's moving-data calls, timed on command.

    python data_worker.py     (from bindings-python/bench/)

ci/bench-ruby-bar.py runs this beside bindings-ruby/bench/data_worker.rb
and has the two take turns, a short burst of calls each, so the machine's
drift (a third within a minute, sometimes within one process's run) falls
on both alike. One JSON command a line on stdin, one JSON reply a line on
stdout:

- ``{"op": "open", "shape": s, "size": n}``: the row's context, each call
  warmed for ``WARM`` s; reply ``est``, the mean ms a call of each.
- ``{"op": "time", "what": w, "calls": k}``: ``k`` timed calls of ``w``
  (``out``, ``in``, or ``memcpy`` for bytes); reply ``ms``, each call's.
- ``{"op": "close"}``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

import polyracer
from bench_data import sized

WARM = 0.2


def open_row(shape: str, size: int) -> tuple[polyracer.Context, dict[str, Callable[[], Any]]]:
    """The calls of one row: JS → Python ("out"), Python → JS ("in"), and
    for bytes a memcpy of as many into memory already touched (the bar)."""
    ctx = polyracer.Context()
    calls: dict[str, Callable[[], Any]] = {}
    if shape == "bytes":
        value: Any = b"\x07" * size
        ctx.eval(f"var v = new Uint8Array({size}).fill(7)")
        view = memoryview(bytearray(size))
        calls["memcpy"] = lambda: view.__setitem__(slice(None), value)
    else:
        value = sized(shape, size)
        ctx.eval(f"var v = {json.dumps(value)}")
    sink = ctx.eval("(x) => 0")
    calls["out"] = lambda: ctx.eval("v")
    calls["in"] = lambda: sink(value)
    return ctx, calls


def warmed(call: Callable[[], Any]) -> float:
    """Mean ms a call of `call` while it is warmed."""
    start = time.perf_counter()
    n = 0
    while n == 0 or time.perf_counter() < start + WARM:
        call()
        n += 1
    return (time.perf_counter() - start) * 1000 / n


def reply(obj: dict[str, Any]) -> None:
    print(json.dumps(obj), flush=True)


def main() -> None:
    ctx: polyracer.Context | None = None
    calls: dict[str, Callable[[], Any]] = {}
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["op"] == "open":
            ctx, calls = open_row(cmd["shape"], int(cmd["size"]))
            reply({"est": {what: warmed(call) for what, call in calls.items()}})
        elif cmd["op"] == "time":
            call = calls[cmd["what"]]
            ms = []
            for _ in range(cmd["calls"]):
                t = time.perf_counter()
                call()
                ms.append((time.perf_counter() - t) * 1000)
            reply({"ms": ms})
        elif cmd["op"] == "close":
            # Always a reply: the driver waits for one line per command.
            if ctx is not None:
                ctx.dispose()
            ctx, calls = None, {}
            reply({"closed": True})


if __name__ == "__main__":
    main()
