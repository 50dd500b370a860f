"""polyracer vs other JS engines for Python, side by side in one run.

    python bench/bench.py [--quick] [--png bench.png] [--latency-only]

Peers are used when installed (see requirements-bench.txt): mini-racer
(PyMiniRacer), quickjs, stpyv8, v8-python. Peers whose objects come back as
proxies are measured copying through JSON, as their users do. Each case reports the median
time per operation; lower is better.

The latency table times each call on its own with host busy-work between
calls (0, 5, 50, 200 and 1000 µs), as a real program calls, and reports the
50th and 99th percentiles: tight loops hide per-call costs such as waking a
parked thread.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import polyracer


def measure(fn: Callable[[], Any], budget: float) -> float:
    """Median seconds per call over batches filling ~budget seconds."""
    n = 1
    while True:
        t = time.perf_counter()
        for _ in range(n):
            fn()
        if time.perf_counter() - t > budget / 20:
            break
        n *= 2
    samples = []
    end = time.perf_counter() + budget
    while time.perf_counter() < end or len(samples) < 5:
        t = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - t) / n)
    return statistics.median(samples)


def big_object() -> dict[str, Any]:
    return {
        "items": [
            {"id": i, "name": f"item {i}", "tags": ["a", "b", "c"], "blob": "x" * 900} for i in range(1000)
        ]
    }


class Engine:
    name = ""

    def available(self) -> bool:
        return True

    def callback_caller(self) -> tuple[Callable[[], Any], Callable[[], None]] | None:
        """A JS → Python → JS round trip as a zero-argument call, and a closer."""
        return None


class Polyracer(Engine):
    name = "polyracer"

    def new(self) -> Any:
        return polyracer.Context()

    def eval(self, ctx: Any, code: str) -> Any:
        return ctx.eval(code)

    def function(self, ctx: Any, code: str) -> Callable[..., Any]:
        return ctx.eval(code)

    def close(self, ctx: Any) -> None:
        ctx.dispose()

    def expose(self, ctx: Any, name: str, fn: Callable[..., Any]) -> bool:
        ctx.expose(name, fn)
        return True

    def to_python(self, ctx: Any, expr: str) -> Any:
        return ctx.eval(expr)

    def from_python(self, ctx: Any, fn: Any, value: Any) -> Any:
        return fn(value)

    def callback_caller(self) -> tuple[Callable[[], Any], Callable[[], None]] | None:
        ctx = polyracer.Context()
        ctx.expose("py_id", lambda x: x)
        return ctx.eval("() => py_id(1)"), ctx.dispose


class MiniRacer(Engine):
    name = "mini-racer"

    def available(self) -> bool:
        try:
            importlib.import_module("py_mini_racer")
            return True
        except ImportError:
            return False

    def new(self) -> Any:
        from py_mini_racer import MiniRacer as MR

        return MR()

    def eval(self, ctx: Any, code: str) -> Any:
        return ctx.eval(code)

    def function(self, ctx: Any, code: str) -> Callable[..., Any]:
        return ctx.eval(code)

    def close(self, ctx: Any) -> None:
        ctx.close()

    def expose(self, ctx: Any, name: str, fn: Callable[..., Any]) -> bool:
        return False  # only async wrapped functions; not comparable

    def to_python(self, ctx: Any, expr: str) -> Any:
        return ctx.execute(expr)  # objects come back as handles; execute copies (via JSON)

    def from_python(self, ctx: Any, fn: Any, value: Any) -> Any:
        # Arguments travel as JSON; `call` appends `.apply(...)` to the
        # expression, so an arrow function needs parentheses.
        return ctx.call("((x) => 0)", value)


class QuickJS(Engine):
    name = "quickjs"

    def available(self) -> bool:
        try:
            importlib.import_module("quickjs")
            return True
        except ImportError:
            return False

    def new(self) -> Any:
        import quickjs

        return quickjs.Context()

    def eval(self, ctx: Any, code: str) -> Any:
        return ctx.eval(code)

    def function(self, ctx: Any, code: str) -> Callable[..., Any]:
        ctx.eval(f"var __f = {code}")
        return ctx.get("__f")

    def close(self, ctx: Any) -> None:
        pass

    def expose(self, ctx: Any, name: str, fn: Callable[..., Any]) -> bool:
        ctx.add_callable(name, fn)
        return True

    def to_python(self, ctx: Any, expr: str) -> Any:
        import json

        return json.loads(ctx.eval(f"JSON.stringify({expr})"))

    def from_python(self, ctx: Any, fn: Any, value: Any) -> Any:
        import json

        return ctx.eval(f"((x) => 0)({json.dumps(value)})")


class JSONCopies(Engine):
    """Peers whose objects come back as proxies: copy through JSON, as users do."""

    def to_python(self, ctx: Any, expr: str) -> Any:
        import json

        return json.loads(self.eval(ctx, f"JSON.stringify({expr})"))

    def from_python(self, ctx: Any, fn: Any, value: Any) -> Any:
        import json

        return self.eval(ctx, f"((x) => 0)({json.dumps(value)})")

    def expose(self, ctx: Any, name: str, fn: Callable[..., Any]) -> bool:
        return False


class STPyV8(JSONCopies):
    name = "stpyv8"

    def available(self) -> bool:
        try:
            importlib.import_module("STPyV8")
            return True
        except ImportError:
            return False

    def new(self) -> Any:
        import STPyV8 as S

        ctx = S.JSContext()
        ctx.__enter__()
        return ctx

    def eval(self, ctx: Any, code: str) -> Any:
        return ctx.eval(code)

    def function(self, ctx: Any, code: str) -> Callable[..., Any]:
        return ctx.eval(code)

    def close(self, ctx: Any) -> None:
        ctx.__exit__(None, None, None)

    def callback_caller(self) -> tuple[Callable[[], Any], Callable[[], None]] | None:
        import STPyV8 as S

        class Globals(S.JSClass):
            def py_id(self, x: Any) -> Any:
                return x

        ctx = S.JSContext(Globals())
        ctx.__enter__()
        return ctx.eval("() => py_id(1)"), lambda: ctx.__exit__(None, None, None)


class V8Python(JSONCopies):
    name = "v8-python"

    def available(self) -> bool:
        try:
            importlib.import_module("v8")
            return True
        except ImportError:
            return False

    def new(self) -> Any:
        import v8

        return v8.Isolate().create_context()

    def eval(self, ctx: Any, code: str) -> Any:
        return ctx.eval(code)

    def function(self, ctx: Any, code: str) -> Callable[..., Any]:
        return ctx.eval(code)

    def close(self, ctx: Any) -> None:
        del ctx


ENGINES = [Polyracer(), MiniRacer(), QuickJS(), STPyV8(), V8Python()]


def run_engine(eng: Any, budget: float, obj: dict[str, Any]) -> dict[str, float]:
    import json

    r: dict[str, float] = {}

    def case(name: str, fn: Callable[[], float]) -> None:
        try:
            r[name] = fn()
        except (Exception, BaseException) as e:  # peers may panic (BaseException)
            if isinstance(e, KeyboardInterrupt):
                raise
            print(f"({eng.name}: {name}: {type(e).__name__}: {str(e)[:80]})", file=sys.stderr)

    ctx = eng.new()
    case("eval 1+1", lambda: measure(lambda: eng.eval(ctx, "1+1"), budget))
    add = eng.function(ctx, "(a, b) => a + b")
    case("call (a,b)=>a+b", lambda: measure(lambda: add(1, 2), budget))
    case("context create+dispose", lambda: measure(lambda: eng.close(eng.new()), budget))

    def to_python() -> float:
        eng.eval(ctx, f"var big = {json.dumps(obj)}")
        assert eng.to_python(ctx, "big") == obj
        return measure(lambda: eng.to_python(ctx, "big"), budget)

    case("1 MB object JS→Python", to_python)
    ident = eng.function(ctx, "(x) => 0")
    case("1 MB object Python→JS", lambda: measure(lambda: eng.from_python(ctx, ident, obj), budget))
    if eng.expose(ctx, "py_id", lambda x: x):
        loop = eng.function(ctx, "(n) => { let s = 0; for (let i = 0; i < n; i++) s += py_id(i); return s }")
        case("callback round trip", lambda: measure(lambda: loop(100), budget) / 100)
    if eng.name == "polyracer":
        r.update(threads(eng, budget))
        r.update(threads_single_threaded_engine(budget))
    eng.close(ctx)
    return r


def run(quick: bool) -> dict[str, dict[str, float]]:
    budget = 0.3 if quick else 1.0
    obj = big_object()
    results: dict[str, dict[str, float]] = {}
    for eng in ENGINES:
        if not eng.available():
            print(f"({eng.name} not installed; skipped)", file=sys.stderr)
            continue
        try:
            results[eng.name] = run_engine(eng, budget, obj)
        except (Exception, BaseException) as e:  # a peer that cannot run at all
            if isinstance(e, KeyboardInterrupt):
                raise
            print(f"({eng.name} failed: {type(e).__name__}: {str(e)[:80]})", file=sys.stderr)
    return results


def threads(eng: Polyracer, budget: float) -> dict[str, float]:
    """Ops/s with 1 thread on 1 context vs 2 threads on 2 contexts."""
    code = "(() => { let s = 0; for (let i = 0; i < 20000; i++) s += i; return s })()"

    def rate(n_threads: int) -> float:
        ctxs = [eng.new() for _ in range(n_threads)]
        counts = [0] * n_threads
        stop = time.perf_counter() + budget * 2

        def work(i: int) -> None:
            while time.perf_counter() < stop:
                ctxs[i].eval(code)
                counts[i] += 1

        ts = [threading.Thread(target=work, args=(i,)) for i in range(n_threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        for c in ctxs:
            c.dispose()
        return sum(counts) / (budget * 2)

    one, two = rate(1), rate(2)
    return {"throughput 1 thread (ops/s)": one, "throughput 2 threads×2 contexts (ops/s)": two}


def threads_single_threaded_engine(budget: float) -> dict[str, float]:
    """The same throughput with V8's worker threads off (a fresh process).

    With them on, one context's background JIT and GC already keep the
    second core busy, so two contexts have little to gain on 2 cores.
    """
    import json
    import subprocess

    out = subprocess.run(
        [sys.executable, __file__, "--threads-only", str(budget)], capture_output=True, text=True, check=True
    ).stdout
    return {f"{k} [single-threaded V8]": v for k, v in json.loads(out).items()}


GAPS_US = (0, 5, 50, 200, 1000)
LATENCY_ENGINES = ("polyracer", "stpyv8", "mini-racer")


def busy(micros: int) -> None:
    """Host work between calls: spin for `micros` µs."""
    end = time.perf_counter_ns() + micros * 1000
    x = 0
    while time.perf_counter_ns() < end:
        x += 1


def percentiles(fn: Callable[[], Any], gap: int, n: int) -> tuple[float, float]:
    """p50 and p99 in µs of `fn`, each call timed alone after `gap` µs of work."""
    for _ in range(200):
        fn()
    clock = time.perf_counter_ns
    times = []
    for _ in range(n):
        busy(gap)
        t = clock()
        fn()
        times.append(clock() - t)
    times.sort()
    return times[len(times) // 2] / 1000, times[min(len(times) - 1, len(times) * 99 // 100)] / 1000


def engine_latency(eng: Any, scale: float) -> list[tuple[str, str, list[tuple[float, float]]]]:
    """One engine's interleaved latency rows.

    Each context is closed before the next is made: STPyV8 contexts are
    entered on creation and must not overlap (overlapping ones crashed a
    later context creation).
    """
    counts = {0: 20000, 5: 20000, 50: 10000, 200: 3000, 1000: 1000}

    def cells(fn: Callable[[], Any]) -> list[tuple[float, float]]:
        return [percentiles(fn, gap, max(200, int(counts[gap] * scale))) for gap in GAPS_US]

    rows = []
    ctx = eng.new()
    add = eng.function(ctx, "(a, b) => a + b")
    rows.append(("eval `1+1`", eng.name, cells(lambda: eng.eval(ctx, "1+1"))))
    rows.append(("call `(a,b)=>a+b`", eng.name, cells(lambda: add(1, 2))))
    eng.close(ctx)
    caller = eng.callback_caller()
    if caller:
        rows.append(("callback round trip (JS → Python → JS)", eng.name, cells(caller[0])))
        caller[1]()
    return rows


def latency(quick: bool) -> list[tuple[str, str, list[tuple[float, float]]]]:
    """Interleaved latency rows: (case, engine, [(p50, p99) per gap])."""
    rows = []
    for eng in ENGINES:
        if eng.name in LATENCY_ENGINES and eng.available():
            rows += engine_latency(eng, 0.2 if quick else 1.0)
    return rows


def latency_table(rows: list[tuple[str, str, list[tuple[float, float]]]]) -> str:
    head = "| per-call latency, p50 / p99 µs | engine | " + " | ".join(f"gap {g} µs" for g in GAPS_US) + " |"
    lines = [head, "|---" * (len(GAPS_US) + 2) + "|"]
    for case, name, cells in sorted(rows, key=lambda r: r[0]):
        lines.append(f"| {case} | {name} | " + " | ".join(f"{a:.2f} / {b:.2f}" for a, b in cells) + " |")
    return "\n".join(lines)


def fmt(v: float, case: str) -> str:
    if "ops/s" in case:
        return f"{v:,.0f}"
    if v < 1e-3:
        return f"{v * 1e6:.2f} µs"
    return f"{v * 1e3:.2f} ms"


def table(results: dict[str, dict[str, float]]) -> str:
    names = list(results)
    cases = list(dict.fromkeys(c for r in results.values() for c in r))
    lines = ["| case | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for c in cases:
        lines.append(
            f"| {c} | " + " | ".join(fmt(results[n][c], c) if c in results[n] else "—" for n in names) + " |"
        )
    return "\n".join(lines)


def chart(results: dict[str, dict[str, float]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = [c for c in dict.fromkeys(c for r in results.values() for c in r) if "ops/s" not in c]
    fig, ax = plt.subplots(figsize=(10, 5))
    width = 0.8 / max(1, len(results))
    for i, (name, r) in enumerate(results.items()):
        xs = [j + i * width for j in range(len(cases))]
        ax.bar(xs, [r.get(c, 0) * 1e6 for c in cases], width, label=name)
    ax.set_xticks(
        [j + width * (len(results) - 1) / 2 for j in range(len(cases))], cases, rotation=20, ha="right"
    )
    ax.set_yscale("log")
    ax.set_ylabel("µs per operation (log, lower is better)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--threads-only":
        import json

        polyracer.configure(single_threaded=True)
        print(json.dumps(threads(Polyracer(), float(sys.argv[2]))))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--png")
    parser.add_argument("--latency-only", action="store_true")
    args = parser.parse_args()
    if args.latency_only:
        print("Interleaved latency (each call timed alone, host busy-work between calls):")
        print(latency_table(latency(args.quick)))
        return
    # In a child process: STPyV8 crashed (SIGSEGV) creating a context later
    # in a process whose earlier STPyV8 contexts had a custom global object.
    import subprocess

    child = [sys.executable, __file__, "--latency-only"] + (["--quick"] if args.quick else [])
    done = subprocess.run(child, check=False)
    if done.returncode != 0:
        print(f"(the latency run exited with {done.returncode})", file=sys.stderr)
    print()
    results = run(args.quick)
    print(table(results))
    p = results.get("polyracer", {})
    for suffix in ("", " [single-threaded V8]"):
        one = p.get(f"throughput 1 thread (ops/s){suffix}")
        if one:
            ratio = p[f"throughput 2 threads×2 contexts (ops/s){suffix}"] / one
            print(f"2-thread scaling{suffix}: {ratio:.2f}× (target ≥ 1.7×)")
    if args.png:
        chart(results, args.png)
        print(f"chart: {args.png}")


if __name__ == "__main__":
    main()
