"""Per-call cost of the uniffi layer, measured through uniffi's generated
Python bindings (ctypes). Python-side lowering/lifting dominates; Swift's
generated code does the same work natively, so treat these as upper bounds.

    cargo build --release -p polyracer-swift
    bindings-swift/generate.sh python target/release/libpolyracer_swift.so /tmp/prs
    PYTHONPATH=/tmp/prs .venv/bin/python bindings-swift/bench/bench_ffi.py
"""

import asyncio
import time

from polyracer_swift import Context, JsProperty, JsValue


def per_op(f, n):
    f()
    start = time.perf_counter()
    for _ in range(n):
        f()
    return (time.perf_counter() - start) / n


def async_per_op(ctx, n):
    async def run():
        await ctx.eval_async("1+1")
        start = time.perf_counter()
        for _ in range(n):
            await ctx.eval_async("1+1")
        return (time.perf_counter() - start) / n

    return asyncio.run(run())


def concurrent_awaits(ctx, n):
    async def run():
        start = time.perf_counter()
        await asyncio.gather(*(ctx.eval_async("new Promise((r) => setTimeout(r, 1))") for _ in range(n)))
        return time.perf_counter() - start

    return asyncio.run(run())


class Echo:
    def call(self, context, args):
        return args[0]


def main():
    ctx = Context()
    ctx.expose("echo", Echo())
    add = ctx.eval("(a, b) => a + b")[0]
    one, two = JsValue.INTEGER(1), JsValue.INTEGER(2)
    obj = JsValue.OBJECT([JsProperty(key=f"k{i}", value=JsValue.STRING("v" * 10)) for i in range(100)])
    rows = [
        ("trivial FFI call (disposed())", per_op(ctx.disposed, 20000)),
        ("eval('1+1')", per_op(lambda: ctx.eval("1+1"), 20000)),
        ("call('(a,b)=>a+b', 1, 2)", per_op(lambda: ctx.call("(a,b)=>a+b", [one, two]), 20000)),
        ("function handle call", per_op(lambda: add.call([one, two]), 20000)),
        ("JS -> Python host fn -> JS (eval('echo(1)'))", per_op(lambda: ctx.eval("echo(1)"), 10000)),
        (
            "object of 100 string props, JS -> host",
            per_op(
                lambda: ctx.eval(
                    "globalThis.o ??= Object.fromEntries("
                    "Array.from({length: 100}, (_, i) => ['k' + i, 'v'.repeat(10)])); o"
                ),
                2000,
            ),
        ),
        ("object of 100 string props, host -> JS", per_op(lambda: ctx.call("(x) => 0", [obj]), 2000)),
        ("Context() + dispose()", per_op(lambda: Context().dispose(), 50)),
        ("await eval_async('1+1') (asyncio)", async_per_op(ctx, 5000)),
        ("1,000 concurrent awaits of 1 ms timers (total)", concurrent_awaits(ctx, 1000)),
    ]
    ctx.dispose()
    print("| operation | time per op |")
    print("| --- | --- |")
    for name, t in rows:
        print(f"| {name} | {t * 1e6:.1f} µs |" if t < 1e-3 else f"| {name} | {t * 1e3:.2f} ms |")


if __name__ == "__main__":
    main()
